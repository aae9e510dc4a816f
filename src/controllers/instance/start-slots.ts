/**
 * Start slots: at most a provider's spec.maxConcurrentStarts sessions starting at once, so
 * a burst of new instances or a gateway that lost its sessions does not bring every session
 * up at the same moment (the boot stampede of WAHA issue #2012). A slot is held from the
 * operator's create, start or restart call until a look finds the session showing a QR,
 * working, failed or stopped, or the stuck timeout passes; the others wait, linked
 * sessions first (they need no QR: after a gateway restart they come back first), then in
 * creation order. Admission is a pure function (admit); StartSlots keeps the holders and waiters of
 * one operator process.
 */
import type { InstanceObject } from "../../api/objects.ts";

/** A waiter that has not asked again for this long has stopped waiting (deleted, or its spec changed). */
export const WAITER_TTL_MS = 30_000;
/**
 * How soon a waiting instance asks again. A freed slot wakes the next in line at once
 * (nextInLine); this is for slots freed otherwise (the stuck timeout, a holder whose look
 * failed), and costs little: the waiting pass writes nothing and, for an instance that never
 * had a session, calls nothing.
 */
export const SLOT_RETRY_MS = 2_000;

export interface SlotHolder {
  readonly key: string;
  /** When the slot was granted: the stuck timer runs from here, not from when it was asked for. */
  readonly grantedAt: number;
}

export interface SlotWaiter {
  readonly key: string;
  /** metadata.creationTimestamp: the order in which waiters get slots. */
  readonly createdAt: string;
  /** A linked session (it had a phone number): goes before the unlinked ones. */
  readonly linked: boolean;
  readonly askedAt: number;
}

/** What admission knows about one provider's slots, and who asks. */
export interface StartSlotView {
  readonly max: number;
  readonly stuckTimeoutMs: number;
  readonly now: number;
  readonly self: { readonly key: string; readonly createdAt: string; readonly linked: boolean };
  readonly holders: readonly SlotHolder[];
  readonly waiters: readonly SlotWaiter[];
}

export type Admission = { readonly admitted: true } | { readonly admitted: false; readonly starting: number; readonly ahead: number };

/**
 * Whether `self` may start now: it already holds a slot, or a slot is free and fewer
 * waiters ahead of it (linked first, then by creation, then key) than there are free slots still wait.
 * A holder past the stuck timeout no longer counts.
 */
export function admit(view: StartSlotView): Admission {
  const live = view.holders.filter((holder) => view.now - holder.grantedAt < view.stuckTimeoutMs);
  if (live.some((holder) => holder.key === view.self.key)) return { admitted: true };
  const ahead = view.waiters.filter((waiter) => waiter.key !== view.self.key && view.now - waiter.askedAt < WAITER_TTL_MS && before(waiter, view.self)).length;
  const free = view.max - live.length;
  return ahead < free ? { admitted: true } : { admitted: false, starting: live.length, ahead };
}

/** The condition message of an instance waiting for a slot: the same whatever its place in line, so waiting writes its status once. */
export function waitingMessage(max: number, providerType: string): string {
  return `waiting for a start slot: at most ${max} ${providerType} sessions start at once on this provider; linked sessions, then older instances, go first`;
}

/** Whether `a` goes before `b` in line: linked sessions first, then by creation, then key. */
function before(a: Pick<SlotWaiter, "key" | "createdAt" | "linked">, b: Pick<SlotWaiter, "key" | "createdAt" | "linked">): boolean {
  if (a.linked !== b.linked) return a.linked;
  return a.createdAt < b.createdAt || (a.createdAt === b.createdAt && a.key < b.key);
}

/** The holders and waiters of every provider, in this operator process. */
export class StartSlots {
  private readonly holders = new Map<string, Map<string, number>>();
  /** Each provider's maxConcurrentStarts as last asked with: who is next when a slot frees. */
  private readonly limits = new Map<string, number>();
  /** `since`: when it first asked (the wait metric); `askedAt`: when it last did. */
  private readonly waiters = new Map<string, Map<string, { createdAt: string; linked: boolean; askedAt: number; since: number }>>();

  view(provider: string, self: StartSlotView["self"], limits: { readonly max: number; readonly stuckTimeoutMs: number; readonly now: number }): StartSlotView {
    // A waiting session's status loses its phone number (phase Pending): the line remembers it was linked.
    const linked = self.linked || this.waiters.get(provider)?.get(self.key)?.linked === true;
    this.limits.set(provider, limits.max);
    return {
      ...limits,
      self: { ...self, linked },
      holders: [...(this.holders.get(provider) ?? [])].map(([key, grantedAt]) => ({ key, grantedAt })),
      waiters: [...(this.waiters.get(provider) ?? [])].map(([key, { createdAt, linked, askedAt }]) => ({ key, createdAt, linked, askedAt })),
    };
  }

  /** Takes a slot if admission allows (keeping the first grant time of one already held); else waits in line. */
  acquire(view: StartSlotView, provider: string): boolean {
    if (!admit(view).admitted) {
      this.wait(view, provider);
      return false;
    }
    const holders = mapOf(this.holders, provider);
    if (!holders.has(view.self.key) || view.now - (holders.get(view.self.key) as number) >= view.stuckTimeoutMs) holders.set(view.self.key, view.now);
    this.waiters.get(provider)?.delete(view.self.key);
    return true;
  }

  /** Records that `view.self` waits for a slot (its place in line is its creation time). */
  wait(view: StartSlotView, provider: string): void {
    const since = this.waiters.get(provider)?.get(view.self.key)?.since ?? view.now;
    mapOf(this.waiters, provider).set(view.self.key, { createdAt: view.self.createdAt, linked: view.self.linked, askedAt: view.now, since });
  }

  /**
   * Puts sessions in line before they ask (a gateway lost them all at once): the line then
   * holds every one of them when the first slots are handed out, so linked ones go first.
   */
  enqueue(provider: string, entries: readonly StartSlotView["self"][], now: number): void {
    const line = mapOf(this.waiters, provider);
    for (const entry of entries) {
      if (line.has(entry.key) || this.holders.get(provider)?.has(entry.key)) continue;
      line.set(entry.key, { createdAt: entry.createdAt, linked: entry.linked, askedAt: now, since: now });
    }
  }

  /** A look found the session wanting no start (running, or not wanted): it leaves the line. */
  withdraw(provider: string, key: string): void {
    this.waiters.get(provider)?.delete(key);
  }

  /** Since when `key` waits for a slot of `provider`, if it does. */
  waitingSince(provider: string, key: string): number | undefined {
    return this.waiters.get(provider)?.get(key)?.since;
  }

  /** How many hold a live slot of `provider`, and how many wait that still ask. */
  load(provider: string, now: number, stuckTimeoutMs: number): { readonly starting: number; readonly waiting: number } {
    const starting = [...(this.holders.get(provider)?.values() ?? [])].filter((grantedAt) => now - grantedAt < stuckTimeoutMs).length;
    const waiting = [...(this.waiters.get(provider)?.values() ?? [])].filter((waiter) => now - waiter.askedAt < WAITER_TTL_MS).length;
    return { starting, waiting };
  }

  /** The session was seen out of its start (a QR, working, failed or stopped): true when it held a slot. */
  release(provider: string, key: string): boolean {
    return this.holders.get(provider)?.delete(key) === true;
  }

  /** The instance is gone: it leaves every slot and line. Returns the providers where it held a slot. */
  forget(key: string): string[] {
    for (const line of this.waiters.values()) line.delete(key);
    return [...this.holders].filter(([, holders]) => holders.delete(key)).map(([provider]) => provider);
  }

  /** The waiters that free slots of `provider` now admit, in line order: the ones to wake when a slot frees. */
  nextInLine(provider: string, now: number, stuckTimeoutMs: number): string[] {
    const free = (this.limits.get(provider) ?? 0) - this.load(provider, now, stuckTimeoutMs).starting;
    if (free <= 0) return [];
    const line = [...(this.waiters.get(provider) ?? [])]
      .map(([key, waiter]) => ({ key, ...waiter }))
      .filter((waiter) => now - waiter.askedAt < WAITER_TTL_MS)
      .sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0));
    return line.slice(0, free).map((waiter) => waiter.key);
  }

  /** Whether `key` holds a slot of `provider` that the stuck timeout has not ended. */
  holds(provider: string, key: string, now: number, stuckTimeoutMs: number): boolean {
    const grantedAt = this.holders.get(provider)?.get(key);
    return grantedAt !== undefined && now - grantedAt < stuckTimeoutMs;
  }
}

function mapOf<V>(maps: Map<string, Map<string, V>>, provider: string): Map<string, V> {
  let map = maps.get(provider);
  if (!map) {
    map = new Map();
    maps.set(provider, map);
  }
  return map;
}

/** The view of `provider`'s slots for `instance`, now. */
export function startSlotView(
  ctx: { readonly startSlots: StartSlots; readonly clock: { now(): number }; readonly config: { readonly stuckTimeout: number } },
  instance: InstanceObject,
  provider: { readonly key: string; readonly maxConcurrentStarts: number },
): StartSlotView {
  const self = {
    key: `${instance.metadata.namespace}/${instance.metadata.name}`,
    createdAt: instance.metadata.creationTimestamp ?? "",
    linked: instance.status?.phoneNumber !== undefined,
  };
  return ctx.startSlots.view(provider.key, self, { max: provider.maxConcurrentStarts, stuckTimeoutMs: ctx.config.stuckTimeout, now: ctx.clock.now() });
}

/** What freeing a slot needs of the operator: the slots, the clock, the stuck timeout and a way to wake instances. */
type SlotContext = {
  readonly startSlots: StartSlots;
  readonly clock: { now(): number };
  readonly config: { readonly stuckTimeout: number };
  readonly wakeInstances?: ((keys: readonly string[]) => void) | undefined;
};

/** `key` no longer needs its slot of `provider`: if it held one, the waiters it admits look now rather than at their next retry. */
export function freeStartSlot(ctx: SlotContext, provider: string, key: string): void {
  if (ctx.startSlots.release(provider, key)) wakeNextInLine(ctx, provider);
}

/** A slot of `provider` freed: the waiters it admits are woken. */
export function wakeNextInLine(ctx: SlotContext, provider: string): void {
  const next = ctx.startSlots.nextInLine(provider, ctx.clock.now(), ctx.config.stuckTimeout);
  if (next.length > 0) ctx.wakeInstances?.(next);
}

/** A pass lost the last free slot to another between planning and its call: it waits like any other. */
export class StartSlotTaken extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StartSlotTaken";
  }
}
