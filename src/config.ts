/**
 * Operator settings from flags and environment variables, validated with zod.
 * Flags win over environment; durations accept Go-style strings (30s, 2m, 1h).
 */
import { isIP } from "node:net";
import { parseArgs } from "node:util";
import { z } from "zod";

export function parseDuration(text: string): number {
  const pattern = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let consumed = 0;
  for (const match of text.matchAll(pattern)) {
    total += Number(match[1]) * (units[match[2] as string] as number);
    consumed += match[0].length;
  }
  if (consumed === 0 || consumed !== text.length) throw new Error(`"${text}" is not a duration such as 30s, 2m or 1h30m`);
  return Math.round(total);
}

const durationMs = z.string().transform((value, context) => {
  try {
    return parseDuration(value);
  } catch (error) {
    context.addIssue({ code: "custom", message: (error as Error).message });
    return z.NEVER;
  }
});

/**
 * Link-local ranges (every cloud's metadata service lives there: 169.254.169.254) and the
 * metadata addresses outside them (AWS over IPv6, Alibaba Cloud). Loopback stays allowed.
 */
export const DEFAULT_EGRESS_DENY = ["169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32"] as const;

/** "ADDRESS/PREFIX" with an IPv4 or IPv6 address and a prefix that fits it. */
function isCidr(text: string): boolean {
  const [address, prefix, ...rest] = text.split("/");
  const family = isIP(address ?? "");
  const bits = Number(prefix);
  return rest.length === 0 && family !== 0 && /^[0-9]{1,3}$/.test(prefix ?? "") && bits <= (family === 4 ? 32 : 128);
}

const cidrList = (fallback: string) => z.string().default(fallback).transform((value, context) => {
  if (value.trim() === "none") return [];
  const entries = value.split(",").map((part) => part.trim()).filter(Boolean);
  for (const entry of entries) if (!isCidr(entry)) context.addIssue({ code: "custom", message: `"${entry}" is not an address range such as 169.254.0.0/16 or fe80::/10` });
  return entries;
});

/** The settings and their defaults; what each one means is in SETTINGS below (and --help). */
export const configSchema = z.object({
  namespaces: z
    .string()
    .default("")
    .transform((value) => value.split(",").map((part) => part.trim()).filter(Boolean)),
  concurrency: z.coerce.number().int().min(1).max(256).default(32),
  logLevel: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
  pollInterval: durationMs.default(30_000),
  /** While a code waits for the phone: how often the session is asked whether it linked (without provider events). */
  pairingPollInterval: durationMs.default(2_000),
  /** Caps how old a QR code in the Secret may get before it is fetched again; 0: a quarter of its documented life. */
  qrRefreshInterval: durationMs.default(0),
  /** First wait before restarting a FAILED session; doubles up to failureBackoffMax. */
  failureBackoff: durationMs.default(60_000),
  failureBackoffMax: durationMs.default(30 * 60_000),
  /** A session STARTING for longer is restarted once, then reported Failed (WAHA issues #1043, #2243). */
  stuckTimeout: durationMs.default(5 * 60_000),
  /** Re-check of each provider's health. */
  providerCheckInterval: durationMs.default(60_000),
  providerTimeout: durationMs.default(10_000),
  /**
   * Requests on the wire to one provider at once. Half the default concurrency, so a
   * provider that hangs holds only half the workers; the rest serve other providers.
   */
  providerMaxInFlight: z.coerce.number().int().min(1).max(1024).default(16),
  /** The longest pause a provider's Retry-After or X-RateLimit-Reset is obeyed for. */
  providerMaxPause: durationMs.default(15 * 60_000),
  /** Instance reconciles of one provider at once; 0: half of concurrency (at least 1). */
  providerMaxWorkers: z.coerce.number().int().min(0).max(256).default(0),
  /** Addresses no provider, events or webhook URL may resolve to when the operator connects. */
  egressDenyCidrs: cidrList(DEFAULT_EGRESS_DENY.join(",")),
  resync: durationMs.default(10 * 60_000),
  httpAddress: z.string().default(":8080"),
  metricsAddress: z.string().default(":8081"),
  leaderElection: z
    .string()
    .default("false")
    .transform((value) => value === "true" || value === "1"),
  leaseName: z.string().default("wa-operator-leader"),
  operatorNamespace: z.string().default("default"),
  leaseDuration: durationMs.default(15_000),
});

export type OperatorConfig = z.output<typeof configSchema>;

interface Setting {
  readonly flag: string;
  readonly env: string;
  readonly key: keyof z.input<typeof configSchema>;
  /** What the value looks like, for --help. */
  readonly value: string;
  readonly help: string;
}

/** Flag name → environment variable → config key, with the help --help prints. */
const SETTINGS: readonly Setting[] = [
  { flag: "namespaces", env: "WATCH_NAMESPACES", key: "namespaces", value: "NS[,NS...]", help: "Namespaces whose instances and providers to reconcile; empty means every namespace." },
  { flag: "concurrency", env: "CONCURRENCY", key: "concurrency", value: "N", help: "Instances reconciled at once (1-256); providers get a quarter of it." },
  { flag: "log-level", env: "LOG_LEVEL", key: "logLevel", value: "LEVEL", help: "trace, debug, info, warn, error, fatal or silent." },
  { flag: "poll-interval", env: "POLL_INTERVAL", key: "pollInterval", value: "DURATION", help: "Status refresh of a settled instance when its provider sets no pollInterval." },
  { flag: "pairing-poll-interval", env: "PAIRING_POLL_INTERVAL", key: "pairingPollInterval", value: "DURATION", help: "While a code waits for the phone, how often the session is asked whether it linked (without provider events); a starting session is looked at after 1 s, 2 s, ... up to this." },
  { flag: "qr-refresh-interval", env: "QR_REFRESH_INTERVAL", key: "qrRefreshInterval", value: "DURATION", help: "Caps how old the code in the QR Secret may get before it is fetched again; 0s means a quarter of the code's documented life (WAHA: 5 s)." },
  { flag: "failure-backoff", env: "FAILURE_BACKOFF", key: "failureBackoff", value: "DURATION", help: "First wait before restarting a FAILED session; doubles on each failure." },
  { flag: "failure-backoff-max", env: "FAILURE_BACKOFF_MAX", key: "failureBackoffMax", value: "DURATION", help: "Longest wait between restarts of a FAILED session." },
  { flag: "stuck-timeout", env: "STUCK_TIMEOUT", key: "stuckTimeout", value: "DURATION", help: "A session STARTING for longer is restarted once, then reported Failed." },
  { flag: "provider-check-interval", env: "PROVIDER_CHECK_INTERVAL", key: "providerCheckInterval", value: "DURATION", help: "Re-check of each provider's health and credentials." },
  { flag: "provider-timeout", env: "PROVIDER_TIMEOUT", key: "providerTimeout", value: "DURATION", help: "Timeout of one request to a provider." },
  { flag: "provider-max-in-flight", env: "PROVIDER_MAX_IN_FLIGHT", key: "providerMaxInFlight", value: "N", help: "Requests on the wire to one provider at once, so a hanging provider holds only that many workers." },
  { flag: "provider-max-pause", env: "PROVIDER_MAX_PAUSE", key: "providerMaxPause", value: "DURATION", help: "Longest pause a provider's Retry-After or X-RateLimit-Reset is obeyed for; its instances show RateLimited and are looked at again then, without holding a worker." },
  { flag: "provider-max-workers", env: "PROVIDER_MAX_WORKERS", key: "providerMaxWorkers", value: "N", help: "Instances of one provider reconciled at once, so a slow provider never delays another's; 0 means half of CONCURRENCY." },
  { flag: "egress-deny-cidrs", env: "EGRESS_DENY_CIDRS", key: "egressDenyCidrs", value: "CIDR[,CIDR...]", help: "Address ranges the operator never connects to for a provider, whatever a URL's name resolves to (metadata services); none allows every address." },
  { flag: "resync", env: "RESYNC_INTERVAL", key: "resync", value: "DURATION", help: "How often every cached object is queued for reconcile again, on top of the watches." },
  { flag: "http-address", env: "HTTP_ADDRESS", key: "httpAddress", value: "[HOST]:PORT", help: "Address of /healthz, /readyz and the provider-event receiver." },
  { flag: "metrics-address", env: "METRICS_ADDRESS", key: "metricsAddress", value: "[HOST]:PORT", help: "Address of /metrics (and /healthz), apart from the event receiver: metrics name every tenant's objects." },
  { flag: "leader-election", env: "LEADER_ELECTION", key: "leaderElection", value: "true|false", help: "Reconcile only while holding the Lease, so replicas can run side by side." },
  { flag: "lease-name", env: "LEASE_NAME", key: "leaseName", value: "NAME", help: "Name of the leader-election Lease." },
  { flag: "operator-namespace", env: "POD_NAMESPACE", key: "operatorNamespace", value: "NS", help: "The operator's own namespace: its Lease, and the event Secrets of cluster-scoped providers." },
  { flag: "lease-duration", env: "LEASE_DURATION", key: "leaseDuration", value: "DURATION", help: "How long a leader's Lease lasts without renewal before another replica may take over." },
];

/** Reads settings; throws an Error whose message lists every invalid setting. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): OperatorConfig {
  const { values } = parseArgs({
    args: [...argv],
    options: Object.fromEntries(SETTINGS.map((setting) => [setting.flag, { type: "string" as const }])),
    strict: true,
    allowPositionals: false,
  });
  const raw: Record<string, string> = {};
  for (const setting of SETTINGS) {
    const value = (values as Record<string, string | undefined>)[setting.flag] ?? env[setting.env];
    if (value !== undefined && value !== "") raw[setting.key] = value;
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const setting = SETTINGS.find((entry) => entry.key === issue.path[0]);
      return `--${setting?.flag ?? String(issue.path[0])} (${setting?.env ?? ""}): ${issue.message}`;
    });
    throw new Error(`invalid settings:\n  ${problems.join("\n  ")}`);
  }
  return parsed.data;
}

/** A duration as parseDuration reads it: 30s, 2m, 1h30m, 250ms. */
export function formatDuration(ms: number): string {
  const units: [string, number][] = [["h", 3_600_000], ["m", 60_000], ["s", 1000], ["ms", 1]];
  let rest = Math.round(ms);
  let text = "";
  for (const [unit, size] of units) {
    const count = Math.floor(rest / size);
    if (count > 0) text += `${count}${unit}`;
    rest -= count * size;
  }
  return text || "0s";
}

/** A default as a user would type it, read from the parsed defaults (one source: the schema). */
function defaultText(setting: Setting, defaults: OperatorConfig): string {
  const value = defaults[setting.key];
  if (Array.isArray(value)) return value.length === 0 ? "every namespace" : value.join(",");
  if (typeof value === "number" && setting.value === "DURATION") return formatDuration(value);
  return String(value);
}

/** wa-operator --help: every setting with its variable, meaning and default. */
export function usage(): string {
  const defaults = loadConfig([], {});
  return [
    "Usage: wa-operator [flags]",
    "",
    "Runs the wa-operator controllers against the cluster of KUBECONFIG (or the in-cluster config).",
    "Every flag can also be set by the environment variable in brackets; the flag wins.",
    "Durations read like 30s, 2m or 1h30m.",
    "",
    ...SETTINGS.flatMap((setting) => [`  --${setting.flag} ${setting.value}  [${setting.env}]`, `      ${setting.help} Default: ${defaultText(setting, defaults)}.`]),
    "  --version",
    "      Print the version and exit.",
    "  -h, --help",
    "      Print this help and exit.",
  ].join("\n");
}

/** The reconcile workers one provider's instances may hold at once (PROVIDER_MAX_WORKERS). */
export function providerWorkerCap(config: Pick<OperatorConfig, "concurrency" | "providerMaxWorkers">): number {
  return config.providerMaxWorkers > 0 ? Math.min(config.providerMaxWorkers, config.concurrency) : Math.max(1, Math.floor(config.concurrency / 2));
}
