/**
 * Optional OpenTelemetry tracing, off by default. Only @opentelemetry/api (small) is loaded
 * always; its calls are no-ops until startTracing registers a provider. The SDK and the
 * OTLP/HTTP exporter are imported dynamically, and only when OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, so an operator without tracing never loads them
 * (its memory stays as it was).
 *
 * Spans: one per reconcile pass (`reconcile`, with controller, key and reconcileID) and one
 * per provider call (`provider <operation>`); provider requests carry the W3C `traceparent`.
 */
import { context, propagation, SpanKind, SpanStatusCode, trace, type Attributes, type Span } from "@opentelemetry/api";

const TRACER = "wa-operator";

/** Runs fn inside a new active span, which records a thrown error and always ends. */
export async function withSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>, kind: SpanKind = SpanKind.INTERNAL): Promise<T> {
  return trace.getTracer(TRACER).startActiveSpan(name, { attributes, kind }, async (span) => {
    try {
      return await fn(span);
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
  propagation.inject(context.active(), headers);
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
  const [{ TracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { AsyncLocalStorageContextManager }, { resourceFromAttributes }, { W3CTraceContextPropagator }] = await Promise.all([
    import("@opentelemetry/sdk-trace"),
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/context-async-hooks"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/core"),
  ]);
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const delay = Number(options.env["OTEL_BSP_SCHEDULE_DELAY"]);
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": options.env["OTEL_SERVICE_NAME"] || "wa-operator", "service.version": options.version }),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url }), ...(Number.isFinite(delay) && delay > 0 ? { scheduledDelayMillis: delay } : {}) })],
  });
  trace.setGlobalTracerProvider(provider);
  return {
    async shutdown() {
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}
