/**
 * Tracing as an operator with OTEL_EXPORTER_OTLP_ENDPOINT has it: spans exported over
 * OTLP/HTTP (JSON) to a loopback receiver standing in for a collector, a provider call's
 * span inside its pass's, and the W3C traceparent on the provider's HTTP request. And off
 * by default: nothing started, no header added, and no OpenTelemetry package loaded (what
 * keeps the operator's memory as it was without tracing).
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { classifyByStatus, ProviderHttp } from "./providers/transport/http.ts";
import { RateLimiter } from "./providers/transport/rate-limiter.ts";
import { traced } from "./providers/traced.ts";
import type { ProviderClient } from "./providers/types.ts";
import { injectTraceContext, startTracing, tracesUrl, withSpan } from "./tracing.ts";

interface ExportedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes: { key: string; value: { stringValue?: string } }[];
}

const exported: ExportedSpan[] = [];
const providerHeaders: http.IncomingHttpHeaders[] = [];
let collector: http.Server;
let provider: http.Server;
let collectorUrl: string;
let providerUrl: string;

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  // OTLP/HTTP: POST /v1/traces, an ExportTraceServiceRequest as JSON (opentelemetry-proto's JSON mapping).
  collector = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      if (req.url === "/v1/traces" && req.headers["content-type"]?.startsWith("application/json")) {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { resourceSpans: { scopeSpans: { spans: ExportedSpan[] }[] }[] };
        for (const resource of body.resourceSpans) for (const scope of resource.scopeSpans) exported.push(...scope.spans);
      }
      res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
    });
  });
  provider = http.createServer((req, res) => {
    providerHeaders.push(req.headers);
    req.resume();
    res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
  });
  collectorUrl = await listen(collector);
  providerUrl = await listen(provider);
});

afterAll(async () => {
  for (const server of [collector, provider]) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A provider client whose observe sends one GET through ProviderHttp. */
function clientOf(): ProviderClient {
  const http = new ProviderHttp({
    type: "waha",
    baseUrl: providerUrl,
    timeoutMs: 2000,
    limiter: new RateLimiter({ requestsPerSecond: 100, burst: 100 }),
    classify: (response) => classifyByStatus("waha", response, "failed"),
  });
  return { type: "waha", capabilities: {}, observe: async () => (await http.send({ method: "GET", path: "/api/sessions/x" }), null) } as unknown as ProviderClient;
}

describe("tracing", () => {
  it("is off without an OTLP endpoint: nothing starts, no traceparent is added, spans are no-ops", async () => {
    expect(tracesUrl({})).toBeUndefined();
    expect(await startTracing({ env: {}, version: "0.0.0" })).toBeUndefined();
    const headers: Record<string, string> = {};
    await withSpan("reconcile", {}, async () => injectTraceContext(headers));
    expect(headers).toEqual({});
  });

  it("reads OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, else OTEL_EXPORTER_OTLP_ENDPOINT with /v1/traces", () => {
    expect(tracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318/" })).toBe("http://127.0.0.1:4318/v1/traces");
    expect(tracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://a", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://127.0.0.1:9/t" })).toBe("http://127.0.0.1:9/t");
  });

  it("exports a pass's span with its provider call's span inside, and the provider's request carries that call's traceparent", async () => {
    const tracing = await startTracing({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: collectorUrl, OTEL_BSP_SCHEDULE_DELAY: "50" }, version: "1.2.3" });
    expect(tracing).toBeDefined();
    await withSpan("reconcile", { controller: "whatsappinstance", key: "support/line" }, () => traced(clientOf()).observe({} as never));
    await tracing?.shutdown();
    const pass = exported.find((span) => span.name === "reconcile");
    const call = exported.find((span) => span.name === "provider observe");
    expect(pass?.attributes).toContainEqual({ key: "key", value: { stringValue: "support/line" } });
    expect(call?.traceId).toBe(pass?.traceId);
    expect(call?.parentSpanId).toBe(pass?.spanId);
    expect(call?.attributes).toContainEqual({ key: "wa_operator.provider.type", value: { stringValue: "waha" } });
    expect(providerHeaders.at(-1)?.["traceparent"]).toBe(`00-${call?.traceId}-${call?.spanId}-01`);
  });
});

/**
 * The OpenTelemetry modules (paths under node_modules/) a child node loads running `script`
 * (ESM, from the repository's root), seen by a resolve hook.
 */
async function openTelemetryModulesLoaded(script: string): Promise<string[]> {
  const dir = mkdtempSync(path.join(tmpdir(), "tracing-modules-"));
  try {
    const list = path.join(dir, "modules.json");
    const hook = [
      'import { registerHooks } from "node:module";',
      'import { writeFileSync } from "node:fs";',
      "const seen = new Set();",
      "registerHooks({ resolve(specifier, context, next) { const result = next(specifier, context); seen.add(result.url); return result; } });",
      `process.on("exit", () => writeFileSync(${JSON.stringify(list)}, JSON.stringify([...seen])));`,
    ].join("\n");
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("OTEL_")));
    const cwd = path.join(import.meta.dirname, "..");
    await promisify(execFile)(process.execPath, ["--import", `data:text/javascript,${encodeURIComponent(hook)}`, "--input-type=module", "-e", `${script}\nprocess.exit(0);`], { env, cwd, timeout: 60_000 });
    const urls = JSON.parse(readFileSync(list, "utf8")) as string[];
    return urls.flatMap((url) => /\/node_modules\/(@opentelemetry\/.+)$/.exec(url)?.[1] ?? []).sort();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The operator's command (src/cli/operator.ts; --help returns once its imports are loaded), then startTracing with `env`. */
const operatorWithTracing = (env: Record<string, string>): string =>
  [
    'process.argv = [process.argv[0], "wa-operator", "--help"];',
    'await import("./src/cli/operator.ts");',
    'const { startTracing } = await import("./src/tracing.ts");',
    `const tracing = await startTracing({ env: ${JSON.stringify(env)}, version: "0.0.0" });`,
    "await tracing?.shutdown();",
  ].join("\n");

describe("tracing off, in the operator's process", () => {
  it("loads no OpenTelemetry module beyond the api prom-client has always required (no SDK, no second, ESM copy of the api)", async () => {
    const promClient = await openTelemetryModulesLoaded('await import("prom-client");');
    expect(promClient).toContain("@opentelemetry/api/dist/index.cjs");
    expect(await openTelemetryModulesLoaded(operatorWithTracing({}))).toEqual(promClient);
  }, 60_000);

  it("with an endpoint, startTracing imports the SDK (so the check above sees what it looks for)", async () => {
    const packages = new Set((await openTelemetryModulesLoaded(operatorWithTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: collectorUrl }))).map((file) => file.split("/").slice(0, 2).join("/")));
    for (const name of ["@opentelemetry/sdk-trace", "@opentelemetry/exporter-trace-otlp-http"]) expect(packages).toContain(name);
  }, 60_000);
});

describe("the traced client", () => {
  it("keeps the optional operations a client has (claim, release) and adds none it lacks", async () => {
    const calls: string[] = [];
    const base = { type: "waha", capabilities: {} } as unknown as Record<string, unknown>;
    for (const name of ["checkHealth", "observe", "create", "connect", "disconnect", "restart", "logout", "remove", "fetchQr", "requestPairingCode", "configureWebhook"]) {
      base[name] = async () => calls.push(name);
    }
    const without = traced(base as never);
    expect(without.claim).toBeUndefined();
    expect(without.release).toBeUndefined();
    const withClaims = traced({ ...base, claim: async () => calls.push("claim"), release: async () => calls.push("release") } as never);
    await withClaims.claim?.({} as never, "s");
    await withClaims.release?.({} as never, "s");
    expect(calls).toEqual(["claim", "release"]);
  });
});
