import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import type { KubeClient } from "../../kube/client.ts";
import { SecretReader } from "../../kube/secret-cache.ts";
import { isProviderError } from "../../providers/errors.ts";
import type { InstanceRef } from "../../providers/types.ts";
import { redactor } from "../../redaction.ts";
import type { ProviderObject } from "../context.ts";
import { ProviderConnections, type ProviderRefKey } from "./connections.ts";

/** Nothing listens on port 1 on loopback: a request that is sent is refused at once. */
const CLOSED_URL = "http://127.0.0.1:1";
const API_KEY = "connections-test-key-0123456789";

const provider: ProviderObject = {
  apiVersion: "wa-operator.io/v1alpha1",
  kind: "WhatsAppProvider",
  metadata: { name: "waha", namespace: "ns", uid: "p1" },
  spec: { type: "waha", url: CLOSED_URL, credentialsSecretRef: { name: "waha-key" } },
};
const ref: ProviderRefKey = { kind: "WhatsAppProvider", namespace: "ns", name: "waha" };
const instance: InstanceRef = { namespace: "ns", name: "one", uid: "u1", webhook: { url: "https://h.example/w", events: [], hmacKey: "instance-hmac-key-abcdefghij" } };

/** Only what resolve() reads: the credentials Secret (a namespace the cache does not watch, so it is fetched). */
const kube = {
  find: async () => ({ metadata: { name: "waha-key", labels: { "wa-operator.io/credential": "true" } }, data: { "api-key": Buffer.from(API_KEY).toString("base64") } }),
} as unknown as KubeClient;
const secrets = new SecretReader({ kube, cache: { get: () => undefined, remember: () => undefined, forget: () => undefined, covers: () => false } });

function connections(mayWrite?: () => boolean): ProviderConnections {
  return new ProviderConnections({ secrets, timeoutMs: 1000, lookup: () => provider, operatorNamespace: "ops", ...(mayWrite ? { mayWrite } : {}) });
}

async function failure(promise: Promise<unknown>) {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!isProviderError(error)) throw new Error(`expected a ProviderError, got ${String(error)}`);
  return error;
}

describe("ProviderConnections", () => {
  it("gives clients the leadership check: no write leaves while this replica is not surely the leader", async () => {
    let leader = false;
    const client = (await connections(() => leader).resolve(ref)).client;
    expect((await failure(client.connect(instance, "ns__one"))).message).toContain("not (or no longer surely) the leader");
    leader = true;
    // Now it is sent, and refused by the closed port.
    expect((await failure(client.connect(instance, "ns__one"))).message).toContain("did not answer");
  });

  it("teaches the process-wide redactor the provider's key and the secrets an instance hands its client", async () => {
    const client = (await connections().resolve(ref)).client;
    await failure(client.connect(instance, "ns__one"));
    expect(redactor.redact(`key ${API_KEY} hmac instance-hmac-key-abcdefghij`)).toBe("key [redacted] hmac [redacted]");
  });

  it("passes create's start through its wrappers, so a session is created and started in one call", async () => {
    const bodies: unknown[] = [];
    const server = createServer((request, response) => {
      let text = "";
      request.on("data", (chunk: Buffer) => (text += chunk.toString()));
      request.on("end", () => {
        bodies.push(JSON.parse(text || "null"));
        response.writeHead(201, { "Content-Type": "application/json" });
        response.end(JSON.stringify({ name: "ns__one", status: "SCAN_QR_CODE", config: { metadata: { "wa-operator.io/uid": "u1" } } }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const listening = new ProviderConnections({ secrets, timeoutMs: 1000, lookup: () => ({ ...provider, spec: { ...(provider.spec as object), url } }), operatorNamespace: "ops" });
      const client = (await listening.resolve(ref)).client;
      const session = await client.create(instance, { start: true });
      expect(session.phase).toBe("ScanQR");
      expect(bodies).toEqual([expect.objectContaining({ name: "ns__one", start: true })]);
    } finally {
      server.close();
    }
  });
  it("keeps the optional operations of the provider's client through its wrappers: a WAHA client still claims, releases and lists its sessions", async () => {
    const client = (await connections().resolve(ref)).client;
    expect([client.claim, client.release, client.listSessions].map((operation) => typeof operation)).toEqual(["function", "function", "function"]);
    expect((await failure(client.listSessions?.() ?? Promise.resolve())).message).toContain("did not answer");
  });
});
