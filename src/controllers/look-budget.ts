/**
 * Routine looks (polls, pairing checks, QR refreshes) share each provider's rateLimit with
 * the work that matters more: new and changed instances. When the looks that all instances
 * of one provider would make at their usual intervals add up to more than ROUTINE_SHARE of
 * its requests per second, every routine look at that provider is spread out by the same
 * factor, so new work always finds the other part of the budget free.
 */

/** The part of a provider's rate limit that routine looks may use. */
export const ROUTINE_SHARE = 0.5;

/** How far routine looks must be spread (≥ 1) for `demandPerSecond` to fit the share of `requestsPerSecond`. */
export function lookStretch(demandPerSecond: number, requestsPerSecond: number, share: number = ROUTINE_SHARE): number {
  const budget = requestsPerSecond * share;
  return budget > 0 && demandPerSecond > budget ? demandPerSecond / budget : 1;
}

/** The routine looks per second each instance would make at its usual intervals, summed per provider. */
export class LookBudget {
  private readonly byInstance = new Map<string, { readonly provider: string; readonly perSecond: number }>();
  private readonly totals = new Map<string, number>();

  /** What the instance's next routine looks cost, in provider calls per second (0 when none is due). */
  record(instance: string, provider: string, perSecond: number): void {
    this.forget(instance);
    if (perSecond <= 0) return;
    this.byInstance.set(instance, { provider, perSecond });
    this.totals.set(provider, (this.totals.get(provider) ?? 0) + perSecond);
  }

  forget(instance: string): void {
    const known = this.byInstance.get(instance);
    if (!known) return;
    this.byInstance.delete(instance);
    const left = (this.totals.get(known.provider) ?? 0) - known.perSecond;
    // Sums of floating-point rates drift; what is left of an emptied provider is noise.
    if (left <= 1e-9) this.totals.delete(known.provider);
    else this.totals.set(known.provider, left);
  }

  /** Calls per second the routine looks at this provider would make unspread. */
  demand(provider: string): number {
    return this.totals.get(provider) ?? 0;
  }
}
