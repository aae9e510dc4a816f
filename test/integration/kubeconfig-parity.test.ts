/**
 * Our kubeconfig loader against kubectl's own on the same files: several kubeconfigs in
 * KUBECONFIG, merged by both, and for each context the cluster, user and namespace each
 * one ends up with (`kubectl config view --merge --flatten --minify --context X`). Shapes:
 * merge across files (the first file to name a cluster, user or context wins), exec plugin,
 * token file (relative to its file), proxy-url, impersonation, insecure-skip-tls-verify,
 * and a CA together with it (both refuse it). Then the real API server through a loopback
 * CONNECT proxy, by our client and by kubectl, the proxy counting what it tunnelled.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parse, stringify } from "yaml";
import { KubeClient } from "../../src/kube/client.ts";
import { KubeConfigError, readKubeconfig } from "../../src/kube/config.ts";
import type { ResourceType } from "../../src/kube/resources.ts";
import { kubeconfigPath } from "../support/kube.ts";

const CA = Buffer.from("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").toString("base64");
let dir: string;
let files: string[];

function write(name: string, content: unknown): string {
  const file = path.join(dir, name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, typeof content === "string" ? content : stringify(content));
  return file;
}

/** The built kubectl with KUBECONFIG set to the given files. */
function kubectl(args: readonly string[], kubeconfig: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, KUBECONFIG: kubeconfig, PATH: `${inject("controlPlaneBinDir")}${path.delimiter}${process.env["PATH"]}` };
  return new Promise((resolve) =>
    execFile("kubectl", [...args], { env, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof (error as { code?: unknown }).code === "number" ? (error as { code: number }).code : 1) : 0, stdout, stderr }),
    ),
  );
}

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "kubeconfig-parity-"));
  write("b/tokens/sa", "token-from-file\n");
  write("c/bin/plugin.sh", "#!/bin/sh\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"token-from-exec\"}}'\n");
  files = [
    write("a/config", {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "shared", cluster: { server: "https://127.0.0.1:6001" } }],
      users: [{ name: "alice", user: { token: "token-alice" } }],
      contexts: [{ name: "merged", context: { cluster: "shared", user: "alice", namespace: "from-a" } }],
      "current-context": "merged",
    }),
    write("b/config", {
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        { name: "shared", cluster: { server: "https://127.0.0.1:6002" } },
        { name: "proxied", cluster: { server: "https://127.0.0.1:6003", "certificate-authority-data": CA, "proxy-url": "http://127.0.0.1:3128" } },
        { name: "insecure", cluster: { server: "https://127.0.0.1:6004", "insecure-skip-tls-verify": true } },
        { name: "insecure-ca", cluster: { server: "https://127.0.0.1:6005", "insecure-skip-tls-verify": true, "certificate-authority-data": CA } },
      ],
      users: [
        { name: "alice", user: { token: "token-alice-from-b" } },
        { name: "robot", user: { tokenFile: "tokens/sa" } },
        { name: "admin-as-jane", user: { token: "token-admin", as: "jane", "as-uid": "1001", "as-groups": ["devs", "ops"], "as-user-extra": { reason: ["audit"] } } },
      ],
      contexts: [
        { name: "merged", context: { cluster: "shared", user: "robot", namespace: "from-b" } },
        { name: "token-file", context: { cluster: "shared", user: "robot", namespace: "bots" } },
        { name: "proxy", context: { cluster: "proxied", user: "alice" } },
        { name: "impersonation", context: { cluster: "shared", user: "admin-as-jane", namespace: "team" } },
        { name: "insecure", context: { cluster: "insecure", user: "alice" } },
        { name: "insecure-ca", context: { cluster: "insecure-ca", user: "alice" } },
      ],
      "current-context": "proxy",
    }),
    write("c/config", {
      apiVersion: "v1",
      kind: "Config",
      users: [{ name: "exec-user", user: { exec: { apiVersion: "client.authentication.k8s.io/v1", command: "./bin/plugin.sh", interactiveMode: "Never" } } }],
      contexts: [{ name: "exec", context: { cluster: "proxied", user: "exec-user", namespace: "plugins" } }],
    }),
  ];
  execFile("chmod", ["755", path.join(dir, "c/bin/plugin.sh")]);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface ViewedConfig {
  clusters: { name: string; cluster: Record<string, unknown> }[];
  users: { name: string; user: Record<string, unknown> }[];
  contexts: { name: string; context: { cluster: string; user: string; namespace?: string } }[];
  "current-context": string;
}

const CONTEXTS = ["merged", "token-file", "proxy", "impersonation", "insecure", "exec"] as const;

describe("our loader and kubectl on the same KUBECONFIG of three files", () => {
  it("agree on the contexts and the current one", async () => {
    const kubeconfig = files.join(path.delimiter);
    const view = JSON.parse((await kubectl(["config", "view", "--merge", "--flatten", "-o", "json"], kubeconfig)).stdout) as ViewedConfig;
    const ours = await readKubeconfig({ env: { KUBECONFIG: kubeconfig } });
    expect(ours.contexts.map((context) => context.name).sort()).toEqual(view.contexts.map((context) => context.name).sort());
    expect(ours.currentContext).toBe(view["current-context"]);
  });

  it.each(CONTEXTS)("context %s: the same cluster, user and namespace", async (name) => {
    const kubeconfig = files.join(path.delimiter);
    const result = await kubectl(["config", "view", "--merge", "--flatten", "--minify", "--context", name, "-o", "json"], kubeconfig);
    expect(result.code).toBe(0);
    const view = JSON.parse(result.stdout) as ViewedConfig;
    const [context] = view.contexts;
    const [cluster] = view.clusters;
    const [user] = view.users;
    const ours = (await readKubeconfig({ env: { KUBECONFIG: kubeconfig } })).select(name);
    // Cluster: server, CA, proxy, insecure as kubectl resolved them.
    expect(ours.cluster.name).toBe(context?.context.cluster);
    expect(ours.cluster.server).toBe(cluster?.cluster["server"]);
    expect(ours.cluster.ca?.toString("base64")).toBe(cluster?.cluster["certificate-authority-data"]);
    expect(ours.cluster.proxyUrl).toBe(cluster?.cluster["proxy-url"]);
    expect(ours.cluster.insecureSkipTlsVerify).toBe(cluster?.cluster["insecure-skip-tls-verify"] ?? false);
    // User: the same entry, and the credentials it gives are the ones kubectl's entry names.
    expect(ours.user).toBe(user?.name);
    const auth = await ours.auth();
    const entry = user?.user ?? {};
    if (entry["token"]) expect(auth.authorization).toBe(`Bearer ${String(entry["token"])}`);
    if (entry["tokenFile"]) {
      const file = path.resolve(path.join(dir, "b"), String(entry["tokenFile"]));
      expect(auth.authorization).toBe(`Bearer ${readFileSync(file, "utf8").trim()}`);
    }
    if (entry["exec"]) expect(auth.authorization).toBe("Bearer token-from-exec");
    if (entry["as"]) {
      expect(auth.impersonation).toEqual({
        "Impersonate-User": entry["as"],
        "Impersonate-Uid": entry["as-uid"],
        "Impersonate-Group": entry["as-groups"],
        ...Object.fromEntries(Object.entries((entry["as-user-extra"] ?? {}) as Record<string, string[]>).map(([key, values]) => [`Impersonate-Extra-${key}`, values])),
      });
    } else expect(auth.impersonation).toBeUndefined();
    expect(ours.namespace).toBe(context?.context.namespace);
  });

  it("a CA with insecure-skip-tls-verify: kubectl shows it in the view but refuses to use it, and so do we, in the same words", async () => {
    const kubeconfig = files.join(path.delimiter);
    const view = JSON.parse((await kubectl(["config", "view", "--merge", "--flatten", "--minify", "--context", "insecure-ca", "-o", "json"], kubeconfig)).stdout) as ViewedConfig;
    expect(view.clusters[0]?.cluster).toMatchObject({ "insecure-skip-tls-verify": true, "certificate-authority-data": CA });
    const used = await kubectl(["--context", "insecure-ca", "get", "--raw", "/version"], kubeconfig);
    expect(used.code).not.toBe(0);
    expect(used.stderr).toContain("specifying a root certificates file with the insecure flag is not allowed");
    const loading = readKubeconfig({ env: { KUBECONFIG: kubeconfig } }).then((loaded) => loaded.select("insecure-ca"));
    await expect(loading).rejects.toBeInstanceOf(KubeConfigError);
    await expect(loading).rejects.toThrow("specifying a root certificates file with the insecure flag is not allowed");
  });
});

describe("proxy-url against the real API server", () => {
  let proxy: http.Server;
  let proxyPort: number;
  const tunnels: string[] = [];

  beforeAll(async () => {
    proxy = http.createServer((_req, res) => res.writeHead(405).end());
    proxy.on("connect", (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
      const target = req.url ?? "";
      tunnels.push(target);
      const colon = target.lastIndexOf(":");
      const host = target.slice(0, colon).replace(/^\[|\]$/g, "");
      // Loopback only.
      if (host !== "127.0.0.1" && host !== "::1" && host !== "localhost") return void client.end("HTTP/1.1 403 Forbidden\r\n\r\n");
      const upstream = net.connect(Number(target.slice(colon + 1)), host, () => {
        client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    proxyPort = (proxy.address() as AddressInfo).port;
  });

  afterAll(async () => {
    proxy.closeAllConnections();
    await new Promise((resolve) => proxy.close(resolve));
  });

  it("our client and kubectl both reach the API server through the proxy, which saw the tunnels", async () => {
    const document = parse(readFileSync(kubeconfigPath(), "utf8")) as ViewedConfig;
    for (const cluster of document.clusters) cluster.cluster["proxy-url"] = `http://127.0.0.1:${proxyPort}`;
    const file = write("proxied/config", document);
    const server = new URL(String(document.clusters[0]?.cluster["server"]));
    const kube = new KubeClient((await readKubeconfig({ file })).select());
    const namespaces: ResourceType = { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false };
    const before = tunnels.length;
    expect((await kube.get(namespaces, undefined, "default")).metadata.name).toBe("default");
    expect(tunnels.slice(before)).toEqual([`${server.hostname}:${server.port}`]);
    const viaKubectl = await kubectl(["get", "namespace", "default", "-o", "name"], file);
    expect(viaKubectl.stdout.trim()).toBe("namespace/default");
    expect(tunnels.length).toBeGreaterThan(before + 1);
  });
});
