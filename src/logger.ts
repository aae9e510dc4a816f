/**
 * pino JSON logs. Anything that could carry a credential, an HMAC key or a QR payload
 * is redacted by path, wherever in a log object it sits.
 */
import { pino, type Logger } from "pino";
import { redactor as processRedactor, type Redactor } from "./redaction.ts";

export const REDACTED_PATHS = [
  "apiKey",
  "*.apiKey",
  "hmacKey",
  "*.hmacKey",
  "*.*.hmacKey",
  "pin",
  "*.pin",
  "token",
  "*.token",
  "password",
  "*.password",
  "qr",
  "*.qr",
  "png",
  "*.png",
  "text",
  "*.text",
  "pairingCode",
  "*.pairingCode",
  "data",
  "*.data",
  "headers.authorization",
  "headers.cookie",
  'headers["x-api-key"]',
  "*.headers.authorization",
  "*.headers.cookie",
  '*.headers["x-api-key"]',
];

/** Longest string a log field keeps: a provider's 2 MB error body must not become a 2 MB line on every retry. */
export const MAX_LOG_FIELD = 1024;

/**
 * Besides the paths above, every finished line goes through the process-wide redactor
 * (redaction.ts), so a credential is hidden wherever it ended up: a message, an error's
 * text, a field nobody thought of.
 */
export function createLogger(level: string, destination?: pino.DestinationStream, redactor: Redactor = processRedactor): Logger {
  return pino(
    {
      level,
      base: { component: "wa-operator" },
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        log: (object) => shortenFields(object, 3) as Record<string, unknown>,
      },
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((arg) => (typeof arg === "string" ? shorten(arg) : arg)) as Parameters<typeof method>);
        },
        streamWrite: (line) => redactor.redact(line),
      },
    },
    destination,
  );
}

function shorten(text: string): string {
  return text.length > MAX_LOG_FIELD ? `${text.slice(0, MAX_LOG_FIELD)}… (${text.length} characters)` : text;
}

/** Plain objects, arrays and Errors a few levels down; other values are left to pino's serializers. */
function shortenFields(value: unknown, depth: number): unknown {
  if (typeof value === "string") return shorten(value);
  if (value instanceof Error) return { type: value.name, message: shorten(value.message), ...(value.stack ? { stack: shorten(value.stack) } : {}) };
  if (depth === 0) return value;
  if (Array.isArray(value)) return value.map((item) => shortenFields(item, depth - 1));
  if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, shortenFields(item, depth - 1)]));
  }
  return value;
}

const LEVEL_METHODS: ReadonlySet<string> = new Set(["trace", "debug", "info", "warn", "error", "fatal"]);
const silent = (): void => {};

/**
 * `parent.child(bindings)`, built only when something is logged through it at an enabled
 * level. A pino child costs its bindings' serialization and a copy of the redaction setup:
 * paid on every pass it would be most of the CPU of a pass over an instance at rest, which
 * logs nothing. The child shares the parent's level, so a disabled level is answered with a
 * no-op without building it.
 */
export function lazyChild(parent: Logger, bindings: pino.Bindings): Logger {
  let child: Logger | undefined;
  const real = (): Logger => (child ??= parent.child(bindings));
  return new Proxy(parent, {
    get(_target, property) {
      if (child === undefined && typeof property === "string" && LEVEL_METHODS.has(property) && !parent.isLevelEnabled(property)) return silent;
      const built = real();
      const value: unknown = Reflect.get(built, property, built);
      return typeof value === "function" ? value.bind(built) : value;
    },
  });
}
