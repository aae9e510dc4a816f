/**
 * The controller kit: what every controller is (a reconcile and the events that wake it)
 * and how its passes run (a work queue, a reconcileID per pass, metrics, backoff). It
 * knows neither kind; src/controllers/<kind>/controller.ts declares each one, and
 * src/operator.ts only connects their watches to the informers.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { lazyChild } from "../../logger.ts";
import { isPanic, type Metrics } from "../../metrics.ts";
import type { InformerEvent } from "../../runtime/informer.ts";
import { WorkQueue, type Priority, type WorkQueueOptions } from "../../runtime/work-queue.ts";
import { withSpan } from "../../tracing.ts";
import type { ReconcileResult } from "../context.ts";

/** A key to look at, and how soon: urgent for something new, routine for a periodic check. */
export interface Wake {
  readonly key: string;
  readonly priority?: Priority;
  /** Only when no look is already scheduled for the key (a resync must not pull one forward). */
  readonly unlessScheduled?: boolean;
  /** Not before this many ms; wakes of one key within that window are one pass (routine priority). */
  readonly afterMs?: number;
}

/** One informer a controller listens to, and which of its keys each event names. */
export interface Watch<Source extends string, Ctx> {
  readonly source: Source;
  readonly wakes: (event: InformerEvent<unknown>, ctx: Ctx) => Iterable<Wake>;
}

/** A watch on `source`, whose events carry objects of type T. */
export function watch<Source extends string, Ctx, T>(source: Source, wakes: (event: InformerEvent<T>, ctx: Ctx) => Iterable<Wake>): Watch<Source, Ctx> {
  return { source, wakes: wakes as Watch<Source, Ctx>["wakes"] };
}

export interface ControllerDefinition<Source extends string, Ctx extends { readonly log: Logger }> {
  /** As controller-runtime names it: the lower-case kind ("whatsappinstance"), in logs and metrics. */
  readonly name: string;
  readonly workers: number;
  /**
   * The resource a key's passes depend on most (an instance's provider): at most
   * `maxPerGroup` workers serve one group, and a pass that succeeds retries the keys that
   * backed off on its group at once.
   */
  readonly groupOf?: (key: string, ctx: Ctx) => string | undefined;
  readonly maxPerGroup?: number;
  /** Whether a thrown error says the key's group failed (a provider) rather than the API server. */
  readonly failedInGroup?: (error: unknown) => boolean;
  readonly reconcile: (ctx: Ctx, key: string) => Promise<ReconcileResult>;
  readonly watches: readonly Watch<Source, Ctx>[];
}

/** Failures not of a group are the API server's: one success anywhere ends them. */
const API_SERVER = "kube";

/** A declared controller, running: its queue and its passes. */
export class Controller<Source extends string, Ctx extends { readonly log: Logger }> {
  readonly queue: WorkQueue;
  /** Why each backed-off key last failed: the API server, or its group. */
  private readonly failureCause = new Map<string, string>();

  readonly definition: ControllerDefinition<Source, Ctx>;
  private readonly context: Ctx;
  private readonly metrics: Metrics | undefined;

  constructor(definition: ControllerDefinition<Source, Ctx>, context: Ctx, metrics: Metrics | undefined) {
    this.definition = definition;
    this.context = context;
    this.metrics = metrics;
    const groupOf = definition.groupOf;
    this.queue = new WorkQueue({
      concurrency: definition.workers,
      ...(groupOf ? { groupOf: (key: string) => groupOf(key, context) } : {}),
      ...(definition.maxPerGroup !== undefined ? { maxPerGroup: definition.maxPerGroup } : {}),
      ...queueMetrics(metrics, definition.name),
    });
    metrics?.maxConcurrentReconciles.set({ controller: definition.name }, definition.workers);
    metrics?.registerController(definition.name, this.queue);
  }

  /** What an event of `source` means for this controller: the keys it queues. */
  notify(source: Source, event: InformerEvent<unknown>): void {
    for (const watch of this.definition.watches) {
      if (watch.source !== source) continue;
      for (const wake of watch.wakes(event, this.context)) this.wake(wake);
    }
  }

  wake({ key, priority = "urgent", unlessScheduled = false, afterMs }: Wake): void {
    if (unlessScheduled && this.queue.isScheduled(key)) return;
    if (afterMs !== undefined) return this.queue.addAfter(key, afterMs);
    this.queue.add(key, priority);
  }

  start(): void {
    this.queue.start((key) => this.pass(key));
  }

  /**
   * One pass: its own reconcileID (as controller-runtime's) on every line it logs, through
   * a child logger in a per-pass copy of the context.
   */
  private async pass(key: string): Promise<void> {
    const controller = this.definition.name;
    const started = performance.now();
    const reconcileID = randomUUID();
    const log = lazyChild(this.context.log, { controller, reconcileID });
    let outcome: "success" | "error" | "requeue" = "success";
    this.metrics?.activeWorkers.inc({ controller });
    try {
      const result = await withSpan("reconcile", { controller, key, reconcileID }, () => this.definition.reconcile({ ...this.context, log }, key));
      if (result.backoff) {
        outcome = "error";
        this.queue.addRateLimited(key);
        this.failureCause.set(key, this.groupOf(key) ?? API_SERVER);
      } else {
        this.queue.forget(key);
        this.causeIsGone(key);
        if (result.requeueAfterMs !== undefined) {
          outcome = "requeue";
          this.queue.addAfter(key, result.requeueAfterMs, result.inFlight ? "inFlight" : "routine");
        }
      }
    } catch (error) {
      outcome = "error";
      const delay = this.queue.addRateLimited(key);
      this.failureCause.set(key, (this.definition.failedInGroup?.(error) ? this.groupOf(key) : undefined) ?? API_SERVER);
      if (isPanic(error)) this.metrics?.reconcilePanics.inc({ controller });
      log.error({ key, err: error instanceof Error ? error.message : String(error), retryInMs: delay }, "reconcile failed");
    } finally {
      log.debug({ key, outcome, ms: Math.round(performance.now() - started) }, "reconciled");
      const metrics = this.metrics;
      if (metrics) {
        metrics.activeWorkers.dec({ controller });
        metrics.reconcileTotal.inc({ controller, result: outcome });
        if (outcome === "error") metrics.reconcileErrors.inc({ controller });
        metrics.reconcileTime.observe({ controller }, (performance.now() - started) / 1000);
      }
    }
  }

  private groupOf(key: string): string | undefined {
    return this.definition.groupOf?.(key, this.context);
  }

  /**
   * A pass succeeded: whatever made other keys of its group (or every key, for a failure
   * of the API server) back off is gone, so they look again now instead of at the end of a
   * backoff that may have grown to minutes.
   */
  private causeIsGone(key: string): void {
    this.failureCause.delete(key);
    // Nothing backs off (the usual case): no group to work out.
    if (this.failureCause.size === 0) return;
    const group = this.groupOf(key);
    const recovered = new Set([API_SERVER, ...(group ? [group] : [])]);
    const keys = new Set([...this.failureCause].filter(([, cause]) => recovered.has(cause)).map(([other]) => other));
    if (keys.size === 0) return;
    for (const other of keys) this.failureCause.delete(other);
    this.queue.retryBackedOffNow((candidate) => keys.has(candidate));
  }
}

function queueMetrics(metrics: Metrics | undefined, name: string): Pick<WorkQueueOptions, "onDepth" | "onAdd" | "onRetry" | "onTaken" | "onDone"> {
  if (!metrics) return {};
  return {
    onDepth: (depth) => metrics.workqueueDepth.set({ name }, depth),
    onAdd: () => metrics.workqueueAdds.inc({ name }),
    onRetry: () => metrics.workqueueRetries.inc({ name }),
    onTaken: (seconds) => metrics.workqueueQueueDuration.observe({ name }, seconds),
    onDone: (seconds) => metrics.workqueueWorkDuration.observe({ name }, seconds),
  };
}
