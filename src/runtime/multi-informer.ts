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

  list(): T[] {
    return this.parts.flatMap((part) => part.list());
  }

  start(): void {
    for (const part of this.parts) part.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.parts.map((part) => part.stop()));
  }
}
