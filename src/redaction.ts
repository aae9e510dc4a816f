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
  /** Most long-lived values (keys, PINs, HMAC keys) kept (default 8192); the least recently seen go first. */
  readonly capacity?: number;
  /** Most short-lived values (QR payloads, pairing codes) kept (default 256): a QR code is dead within a minute. */
  readonly briefCapacity?: number;
}

export class Redactor {
  private readonly minLength: number;
  private readonly lasting: Pool;
  private readonly brief: Pool;

  constructor(options: RedactorOptions = {}) {
    this.minLength = options.minLength ?? MIN_SECRET_LENGTH;
    this.lasting = new Pool(options.capacity ?? 8192);
    this.brief = new Pool(options.briefCapacity ?? 256);
  }

  /** Remembers credentials (keys, tokens, PINs, HMAC keys) to hide from now on. */
  remember(...values: readonly (string | undefined)[]): void {
    for (const value of values) if (value !== undefined && value.length >= this.minLength) this.lasting.touch(value);
  }

  /** Remembers short-lived secrets (QR payloads, pairing codes); the oldest are forgotten first. */
  rememberBriefly(...values: readonly (string | undefined)[]): void {
    for (const value of values) if (value !== undefined && value.length >= this.minLength) this.brief.touch(value);
  }

  /** The text with every remembered value, in every form above, replaced by "[redacted]". */
  redact(text: string): string {
    // The short-lived values (long QR payloads) first, so no shorter credential cuts into one.
    return this.lasting.redact(this.brief.redact(text));
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
}

/**
 * Values kept in insertion order up to a capacity (touching one makes it the newest),
 * matched by one regular expression of all their forms: V8 matches a literal alternation
 * far faster than a lookup per text position. The expression is rebuilt on the first
 * redact after a change; long-lived and short-lived values live in separate pools, so a
 * QR code rotating every 20 s rebuilds only the small one.
 */
class Pool {
  private readonly values = new Set<string>();
  private readonly capacity: number;
  private pattern: RegExp | undefined;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  touch(value: string): void {
    const known = this.values.delete(value);
    this.values.add(value);
    if (this.values.size > this.capacity) this.values.delete(this.values.values().next().value as string);
    else if (known) return;
    this.pattern = undefined;
  }

  redact(text: string): string {
    if (this.values.size === 0) return text;
    this.pattern ??= compile([...this.values].flatMap(formsOf));
    return text.replace(this.pattern, REPLACEMENT);
  }
}

/** Longest first, so a value is never half-hidden by a shorter one sharing its start; a short form only where it stands alone. */
function compile(forms: readonly string[]): RegExp {
  const alternatives = [...new Set(forms)]
    .sort((a, b) => b.length - a.length)
    .map((form) => {
      const escaped = form.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
      return form.length >= STANDALONE_BELOW ? escaped : `(?<![A-Za-z0-9])${escaped}(?![A-Za-z0-9])`;
    });
  return new RegExp(alternatives.join("|"), "g");
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
