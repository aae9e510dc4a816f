/**
 * Operator settings from flags and environment variables, validated with zod.
 * Flags win over environment; durations accept Go-style strings (30s, 2m, 1h).
 */
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

export const configSchema = z.object({
  /** Namespaces to watch; empty means all. */
  namespaces: z
    .string()
    .default("")
    .transform((value) => value.split(",").map((part) => part.trim()).filter(Boolean)),
  concurrency: z.coerce.number().int().min(1).max(256).default(8),
  logLevel: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
  /** Status refresh when a provider sets no pollInterval. */
  pollInterval: durationMs.default(30_000),
  /** While a code waits for the phone: how often the session is asked whether it linked (without provider events). */
  pairingPollInterval: durationMs.default(2_000),
  /** Caps how old a QR code in the Secret may get before it is fetched again (default: a quarter of its documented life). */
  qrRefreshInterval: durationMs.optional(),
  /** First wait before restarting a FAILED session; doubles up to failureBackoffMax. */
  failureBackoff: durationMs.default(60_000),
  failureBackoffMax: durationMs.default(30 * 60_000),
  /** A session STARTING for longer is restarted once, then reported Failed (WAHA issues #1043, #2243). */
  stuckTimeout: durationMs.default(5 * 60_000),
  /** Re-check of each provider's health. */
  providerCheckInterval: durationMs.default(60_000),
  providerTimeout: durationMs.default(10_000),
  /**
   * Requests on the wire to one provider at once. Below the default concurrency, so a
   * provider that hangs holds only some of the workers; the rest serve other providers.
   */
  providerMaxInFlight: z.coerce.number().int().min(1).max(1024).default(4),
  resync: durationMs.default(10 * 60_000),
  /** Address of /healthz, /readyz, /metrics and the provider-event receiver. */
  httpAddress: z.string().default(":8080"),
  leaderElection: z
    .string()
    .default("false")
    .transform((value) => value === "true" || value === "1"),
  leaseName: z.string().default("wa-operator-leader"),
  /** The operator's own namespace: its Lease, and the event Secrets of cluster-scoped providers. */
  operatorNamespace: z.string().default("default"),
  leaseDuration: durationMs.default(15_000),
});

export type OperatorConfig = z.output<typeof configSchema>;

/** Flag name → environment variable → config key. */
const SETTINGS: readonly { flag: string; env: string; key: keyof z.input<typeof configSchema> }[] = [
  { flag: "namespaces", env: "WATCH_NAMESPACES", key: "namespaces" },
  { flag: "concurrency", env: "CONCURRENCY", key: "concurrency" },
  { flag: "log-level", env: "LOG_LEVEL", key: "logLevel" },
  { flag: "poll-interval", env: "POLL_INTERVAL", key: "pollInterval" },
  { flag: "pairing-poll-interval", env: "PAIRING_POLL_INTERVAL", key: "pairingPollInterval" },
  { flag: "qr-refresh-interval", env: "QR_REFRESH_INTERVAL", key: "qrRefreshInterval" },
  { flag: "failure-backoff", env: "FAILURE_BACKOFF", key: "failureBackoff" },
  { flag: "failure-backoff-max", env: "FAILURE_BACKOFF_MAX", key: "failureBackoffMax" },
  { flag: "stuck-timeout", env: "STUCK_TIMEOUT", key: "stuckTimeout" },
  { flag: "provider-check-interval", env: "PROVIDER_CHECK_INTERVAL", key: "providerCheckInterval" },
  { flag: "provider-timeout", env: "PROVIDER_TIMEOUT", key: "providerTimeout" },
  { flag: "provider-max-in-flight", env: "PROVIDER_MAX_IN_FLIGHT", key: "providerMaxInFlight" },
  { flag: "resync", env: "RESYNC_INTERVAL", key: "resync" },
  { flag: "http-address", env: "HTTP_ADDRESS", key: "httpAddress" },
  { flag: "leader-election", env: "LEADER_ELECTION", key: "leaderElection" },
  { flag: "lease-name", env: "LEASE_NAME", key: "leaseName" },
  { flag: "operator-namespace", env: "POD_NAMESPACE", key: "operatorNamespace" },
  { flag: "lease-duration", env: "LEASE_DURATION", key: "leaseDuration" },
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

export function usage(): string {
  return [
    "Usage: wa-operator [flags]",
    "",
    "Runs the wa-operator controllers against the cluster of KUBECONFIG (or in-cluster config).",
    "Every flag can also be set by the environment variable in brackets.",
    "",
    ...SETTINGS.map((setting) => `  --${setting.flag.padEnd(26)} [${setting.env}]`),
  ].join("\n");
}
