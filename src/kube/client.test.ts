/**
 * The client's retry rule, against a loopback server standing in for an API server that
 * sheds load (a healthy kube-apiserver will not answer 503 on demand). Everything else
 * about KubeClient is exercised against the real API server in test/integration.
 */
import { KubeConfig } from "@kubernetes/client-node";
import http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { KubeClient, KubeError } from "./client.ts";
import { INSTANCES } from "./resources.ts";

let server: http.Server | undefined;

afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

async function apiServer(answers: number[]): Promise<{ client: KubeClient; requests: string[] }> {
  const requests: string[] = [];
  server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const status = answers.shift() ?? 200;
    res.writeHead(status, { "Content-Type": "application/json" });
    res.end(JSON.stringify(status === 200 ? { metadata: { name: "a", namespace: "ns" } } : { kind: "Status", code: status, message: `answer ${status}` }));
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: "c", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: "u", token: "t" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return { client: new KubeClient(config), requests };
}

describe("KubeClient retries", () => {
  it("retries a read through 503 and 429 answers", async () => {
    const { client, requests } = await apiServer([503, 429]);
    const object = await client.get(INSTANCES, "ns", "a");
    expect(object.metadata.name).toBe("a");
    expect(requests).toHaveLength(3);
  });

  it("does not retry a read the server refused for good", async () => {
    const { client, requests } = await apiServer([404]);
    await expect(client.get(INSTANCES, "ns", "a")).rejects.toBeInstanceOf(KubeError);
    expect(requests).toHaveLength(1);
  });

  it("does not retry writes", async () => {
    const { client, requests } = await apiServer([503]);
    await expect(client.patch(INSTANCES, "ns", "a", { metadata: {} })).rejects.toMatchObject({ status: 503 });
    expect(requests).toHaveLength(1);
  });
});
