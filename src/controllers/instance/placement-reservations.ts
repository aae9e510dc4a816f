/**
 * The placement writes of this process that the cache does not show yet, and the new
 * leader's catch-up read (ctx.placements). Apart from placement.ts so the operator context
 * can hold it without importing the placement logic that reads the context.
 */
import type { InstanceObject } from "../../api/objects.ts";

/** A placement write whose outcome the cache does not show yet. */
interface Reservation {
  /** The instance's cache key. */
  readonly key: string;
  /** The provider key it was placed on. */
  readonly provider: string;
  /** The resourceVersion the write was guarded with. */
  readonly resourceVersion: string | undefined;
}

export interface PlacementsOptions {
  /** Whether this replica surely leads now (leader election); absent means always. */
  readonly mayWrite?: () => boolean;
}

/**
 * What placement keeps in memory, per operator process (ctx.placements). Two things make a
 * new leader's cache, not its memory, the record: before its first placement it reads every
 * instance from the API server (a warm stand-by's watch may lag behind what the old
 * leader wrote), and a placement write counts as taken until the cache shows what became of
 * it, also when its answer was lost (the write may have landed).
 */
export class Placements {
  private readonly reserved = new Map<string, Reservation>();
  private readonly mayWrite: (() => boolean) | undefined;
  private caughtUp: Promise<void> | undefined;

  constructor(options: PlacementsOptions = {}) {
    this.mayWrite = options.mayWrite;
  }

  /** A replica that is not surely the leader places nothing (it may have been deposed). */
  get mayPlace(): boolean {
    return this.mayWrite === undefined || this.mayWrite();
  }

  /** Runs `read` once per process before the first placement (again after a failure). */
  async catchUp(read: () => Promise<void>): Promise<void> {
    this.caughtUp ??= read().catch((error: unknown) => {
      this.caughtUp = undefined;
      throw error;
    });
    await this.caughtUp;
  }

  reserve(uid: string, reservation: Reservation): void {
    this.reserved.set(uid, reservation);
  }

  release(uid: string): void {
    this.reserved.delete(uid);
  }

  /**
   * Placements per provider key that the cache does not count yet: a reservation counts
   * while the cached instance is still unplaced at the version the write was guarded with.
   * Once the cache shows it placed (the cache counts it) or moved on without a placement
   * (the write cannot have landed: a placement is never removed), it is dropped.
   */
  pending(instances: { get(key: string): InstanceObject | undefined }): Map<string, number> {
    const counts = new Map<string, number>();
    for (const [uid, reservation] of this.reserved) {
      const cached = instances.get(reservation.key);
      const open = cached?.metadata.uid === uid && !cached.status?.providerRef && cached.metadata.resourceVersion === reservation.resourceVersion;
      if (!open) {
        this.reserved.delete(uid);
        continue;
      }
      counts.set(reservation.provider, (counts.get(reservation.provider) ?? 0) + 1);
    }
    return counts;
  }
}
