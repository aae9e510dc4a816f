/**
 * Runs the chaos scenarios in order on one control plane of their own and adds the two
 * figures that span them all: secret hits (5) and repeated restarts (6). Used by
 * bench/chaos.ts (figures for people) and test/integration/chaos.test.ts (checks in CI).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { requestedRestarts, secretHits, type Credential } from "./figures.ts";
import { ChaosCluster } from "./harness.ts";
import { placementScenario, type PlacementConfig } from "./placement.ts";
import {
  apiServerScenario,
  electionScenario,
  faultsScenario,
  killsScenario,
  pauseScenario,
  type ApiServerConfig,
  type ChaosContext,
  type ElectionConfig,
  type FaultsConfig,
  type Figure,
  type KillsConfig,
  type PauseConfig,
  type ScenarioReport,
} from "./scenarios.ts";

export interface ChaosConfig {
  readonly kills: KillsConfig;
  readonly election: ElectionConfig;
  readonly faults: FaultsConfig;
  readonly apiServer: ApiServerConfig;
  readonly pause: PauseConfig;
  readonly placement: PlacementConfig;
  /** Extra flags for every operator process. */
  readonly operatorArgs: readonly string[];
}

export const SCENARIOS = ["kills", "election", "faults", "apiserver", "pause", "placement"] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** The sizes issue 11 names ("Done means"). */
export const DEFAULT_CONFIG: ChaosConfig = {
  kills: { instances: 300, kills: 15, deleteKills: 3, restartShare: 0.25, gapMs: [2000, 6000], timeoutMs: 15 * 60_000 },
  election: { instances: 30, leaseDuration: "15s", pauseMs: 25_000, blackholeMs: 30_000, toggleEveryMs: 400, restartShare: 0.3, timeoutMs: 5 * 60_000 },
  faults: {
    instances: 200,
    scan: 100,
    serverErrors: 0.3,
    hangs: 0.1,
    malformed: 0.02,
    oversized: 0.01,
    bursts: { everyMs: 30_000, lengthMs: 5_000 },
    rateLimit: { requestsPerSecond: 50, burst: 50 },
    providerTimeoutMs: 10_000,
    scanQrLimitMs: 180_000,
    connectedLimitMs: 120_000,
    waitMs: 15 * 60_000,
    graceMs: 500,
  },
  apiServer: { instances: 20, downMs: 30_000, pauseMs: 30_000, timeoutMs: 10 * 60_000 },
  // Issue 17: 32 instances on a provider answering 429 Retry-After: 86400 held every worker for a day.
  pause: { instances: 32, retryAfters: ["86400", "1e10"], concurrency: 32, scanQrLimitMs: 30_000, waitMs: 3 * 60_000, graceMs: 500 },
  // Issue 19: more selector instances than the fleet holds, the leader SIGKILLed while it places them.
  placement: { instances: 32, capacity: 10, maxConcurrentStarts: 3, leaseDuration: "5s", timeoutMs: 3 * 60_000 },
  operatorArgs: [],
};

/** `--small`: the same scenarios in a few minutes. */
export const SMALL_CONFIG: ChaosConfig = {
  kills: { ...DEFAULT_CONFIG.kills, instances: 30, kills: 4, deleteKills: 1, gapMs: [1500, 4000], timeoutMs: 5 * 60_000 },
  election: { ...DEFAULT_CONFIG.election, instances: 12, leaseDuration: "5s", pauseMs: 9000, blackholeMs: 10_000, timeoutMs: 3 * 60_000 },
  faults: { ...DEFAULT_CONFIG.faults, instances: 30, scan: 10, bursts: { everyMs: 15_000, lengthMs: 3000 }, waitMs: 5 * 60_000 },
  apiServer: { ...DEFAULT_CONFIG.apiServer, instances: 5, downMs: 10_000, pauseMs: 10_000, timeoutMs: 3 * 60_000 },
  pause: { ...DEFAULT_CONFIG.pause, instances: 8, concurrency: 4 },
  placement: DEFAULT_CONFIG.placement,
  operatorArgs: [],
};

export interface ChaosRun {
  /** Each scenario's figures, in order (a scenario that broke off has one failed figure saying why). */
  readonly reports: { title: string; figures: Figure[] }[];
  /** The figures spanning every scenario: secret hits and repeated restarts. */
  readonly overall: { title: string; figures: Figure[] }[];
  /** Every failed check, as "scenario: figure (value, must …)". */
  readonly failures: string[];
  /** The failed checks that are not performance targets: what CI asserts. */
  readonly correctnessFailures: string[];
}

export interface RunOptions {
  readonly config: ChaosConfig;
  readonly only?: readonly ScenarioName[];
  readonly binDir: string;
  /** Working directory: the control plane, operator logs and kubeconfigs go under it. */
  readonly dir: string;
  readonly log: (message: string) => void;
  /** Called with each scenario's report as soon as it is done. */
  readonly onReport?: (report: { title: string; figures: Figure[] }) => void;
}

export async function runChaos(options: RunOptions): Promise<ChaosRun> {
  const { config, log } = options;
  const logs = path.join(options.dir, "operators");
  mkdirSync(logs, { recursive: true });
  log("starting a control plane of its own");
  const cluster = await ChaosCluster.start({ binDir: options.binDir, dir: path.join(options.dir, "control-plane"), log: () => undefined });
  const ctx: ChaosContext = { cluster, dir: logs, log, operatorArgs: config.operatorArgs };
  const wanted = new Set(options.only ?? SCENARIOS);
  const reports: ScenarioReport[] = [];
  const failed: { title: string; figures: Figure[] }[] = [];
  const scenarios: [ScenarioName, string, () => Promise<ScenarioReport>][] = [
    ["kills", "1. SIGKILLs during convergence", () => killsScenario(ctx, config.kills)],
    ["election", "2. leader election", () => electionScenario(ctx, config.election)],
    ["faults", "3. provider faults", () => faultsScenario(ctx, config.faults)],
    ["apiserver", "4. API server faults", () => apiServerScenario(ctx, config.apiServer)],
    ["pause", "7. providers paused for a day and for ever", () => pauseScenario(ctx, config.pause)],
    ["placement", "8. selector placement with the leader SIGKILLed", () => placementScenario(ctx, config.placement)],
  ];
  try {
    for (const [name, title, scenario] of scenarios) {
      if (!wanted.has(name)) continue;
      log(`scenario ${title}`);
      const startedAt = Date.now();
      try {
        const report = await scenario();
        // Every provider request of the scenario, for a closer look (bench/chaos.ts --keep).
        writeFileSync(path.join(options.dir, `calls-${name}.jsonl`), report.calls.map((call) => JSON.stringify(call)).join("\n"));
        report.figures.push({ name: "scenario wall time", value: `${((Date.now() - startedAt) / 1000).toFixed(0)} s` });
        reports.push(report);
        options.onReport?.(report);
      } catch (error) {
        const report: { title: string; figures: Figure[] } = { title, figures: [{ name: "scenario ran to the end", value: error instanceof Error ? error.message : String(error), must: "yes", ok: false }] };
        failed.push(report);
        options.onReport?.(report);
      }
    }
  } finally {
    await cluster.stop();
  }

  const credentials = dedupe(reports.flatMap((report) => report.credentials));
  const haystacks = reports.flatMap((report) => [...report.haystacks, ...report.fleet.haystacks()]);
  const hits = secretHits(haystacks, credentials);
  const kinds = [...new Set(credentials.map((credential) => credential.kind))];
  const secrets: { title: string; figures: Figure[] } = {
    title: "5. credentials in logs, statuses and Events",
    figures: [
      { name: "credentials searched", value: kinds.map((kind) => `${credentials.filter((credential) => credential.kind === kind).length} ${kind}`).join(", ") },
      { name: "texts searched", value: `${haystacks.length} (${(haystacks.reduce((sum, haystack) => sum + haystack.text.length, 0) / 1e6).toFixed(1)} MB)` },
      { name: "secret hits", value: String(hits.reduce((sum, hit) => sum + hit.count, 0)), must: "= 0", ok: hits.length === 0 },
      ...hits.map((hit) => ({ name: `  ${hit.kind} in ${hit.where}`, value: String(hit.count) })),
    ],
  };
  const restartReports = reports.filter((report) => report.title.startsWith("1.") || report.title.startsWith("2."));
  const repeated = restartReports.flatMap((report) => requestedRestarts(report.calls).repeated);
  const restarts: { title: string; figures: Figure[] } = {
    title: "6. restarts across kills",
    figures: [
      { name: "requested restarts carried out", value: String(restartReports.reduce((sum, report) => sum + requestedRestarts(report.calls).carriedOut, 0)) },
      { name: "repeated restarts (a restartRequestedAt value restarted twice)", value: String(repeated.length), must: "= 0", ok: repeated.length === 0 },
      ...repeated.map((entry) => ({ name: `  ${entry.session}`, value: `${entry.times} times` })),
    ],
  };
  const overall = [...(reports.length > 0 ? [secrets] : []), ...(restartReports.length > 0 ? [restarts] : [])];
  for (const report of overall) options.onReport?.(report);
  const all = [...reports, ...failed, ...overall];
  const describe = (title: string, figure: Figure) => `${title}: ${figure.name.trim()} (${figure.value}; must be ${figure.must})`;
  const failures = all.flatMap((report) => report.figures.filter((figure) => figure.ok === false).map((figure) => describe(report.title, figure)));
  const correctnessFailures = all.flatMap((report) =>
    report.figures.filter((figure) => figure.ok === false && !figure.target).map((figure) => describe(report.title, figure)),
  );
  return { reports: [...reports, ...failed], overall, failures, correctnessFailures };
}

function dedupe(credentials: readonly Credential[]): Credential[] {
  const seen = new Map<string, Credential>();
  for (const credential of credentials) seen.set(credential.value, credential);
  return [...seen.values()];
}

/** One scenario as a plain-text table: figure, value, what it must be, and ok/FAIL for checks. */
export function formatReport(report: { title: string; figures: readonly Figure[] }): string {
  const rows = report.figures.map((figure) => [figure.name, figure.value, figure.must ?? "", figure.ok === undefined ? "" : figure.ok ? "ok" : figure.target ? "MISSED" : "FAIL"]);
  const widths = [0, 1, 2, 3].map((column) => Math.max(...rows.map((row) => (row[column] as string).length), ["figure", "value", "must", ""][column]?.length ?? 0));
  const line = (cells: readonly string[]) => cells.map((cell, column) => cell.padEnd(widths[column] as number)).join("  ").trimEnd();
  return [report.title, line(["figure", "value", "must", ""]), line(widths.map((width) => "-".repeat(width))), ...rows.map(line)].join("\n");
}
