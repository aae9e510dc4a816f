/**
 * Optional OpenTelemetry tracing, off by default. Nothing of OpenTelemetry is loaded until
 * startTracing finds OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): then
 * @opentelemetry/api, the SDK and the OTLP/HTTP exporter are imported dynamically. Until then
 * withSpan just runs its function and injectTraceContext adds nothing, so an operator without
 * tracing keeps the memory it had before tracing existed (bench/tracing-rss.ts measures it).
 *
 * Spans: one per reconcile pass (`reconcile`, with controller, key and reconcileID) and one
 * per provider call (`provider <operation>`); provider requests carry the W3C `traceparent`.
 */
import type { Attributes } from "@opentelemetry/api";

const TRACER = "wa-operator";

/** The span kinds the operator records: a pass is internal, a provider call a client. */
export type SpanKindName = "internal" | "client";

/** @opentelemetry/api once startTracing has loaded it; undefined while tracing is off. */
let api: typeof import("@opentelemetry/api") | undefined;

/** Runs fn inside a new active span, which records a thrown error and always ends; tracing off, just fn. */
export async function withSpan<T>(name: string, attributes: Attributes, fn: () => Promise<T>, kind: SpanKindName = "internal"): Promise<T> {
  if (!api) return fn();
  const { SpanKind, SpanStatusCode, trace } = api;
  return trace.getTracer(TRACER).startActiveSpan(name, { attributes, kind: kind === "client" ? SpanKind.CLIENT : SpanKind.INTERNAL }, async (span) => {
    try {
      return await fn();
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** Adds the active trace's W3C traceparent (and tracestate) to outgoing headers; nothing when tracing is off. */
export function injectTraceContext(headers: Record<string, string>): void {
  api?.propagation.inject(api.context.active(), headers);
}

export interface Tracing {
  /** Sends the spans still buffered, then stops. */
  shutdown(): Promise<void>;
}

/** Where traces go: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces. */
export function tracesUrl(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const traces = env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"];
  if (traces) return traces;
  const base = env["OTEL_EXPORTER_OTLP_ENDPOINT"];
  return base ? `${base.replace(/\/+$/, "")}/v1/traces` : undefined;
}

/**
 * Starts exporting spans over OTLP/HTTP (JSON) when an endpoint is configured, else returns
 * undefined having loaded nothing. OTEL_SERVICE_NAME names the service (default wa-operator).
 */
export async function startTracing(options: { env: Readonly<Record<string, string | undefined>>; version: string }): Promise<Tracing | undefined> {
  const url = tracesUrl(options.env);
  if (!url) return undefined;
  const [loaded, { TracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { AsyncLocalStorageContextManager }, { resourceFromAttributes }, { W3CTraceContextPropagator }] = await Promise.all([
    import("@opentelemetry/api"),
    import("@opentelemetry/sdk-trace"),
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/context-async-hooks"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/core"),
  ]);
  const { context, propagation, trace } = loaded;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const delay = Number(options.env["OTEL_BSP_SCHEDULE_DELAY"]);
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": options.env["OTEL_SERVICE_NAME"] || "wa-operator", "service.version": options.version }),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url }), ...(Number.isFinite(delay) && delay > 0 ? { scheduledDelayMillis: delay } : {}) })],
  });
  trace.setGlobalTracerProvider(provider);
  api = loaded;
  return {
    async shutdown() {
      await provider.shutdown();
      api = undefined;
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}
