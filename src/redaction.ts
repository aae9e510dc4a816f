/**
 * The process-wide redactor: every credential the operator holds is remembered where it
 * is read (src/kube/secrets.ts, and the provider clients' inputs and answers in
 * src/controllers/provider/connections.ts), and every free text that leaves the process —
 * log lines, Event messages, condition messages — goes through `redactor.redact` on its
 * way out. Redacting what we know we hold, rather than what we think we printed, also
 * catches a provider that echoes a key back in an error body.
 *
 * Every tenant is a possible adversary, and a tenant chooses what its Secrets hold. So a
 * value is remembered only where it looks like a credential (looksSecret), in the scope of
 * the namespace it came from: it is hidden in that namespace's objects and in log lines,
 * never in another namespace's Events or status.
 *
 * Forms matched for each value: the value itself, its JSON-string escaping (log lines are
 * JSON), its URL encoding (query strings in messages), and its base64 and base64url
 * encodings without padding (Secret data, Basic credentials). A value inside a longer
 * base64 text at an unaligned offset is not recognised.
 */

/** Shorter values are never remembered: they would match ordinary words and ids. */
export const MIN_SECRET_LENGTH = 6;

/** A value remembered without being named a PIN must be at least this long, and look random (looksSecret). */
const MIN_LOOKS_SECRET_LENGTH = 8;

/** A short form (a 6-digit PIN) is hidden only where it stands alone, never inside a longer id. */
const STANDALONE_BELOW = 16;

const REPLACEMENT = "[redacted]";

/** The scope of what the operator itself holds (its events keys, a cluster provider's credentials): hidden everywhere. */
export const OPERATOR_SCOPE = "";

export interface RedactorOptions {
  /** Values shorter than this are ignored. */
  readonly minLength?: number;
  /** Most long-lived values (keys, PINs, HMAC keys) kept per scope (default 8192); the least recently seen go first. */
  readonly capacity?: number;
  /** Most short-lived values (QR payloads, pairing codes) kept per scope (default 256): a QR code is dead within a minute. */
  readonly briefCapacity?: number;
  /** Whether a value must look like a secret to be remembered (default true; see looksSecret). */
  readonly onlySecretLooking?: boolean;
  /** A pool compiles its expression at most this often (default 1 s); values newer than that are matched one by one. */
  readonly rebuildEveryMs?: number;
  readonly now?: () => number;
}

/**
 * Whether a text looks like a credential rather than a word a status or a log line uses
 * anyway ("Connected", a phone number): at least 8 characters, spread over many symbols
 * (Shannon entropy of at least 2.5 bits a character), with a digit or a sign in it unless
 * it is 20 characters or longer. A tenant's Secret holding "Connected" must not erase that
 * word from every log line.
 */
export function looksSecret(value: string): boolean {
  if (value.length < MIN_LOOKS_SECRET_LENGTH) return false;
  if (value.length < 20 && !/[^A-Za-z]/.test(value)) return false;
  const counts = new Map<string, number>();
  for (const char of value) counts.set(char, (counts.get(char) ?? 0) + 1);
  let entropy = 0;
  for (const count of counts.values()) {
    const p = count / value.length;
    entropy -= p * Math.log2(p);
  }
  return entropy >= 2.5;
}

/** What one scope (a namespace, or the operator's own) holds: lasting credentials and short-lived codes apart. */
interface Scope {
  readonly lasting: Pool;
  readonly brief: Pool;
}

/** The remembering half of a Redactor, for one namespace. */
export interface ScopedMemory {
  /** Credentials (keys, tokens, HMAC keys); only values that look like secrets are kept. */
  remember(...values: readonly (string | undefined)[]): void;
  /** Short-lived secrets (QR payloads, pairing codes); the oldest are forgotten first. */
  rememberBriefly(...values: readonly (string | undefined)[]): void;
  /** A value known to be secret although it is short or plain (a 2-step PIN): hidden where it stands alone. */
  rememberExact(...values: readonly (string | undefined)[]): void;
}

export class Redactor {
  private readonly minLength: number;
  private readonly options: RedactorOptions;
  private readonly scopes = new Map<string, Scope>();

  constructor(options: RedactorOptions = {}) {
    this.minLength = options.minLength ?? MIN_SECRET_LENGTH;
    this.options = options;
  }

  /** What is remembered for `namespace` is hidden in its own objects' text and in log lines, nowhere else. */
  in(namespace: string | undefined): ScopedMemory {
    const scope = this.scope(namespace ?? OPERATOR_SCOPE);
    const keep = (pool: Pool, filter: boolean) => (values: readonly (string | undefined)[]) => {
      for (const value of values) {
        if (value === undefined || value.length < this.minLength) continue;
        if (filter && this.options.onlySecretLooking !== false && !looksSecret(value)) continue;
        pool.touch(value);
      }
    };
    return {
      remember: (...values) => keep(scope.lasting, true)(values),
      rememberBriefly: (...values) => keep(scope.brief, true)(values),
      rememberExact: (...values) => keep(scope.lasting, false)(values),
    };
  }

  /** Remembers the operator's own credentials, hidden everywhere. */
  remember(...values: readonly (string | undefined)[]): void {
    this.in(OPERATOR_SCOPE).remember(...values);
  }

  /** Remembers short-lived secrets of the operator's own. */
  rememberBriefly(...values: readonly (string | undefined)[]): void {
    this.in(OPERATOR_SCOPE).rememberBriefly(...values);
  }

  /**
   * The text with every remembered value, in every form above, replaced by "[redacted]":
   * the operator's own and `namespace`'s, or, with no namespace (a log line, which any
   * object's text may reach), every scope's.
   */
  redact(text: string, namespace?: string): string {
    const scopes = namespace === undefined ? [...this.scopes.values()] : [this.scopes.get(OPERATOR_SCOPE), this.scopes.get(namespace)];
    let out = text;
    // The short-lived values (long QR payloads) first, so no shorter credential cuts into one.
    for (const scope of scopes) if (scope) out = scope.brief.redact(out);
    for (const scope of scopes) if (scope) out = scope.lasting.redact(out);
    return out;
  }

  private scope(name: string): Scope {
    let scope = this.scopes.get(name);
    if (!scope) {
      const rebuildEveryMs = this.options.rebuildEveryMs ?? 1000;
      const now = this.options.now ?? Date.now;
      scope = {
        lasting: new Pool(this.options.capacity ?? 8192, rebuildEveryMs, now),
        brief: new Pool(this.options.briefCapacity ?? 256, rebuildEveryMs, now),
      };
      this.scopes.set(name, scope);
    }
    return scope;
  }
}

/** Values added since the last compile matched one by one, at most this many before compiling anyway. */
const MAX_UNCOMPILED = 32;

/**
 * Values kept in insertion order up to a capacity (touching one makes it the newest),
 * matched by one regular expression of all their forms: V8 matches a literal alternation
 * far faster than a lookup per text position. The expression is compiled at most once
 * per rebuildEveryMs (a stream of new values, say many Secrets created at once, must not
 * compile it for every text); values newer than the expression are matched one by one
 * meanwhile. Long-lived and short-lived values live in separate pools, so a QR code
 * rotating every 20 s touches only the small one.
 */
class Pool {
  private readonly values = new Set<string>();
  private readonly capacity: number;
  private readonly rebuildEveryMs: number;
  private readonly now: () => number;
  private pattern: RegExp | undefined;
  private compiledAt = -Infinity;
  /** Values not in the pattern yet (or the pattern is stale because one was forgotten). */
  private uncompiled: string[] = [];
  private stale = false;
  /**
   * No value seen is shorter, and every form of a value is at least as long as the value:
   * a shorter text cannot hold one, and needs neither the expression nor its compiling.
   * (Never raised when a value is forgotten: a lower bound is all this needs.)
   */
  private shortest = Infinity;

  constructor(capacity: number, rebuildEveryMs: number, now: () => number) {
    this.capacity = capacity;
    this.rebuildEveryMs = rebuildEveryMs;
    this.now = now;
  }

  touch(value: string): void {
    this.shortest = Math.min(this.shortest, value.length);
    const known = this.values.delete(value);
    this.values.add(value);
    if (this.values.size > this.capacity) {
      this.values.delete(this.values.values().next().value as string);
      this.stale = true;
    } else if (known) return;
    this.uncompiled.push(value);
  }

  redact(text: string): string {
    if (this.values.size === 0 || text.length < this.shortest) return text;
    const due = this.now() - this.compiledAt >= this.rebuildEveryMs;
    if (this.pattern === undefined || ((this.stale || this.uncompiled.length > 0) && due) || this.uncompiled.length > MAX_UNCOMPILED) {
      this.pattern = compile([...this.values].flatMap(formsOf));
      this.compiledAt = this.now();
      this.uncompiled = [];
      this.stale = false;
    }
    let out = text.replace(this.pattern, REPLACEMENT);
    for (const value of this.uncompiled) if (this.values.has(value)) out = out.replace(compile(formsOf(value)), REPLACEMENT);
    return out;
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
  const local = new Redactor({ minLength: 1, onlySecretLooking: false });
  local.remember(...secrets);
  return local.redact(text);
}

/**
 * Every credential the process holds. One per process on purpose: a value read in one
 * place (a Secret) must be hidden in every other (a log line, an Event), whoever wrote it.
 */
export const redactor = new Redactor();
