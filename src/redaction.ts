/**
 * The process-wide redactor: every credential the operator holds is remembered where it
 * is read (src/kube/secrets.ts, and the provider clients' inputs and answers in
 * src/controllers/provider/connections.ts), and every text that leaves the process —
 * log lines, Event messages, status — goes through `redactor.redact` on its way out.
 * Redacting what we know we hold, rather than what we think we printed, also catches a
 * provider that echoes a key back in an error body.
 *
 * Forms matched for each value: the value itself, its JSON-string escaping (log lines are
 * JSON), its URL encoding (query strings in messages), and its base64 and base64url
 * encodings without padding (Secret data, Basic credentials). A value inside a longer
 * base64 text at an unaligned offset is not recognised.
 */

/** Shorter values are not remembered by the process-wide redactor: they would match ordinary words and ids. */
export const MIN_SECRET_LENGTH = 6;

/** A short form (a 6-digit PIN) is hidden only where it stands alone, never inside a longer id. */
const STANDALONE_BELOW = 16;

const REPLACEMENT = "[redacted]";

export interface RedactorOptions {
  /** Values shorter than this are ignored. */
  readonly minLength?: number;
  /** Most long-lived values (keys, PINs, HMAC keys) kept; the least recently seen go first. */
  readonly capacity?: number;
  /** Most short-lived values (QR payloads, pairing codes) kept, apart from the long-lived ones. */
  readonly briefCapacity?: number;
}

export class Redactor {
  private readonly minLength: number;
  private readonly pools: { readonly lasting: Pool; readonly brief: Pool };
  /** Forms by their first `prefixLength` characters: one map lookup per text position. */
  private readonly index = new Map<string, string[]>();
  /** How many remembered values produce each form (a form may come from two values). */
  private readonly formCounts = new Map<string, number>();
  private prefixLength = Number.POSITIVE_INFINITY;

  constructor(options: RedactorOptions = {}) {
    this.minLength = options.minLength ?? MIN_SECRET_LENGTH;
    this.pools = { lasting: new Pool(options.capacity ?? 16_384), brief: new Pool(options.briefCapacity ?? 4096) };
  }

  /** Remembers credentials (keys, tokens, PINs, HMAC keys) to hide from now on. */
  remember(...values: readonly (string | undefined)[]): void {
    for (const value of values) this.add(this.pools.lasting, value);
  }

  /** Remembers short-lived secrets (QR payloads, pairing codes); the oldest are forgotten first. */
  rememberBriefly(...values: readonly (string | undefined)[]): void {
    for (const value of values) this.add(this.pools.brief, value);
  }

  /** The text with every remembered value, in every form above, replaced by "[redacted]". */
  redact(text: string): string {
    if (this.index.size === 0 || text.length < this.prefixLength) return text;
    let out = "";
    let copiedUpTo = 0;
    let i = 0;
    while (i <= text.length - this.prefixLength) {
      const candidates = this.index.get(text.substr(i, this.prefixLength));
      const match = candidates?.find((form) => text.startsWith(form, i) && standsAlone(text, i, form));
      if (match === undefined) {
        i += 1;
        continue;
      }
      out += text.slice(copiedUpTo, i) + REPLACEMENT;
      i += match.length;
      copiedUpTo = i;
    }
    return copiedUpTo === 0 ? text : out + text.slice(copiedUpTo);
  }

  /** A copy of `value` with every string in it redacted (status objects, log fields). */
  redactDeep<T>(value: T): T {
    if (typeof value === "string") return this.redact(value) as T;
    if (Array.isArray(value)) return value.map((item: unknown) => this.redactDeep(item)) as T;
    if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
      return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, this.redactDeep(item)])) as T;
    }
    return value;
  }

  private add(pool: Pool, value: string | undefined): void {
    if (value === undefined || value.length < this.minLength) return;
    const evicted = pool.touch(value);
    if (evicted.added) for (const form of formsOf(value)) this.addForm(form);
    if (evicted.removed !== undefined) for (const form of formsOf(evicted.removed)) this.removeForm(form);
  }

  private addForm(form: string): void {
    const count = this.formCounts.get(form) ?? 0;
    this.formCounts.set(form, count + 1);
    if (count > 0) return;
    if (form.length < this.prefixLength) {
      this.prefixLength = form.length;
      this.reindex();
      return;
    }
    this.insert(form);
  }

  private removeForm(form: string): void {
    const count = this.formCounts.get(form) ?? 0;
    if (count > 1) {
      this.formCounts.set(form, count - 1);
      return;
    }
    this.formCounts.delete(form);
    const key = form.slice(0, this.prefixLength);
    const bucket = this.index.get(key)?.filter((entry) => entry !== form);
    if (bucket && bucket.length > 0) this.index.set(key, bucket);
    else this.index.delete(key);
  }

  private insert(form: string): void {
    const key = form.slice(0, this.prefixLength);
    const bucket = this.index.get(key) ?? [];
    // Longest first, so a value is never half-hidden by a shorter one sharing its start.
    bucket.push(form);
    bucket.sort((a, b) => b.length - a.length);
    this.index.set(key, bucket);
  }

  private reindex(): void {
    this.index.clear();
    for (const form of this.formCounts.keys()) this.insert(form);
  }
}

/** Insertion-ordered set with a capacity: touching a value makes it the newest. */
class Pool {
  private readonly values = new Set<string>();
  private readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  touch(value: string): { added: boolean; removed?: string } {
    const known = this.values.delete(value);
    this.values.add(value);
    if (this.values.size <= this.capacity) return { added: !known };
    const oldest = this.values.values().next().value as string;
    this.values.delete(oldest);
    return { added: !known, removed: oldest };
  }
}

function formsOf(value: string): string[] {
  const bytes = Buffer.from(value, "utf8");
  const forms = [
    value,
    JSON.stringify(value).slice(1, -1),
    encodeURIComponent(value),
    bytes.toString("base64").replace(/=+$/, ""),
    bytes.toString("base64url"),
  ];
  return [...new Set(forms)];
}

const ALPHANUMERIC = /[A-Za-z0-9]/;

function standsAlone(text: string, at: number, form: string): boolean {
  if (form.length >= STANDALONE_BELOW) return true;
  const before = text[at - 1];
  const after = text[at + form.length];
  return (before === undefined || !ALPHANUMERIC.test(before)) && (after === undefined || !ALPHANUMERIC.test(after));
}

/** Hides the given values (and their forms) in one text: for callers that know exactly what they hold. */
export function redactSecrets(text: string, secrets: readonly (string | undefined)[]): string {
  const local = new Redactor({ minLength: 1 });
  local.remember(...secrets);
  return local.redact(text);
}

/**
 * Every credential the process holds. One per process on purpose: a value read in one
 * place (a Secret) must be hidden in every other (a log line, an Event), whoever wrote it.
 */
export const redactor = new Redactor();
