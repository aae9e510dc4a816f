/**
 * A keyed work queue in the manner of client-go's: a key is queued at most once, is
 * never processed by two workers at once (a key added while it is being processed is
 * queued again when that finishes), concurrency is bounded, and failures back off per
 * key exponentially until a success forgets them.
 *
 * Two lanes, as controller-runtime's priority queue: work that something new asked for
 * (a created or edited object, a provider event) runs before periodic looks (requeues
 * after a delay, resyncs), so a burst of polls never delays a user's change.
 *
 * Keys may also belong to a group (the provider an instance uses): at most maxPerGroup keys
 * of one group run at once, so one slow provider never holds every worker. A key whose group
 * is full stays queued, set aside, and the workers take keys of other groups meanwhile.
 */
import { backoffDelay, clampDelay } from "./retry.ts";

/**
 * "inFlight": the next look of work already begun (a session starting after its create);
 * "urgent": something changed; "routine": a scheduled look. Taken in that order, so a
 * burst of new objects finishes objects as it goes instead of beginning all of them first.
 */
export type Priority = "inFlight" | "urgent" | "routine";

const RANK: Record<Priority, number> = { inFlight: 2, urgent: 1, routine: 0 };

export interface WorkQueueOptions {
  readonly concurrency: number;
  /** First retry delay after a failure; doubles per consecutive failure. */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Called whenever the number of queued keys changes (metrics). */
  readonly onDepth?: (depth: number) => void;
  /** Called for every add and every retry (metrics). */
  readonly onAdd?: () => void;
  readonly onRetry?: () => void;
  /** Called when a worker takes a key: how long it waited since it was queued, in seconds (metrics). */
  readonly onTaken?: (waitedSeconds: number) => void;
  /** Called when the handler for a key has finished: how long it ran, in seconds (metrics). */
  readonly onDone?: (workedSeconds: number) => void;
  /** Names the group a key belongs to (its provider); undefined: none. Read when a worker takes the key. */
  readonly groupOf?: (key: string) => string | undefined;
  /** Keys of one group processed at once at most; default: no bound. */
  readonly maxPerGroup?: number;
  /**
   * Called when a handler rejects. The worker lives on and the key is retried with its
   * backoff, so one bug cannot take a worker (or, repeated, all of them) out for good.
   */
  readonly onError?: (key: string, error: unknown) => void;
}

export type WorkHandler = (key: string) => Promise<void>;

/** The keys set aside behind one full group: continuations, and the rest, each in the order they came. */
interface SetAside {
  readonly inFlight: string[];
  readonly other: string[];
}

export class WorkQueue {
  private readonly options: Required<Omit<WorkQueueOptions, "onDepth" | "onAdd" | "onRetry" | "onError" | "onTaken" | "onDone" | "groupOf">> &
    Pick<WorkQueueOptions, "onDepth" | "onAdd" | "onRetry" | "onError" | "onTaken" | "onDone" | "groupOf">;
  private readonly lanes: Record<Priority, string[]> = { inFlight: [], urgent: [], routine: [] };
  /** Queued keys and their lane. */
  private readonly queued = new Map<string, Priority>();
  /** When each key waiting (queued, or dirty while processed) was first asked for. */
  private readonly askedAt = new Map<string, number>();
  private readonly processing = new Set<string>();
  /** When each key in a worker's hands was taken (performance.now() ms), for the in-progress gauges. */
  private readonly takenAt = new Map<string, number>();
  /** Keys added while being processed: they go back on the queue when done. */
  private readonly dirty = new Map<string, Priority>();
  private readonly failures = new Map<string, number>();
  /** Keys being processed per group. */
  private readonly groupBusy = new Map<string, number>();
  /** Queued keys set aside because their group was full, per group, in the order they came up. */
  private readonly setAside = new Map<string, SetAside>();
  private readonly setAsideGroup = new Map<string, string>();
  /** Keys a group gave back to the lanes and no worker took yet: room of that group they hold. */
  private readonly returnedBy = new Map<string, string>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly idleWaiters: (() => void)[] = [];
  private wake: (() => void) | undefined;
  private shuttingDown = false;
  private workers: Promise<void>[] = [];

  constructor(options: WorkQueueOptions) {
    this.options = { baseDelayMs: 500, maxDelayMs: 5 * 60_000, maxPerGroup: Number.POSITIVE_INFINITY, ...options };
  }

  get depth(): number {
    return this.queued.size;
  }

  /** Whether more than `count` keys wait that were asked for or continue work in flight (routine looks not counted). */
  pressingMoreThan(count: number): boolean {
    let pressing = 0;
    for (const priority of this.queued.values()) if (priority !== "routine" && ++pressing > count) return true;
    return false;
  }

  /**
   * Queues the key now, unless it is already waiting; an add of a higher priority moves a
   * key waiting in a lower lane up.
   */
  add(key: string, priority: Priority = "urgent"): void {
    if (this.shuttingDown) return;
    this.options.onAdd?.();
    if (!this.askedAt.has(key)) this.askedAt.set(key, performance.now());
    if (this.processing.has(key)) {
      const was = this.dirty.get(key);
      if (was === undefined || RANK[priority] > RANK[was]) this.dirty.set(key, priority);
      return;
    }
    const lane = this.queued.get(key);
    if (lane !== undefined && RANK[lane] >= RANK[priority]) return;
    const asideIn = this.setAsideGroup.get(key);
    if (lane !== undefined && asideIn !== undefined) {
      // Set aside behind its full group: it keeps its place there (a continuation moves to the
      // group's first line) and goes back in its new lane.
      this.queued.set(key, priority);
      const aside = this.setAside.get(asideIn);
      if (aside && priority === "inFlight") {
        aside.other.splice(aside.other.indexOf(key), 1);
        aside.inFlight.push(key);
      }
      return;
    }
    if (lane !== undefined) this.lanes[lane].splice(this.lanes[lane].indexOf(key), 1);
    this.queued.set(key, priority);
    this.lanes[priority].push(key);
    this.options.onDepth?.(this.queued.size);
    this.wake?.();
  }

  /** When each key being processed now was taken, in performance.now() milliseconds. */
  processingSince(): readonly number[] {
    return [...this.takenAt.values()];
  }

  /** Whether a delayed look at the key is already scheduled (a resync need not add one). */
  isScheduled(key: string): boolean {
    return this.timers.has(key) || this.queued.has(key) || this.processing.has(key);
  }

  /** Queues the key after a delay, in the routine lane unless told; an earlier pending delay for the same key wins. */
  addAfter(key: string, requestedMs: number, priority: Exclude<Priority, "urgent"> = "routine"): void {
    if (this.shuttingDown) return;
    // A provider may ask for any wait; a timer holds at most ~24.8 days (longer would fire at once).
    const delayMs = clampDelay(requestedMs);
    if (delayMs <= 0) {
      this.add(key, priority);
      return;
    }
    const at = Date.now() + delayMs;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key, priority);
    }, delayMs);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /** Queues the key after its backoff: base × 2^(failures−1), capped. */
  addRateLimited(key: string): number {
    this.options.onRetry?.();
    const failures = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, failures);
    const delay = backoffDelay({ baseMs: this.options.baseDelayMs, maxMs: this.options.maxDelayMs }, failures - 1);
    this.addAfter(key, delay);
    return delay;
  }

  /** Clears the key's failure count after a success. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /**
   * The cause of earlier failures is gone (the API server or provider answers again):
   * keys waiting out a long backoff are looked at now instead of minutes later.
   */
  retryBackedOffNow(which: (key: string) => boolean = () => true): void {
    for (const key of [...this.failures.keys()].filter(which)) {
      this.failures.delete(key);
      const pending = this.timers.get(key);
      if (!pending) continue;
      clearTimeout(pending.timer);
      this.timers.delete(key);
      this.add(key, "routine");
    }
  }

  /** Starts the workers. Each takes keys one at a time and runs the handler. */
  start(handler: WorkHandler): void {
    for (let i = 0; i < this.options.concurrency; i++) this.workers.push(this.work(handler));
  }

  /** Stops taking keys, lets in-flight handlers finish, and resolves when they have. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.wake?.();
    await Promise.all(this.workers);
  }

  /** Resolves once nothing is queued or in flight (tests and benchmarks). */
  whenIdle(): Promise<void> {
    if (this.queued.size === 0 && this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async work(handler: WorkHandler): Promise<void> {
    while (!this.shuttingDown) {
      const taken = this.take();
      if (taken === undefined) {
        await new Promise<void>((resolve) => {
          const previous = this.wake;
          this.wake = () => {
            this.wake = undefined;
            previous?.();
            resolve();
          };
        });
        continue;
      }
      const { key, group } = taken;
      if (group !== undefined) this.groupBusy.set(group, (this.groupBusy.get(group) ?? 0) + 1);
      this.queued.delete(key);
      this.options.onDepth?.(this.queued.size);
      this.processing.add(key);
      const takenAt = performance.now();
      this.takenAt.set(key, takenAt);
      this.options.onTaken?.((takenAt - (this.askedAt.get(key) ?? takenAt)) / 1000);
      this.askedAt.delete(key);
      let failed = false;
      try {
        await handler(key);
      } catch (error) {
        failed = true;
        this.options.onError?.(key, error);
      } finally {
        this.options.onDone?.((performance.now() - takenAt) / 1000);
        this.takenAt.delete(key);
        this.processing.delete(key);
        if (group !== undefined) this.leaveGroup(group);
        const again = this.dirty.get(key);
        if (again !== undefined) {
          this.dirty.delete(key);
          this.add(key, again);
        }
        if (failed) this.addRateLimited(key);
        if (this.queued.size === 0 && this.processing.size === 0) {
          for (const resolve of this.idleWaiters.splice(0)) resolve();
        }
      }
    }
  }

  /** The next key whose group has room; keys of full groups met on the way are set aside. */
  private take(): { key: string; group: string | undefined } | undefined {
    for (;;) {
      const key = this.lanes.inFlight.shift() ?? this.lanes.urgent.shift() ?? this.lanes.routine.shift();
      if (key === undefined) return undefined;
      const group = this.options.groupOf?.(key);
      const returnedBy = this.returnedBy.get(key);
      this.returnedBy.delete(key);
      if (group === undefined || (this.groupBusy.get(group) ?? 0) < this.options.maxPerGroup) {
        // Given back by a group it no longer belongs to (its instance was deleted or moved): the room
        // it was given back for is still free, so the next key set aside there gets it.
        if (returnedBy !== undefined && returnedBy !== group) this.giveBack(returnedBy);
        return { key, group };
      }
      const aside = this.setAside.get(group) ?? { inFlight: [], other: [] };
      this.setAside.set(group, aside);
      (this.queued.get(key) === "inFlight" ? aside.inFlight : aside.other).push(key);
      this.setAsideGroup.set(key, group);
    }
  }

  /** A key of the group finished: keys set aside for it go back to the front of their lanes, as many as it has room for. */
  private leaveGroup(group: string): void {
    const busy = (this.groupBusy.get(group) ?? 1) - 1;
    if (busy > 0) this.groupBusy.set(group, busy);
    else this.groupBusy.delete(group);
    this.giveBack(group);
  }

  /**
   * Puts keys set aside for `group` back in their lanes, up to its free room less the keys
   * already given back and not yet taken, in the order they were set aside.
   */
  private giveBack(group: string): void {
    const aside = this.setAside.get(group);
    if (!aside) return;
    const pending = [...this.returnedBy.values()].filter((from) => from === group).length;
    let room = Math.max(0, this.options.maxPerGroup - (this.groupBusy.get(group) ?? 0) - pending);
    // Continuations first (a burst finishes what it began before it begins more), then in the order they were set aside.
    const back = aside.inFlight.splice(0, room);
    room -= back.length;
    back.push(...aside.other.splice(0, room));
    if (aside.inFlight.length === 0 && aside.other.length === 0) this.setAside.delete(group);
    for (const key of back.reverse()) {
      this.setAsideGroup.delete(key);
      this.returnedBy.set(key, group);
      this.lanes[this.queued.get(key) ?? "routine"].unshift(key);
    }
    if (back.length > 0) this.wake?.();
  }
}
