/**
 * An informer that survives: it lists, then watches from the list's resourceVersion,
 * relists on 410 Gone, restarts with backoff after any other failure, aborts a watch
 * that has gone silent (watchdog), and periodically replays its cache (resync).
 * Handlers only ever see current objects; what to do is the reconciler's business.
 */
import { backoffDelay } from "./retry.ts";
import type { Logger } from "pino";
import { KubeError, type KubeClient, type WatchEvent } from "../kube/client.ts";
import { isNewer, keyOf, type KubeObject, type ResourceType } from "../kube/resources.ts";

/** How many deleted objects an informer remembers against late write-throughs. */
const MAX_TOMBSTONES = 4096;

export type InformerEventType = "added" | "updated" | "deleted" | "resync";

export interface InformerEvent<T> {
  readonly type: InformerEventType;
  readonly object: T;
  readonly old?: T;
}

export interface InformerOptions {
  readonly kube: KubeClient;
  readonly type: ResourceType;
  /** Namespace to watch; undefined for all (or for cluster-scoped kinds). */
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly log: Logger;
  /** Replays every cached object this often; 0 disables. */
  readonly resyncMs?: number;
  /** A watch that delivers nothing (not even a bookmark) for this long is restarted. */
  readonly watchdogMs?: number;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Keeps only what handlers need (e.g. drops Secret data the operator never reads from the cache). */
  readonly transform?: (object: KubeObject) => KubeObject;
  /** Named indexes: the values each object is filed under, for byIndex lookups instead of scans. */
  readonly indexers?: Readonly<Record<string, (object: KubeObject) => readonly string[]>>;
}

interface IndexEntry {
  readonly index: (object: KubeObject) => readonly string[];
  readonly byValue: Map<string, Set<string>>;
  readonly valuesOf: Map<string, readonly string[]>;
}

function unfile(byValue: Map<string, Set<string>>, key: string, values: readonly string[]): void {
  for (const value of values) {
    const keys = byValue.get(value);
    keys?.delete(key);
    if (keys?.size === 0) byValue.delete(value);
  }
}

export class Informer<T extends KubeObject> {
  private readonly options: Required<Omit<InformerOptions, "namespace" | "labelSelector" | "transform" | "indexers">> &
    Pick<InformerOptions, "namespace" | "labelSelector" | "transform">;
  private readonly store = new Map<string, T>();
  private readonly indexes = new Map<string, IndexEntry>();
  /** Recently deleted objects, so that a late write-through cannot bring one back (see remember). */
  private readonly tombstones = new Map<string, T>();
  private readonly handlers: ((event: InformerEvent<T>) => void)[] = [];
  private running = false;
  private resourceVersion: string | undefined;
  private abortWatch: (() => void) | undefined;
  private wakeSleep: (() => void) | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private syncedResolve!: () => void;
  /** Resolves after the first complete list. */
  readonly synced: Promise<void>;
  private hasSyncedFlag = false;
  /** Restarts counted by cause, for tests and metrics. */
  readonly restarts = { gone: 0, error: 0, watchdog: 0, closed: 0 };

  constructor(options: InformerOptions) {
    const { indexers, ...rest } = options;
    this.options = { resyncMs: 10 * 60_000, watchdogMs: 90_000, minBackoffMs: 500, maxBackoffMs: 30_000, ...rest };
    for (const [name, index] of Object.entries(indexers ?? {})) this.indexes.set(name, { index, byValue: new Map(), valuesOf: new Map() });
    this.synced = new Promise((resolve) => (this.syncedResolve = resolve));
  }

  get hasSynced(): boolean {
    return this.hasSyncedFlag;
  }

  /** The namespace watched; undefined for all (or a cluster-scoped kind). */
  get namespace(): string | undefined {
    return this.options.namespace;
  }

  on(handler: (event: InformerEvent<T>) => void): void {
    this.handlers.push(handler);
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  /**
   * Write-through: stores what one of our own writes returned, so the next pass reads
   * its own writes before the watch delivers them. An older version never replaces a
   * newer one (see isNewer), so a watch event still in flight cannot roll it back.
   */
  remember(object: T): void {
    const shaped = this.shape(object);
    const key = keyOf(shaped);
    // Deleting with no finalizer left: the server removes it at once, and its DELETED event
    // may already have come. Nor may a write answered after that event bring it back.
    if (shaped.metadata.deletionTimestamp && (shaped.metadata.finalizers ?? []).length === 0) return;
    const gone = this.tombstones.get(key);
    if (gone && !isNewer(shaped, gone)) return;
    const old = this.store.get(key);
    if (old && !isNewer(shaped, old)) return;
    this.put(key, shaped);
  }

  /** Forgets an object we deleted ourselves, until the watch says otherwise. */
  forget(key: string): void {
    this.drop(key);
  }

  /**
   * The cached objects an index files under `value` (client-go's ByIndex): a lookup, not a
   * scan of the cache. Undefined for an index the informer was not given.
   */
  byIndex(index: string, value: string): T[] | undefined {
    const entry = this.indexes.get(index);
    if (!entry) return undefined;
    const keys = entry.byValue.get(value);
    if (!keys) return [];
    const objects: T[] = [];
    for (const key of keys) {
      const object = this.store.get(key);
      if (object) objects.push(object);
    }
    return objects;
  }

  /** Every change to the store goes through put and drop, which keep the indexes with it. */
  private put(key: string, object: T): void {
    this.store.set(key, object);
    for (const entry of this.indexes.values()) {
      const values = entry.index(object);
      const before = entry.valuesOf.get(key);
      if (before && before.length === values.length && before.every((value, i) => value === values[i])) continue;
      if (before) unfile(entry.byValue, key, before);
      if (values.length === 0) entry.valuesOf.delete(key);
      else entry.valuesOf.set(key, values);
      for (const value of values) {
        const keys = entry.byValue.get(value);
        if (keys) keys.add(key);
        else entry.byValue.set(value, new Set([key]));
      }
    }
  }

  private drop(key: string): void {
    this.store.delete(key);
    for (const entry of this.indexes.values()) {
      const before = entry.valuesOf.get(key);
      if (!before) continue;
      unfile(entry.byValue, key, before);
      entry.valuesOf.delete(key);
    }
  }

  list(): T[] {
    return [...this.store.values()];
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
    if (this.options.resyncMs > 0) {
      this.resyncTimer = setInterval(() => this.resync(), this.options.resyncMs);
      this.resyncTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.abortWatch?.();
    this.wakeSleep?.();
    await this.loop;
  }

  /** Emits every cached object again so the reconciler looks at each once more. */
  resync(): void {
    for (const object of this.store.values()) this.emit({ type: "resync", object });
  }

  private async run(): Promise<void> {
    // Consecutive failures: the wait before the next try grows with them (runtime/retry.ts).
    let failures = 0;
    while (this.running) {
      try {
        if (this.resourceVersion === undefined) await this.relist();
        // stop() may have come while listing: a watch started now would never be aborted.
        if (!this.running) break;
        const outcome = await this.watchOnce(this.resourceVersion as string);
        this.restarts[outcome] += 1;
        if (outcome === "gone") {
          this.options.log.info({ resource: this.options.type.plural }, "watch expired (410 Gone); relisting");
          this.resourceVersion = undefined;
        }
        if (outcome !== "error") {
          failures = 0;
          continue;
        }
      } catch (error) {
        this.restarts.error += 1;
        if (error instanceof KubeError && error.status === 410) {
          this.resourceVersion = undefined;
          continue;
        }
        this.options.log.warn({ resource: this.options.type.plural, err: describe(error) }, "list failed; retrying");
      }
      if (!this.running) break;
      await this.sleep(backoffDelay({ baseMs: this.options.minBackoffMs, maxMs: this.options.maxBackoffMs, jitter: 0.2 }, failures));
      failures += 1;
    }
  }

  private async relist(): Promise<void> {
    const { items, resourceVersion } = await this.options.kube.list<T>(this.options.type, this.options.namespace, this.options.labelSelector);
    const seen = new Set<string>();
    for (const raw of items) {
      const object = this.shape(raw);
      const key = keyOf(object);
      seen.add(key);
      const old = this.store.get(key);
      if (old && isNewer(old, object)) continue;
      this.put(key, object);
      if (!old) this.emit({ type: "added", object });
      else if (old.metadata.resourceVersion !== object.metadata.resourceVersion) this.emit({ type: "updated", object, old });
    }
    for (const [key, object] of this.store) {
      if (!seen.has(key)) {
        this.drop(key);
        this.emit({ type: "deleted", object });
      }
    }
    this.resourceVersion = resourceVersion;
    if (!this.hasSyncedFlag) {
      this.hasSyncedFlag = true;
      this.syncedResolve();
    }
  }

  /** Runs one watch to its end and says why it ended. */
  private watchOnce(resourceVersion: string): Promise<"gone" | "error" | "watchdog" | "closed"> {
    return new Promise((resolve) => {
      let settled = false;
      let outcome: "gone" | "error" | "watchdog" | "closed" = "closed";
      let controller: AbortController | undefined;
      let watchdog: NodeJS.Timeout | undefined;
      const finish = (why: "gone" | "error" | "watchdog" | "closed") => {
        if (settled) return;
        settled = true;
        if (watchdog) clearTimeout(watchdog);
        this.abortWatch = undefined;
        controller?.abort();
        resolve(why);
      };
      const feed = () => {
        if (watchdog) clearTimeout(watchdog);
        watchdog = setTimeout(() => finish("watchdog"), this.options.watchdogMs);
        watchdog.unref();
      };
      this.abortWatch = () => finish("closed");
      feed();
      controller = this.options.kube.watch<T>(
        this.options.type,
        this.options.namespace,
        // timeoutSeconds spread, so that watches started together do not all end together.
        { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 240 + Math.floor(Math.random() * 120), labelSelector: this.options.labelSelector },
        (event) => {
          feed();
          const verdict = this.apply(event);
          if (verdict === "gone") {
            outcome = "gone";
            finish("gone");
          }
        },
        (error) => {
          if (error && outcome === "closed") {
            outcome = error instanceof KubeError && error.status === 410 ? "gone" : "error";
            if (outcome === "error") this.options.log.warn({ resource: this.options.type.plural, err: describe(error) }, "watch failed");
          }
          finish(outcome);
        },
      );
      if (settled) controller.abort();
    });
  }

  private apply(event: WatchEvent<T>): "gone" | undefined {
    if (event.type === "ERROR") {
      const status = event.object as unknown as { code?: number };
      if (status.code === 410) return "gone";
      this.options.log.warn({ resource: this.options.type.plural, status }, "watch reported an error");
      return "gone";
    }
    const rv = event.object.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    if (event.type === "BOOKMARK") return undefined;
    const object = this.shape(event.object);
    const key = keyOf(object);
    const old = this.store.get(key);
    // Our own write may have put a newer version here already (remember()).
    if (event.type !== "DELETED" && old && !isNewer(object, old)) return undefined;
    if (event.type === "DELETED") {
      this.drop(key);
      this.bury(key, object);
      this.emit({ type: "deleted", object });
      return undefined;
    }
    this.put(key, object);
    this.emit(old ? { type: "updated", object, old } : { type: "added", object });
    return undefined;
  }

  private bury(key: string, object: T): void {
    this.tombstones.delete(key);
    this.tombstones.set(key, object);
    if (this.tombstones.size > MAX_TOMBSTONES) {
      const oldest = this.tombstones.keys().next().value;
      if (oldest !== undefined) this.tombstones.delete(oldest);
    }
  }

  private shape(object: T): T {
    const slim = stripManagedFields(object);
    return (this.options.transform ? this.options.transform(slim) : slim) as T;
  }

  private emit(event: InformerEvent<T>): void {
    for (const handler of this.handlers) {
      try {
        handler(event);
      } catch (error) {
        this.options.log.error({ err: describe(error) }, "informer handler threw");
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wakeSleep = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/**
 * managedFields is server-side apply's bookkeeping: often larger than the object itself
 * and never read by the operator.
 */
function stripManagedFields<T extends KubeObject>(object: T): T {
  const metadata = object.metadata as KubeObject["metadata"] & { managedFields?: unknown };
  if (metadata?.managedFields === undefined) return object;
  const { managedFields: _dropped, ...rest } = metadata;
  return { ...object, metadata: rest };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
