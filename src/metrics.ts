/**
 * Prometheus metrics, named as controller-runtime names them so existing dashboards
 * and alerts work, plus the operator's own: provider requests by status code,
 * instances by phase, provider events received.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class Metrics {
  readonly registry = new Registry();
  readonly reconcileTotal = new Counter({
    name: "controller_runtime_reconcile_total",
    help: "Total number of reconciliations per controller and result.",
    labelNames: ["controller", "result"] as const,
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: "controller_runtime_reconcile_errors_total",
    help: "Total number of reconciliation errors per controller.",
    labelNames: ["controller"] as const,
    registers: [this.registry],
  });
  readonly reconcileTime = new Histogram({
    name: "controller_runtime_reconcile_time_seconds",
    help: "Length of time per reconciliation per controller.",
    labelNames: ["controller"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly maxConcurrentReconciles = new Gauge({
    name: "controller_runtime_max_concurrent_reconciles",
    help: "Maximum number of concurrent reconciles per controller.",
    labelNames: ["controller"] as const,
    registers: [this.registry],
  });
  readonly workqueueDepth = new Gauge({
    name: "workqueue_depth",
    help: "Current depth of the work queue.",
    labelNames: ["name"] as const,
    registers: [this.registry],
  });
  readonly workqueueAdds = new Counter({
    name: "workqueue_adds_total",
    help: "Total number of adds handled by the work queue.",
    labelNames: ["name"] as const,
    registers: [this.registry],
  });
  readonly workqueueRetries = new Counter({
    name: "workqueue_retries_total",
    help: "Total number of retries handled by the work queue.",
    labelNames: ["name"] as const,
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: "leader_election_master_status",
    help: "1 while this replica holds the leader Lease, else 0.",
    labelNames: ["name"] as const,
    registers: [this.registry],
  });
  readonly providerRequests = new Counter({
    name: "wa_operator_provider_requests_total",
    help: "HTTP requests to providers by provider type and status code (\"error\" when there was no answer).",
    labelNames: ["provider", "code"] as const,
    registers: [this.registry],
  });
  readonly instancesByPhase = new Gauge({
    name: "wa_operator_instances",
    help: "WhatsAppInstances by observed phase.",
    labelNames: ["phase"] as const,
    registers: [this.registry],
  });
  readonly providerEvents = new Counter({
    name: "wa_operator_provider_events_total",
    help: "Provider lifecycle webhooks received, by provider type and result (accepted, unsigned, bad_signature, unknown_provider, malformed).",
    labelNames: ["provider", "result"] as const,
    registers: [this.registry],
  });

  private readonly phases = new Map<string, string>();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Keeps wa_operator_instances equal to the phases last reported, per instance. */
  instancePhase(key: string, phase: string | undefined): void {
    const before = this.phases.get(key);
    if (before === phase) return;
    if (before !== undefined) this.instancesByPhase.dec({ phase: before });
    if (phase === undefined) this.phases.delete(key);
    else {
      this.phases.set(key, phase);
      this.instancesByPhase.inc({ phase });
    }
  }

  forgetInstance(key: string): void {
    this.instancePhase(key, undefined);
  }
}
