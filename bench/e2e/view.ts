/**
 * What a user would see in one namespace, kept current by two watches: each instance's
 * status.phase and whether its `<name>-qr` Secret holds a qr.png. The benchmark's
 * phases wait on it ("every instance in ScanQR with its QR Secret") and read from it
 * when each instance got there.
 */
import type { BenchKube, KubeItem, WatchEvent } from "./kube.ts";

export const INSTANCES_PATH = (namespace: string) => `/apis/wa-operator.io/v1alpha1/namespaces/${namespace}/whatsappinstances`;
export const SECRETS_PATH = (namespace: string) => `/api/v1/namespaces/${namespace}/secrets`;
const QR_SUFFIX = "-qr";

export interface InstanceView {
  readonly phase: string | undefined;
  /** The `<name>-qr` Secret holds a non-empty qr.png. */
  readonly qrPng: boolean;
  readonly item: KubeItem | undefined;
}

/** A condition on one instance's view. */
export type Wanted = (view: InstanceView) => boolean;

export const inScanQrWithCode: Wanted = (view) => view.phase === "ScanQR" && view.qrPng;
export const connectedAndCleared: Wanted = (view) => view.phase === "Connected" && !view.qrPng;

interface Waiter {
  readonly pending: Set<string>;
  readonly wanted: Wanted;
  readonly reachedAt: Map<string, number>;
  readonly done: () => void;
}

export class NamespaceView {
  readonly namespace: string;
  readonly #phases = new Map<string, string | undefined>();
  readonly #items = new Map<string, KubeItem>();
  readonly #qrPng = new Map<string, boolean>();
  readonly #waiters = new Set<Waiter>();
  readonly #stops: (() => void)[] = [];
  /** Observers of every instance object seen (the bare loop works from these). */
  readonly #onInstance = new Set<(item: KubeItem, type: WatchEvent["type"]) => void>();

  constructor(namespace: string) {
    this.namespace = namespace;
  }

  /** Starts both watches; resolves once both listed. */
  async start(kube: BenchKube, onError: (error: unknown) => void): Promise<void> {
    const instances = kube.informer(INSTANCES_PATH(this.namespace), (event) => this.#instanceEvent(event), onError);
    const secrets = kube.informer(SECRETS_PATH(this.namespace), (event) => this.#secretEvent(event), onError);
    this.#stops.push(instances.stop, secrets.stop);
    await Promise.all([instances.synced, secrets.synced]);
  }

  stop(): void {
    for (const stop of this.#stops.splice(0)) stop();
    for (const waiter of this.#waiters) waiter.done();
  }

  onInstance(listener: (item: KubeItem, type: WatchEvent["type"]) => void): () => void {
    this.#onInstance.add(listener);
    return () => this.#onInstance.delete(listener);
  }

  view(name: string): InstanceView {
    return { phase: this.#phases.get(name), qrPng: this.#qrPng.get(name) ?? false, item: this.#items.get(name) };
  }

  /** How many of `names` are in each phase now. */
  phaseCounts(names: Iterable<string>): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const name of names) {
      const phase = this.#phases.get(name) ?? "(none)";
      counts[phase] = (counts[phase] ?? 0) + 1;
    }
    return counts;
  }

  /**
   * Resolves when every one of `names` satisfied `wanted` (each recorded at the first
   * moment it did), or at `deadline` (epoch ms) with those that got there so far.
   */
  async waitUntil(names: Iterable<string>, wanted: Wanted, deadline: number): Promise<{ reachedAt: Map<string, number>; complete: boolean }> {
    const pending = new Set(names);
    const reachedAt = new Map<string, number>();
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      const waiter: Waiter = {
        pending,
        wanted,
        reachedAt,
        done: () => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          resolve();
        },
      };
      this.#waiters.add(waiter);
      for (const name of [...pending]) this.#check(waiter, name);
      if (pending.size > 0) timer = setTimeout(waiter.done, Math.max(0, deadline - Date.now()));
    });
    return { reachedAt, complete: pending.size === 0 };
  }

  #check(waiter: Waiter, name: string): void {
    if (!waiter.pending.has(name) || !waiter.wanted(this.view(name))) return;
    waiter.pending.delete(name);
    waiter.reachedAt.set(name, Date.now());
    if (waiter.pending.size === 0) waiter.done();
  }

  #changed(name: string): void {
    for (const waiter of [...this.#waiters]) this.#check(waiter, name);
  }

  #instanceEvent(event: WatchEvent): void {
    const name = event.object.metadata.name;
    if (event.type === "DELETED") {
      this.#phases.delete(name);
      this.#items.delete(name);
    } else {
      this.#phases.set(name, event.object.status?.phase);
      this.#items.set(name, event.object);
    }
    for (const listener of this.#onInstance) listener(event.object, event.type);
    this.#changed(name);
  }

  #secretEvent(event: WatchEvent): void {
    const secret = event.object.metadata.name;
    if (!secret.endsWith(QR_SUFFIX)) return;
    const name = secret.slice(0, -QR_SUFFIX.length);
    this.#qrPng.set(name, event.type !== "DELETED" && (event.object.data?.["qr.png"]?.length ?? 0) > 0);
    this.#changed(name);
  }
}
