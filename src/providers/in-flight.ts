/**
 * A bound on the requests on the wire to one provider resource, shared by every instance
 * that uses it. Without it, a provider that hangs would hold every reconcile worker in
 * its requests; with it, at most `max` wait on the provider and the others give up after
 * one provider timeout without a slot coming free, and back off, leaving the workers to
 * other providers. A slot is held only while a request is on the wire (never while it
 * waits for the rate limiter), so "no slot for a whole timeout" means the provider is not answering.
 */
export class InFlightLimit {
  readonly max: number;
  private active = 0;
  private readonly waiters = new Set<() => void>();

  constructor(max: number) {
    this.max = Math.max(1, Math.floor(max));
  }

  /** Requests on the wire now. */
  get inFlight(): number {
    return this.active;
  }

  /** Takes a slot if one is free now: the function that gives it back, or undefined. */
  tryAcquire(): (() => void) | undefined {
    if (this.active >= this.max) return undefined;
    this.active += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active -= 1;
      for (const wake of [...this.waiters]) wake();
    };
  }

  /** Resolves true when a slot is (or comes) free, false after `waitMs` without one. */
  whenFree(waitMs: number): Promise<boolean> {
    if (this.active < this.max) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        resolve(false);
      }, waitMs);
      this.waiters.add(wake);
    });
  }
}
