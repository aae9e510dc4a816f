/**
 * A bound on the requests on the wire to one provider resource, shared by every instance
 * that uses it. Without it, a provider that hangs would hold every reconcile worker in
 * its requests; with it, at most `max` wait on the provider and the others give up after
 * one provider timeout without a slot coming free, and back off, leaving the workers to
 * other providers.
 *
 * A freed slot is handed to the longest waiter, one waiter per slot: waking every waiter
 * to race for it would make each of them take a rate-limiter token for one request sent.
 */
export class InFlightLimit {
  readonly max: number;
  private active = 0;
  /** When a request holding a slot last got an answer (of any status) from the provider. */
  lastAnswerAt = Number.NEGATIVE_INFINITY;
  /** Waiters in arrival order; each is handed a slot, or told (undefined) that its wait is over. */
  private readonly waiters: Array<(release: ((answered?: boolean) => void) | undefined) => void> = [];

  constructor(max: number) {
    this.max = Math.max(1, Math.floor(max));
  }

  /** Requests holding a slot now. */
  get inFlight(): number {
    return this.active;
  }

  /** Callers waiting for a slot now. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Takes a slot if one is free now and nobody waits before us: the function that gives it back, or undefined. */
  tryAcquire(): ((answered?: boolean) => void) | undefined {
    if (this.active >= this.max || this.waiters.length > 0) return undefined;
    this.active += 1;
    return this.releaser();
  }

  /** A slot, waiting for one at most `waitMs` in line; undefined when none came free in time. */
  acquire(waitMs: number): Promise<((answered?: boolean) => void) | undefined> {
    const now = this.tryAcquire();
    if (now) return Promise.resolve(now);
    return new Promise((resolve) => {
      const waiter = (release: ((answered?: boolean) => void) | undefined) => {
        clearTimeout(timer);
        resolve(release);
      };
      const timer = setTimeout(() => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        resolve(undefined);
      }, waitMs);
      this.waiters.push(waiter);
    });
  }

  /** The function that gives a slot back; `answered` when the provider answered the request it carried. */
  private releaser(): (answered?: boolean) => void {
    let released = false;
    return (answered = false) => {
      if (released) return;
      released = true;
      if (answered) this.lastAnswerAt = Date.now();
      const next = this.waiters.shift();
      // The slot passes straight to the next waiter: `active` stays as it is.
      if (next) next(this.releaser());
      else this.active -= 1;
    };
  }
}
