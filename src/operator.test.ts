/**
 * What every pass gets from the runtime, whatever it reconciles: its own reconcileID on
 * each line it logs, and the panics and active-workers metrics. Against a loopback
 * stand-in API server with empty collections, the instance reconciler replaced.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configSchema } from "./config.ts";
import type { ReconcileResult } from "./controllers/context.ts";
import { KubeClient } from "./kube/client.ts";
import { mergeKubeconfigs } from "./kube/config.ts";
import { createLogger } from "./logger.ts";
import { Metrics } from "./metrics.ts";
import { Operator } from "./operator.ts";

let server: http.Server;
let kube: KubeClient;

beforeAll(async () => {
  // Lists are empty; watches stay open and silent.
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    res.setHeader("Content-Type", "application/json");
    if (url.searchParams.get("watch") === "1") {
      res.writeHead(200);
      res.flushHeaders();
      return;
    }
    res.end(JSON.stringify({ items: [], metadata: { resourceVersion: "1" } }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const document = {
    clusters: [{ name: "c", cluster: { server: `http://127.0.0.1:${port}` } }],
    users: [{ name: "u", user: { token: "t" } }],
    contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
    "current-context": "x",
  };
  kube = new KubeClient(mergeKubeconfigs([{ file: "/test/kubeconfig", document }]).select());
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

async function runPasses(reconcile: (log: { info(text: string): void }, key: string) => Promise<ReconcileResult>, keys: readonly string[], metrics = new Metrics()) {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n").filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  const config = configSchema.parse({ namespaces: "support", logLevel: "debug" });
  const operator = new Operator({
    kube,
    config,
    log: createLogger("debug", destination),
    metrics,
    reconcileInstance: (ctx, key) => reconcile(ctx.log, key),
  });
  await operator.start();
  for (const key of keys) operator.instanceQueue.add(key);
  await operator.instanceQueue.whenIdle();
  await operator.stop();
  return { lines, metrics };
}

describe("a reconcile pass", () => {
  it("carries one random reconcileID on every line it logs, another for the next pass", async () => {
    const { lines } = await runPasses(async (log, key) => {
      log.info(`looking at ${key}`);
      log.info(`done with ${key}`);
      return {};
    }, ["support/a", "support/b"]);
    const ofPass = (key: string) => lines.filter((line) => line["msg"] === `looking at ${key}` || line["msg"] === `done with ${key}` || (line["msg"] === "reconciled" && line["key"] === key));
    const a = ofPass("support/a");
    const b = ofPass("support/b");
    expect(a).toHaveLength(3);
    expect(b).toHaveLength(3);
    const idOf = (pass: Record<string, unknown>[]) => new Set(pass.map((line) => line["reconcileID"]));
    expect(idOf(a).size).toBe(1);
    expect(idOf(b).size).toBe(1);
    const [idA] = idOf(a);
    const [idB] = idOf(b);
    expect(idA).toMatch(/^[0-9a-f-]{36}$/);
    expect(idA).not.toBe(idB);
    expect(a.every((line) => line["controller"] === "whatsappinstance")).toBe(true);
  });

  it("that throws a programming error counts as a panic (and an error); a failed API call is an error only", async () => {
    const { metrics, lines } = await runPasses(async (_log, key) => {
      if (key === "support/bug") throw new TypeError("Cannot read properties of undefined");
      throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    }, ["support/bug", "support/down"]);
    const value = async (name: string) => (await metrics.registry.getSingleMetricAsString(name)).split("\n").filter((line) => line.startsWith(`${name}{controller="whatsappinstance"}`));
    expect(await value("controller_runtime_reconcile_panics_total")).toEqual(['controller_runtime_reconcile_panics_total{controller="whatsappinstance"} 1']);
    expect(await value("controller_runtime_reconcile_errors_total")).toEqual(['controller_runtime_reconcile_errors_total{controller="whatsappinstance"} 2']);
    expect(await value("controller_runtime_active_workers")).toEqual(['controller_runtime_active_workers{controller="whatsappinstance"} 0']);
    const failed = lines.filter((line) => line["msg"] === "reconcile failed");
    expect(failed.every((line) => typeof line["reconcileID"] === "string")).toBe(true);
  });

  it("is counted as an active worker while it runs", async () => {
    const metrics = new Metrics();
    const during: string[] = [];
    await runPasses(
      async () => {
        during.push(await metrics.registry.getSingleMetricAsString("controller_runtime_active_workers"));
        return {};
      },
      ["support/a"],
      metrics,
    );
    expect(during.join("\n")).toContain('controller_runtime_active_workers{controller="whatsappinstance"} 1');
  });
});
