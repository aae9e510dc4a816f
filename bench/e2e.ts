/**
 * `npm run bench:e2e` (node bench/e2e.ts): wa-operator end to end, against a bare loop.
 *
 * Starts a throwaway local control plane, installs the CRDs, runs an instant WAHA emulator
 * in this process and the operator as its own process (so /proc tells its CPU and memory),
 * then:
 *   B  bare loop (operator not running): N instances applied at once, each taken to ScanQR
 *      with only the unavoidable writes (bench/e2e/bare-loop.ts) → T_bare, requests per instance
 *   A  operator: N instances applied at once → every one ScanQR with qr.png in <name>-qr → T_operator
 *   D  the phone scans all N → Connected; then an idle window: API-server writes and reads per
 *      second, provider calls per instance per poll interval, operator CPU and RSS
 *   C  a burst of 100 more: apply → QR Secret, p50 / p99
 *   R  the operator restarted with every instance in place → caches synced (/readyz)
 * and prints one markdown table (JSON in .local/bench-e2e.json). Everything runs on
 * loopback, every wait has a deadline, and every process it starts is stopped at the end,
 * on failure and on Ctrl-C.
 *
 *   node bench/e2e.ts [--n 2000] [--idle 120] [--burst 100] [--skip-bare] [--skip-idle] [--skip-burst] [--skip-restart] ...
 *
 * With `--provider evolution` it runs instead
 *   E  operator: N instances applied at once on an Evolution emulator → every one ScanQR with
 *      qr.png in <name>-qr, with the same figures as A (no bare loop: it speaks WAHA only).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { parse } from "yaml";
import { resolveBinDir, startControlPlane, type ControlPlane } from "../hack/control-plane/cluster.ts";
import { matchTemplate } from "../test/emulators/shared/http.ts";
import { EvolutionEmulator } from "../test/emulators/evolution/emulator.ts";
import { WahaEmulator } from "../test/emulators/waha/emulator.ts";
import {
  apiserverRequests,
  describeByResource,
  describeByVerb,
  describeCounts,
  difference,
  filterTally,
  busiestSecond,
  fixed,
  isWrite,
  markdownTable,
  percentile,
  total,
  type RequestKind,
  type RequestTally,
} from "./e2e/figures.ts";
import { BenchKube } from "./e2e/kube.ts";
import { bundleOperator } from "../scripts/bundle-operator.ts";
import { BareLoopProcess, chartMemoryLimitBytes, OperatorProcess, type ProcessSample } from "./e2e/processes.ts";
import { connectedAndCleared, inScanQrWithCode, INSTANCES_PATH, NamespaceView, SECRETS_PATH } from "./e2e/view.ts";

const REPO = path.resolve(import.meta.dirname, "..");

const { values: flags } = parseArgs({
  options: {
    n: { type: "string", default: "2000" },
    idle: { type: "string", default: "120" },
    burst: { type: "string", default: "100" },
    concurrency: { type: "string", default: "32" },
    "apply-concurrency": { type: "string", default: "16" },
    settle: { type: "string", default: "5" },
    "phase-timeout": { type: "string" },
    "log-level": { type: "string", default: "info" },
    json: { type: "string", default: path.join(REPO, ".local", "bench-e2e.json") },
    "skip-bare": { type: "boolean", default: false },
    "skip-idle": { type: "boolean", default: false },
    "skip-burst": { type: "boolean", default: false },
    provider: { type: "string", default: "waha" },
    "memory-limit": { type: "string", default: "chart" },
    "skip-restart": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});

if (flags.help) {
  console.log(`Usage: npm run bench:e2e -- [flags]
  --n N                  instances applied at once in phases A and B (default 2000; 200 for a quick look)
  --idle SECONDS         idle window with N Connected (default 120)
  --burst N              instances of the apply → QR latency burst (default 100)
  --concurrency N        the operator's CONCURRENCY, and the bare loop's workers (default 32, the operator's default)
  --apply-concurrency N  creates in flight while applying (default 16, same in every phase)
  --settle SECONDS       wait after all are Connected before the idle window opens (default 5)
  --phase-timeout S      give up waiting in a phase after S seconds (default 120 + N/5)
  --log-level LEVEL      the operator's LOG_LEVEL (default info); its log: .local/bench-e2e-operator.log
  --json FILE            where the figures go (default .local/bench-e2e.json)
  --skip-bare | --skip-idle | --skip-burst | --skip-restart
  --memory-limit M       the operator's memory limit, as a cgroup: "chart" (default: the chart's resources.limits.memory,
                         which Node sizes its heap from in a Pod), bytes, or "none"; without root or a cgroup tree: none
  --provider P           waha (default: phases B, A, D, C) or evolution (phase E only: N instances on the Evolution emulator)`);
  process.exit(0);
}

/** What the report says of the operator's memory limit, once it runs. */
let memoryNote = "no memory limit";

/** The operator's memory limit in bytes (--memory-limit), undefined for none. */
const MEMORY_LIMIT = flags["memory-limit"] === "none" ? undefined : flags["memory-limit"] === "chart" ? chartMemoryLimitBytes() : Number(flags["memory-limit"]);

const positive = (name: string, text: string | undefined): number => {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`--${name} must be a positive number (got ${text})`);
    process.exit(2);
  }
  return value;
};
const N = Math.round(positive("n", flags.n));
const IDLE_S = positive("idle", flags.idle);
const BURST = Math.round(positive("burst", flags.burst));
const CONCURRENCY = Math.round(positive("concurrency", flags.concurrency));
const APPLY_CONCURRENCY = Math.round(positive("apply-concurrency", flags["apply-concurrency"]));
const SETTLE_S = Number(flags.settle) >= 0 ? Number(flags.settle) : 5;
if (flags.provider !== "waha" && flags.provider !== "evolution") {
  console.error(`--provider must be waha or evolution (got ${flags.provider})`);
  process.exit(2);
}
const PHASE_TIMEOUT_MS = (flags["phase-timeout"] ? positive("phase-timeout", flags["phase-timeout"]) : 120 + N / 5) * 1000;

/** The provider's pollInterval: idle provider calls are counted per this interval. */
const POLL_INTERVAL_S = 30;
const EMULATOR_START_DELAY_MS = 0;
/** The provider's maxConcurrentStarts: its CRD maximum, as for a gateway that boots sessions at once. */
const MAX_CONCURRENT_STARTS = 1000;
const API_KEY = "bench-key";
const NS = { operator: "bench-operator", burst: "bench-burst", bare: "bench-bare" } as const;

// ---- cleanup, whatever happens -------------------------------------------------------------

const cleanups: (() => Promise<void> | void)[] = [];
let shuttingDown = false;

async function shutdown(code: number): Promise<never> {
  if (!shuttingDown) {
    shuttingDown = true;
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (error) {
        console.error(`cleanup: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
  process.exit(code);
}

const interrupted = (code: number) => () => {
  console.error("\ninterrupted: stopping the operator, the emulator and the control plane");
  publish("interrupted: the figures so far");
  void shutdown(code);
};
process.on("SIGINT", interrupted(130));
process.on("SIGTERM", interrupted(143));

const say = (message: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${message}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const loadAverage = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

/** What the operator may request (LEADER_ELECTION is off, so its Lease is not among them). */
const OPERATOR_RESOURCES = (kind: RequestKind) =>
  kind.verb !== "WATCH" && (kind.group === "wa-operator.io" || (kind.group === "" && ["secrets", "events"].includes(kind.resource)) || kind.group === "events.k8s.io");

// ---- set-up --------------------------------------------------------------------------------

interface Setup {
  readonly cp: ControlPlane;
  /** The install's ServiceAccount with a bound token: what the operator and the bare loop run as. */
  readonly workerKubeconfig: string;
  readonly driver: BenchKube;
  readonly waha: WahaEmulator;
  readonly kubectl: (args: string[]) => string;
}

const DIR_PREFIX = "wa-bench-e2e-";

/**
 * The operator (and the bare loop) run as a Pod of the install would: the ServiceAccount and
 * RBAC of manifests/, with a bound token, so the API server authenticates and authorizes
 * them as in a cluster (a token, cached once verified; not an admin client certificate,
 * whose chain it verifies on every request).
 */
function serviceAccountKubeconfig(dir: string, adminKubeconfig: string, kubectl: (args: string[]) => string): string {
  const files = ["namespace", "service-account", "cluster-role", "leader-election-role"].flatMap((name) => ["-f", `manifests/${name}.yaml`]);
  kubectl(["apply", "-n", OPERATOR_NAMESPACE, ...files]);
  const token = kubectl(["create", "token", SERVICE_ACCOUNT, "-n", OPERATOR_NAMESPACE, "--duration=12h"]).trim();
  const admin = parse(readFileSync(adminKubeconfig, "utf8")) as { clusters: { cluster: { server: string; "certificate-authority-data": string } }[] };
  const cluster = admin.clusters[0]?.cluster;
  if (!cluster) throw new Error(`${adminKubeconfig}: no cluster`);
  const file = path.join(dir, "wa-operator.kubeconfig");
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "bench", cluster }],
    users: [{ name: SERVICE_ACCOUNT, user: { token } }],
    contexts: [{ name: SERVICE_ACCOUNT, context: { cluster: "bench", user: SERVICE_ACCOUNT, namespace: OPERATOR_NAMESPACE } }],
    "current-context": SERVICE_ACCOUNT,
  };
  writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
  return file;
}

/** kube-controller-manager's garbage collector resyncs its resources this often (its Sync period), plus margin. */
const GC_REDISCOVERY_MS = 35_000;

const OPERATOR_NAMESPACE = "wa-operator-system";
const SERVICE_ACCOUNT = "wa-operator";

/** Removes the control-plane dirs of earlier runs that were killed before they could (their owner is gone). */
function sweepOrphanedDirs(): void {
  for (const name of readdirSync(os.tmpdir()).filter((entry) => entry.startsWith(DIR_PREFIX))) {
    const dir = path.join(os.tmpdir(), name);
    try {
      process.kill(Number(readFileSync(path.join(dir, "owner.pid"), "utf8")), 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ESRCH") rmSync(dir, { recursive: true, force: true });
    }
  }
}

async function setUp(): Promise<Setup> {
  const binDir = await resolveBinDir({ quiet: true });
  sweepOrphanedDirs();
  const dir = mkdtempSync(path.join(os.tmpdir(), DIR_PREFIX));
  writeFileSync(path.join(dir, "owner.pid"), String(process.pid));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  say("starting the local control plane");
  const cp = await startControlPlane({ dir, binDir });
  cleanups.push(() => cp.stop());
  const kubectl = (args: string[]) =>
    execFileSync(path.join(binDir, "kubectl"), args, { cwd: REPO, encoding: "utf8", env: { ...process.env, KUBECONFIG: cp.kubeconfigPath } });
  kubectl(["apply", "-f", "crds"]);
  kubectl(["wait", "--for=condition=Established", "--timeout=60s", "-f", "crds"]);
  const crdsEstablishedAt = Date.now();
  const workerKubeconfig = serviceAccountKubeconfig(dir, cp.kubeconfigPath, kubectl);

  const driver = new BenchKube(cp.kubeconfigPath, { maxSockets: APPLY_CONCURRENCY + 8 });
  cleanups.push(() => driver.close());
  const waha = new WahaEmulator({
    apiKey: API_KEY,
    startDelayMs: EMULATOR_START_DELAY_MS,
    // Codes rotate as WAHA's do (60 s, then every 20 s), but the series never runs out during
    // the run: an instance left unscanned for minutes must not turn FAILED under the benchmark.
    qr: { maxCodes: 1_000_000 },
  });
  const wahaUrl = await waha.start();
  cleanups.push(() => waha.stop());

  for (const namespace of Object.values(NS)) {
    await driver.request("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
  }
  for (const namespace of [NS.operator, NS.burst]) {
    await driver.request("POST", SECRETS_PATH(namespace), { apiVersion: "v1", kind: "Secret", metadata: { name: "waha-api-key", labels: { "wa-operator.io/credential": "true" } }, stringData: { "api-key": API_KEY } });
    await driver.request("POST", `/apis/wa-operator.io/v1alpha1/namespaces/${namespace}/whatsappproviders`, {
      apiVersion: "wa-operator.io/v1alpha1",
      kind: "WhatsAppProvider",
      metadata: { name: "waha" },
      spec: {
        type: "waha",
        url: wahaUrl,
        credentialsSecretRef: { name: "waha-api-key", key: "api-key" },
        pollInterval: `${POLL_INTERVAL_S}s`,
        // As someone running thousands of numbers on one WAHA would set it: the default 10/s would
        // be the whole story of the figures otherwise.
        rateLimit: { requestsPerSecond: 10_000, burst: 10_000 },
        // The emulator starts a session at once and the bare loop starts them all: the default
        // of 10 starts at a time (for a real gateway's boot) would be the figures' whole story.
        maxConcurrentStarts: MAX_CONCURRENT_STARTS,
      },
    });
  }
  // kube-controller-manager's garbage collector rediscovers resources every 30 s. An owner
  // reference to a kind it does not watch yet is checked with a GET per dependent, thousands
  // of them here, through the whole run. In a cluster the CRDs are there long before the
  // instances: wait for the rediscovery, as they would have.
  const gcRediscovery = crdsEstablishedAt + GC_REDISCOVERY_MS - Date.now();
  if (gcRediscovery > 0) {
    say(`waiting ${Math.ceil(gcRediscovery / 1000)} s for the garbage collector to watch the new kinds`);
    await sleep(gcRediscovery);
  }
  return { cp, workerKubeconfig, driver, waha, kubectl };
}

async function waitForProvidersReady(driver: BenchKube): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (const namespace of [NS.operator, NS.burst]) {
    for (;;) {
      const provider = await driver.exists(`/apis/wa-operator.io/v1alpha1/namespaces/${namespace}/whatsappproviders/waha`);
      if (provider?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")) break;
      if (Date.now() > deadline) throw new Error(`provider ${namespace}/waha did not become Ready within 60 s`);
      await sleep(250);
    }
  }
}

// ---- applying instances ---------------------------------------------------------------------

const instanceNames = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}-${String(i + 1).padStart(5, "0")}`);

/** Creates the instances, `APPLY_CONCURRENCY` at a time; returns when each create was sent. */
async function createInstances(driver: BenchKube, namespace: string, names: readonly string[], provider = "waha"): Promise<Map<string, number>> {
  const sentAt = new Map<string, number>();
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const name = names[next++] as string;
      sentAt.set(name, Date.now());
      await driver.request("POST", INSTANCES_PATH(namespace), {
        apiVersion: "wa-operator.io/v1alpha1",
        kind: "WhatsAppInstance",
        metadata: { name },
        spec: { providerRef: { name: provider } },
      });
    }
  };
  await Promise.all(Array.from({ length: APPLY_CONCURRENCY }, worker));
  return sentAt;
}

interface ApplyFigures {
  readonly n: number;
  readonly complete: boolean;
  readonly reached: number;
  readonly phasesAtEnd: Record<string, number>;
  readonly seconds: number;
  /** How long the creates took: a floor under `seconds`, the same work in every phase. */
  readonly applySeconds: number;
  readonly firstSeconds: number;
  readonly medianSeconds: number;
  /** apply → QR Secret per instance, from its own create. */
  readonly latency: { p50: number; p99: number; max: number };
  /** Attributed requests (the operator's resources, minus what the driver sent), and those per instance. */
  readonly requests: RequestTally;
  readonly providerCalls: Map<string, number>;
  /** CPU time of the process doing the work (the operator, or the bare loop) meanwhile, and its memory after. */
  readonly workerCpuSeconds: number;
  readonly workerAfter: ProcessSample;
  /** CPU this process (driver, watches, emulator) used meanwhile. */
  readonly benchmarkCpuSeconds: number;
  readonly loadAverage: { start: string; end: string };
  /** When the worker had sent everything the phase asked of it (the operator's Events trail its writes), from the start. */
  readonly settledSeconds?: number;
  /** Events still queued when the wait for them ended (0: all sent). */
  readonly unsentEvents?: number;
}

interface Measured {
  readonly requests: RequestTally;
  readonly providerCalls: Map<string, number>;
}

/**
 * Counts what happens at the provider while `work` runs, and on the API server until the
 * worker has also sent what trails the work (`settle`: the operator's queued Events).
 */
async function measure<T>(setup: Setup, work: () => Promise<T>, settle?: () => Promise<void>): Promise<{ result: T } & Measured> {
  const before = apiserverRequests(await setup.driver.metrics());
  const sentBefore = new Map(setup.driver.sent);
  const callsBefore = setup.waha.calls.length;
  const result = await work();
  const providerCalls = providerCallCounts(setup.waha, callsBefore);
  await settle?.();
  const after = apiserverRequests(await setup.driver.metrics());
  const bySelf = difference(setup.driver.sent, sentBefore);
  const requests = filterTally(difference(difference(after, before), bySelf), OPERATOR_RESOURCES);
  return { result, requests, providerCalls };
}

/** Provider calls since `from`, by the emulator's route template ("GET /api/sessions/{session}"). */
function providerCallCounts(waha: WahaEmulator, from: number): Map<string, number> {
  const routes = [...waha.routes()].sort((a, b) => a.template.split("{").length - b.template.split("{").length);
  const counts = new Map<string, number>();
  for (const call of waha.calls.slice(from)) {
    const route = routes.find((r) => r.method === call.method && matchTemplate(r.template, call.path));
    const label = `${call.method} ${route?.template ?? call.path}`;
    counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  return counts;
}

async function applyPhase(
  setup: Setup,
  options: { namespace: string; names: readonly string[]; view: NamespaceView; worker: { sample(): ProcessSample; settle?(): Promise<number> }; provider?: string },
): Promise<ApplyFigures> {
  const load = loadAverage();
  const cpuBefore = options.worker.sample().cpuSeconds;
  const ownCpuBefore = process.cpuUsage();
  let start = 0;
  let settledAt: number | undefined;
  let unsent = 0;
  const settle = options.worker.settle?.bind(options.worker);
  const measured = await measure(
    setup,
    async () => {
      start = Date.now();
      const waiting = options.view.waitUntil(options.names, inScanQrWithCode, start + PHASE_TIMEOUT_MS);
      const sentAt = await createInstances(setup.driver, options.namespace, options.names, options.provider);
      const applied = Date.now();
      const reached = await waiting;
      // The work's own cost: what follows (pairing looks while Events drain) is not the path.
      return { sentAt, applied, ...reached, end: Date.now(), workerAfter: options.worker.sample(), ownCpu: process.cpuUsage(ownCpuBefore) };
    },
    settle
      ? async () => {
          unsent = await settle();
          settledAt = Date.now();
        }
      : undefined,
  );
  const { sentAt, applied, reachedAt, complete, end, workerAfter, ownCpu } = measured.result;
  const sinceStart = [...reachedAt.values()].map((t) => (t - start) / 1000);
  const latencies = [...reachedAt].map(([name, t]) => (t - (sentAt.get(name) ?? start)) / 1000);
  return {
    benchmarkCpuSeconds: (ownCpu.user + ownCpu.system) / 1e6,
    n: options.names.length,
    complete,
    reached: reachedAt.size,
    phasesAtEnd: options.view.phaseCounts(options.names),
    seconds: (end - start) / 1000,
    applySeconds: (applied - start) / 1000,
    firstSeconds: Math.min(...sinceStart),
    medianSeconds: percentile(sinceStart, 50),
    latency: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: Math.max(...latencies) },
    requests: measured.requests,
    providerCalls: measured.providerCalls,
    workerCpuSeconds: workerAfter.cpuSeconds - cpuBefore,
    workerAfter,
    loadAverage: { start: load, end: loadAverage() },
    ...(settledAt !== undefined ? { settledSeconds: (settledAt - start) / 1000, unsentEvents: unsent } : {}),
  };
}

// ---- phases --------------------------------------------------------------------------------

interface BareFigures extends ApplyFigures {
  /** What the bare loop's own client counted: the check that the server-side attribution is right. */
  readonly sentByLoop: number;
  readonly failures: string[];
}

async function bareLoopPhase(setup: Setup): Promise<BareFigures> {
  say(`B: bare loop, ${N} instances applied at once (operator not running)`);
  const view = new NamespaceView(NS.bare);
  await view.start(setup.driver, (error) => say(`watch failed: ${String(error)}`));
  const loop = await BareLoopProcess.start({
    kubeconfig: setup.workerKubeconfig,
    namespace: NS.bare,
    wahaUrl: setup.waha.url,
    apiKey: API_KEY,
    concurrency: CONCURRENCY,
  });
  cleanups.push(async () => void (await loop.stop()));
  try {
    const figures = await applyPhase(setup, { namespace: NS.bare, names: instanceNames("bare", N), view, worker: loop });
    const { sent, failures } = await loop.stop();
    return { ...figures, sentByLoop: total(filterTally(sent, OPERATOR_RESOURCES)), failures };
  } finally {
    view.stop();
  }
}

interface ConnectFigures {
  readonly scanned: number;
  readonly complete: boolean;
  readonly reached: number;
  readonly seconds: { p50: number; p99: number; max: number };
}

interface IdleFigures {
  readonly seconds: number;
  readonly instances: number;
  readonly connectedAtStart: number;
  readonly requests: RequestTally;
  readonly writesPerSecond: number;
  readonly readsPerSecond: number;
  readonly providerCalls: Map<string, number>;
  readonly providerCallsPerInstancePerPoll: number;
  /** The most provider calls in one second of the window: N / pollInterval when the polls are spread evenly. */
  readonly busiestSecond: number;
  readonly cpuPercent: number;
  readonly rss: { start: number; end: number; peak: number; samples: number[] };
  readonly notConnectedAtEnd: number;
  readonly loadAverage: { start: string; end: string };
}

async function connectAndIdlePhase(
  setup: Setup,
  operator: OperatorProcess,
  view: NamespaceView,
  names: readonly string[],
  options: { sessions: ReadonlySet<string>; inScanQr: readonly string[] },
): Promise<{ connect: ConnectFigures; idle: IdleFigures }> {
  const waiting = setup.waha.sessions().filter((s) => s.status === "SCAN_QR_CODE" && options.sessions.has(s.name));
  say(`D: the phone scans ${waiting.length} codes; waiting for Connected`);
  const scannedAt = Date.now();
  waiting.forEach((s, i) => setup.waha.scan(s.name, `5511${String(900_000_000 + i)}`));
  // Only those that showed a code in phase A can get there (all of them unless it timed out).
  const { reachedAt, complete } = await view.waitUntil(options.inScanQr, connectedAndCleared, scannedAt + PHASE_TIMEOUT_MS);
  const connectSeconds = [...reachedAt.values()].map((t) => (t - scannedAt) / 1000);
  const connect: ConnectFigures = {
    scanned: waiting.length,
    complete,
    reached: reachedAt.size,
    seconds: { p50: percentile(connectSeconds, 50), p99: percentile(connectSeconds, 99), max: Math.max(...connectSeconds) },
  };

  await sleep(SETTLE_S * 1000);
  const connected = names.filter((name) => view.view(name).phase === "Connected").length;
  say(`D: idle window, ${IDLE_S} s with ${connected} of ${names.length} Connected`);
  const load = loadAverage();
  const first = operator.sample();
  const rssSamples = [first.rssBytes];
  const callsBefore = setup.waha.calls.length;
  let idleStart = 0;
  const measured = await measure(setup, async () => {
    const start = Date.now();
    idleStart = start;
    const end = start + IDLE_S * 1000;
    while (Date.now() < end) {
      await sleep(Math.min(10_000, end - Date.now()));
      rssSamples.push(operator.sample().rssBytes);
    }
    return (Date.now() - start) / 1000;
  });
  const last = operator.sample();
  const seconds = measured.result;
  const writes = total(filterTally(measured.requests, (kind) => isWrite(kind.verb)));
  const reads = total(measured.requests) - writes;
  const calls = total(measured.providerCalls as Map<string, number>);
  return {
    connect,
    idle: {
      seconds,
      instances: names.length,
      connectedAtStart: connected,
      requests: measured.requests,
      writesPerSecond: writes / seconds,
      readsPerSecond: reads / seconds,
      providerCalls: measured.providerCalls,
      providerCallsPerInstancePerPoll: calls / names.length / (seconds / POLL_INTERVAL_S),
      busiestSecond: busiestSecond(
        setup.waha.calls.slice(callsBefore).map((call) => call.at),
        idleStart,
      ),
      cpuPercent: ((last.cpuSeconds - first.cpuSeconds) / seconds) * 100,
      rss: { start: first.rssBytes, end: last.rssBytes, peak: last.peakRssBytes, samples: rssSamples },
      notConnectedAtEnd: names.filter((name) => view.view(name).phase !== "Connected").length,
      loadAverage: { start: load, end: loadAverage() },
    },
  };
}

// ---- phase E: Evolution ------------------------------------------------------------------------

const EVOLUTION_NAMESPACE = "bench-evolution";
const EVOLUTION_KEY = "bench-evolution-key";

/**
 * E: the operator alone on an Evolution emulator (test/emulators/evolution), N instances
 * applied at once → ScanQR with the QR Secret; provider calls counted from its call log.
 */
async function evolutionPhase(setup: Setup): Promise<ApplyFigures> {
  // QR codes as Evolution issues them (45 s), the first at once, and no QR limit reached during the run.
  const evolution = new EvolutionEmulator({ globalKey: EVOLUTION_KEY, firstQrDelayMs: 0, qrLimit: 1_000_000 });
  const url = await evolution.start();
  cleanups.push(() => evolution.stop());
  const namespace = EVOLUTION_NAMESPACE;
  await setup.driver.request("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } });
  await setup.driver.request("POST", SECRETS_PATH(namespace), { apiVersion: "v1", kind: "Secret", metadata: { name: "evolution-api-key", labels: { "wa-operator.io/credential": "true" } }, stringData: { "api-key": EVOLUTION_KEY } });
  await setup.driver.request("POST", `/apis/wa-operator.io/v1alpha1/namespaces/${namespace}/whatsappproviders`, {
    apiVersion: "wa-operator.io/v1alpha1",
    kind: "WhatsAppProvider",
    metadata: { name: "evolution" },
    spec: { type: "evolution", url, credentialsSecretRef: { name: "evolution-api-key", key: "api-key" }, pollInterval: `${POLL_INTERVAL_S}s`, rateLimit: { requestsPerSecond: 10_000, burst: 10_000 }, maxConcurrentStarts: MAX_CONCURRENT_STARTS },
  });
  mkdirSync(path.join(REPO, ".local"), { recursive: true });
  say("bundling and starting the operator");
  const operator = await OperatorProcess.start({
    entry: await bundleOperator(),
    kubeconfig: setup.workerKubeconfig,
    namespaces: [namespace],
    concurrency: CONCURRENCY,
    logFile: path.join(REPO, ".local", "bench-e2e-operator.log"),
    logLevel: flags["log-level"] as string,
    ...(MEMORY_LIMIT ? { memoryLimitBytes: MEMORY_LIMIT } : {}),
  });
  cleanups.push(() => operator.stop());
  memoryNote = describeMemoryLimit(operator);
  const deadline = Date.now() + 60_000;
  while (!(await setup.driver.exists(`/apis/wa-operator.io/v1alpha1/namespaces/${namespace}/whatsappproviders/evolution`))?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")) {
    if (Date.now() > deadline) throw new Error(`provider ${namespace}/evolution did not become Ready within 60 s`);
    await sleep(250);
  }
  say(`E: operator, ${N} instances applied at once on Evolution`);
  const view = new NamespaceView(namespace);
  cleanups.push(() => view.stop());
  await view.start(setup.driver, (error) => say(`watch failed: ${String(error)}`));
  const callsBefore = evolution.calls.length;
  const figures = await applyPhase(setup, { namespace, names: instanceNames("evo", N), view, worker: operator, provider: "evolution" });
  return { ...figures, providerCalls: evolutionCallCounts(evolution.calls.slice(callsBefore)) };
}

/** Evolution calls by method and path, the instance name in a path shown as {name}. */
function evolutionCallCounts(calls: readonly { readonly method: string; readonly path: string }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const call of calls) {
    const label = `${call.method} ${call.path.replace(/^(\/[a-z]+\/[A-Za-z]+\/).+$/, "$1{name}")}`;
    counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  return counts;
}

/** The cgroup the operator runs in, as the report tells it. */
function describeMemoryLimit(operator: OperatorProcess): string {
  if (operator.cgroup) return `a memory limit of ${MB(operator.cgroup.limitBytes)} (a cgroup, as a Pod with the chart's resources.limits.memory has; Node sizes its heap from it)`;
  return MEMORY_LIMIT ? `no memory limit (no cgroup could be made here; the chart's Pod has ${MB(MEMORY_LIMIT)})` : "no memory limit (--memory-limit none)";
}

function evolutionReport(figures: ApplyFigures): string {
  const rows = [
    [`${N} instances applied at once on Evolution → every one in ScanQR with its QR Secret`, applyCell(figures)],
    ["apply → QR Secret per instance: p50 / p99 / max", `${secs(figures.latency.p50)} / ${secs(figures.latency.p99)} / ${secs(figures.latency.max)}`],
    ["API-server requests per instance on that path, by verb", describeByVerb(figures.requests, figures.n)],
    ["… by verb and resource", describeByResource(figures.requests, figures.n)],
    ["provider calls per instance on that path", describeCounts(figures.providerCalls, figures.n)],
    ["the operator: CPU on that path; RSS after it", workerCell(figures)],
  ];
  const notes = [
    `${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"}), Node ${process.version}, ${controlPlaneVersions}; git ${gitDescribe()}.`,
    "Evolution emulator (test/emulators/evolution) in the benchmark process: first QR at once, codes every 45 s, no QR limit reached, no webhooks.",
    `Provider: pollInterval ${POLL_INTERVAL_S}s, rateLimit 10000/s, maxConcurrentStarts ${MAX_CONCURRENT_STARTS}; operator: separate process with ${memoryNote}, CONCURRENCY ${CONCURRENCY}, LOG_LEVEL ${flags["log-level"]}; creates ${APPLY_CONCURRENCY} in flight.`,
  ];
  return `${markdownTable(["what", "wa-operator on Evolution"], rows)}\n\n${notes.map((note) => `- ${note}`).join("\n")}`;
}

// ---- report --------------------------------------------------------------------------------

interface Results {
  bare?: BareFigures;
  operator?: ApplyFigures;
  connect?: ConnectFigures;
  idle?: IdleFigures;
  burst?: ApplyFigures;
  /** Phase E (--provider evolution). */
  evolution?: ApplyFigures;
  /** The operator stopped and started again with every instance in place: until /readyz (caches synced). */
  restart?: { seconds: number; instances: number; after: ProcessSample };
}

const results: Results = {};
let published = false;
let controlPlaneVersions = "";

const MB = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MB`;
const secs = (value: number) => `${fixed(value)} s`;

function workerCell(figures: ApplyFigures | undefined): string {
  if (!figures) return "—";
  const cpu = `${fixed(figures.workerCpuSeconds)} CPU-s (${fixed((figures.workerCpuSeconds / figures.seconds) * 100)} % of a core)`;
  return `${cpu}; ${MB(figures.workerAfter.rssBytes)} (${MB(figures.workerAfter.peakRssBytes)})`;
}

function latencyCell(figures: ApplyFigures | undefined): string {
  if (!figures) return "—";
  const share = Math.round((figures.latency.p50 / figures.seconds) * 100);
  return `${secs(figures.latency.p50)} / ${secs(figures.latency.p99)} (${share} %)`;
}

function applyCell(figures: ApplyFigures | undefined): string {
  if (!figures) return "—";
  const reached = figures.complete ? "" : `; TIMED OUT: ${figures.reached}/${figures.n} reached (${JSON.stringify(figures.phasesAtEnd)})`;
  const settled =
    figures.settledSeconds === undefined
      ? ""
      : figures.unsentEvents
        ? `; ${figures.unsentEvents} of its Events still queued after ${secs(figures.settledSeconds)}`
        : `; its Events all sent after ${secs(figures.settledSeconds)}`;
  return `${secs(figures.seconds)} (first after ${secs(figures.firstSeconds)}, half after ${secs(figures.medianSeconds)}; the creates took ${secs(figures.applySeconds)}${settled})${reached}`;
}

function report(results: Results): string {
  const { bare, operator, connect, idle, burst } = results;
  const ratio = operator && bare ? `${fixed(operator.seconds / bare.seconds)}×` : "—";
  const rows: string[][] = [
    [`${N} instances applied at once → every one in ScanQR with its QR Secret`, applyCell(operator), applyCell(bare)],
    ["T_operator / T_bare", ratio, ""],
    [
      "API-server requests per instance on that path, by verb",
      operator ? describeByVerb(operator.requests, operator.n) : "—",
      bare ? describeByVerb(bare.requests, bare.n) : "—",
    ],
    [
      "… by verb and resource",
      operator ? describeByResource(operator.requests, operator.n) : "—",
      bare ? describeByResource(bare.requests, bare.n) : "—",
    ],
    [
      "provider calls per instance on that path",
      operator ? describeCounts(operator.providerCalls, operator.n) : "—",
      bare ? describeCounts(bare.providerCalls, bare.n) : "—",
    ],
    [
      "apply → QR Secret per instance in that burst: p50 / p99 (the median as a share of the burst)",
      latencyCell(operator),
      latencyCell(bare),
    ],
    ["its process: CPU on that path; RSS after it (high-water mark)", workerCell(operator), workerCell(bare)],
  ];
  if (connect) {
    rows.push([
      `scan → Connected (QR Secret emptied), ${connect.scanned} scanned at once: p50 / p99 / max`,
      `${secs(connect.seconds.p50)} / ${secs(connect.seconds.p99)} / ${secs(connect.seconds.max)}${connect.complete ? "" : `; TIMED OUT: ${connect.reached} reached`}`,
      "—",
    ]);
  }
  if (idle) {
    const writes = filterTally(idle.requests, (kind) => isWrite(kind.verb));
    const reads = filterTally(idle.requests, (kind) => !isWrite(kind.verb));
    const perSecond = idle.seconds;
    const connected = idle.connectedAtStart === idle.instances ? String(idle.instances) : `${idle.connectedAtStart} of ${idle.instances}`;
    rows.push(
      [`idle, ${connected} Connected, ${fixed(idle.seconds)} s: API-server writes by the operator`, `${fixed(idle.writesPerSecond)}/s (${describeByResource(writes, perSecond)})`, "0"],
      ["idle: API-server reads (GET, LIST)", `${fixed(idle.readsPerSecond)}/s (${describeByResource(reads, perSecond)})`, "—"],
      [
        `idle: provider calls per instance per poll interval (${POLL_INTERVAL_S} s)`,
        `${fixed(idle.providerCallsPerInstancePerPoll)} (${describeCounts(idle.providerCalls, idle.seconds)} per s)`,
        "—",
      ],
      [
        "idle: provider calls in the busiest second (all spread evenly would be N / poll interval)",
        `${idle.busiestSecond} (${fixed(idle.instances / POLL_INTERVAL_S)})`,
        "—",
      ],
      ["idle: operator CPU", `${fixed(idle.cpuPercent)} % of a core`, "—"],
      ["operator RSS at the start → end of the idle window (peak)", `${MB(idle.rss.start)} → ${MB(idle.rss.end)} (${MB(idle.rss.peak)})`, "—"],
    );
    if (idle.notConnectedAtEnd > 0) rows.push(["idle: instances not Connected at the end", String(idle.notConnectedAtEnd), "—"]);
  }
  if (burst) {
    rows.push([
      `apply → QR Secret, burst of ${burst.n} (${N} Connected alongside): p50 / p99 / max`,
      `${secs(burst.latency.p50)} / ${secs(burst.latency.p99)} / ${secs(burst.latency.max)}${burst.settledSeconds !== undefined ? ` (its Events all sent after ${secs(burst.settledSeconds)})` : ""}${burst.complete ? "" : `; TIMED OUT: ${burst.reached}/${burst.n}`}`,
      "—",
    ]);
  }
  if (results.restart) {
    const { restart } = results;
    rows.push([
      `restart → caches synced (/readyz), ${restart.instances} instances in place; RSS then`,
      `${secs(restart.seconds)}; ${MB(restart.after.rssBytes)} (${MB(restart.after.peakRssBytes)})`,
      "—",
    ]);
  }
  const notes = [
    `${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"}), Node ${process.version}, ${controlPlaneVersions}; git ${gitDescribe()}.`,
    `WAHA emulator (test/emulators/waha) in the benchmark process: start delay ${EMULATOR_START_DELAY_MS} ms, QR pairing, codes valid 60 s then 20 s (series not exhausted), no webhooks.`,
    `Provider: pollInterval ${POLL_INTERVAL_S}s, rateLimit 10000/s, maxConcurrentStarts ${MAX_CONCURRENT_STARTS}; operator: separate process with ${memoryNote}, bundled as for the image, CONCURRENCY ${CONCURRENCY}, leader election off, LOG_LEVEL ${flags["log-level"]}; bare loop: separate process, ${CONCURRENCY} workers, draws each QR PNG as the operator does; both run as the install's ServiceAccount (manifests/) with a bound token.`,
    `Applying: concurrent creates, ${APPLY_CONCURRENCY} in flight, the same in every phase; times run from the first create.`,
    "API-server requests: apiserver_request_total before/after each phase (its labels carry no user or user agent, so no identity filter), " +
      "for the operator's resources (wa-operator.io kinds, secrets, events), minus the requests this benchmark's own client sent; " +
      "WATCH left out (counted when a watch ends)." +
      (results.bare ? ` Check on the bare loop: it sent ${results.bare.sentByLoop}, the API server counted ${total(results.bare.requests)} after subtracting the benchmark's own` : "") +
      "; any excess is the control plane's garbage collector GETting owners its informer has not seen yet (a Secret with an owner reference created right after its instance), in both columns alike. " +
      "Every GET of whatsappinstances is the garbage collector's, the idle ones included: the ServiceAccount the operator runs as may not get them (only list and watch).",
    `Load average (1/5/15 min) at the start → end: ${[results.bare?.loadAverage.start, results.operator?.loadAverage.start].find(Boolean) ?? "?"} → ${loadAverage()} on ${os.cpus().length} CPUs.`,
  ];
  return `${markdownTable(["what", "wa-operator", "bare loop"], rows)}\n\n${notes.map((note) => `- ${note}`).join("\n")}`;
}

const tallyObject = (tally: ReadonlyMap<string, number>) => Object.fromEntries([...tally].sort(([a], [b]) => a.localeCompare(b)));

function toJson(results: Results): unknown {
  return JSON.parse(
    JSON.stringify(
      { settings: { n: N, idleSeconds: IDLE_S, burst: BURST, concurrency: CONCURRENCY, applyConcurrency: APPLY_CONCURRENCY, pollIntervalSeconds: POLL_INTERVAL_S, emulatorStartDelayMs: EMULATOR_START_DELAY_MS }, ...results },
      (_key, value: unknown) => (value instanceof Map ? tallyObject(value as Map<string, number>) : value),
    ),
  );
}

// ---- main ----------------------------------------------------------------------------------

async function main(): Promise<void> {
  say(`bench:e2e with N=${N}, idle ${IDLE_S} s, burst ${BURST}; load average ${loadAverage()}`);
  const setup = await setUp();
  controlPlaneVersions = `kube-apiserver ${setup.cp.version}, etcd ${setup.cp.etcdVersion}`;
  if (flags.provider === "evolution") {
    results.evolution = await evolutionPhase(setup);
    publish();
    return;
  }

  if (!flags["skip-bare"]) results.bare = await bareLoopPhase(setup);
  const sessionsBefore = new Set(setup.waha.sessions().map((s) => s.name));

  mkdirSync(path.join(REPO, ".local"), { recursive: true });
  say("bundling and starting the operator");
  const operatorSettings = {
    entry: await bundleOperator(),
    kubeconfig: setup.workerKubeconfig,
    namespaces: [NS.operator, NS.burst],
    concurrency: CONCURRENCY,
    logFile: path.join(REPO, ".local", "bench-e2e-operator.log"),
    logLevel: flags["log-level"] as string,
    ...(MEMORY_LIMIT ? { memoryLimitBytes: MEMORY_LIMIT } : {}),
  };
  const operator = await OperatorProcess.start(operatorSettings);
  cleanups.push(() => operator.stop());
  memoryNote = describeMemoryLimit(operator);
  await waitForProvidersReady(setup.driver);

  say(`A: operator, ${N} instances applied at once`);
  const view = new NamespaceView(NS.operator);
  cleanups.push(() => view.stop());
  await view.start(setup.driver, (error) => say(`watch failed: ${String(error)}`));
  const names = instanceNames("wa", N);
  results.operator = await applyPhase(setup, { namespace: NS.operator, names, view, worker: operator });
  say(`A: ${results.operator.reached}/${N} in ${fixed(results.operator.seconds)} s`);

  if (!flags["skip-idle"]) {
    const sessions = new Set(setup.waha.sessions().map((s) => s.name).filter((name) => !sessionsBefore.has(name)));
    const inScanQr = names.filter((name) => inScanQrWithCode(view.view(name)));
    Object.assign(results, await connectAndIdlePhase(setup, operator, view, names, { sessions, inScanQr }));
  }

  if (!flags["skip-burst"]) {
    say(`C: a burst of ${BURST}`);
    const burstView = new NamespaceView(NS.burst);
    cleanups.push(() => burstView.stop());
    await burstView.start(setup.driver, (error) => say(`watch failed: ${String(error)}`));
    results.burst = await applyPhase(setup, { namespace: NS.burst, names: instanceNames("burst", BURST), view: burstView, worker: operator });
  }

  if (!flags["skip-restart"]) {
    say("R: the operator restarted → caches synced");
    await operator.stop();
    const started = Date.now();
    const again = await OperatorProcess.start({ ...operatorSettings, logFile: path.join(REPO, ".local", "bench-e2e-operator-restart.log") });
    cleanups.push(() => again.stop());
    results.restart = { seconds: (Date.now() - started) / 1000, instances: N + (flags["skip-burst"] ? 0 : BURST), after: again.sample() };
  }

  publish();
}

/** Prints the table of whatever was measured and writes the JSON; at most once. */
function publish(heading?: string): void {
  if (published || Object.keys(results).length === 0) return;
  published = true;
  const table = results.evolution ? evolutionReport(results.evolution) : report(results);
  mkdirSync(path.dirname(flags.json as string), { recursive: true });
  writeFileSync(flags.json as string, `${JSON.stringify({ at: new Date().toISOString(), git: gitDescribe(), ...(toJson(results) as object), table }, null, 2)}\n`);
  if (heading) console.log(heading);
  console.log(table);
  say(`figures also in ${path.relative(process.cwd(), flags.json as string) || flags.json}`);
}

function gitDescribe(): string {
  try {
    return execFileSync("git", ["describe", "--always", "--dirty"], { cwd: REPO, encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

try {
  await main();
  await shutdown(0);
} catch (error) {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  await shutdown(1);
}

