/** Several informers (one per watched namespace) seen as one cache. */
import type { KubeObject } from "../kube/resources.ts";
import type { Informer, InformerEvent } from "./informer.ts";

export class MultiInformer<T extends KubeObject> {
  private readonly parts: readonly Informer<T>[];

  constructor(parts: readonly Informer<T>[]) {
    this.parts = parts;
  }

  get synced(): Promise<void> {
    return Promise.all(this.parts.map((part) => part.synced)).then(() => undefined);
  }

  get hasSynced(): boolean {
    return this.parts.every((part) => part.hasSynced);
  }

  on(handler: (event: InformerEvent<T>) => void): void {
    for (const part of this.parts) part.on(handler);
  }

  get(key: string): T | undefined {
    for (const part of this.parts) {
      const found = part.get(key);
      if (found) return found;
    }
    return undefined;
  }

  /** Write-through into the part that watches the object's namespace (see Informer.remember). */
  remember(object: T): void {
    this.partFor(object.metadata.namespace)?.remember(object);
  }

  forget(namespace: string | undefined, key: string): void {
    this.partFor(namespace)?.forget(key);
  }

  /** Whether some part watches this namespace, so that "not in the cache" means "does not exist". */
  covers(namespace: string | undefined): boolean {
    return this.partFor(namespace) !== undefined;
  }

  private partFor(namespace: string | undefined): Informer<T> | undefined {
    return this.parts.find((part) => part.namespace === undefined || part.namespace === namespace);
  }

  list(): T[] {
    return this.parts.flatMap((part) => part.list());
  }

  /** The objects an index files under `value`, across the parts; undefined for an unknown index. */
  byIndex(index: string, value: string): T[] | undefined {
    let found: T[] | undefined;
    for (const part of this.parts) {
      const objects = part.byIndex(index, value);
      if (objects) found = found ? [...found, ...objects] : objects;
    }
    return found;
  }

  start(): void {
    for (const part of this.parts) part.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.parts.map((part) => part.stop()));
  }
}
