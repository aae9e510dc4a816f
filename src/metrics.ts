/**
 * Prometheus metrics, named as controller-runtime names them so existing dashboards
 * and alerts work, plus the operator's own: provider requests by status code,
 * instances by phase, provider events received, and per-object gauges read from the
 * objects' status at each scrape (what the alerts in manifests/monitoring/ watch).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Condition } from "./api/common.ts";
import { buildInfo } from "./build-info.ts";
import type { InstanceObject, ProviderObject } from "./api/objects.ts";

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
/** client-go's buckets for rest_client_request_duration_seconds, so its dashboards' quantiles read the same. */
const REST_CLIENT_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60];
/** Provider answers: a cached read in milliseconds up to PROVIDER_TIMEOUT's default (30 s) and beyond. */
const PROVIDER_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** One request to the API server as the kube client saw it (client-go's `<error>` code when there was no answer). */
export interface KubeRequestSample {
  readonly method: string;
  /** host:port of the API server, as client-go labels it. */
  readonly host: string;
  readonly code: string;
  readonly seconds: number;
}

/** One request to a provider: its HTTP method, and how long it took on the wire. */
export interface ProviderRequestSample {
  readonly method: string;
  readonly seconds: number;
}

/** A work queue as the in-progress gauges read it: when each key in a worker's hands was taken (performance.now() ms). */
export interface QueueProgress {
  processingSince(): readonly number[];
}

/** What wa_operator_build_info reports; the revision is the commit the image was built from. */
export interface BuildLabels {
  readonly version: string;
  readonly revision: string;
}

/** The revision the image carries (WA_OPERATOR_REVISION, from the Dockerfile's REVISION), else "unknown". */
export function defaultBuildLabels(env: NodeJS.ProcessEnv = process.env): BuildLabels {
  return { version: buildInfo().version, revision: env["WA_OPERATOR_REVISION"] || "unknown" };
}

/**
 * A "panic" in controller-runtime's sense: a reconcile that threw a programming error
 * (TypeError, RangeError, …) rather than failing on the API server or a provider, whose
 * errors are plain Errors (with a Node code), KubeError or ProviderError.
 */
export function isPanic(error: unknown): boolean {
  if (!(error instanceof Error)) return true;
  return error instanceof TypeError || error instanceof RangeError || error instanceof ReferenceError || error instanceof SyntaxError || error instanceof EvalError || error instanceof URIError;
}

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
  readonly reconcilePanics = new Counter({
    name: "controller_runtime_reconcile_panics_total",
    help: "Total number of reconciliation panics per controller (a reconcile that threw a programming error).",
    labelNames: ["controller"] as const,
    registers: [this.registry],
  });
  readonly activeWorkers = new Gauge({
    name: "controller_runtime_active_workers",
    help: "Number of currently used workers per controller.",
    labelNames: ["controller"] as const,
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
  readonly workqueueUnfinished = this.progressGauge(
    "workqueue_unfinished_work_seconds",
    "How many seconds of work has been done that is in progress and hasn't been observed by work_duration. Large values indicate stuck threads.",
  );
  readonly workqueueLongestRunning = this.progressGauge("workqueue_longest_running_processor_seconds", "How many seconds has the longest running processor for the work queue been running.");
  readonly restClientRequests = new Counter({
    name: "rest_client_requests_total",
    help: "Number of HTTP requests to the API server, partitioned by status code, method, and host.",
    labelNames: ["code", "method", "host"] as const,
    registers: [this.registry],
  });
  readonly restClientRequestDuration = new Histogram({
    name: "rest_client_request_duration_seconds",
    help: "Request latency to the API server in seconds. Broken down by verb, and host.",
    labelNames: ["verb", "host"] as const,
    buckets: REST_CLIENT_BUCKETS,
    registers: [this.registry],
  });
  readonly buildInfo = new Gauge({
    name: "wa_operator_build_info",
    help: "Always 1; its labels say which operator build runs: version, the revision (commit) it was built from, and the Node.js version.",
    labelNames: ["version", "revision", "node_version"] as const,
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
  readonly providerRequestDuration = new Histogram({
    name: "wa_operator_provider_request_duration_seconds",
    help: "How long HTTP requests to providers took on the wire, by provider type, HTTP method and status code (\"error\" when there was no answer).",
    labelNames: ["provider", "method", "code"] as const,
    buckets: PROVIDER_BUCKETS,
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
  readonly providerSessions = new Gauge({
    name: "wa_operator_provider_sessions",
    help: "Sessions this operator keeps on each provider with a capacity (status.sessions), by state: placed, linked (Connected), starting (holding a start slot).",
    labelNames: ["kind", "namespace", "name", "state"] as const,
    registers: [this.registry],
    collect: () => this.collectProviderSessions(),
  });
  readonly startSlotWait = new Histogram({
    name: "wa_operator_start_slot_wait_seconds",
    help: "How long a session waited for one of its provider's start slots (spec.maxConcurrentStarts) before its create, start or restart call; 0 when one was free.",
    labelNames: ["kind", "namespace", "name"] as const,
    buckets: [0, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
    registers: [this.registry],
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
  private readonly queues = new Map<string, QueueProgress>();
  private readonly now: () => number;

  constructor(options: { readonly build?: BuildLabels; readonly now?: () => number } = {}) {
    collectDefaultMetrics({ register: this.registry });
    this.now = options.now ?? (() => performance.now());
    const build = options.build ?? defaultBuildLabels();
    this.buildInfo.set({ version: build.version, revision: build.revision, node_version: process.version }, 1);
  }

  /** Counts and times one API server request, as client-go's rest_client metrics do. */
  observeKubeRequest(sample: KubeRequestSample): void {
    this.restClientRequests.inc({ code: sample.code, method: sample.method, host: sample.host });
    this.restClientRequestDuration.observe({ verb: sample.method, host: sample.host }, sample.seconds);
  }

  /** Counts one provider answer (or its absence) and, when timed, adds it to the duration histogram. */
  observeProviderRequest(provider: string, code: string, sample?: ProviderRequestSample): void {
    this.providerRequests.inc({ provider, code });
    if (sample) this.providerRequestDuration.observe({ provider, method: sample.method, code }, sample.seconds);
  }

  /**
   * A controller's queue and workers: the in-progress gauges read the queue at each scrape,
   * and the per-controller series start at zero, as controller-runtime starts them, so an
   * alert on a rate sees the first panic.
   */
  registerController(controller: string, queue: QueueProgress): void {
    this.queues.set(controller, queue);
    this.reconcilePanics.inc({ controller }, 0);
    this.reconcileErrors.inc({ controller }, 0);
    this.activeWorkers.set({ controller }, 0);
  }

  private collectProgress(): void {
    this.workqueueUnfinished.reset();
    this.workqueueLongestRunning.reset();
    const now = this.now();
    for (const [name, queue] of this.queues) {
      const running = queue.processingSince().map((since) => Math.max(0, now - since) / 1000);
      this.workqueueUnfinished.set({ name }, running.reduce((sum, seconds) => sum + seconds, 0));
      this.workqueueLongestRunning.set({ name }, running.reduce((longest, seconds) => Math.max(longest, seconds), 0));
    }
  }

  /** A work-queue gauge by queue name, read from the registered queues at each scrape. */
  private progressGauge(name: string, help: string): Gauge<"name"> {
    return new Gauge({ name, help, labelNames: ["name"] as const, registers: [this.registry], collect: (): void => this.collectProgress() });
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

  private collectProviderSessions(): void {
    this.providerSessions.reset();
    for (const { kind, object } of this.statusSource?.providers() ?? []) {
      const sessions = object.status?.sessions;
      if (!sessions) continue;
      const namespace = object.metadata.namespace;
      for (const state of ["placed", "linked", "starting"] as const) {
        this.providerSessions.set({ kind, ...(namespace ? { namespace } : {}), name: object.metadata.name, state }, sessions[state]);
      }
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
