/**
 * How fast one provider answers reads, from its recent answers. A read that has waited
 * several times longer than nearly every recent answer took is presumed lost and sent
 * again at once: otherwise a hung connection holds its in-flight slot (and a worker) for
 * the whole PROVIDER_TIMEOUT, and with a tenth of requests hanging, the slots, not the
 * rate limit, decide how fast anything gets done. Only the first try of a read is cut
 * short; its retries wait the full timeout, so a provider that has truly slowed down is
 * still answered, and its slower answers raise the deadline.
 */

/** Answers remembered. */
const SAMPLES = 128;
/** Below this many answers, reads wait the full timeout. */
const MIN_SAMPLES = 32;
/** A first try is cut after this many times the 99th percentile of recent answers… */
const P99_FACTOR = 5;
/** …but never sooner than this. */
export const MIN_FIRST_TRY_MS = 1000;

export class ReadLatency {
  private readonly samples: number[] = [];
  private next = 0;
  private p99: number | undefined;
  private readonly floorMs: number;

  constructor(options: { floorMs?: number } = {}) {
    this.floorMs = options.floorMs ?? MIN_FIRST_TRY_MS;
  }

  /** An answered read took `ms` on the wire. */
  record(ms: number): void {
    if (this.samples.length < SAMPLES) this.samples.push(ms);
    else this.samples[this.next] = ms;
    this.next = (this.next + 1) % SAMPLES;
    this.p99 = undefined;
  }

  /** The deadline of a read's first try, within `timeoutMs`. */
  firstTryMs(timeoutMs: number): number {
    if (this.samples.length < MIN_SAMPLES) return timeoutMs;
    this.p99 ??= percentile99(this.samples);
    return Math.min(timeoutMs, Math.max(this.floorMs, Math.ceil(this.p99 * P99_FACTOR)));
  }
}

function percentile99(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)] as number;
}
