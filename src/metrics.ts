/**
 * Prometheus metrics, named as controller-runtime names them so existing dashboards
 * and alerts work, plus the operator's own: provider requests by status code,
 * instances by phase, provider events received, and per-object gauges read from the
 * objects' status at each scrape (what the alerts in manifests/monitoring/ watch).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Condition } from "./api/common.ts";
import type { InstanceObject, ProviderObject } from "./controllers/context.ts";

/**
 * Where the per-object gauges come from: the informer caches. Every replica keeps them
 * warm, so a stand-by answers like the leader and the gauges show what `kubectl get`
 * shows, whichever replica Prometheus asks.
 */
export interface StatusSource {
  instances(): readonly InstanceObject[];
  providers(): readonly { readonly kind: string; readonly object: ProviderObject }[];
}

const conditionOf = (conditions: readonly Condition[] | undefined, type: string) => conditions?.find((condition) => condition.type === type);
const epochSeconds = (iso: string | undefined) => (iso ? Date.parse(iso) / 1000 : Number.NaN);

/** From a millisecond to a minute: a key taken at once, and one waiting behind a burst. */
const QUEUE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

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
  readonly workqueueQueueDuration = this.queueHistogram("workqueue_queue_duration_seconds", "How long in seconds an item stays in the work queue before being taken.");
  readonly workqueueWorkDuration = this.queueHistogram("workqueue_work_duration_seconds", "How long in seconds processing an item from the work queue takes.");
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

  readonly instanceStalled = new Gauge({
    name: "wa_operator_instance_stalled",
    help: "1 for each WhatsAppInstance whose Stalled condition is True (a person must act), by the condition's reason.",
    labelNames: ["namespace", "name", "reason"] as const,
    registers: [this.registry],
    collect: () => this.collectStalled(),
  });
  readonly instanceScanWaitingSince = new Gauge({
    name: "wa_operator_instance_scan_waiting_since_timestamp_seconds",
    help: "For each WhatsAppInstance in phase ScanQR: when it last stopped being Ready (Unix seconds), i.e. since when it has waited for a phone to link, across expired codes and restarted sessions.",
    labelNames: ["namespace", "name"] as const,
    registers: [this.registry],
    collect: () => this.collectScanWaiting(),
  });
  readonly providerReady = new Gauge({
    name: "wa_operator_provider_ready",
    help: "1 when a WhatsAppProvider or ClusterWhatsAppProvider is Ready (reachable, credentials accepted), else 0.",
    labelNames: ["kind", "namespace", "name"] as const,
    registers: [this.registry],
    collect: () => this.collectProviders(),
  });

  readonly eventsPending: Gauge = new Gauge({
    name: "wa_operator_events_pending",
    help: "Kubernetes Events recorded and not yet sent to the API server (they are sent in the background, a few at a time).",
    registers: [this.registry],
    collect: (): void => this.eventsPending.set(this.eventSource?.pending ?? 0),
  });
  readonly eventsDropped = new Counter({
    name: "wa_operator_events_dropped_total",
    help: "Kubernetes Events dropped because too many were waiting to be sent.",
    registers: [this.registry],
  });

  private readonly phases = new Map<string, string>();
  private statusSource: StatusSource | undefined;
  private eventSource: { readonly pending: number } | undefined;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** A work-queue histogram by queue name, from a millisecond to a minute. */
  private queueHistogram(name: string, help: string): Histogram<"name"> {
    return new Histogram({ name, help, labelNames: ["name"] as const, buckets: QUEUE_BUCKETS, registers: [this.registry] });
  }

  /** wa_operator_events_pending reads the recorder's backlog when scraped. */
  readEventsFrom(source: { readonly pending: number }): void {
    this.eventSource = source;
  }

  /** Starts the per-object gauges; until then they have no series. */
  readStatusFrom(source: StatusSource): void {
    this.statusSource = source;
  }

  private collectStalled(): void {
    this.instanceStalled.reset();
    for (const instance of this.statusSource?.instances() ?? []) {
      const stalled = conditionOf(instance.status?.conditions, "Stalled");
      if (stalled?.status === "True") this.instanceStalled.set({ namespace: instance.metadata.namespace ?? "", name: instance.metadata.name, reason: stalled.reason }, 1);
    }
  }

  private collectScanWaiting(): void {
    this.instanceScanWaitingSince.reset();
    for (const instance of this.statusSource?.instances() ?? []) {
      if (instance.status?.phase !== "ScanQR") continue;
      // Ready stays False through every expired code and restarted session, so its
      // lastTransitionTime is when the wait began; creation when it was never set.
      const since = epochSeconds(conditionOf(instance.status.conditions, "Ready")?.lastTransitionTime ?? instance.metadata.creationTimestamp);
      if (Number.isFinite(since)) this.instanceScanWaitingSince.set({ namespace: instance.metadata.namespace ?? "", name: instance.metadata.name }, since);
    }
  }

  private collectProviders(): void {
    this.providerReady.reset();
    for (const { kind, object } of this.statusSource?.providers() ?? []) {
      const ready = conditionOf(object.status?.conditions, "Ready")?.status === "True";
      const namespace = object.metadata.namespace;
      this.providerReady.set({ kind, ...(namespace ? { namespace } : {}), name: object.metadata.name }, ready ? 1 : 0);
    }
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
