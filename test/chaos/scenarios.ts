/**
 * The chaos scenarios of issue 11, each a function from a size to a list of figures.
 * A figure with `ok` is a check (`must` says what it must be); one without is a
 * measurement. Scenarios never throw for what they find: a wait that runs out becomes a
 * failed check, so one bad scenario still leaves the others' figures.
 */
import path from "node:path";
import { parseDuration } from "../../src/config.ts";
import { SECRETS, type KubeObject } from "../../src/kube/resources.ts";
import { OWNER_KEY, wahaSessionName } from "../../src/providers/waha/client.ts";
import {
  busiestWindow,
  duplicateSessions,
  isMutating,
  requestedRestarts,
  retryAfterViolations,
  sessionsCreatedTwice,
  spread,
  writerOverlaps,
  type Call,
  type Credential,
  type Haystack,
} from "./figures.ts";
import {
  createInstances,
  createNamespace,
  createProvider,
  credentialsIn,
  eventsIn,
  Fleet,
  freePort,
  longestEventMessage,
  patchInstance,
  sleep,
  startProvider,
  waitFor,
  watchInstances,
  watchProviders,
  type ChaosCluster,
  type InstanceWatch,
  type Provider,
  type Replica,
} from "./harness.ts";

export interface Figure {
  readonly name: string;
  readonly value: string;
  /** What a check requires, e.g. "= 0"; absent for a measurement. */
  readonly must?: string;
  readonly ok?: boolean;
  /**
   * A performance target of issue 11 (a time, a rate), not a correctness property: the bench
   * reports it, the CI test does not assert it (tests never assert timings).
   */
  readonly target?: boolean;
}

export interface ScenarioReport {
  readonly title: string;
  readonly figures: Figure[];
  /** Texts that must hold no credential: statuses and Events (logs come from `fleet`). */
  readonly haystacks: Haystack[];
  readonly credentials: Credential[];
  readonly calls: readonly Call[];
  readonly fleet: Fleet;
}

export interface ChaosContext {
  readonly cluster: ChaosCluster;
  /** Where logs and kubeconfigs of this run go. */
  readonly dir: string;
  readonly log: (message: string) => void;
  /** Extra flags for every operator process (CI uses shorter intervals). */
  readonly operatorArgs: readonly string[];
}

// ---------------------------------------------------------------- small helpers

export const seconds = (ms: number | undefined) => (ms === undefined ? "–" : `${(ms / 1000).toFixed(1)} s`);
export const count = (name: string, value: number, limit = 0): Figure => ({ name, value: String(value), must: limit === 0 ? "= 0" : `≤ ${limit}`, ok: value <= limit });
export const fact = (name: string, value: string | number): Figure => ({ name, value: String(value) });
export const check = (name: string, ok: boolean, value: string, must = "yes"): Figure => ({ name, value, must, ok });
const within = (name: string, ms: number | undefined, limitMs: number): Figure => ({
  name,
  value: ms === undefined ? "never" : seconds(ms),
  must: `≤ ${seconds(limitMs)}`,
  ok: ms !== undefined && ms <= limitMs,
  target: true,
});
const between = (range: readonly [number, number]) => range[0] + Math.random() * (range[1] - range[0]);

/** Like waitFor, but a timeout is an answer (undefined), not an error. */
export async function tryWait<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs: number, everyMs = 250): Promise<T | undefined> {
  try {
    return await waitFor(what, probe, timeoutMs, everyMs);
  } catch {
    return undefined;
  }
}

function longestConditionMessage(statuses: Iterable<string>): number {
  let longest = 0;
  for (const status of statuses) {
    for (const condition of (JSON.parse(status) as { conditions?: { message?: string }[] }).conditions ?? []) longest = Math.max(longest, Buffer.byteLength(condition.message ?? ""));
  }
  return longest;
}

const sessionOf = (namespace: string, name: string) => wahaSessionName(namespace, name);
const phoneOf = (index: number) => `55119${String(90_000_000 + index).padStart(8, "0")}`;

/** Instances whose status says they are where their spec wants them (ScanQR for an unscanned Connected). */
export function settled(watch: InstanceWatch, name: string, restartWanted: string | undefined): boolean {
  const object = watch.get(name);
  const status = object?.status;
  const spec = object?.spec as { state?: string } | undefined;
  if (!object || !status || status.observedGeneration !== object.metadata.generation) return false;
  const wanted = (spec?.state ?? "Connected") === "Connected" ? ["ScanQR", "Connected"] : [spec?.state];
  if (!wanted.includes(status.phase)) return false;
  return restartWanted === undefined || (status.lastRestartAt === restartWanted && status.restartInFlight === undefined);
}

/** Sessions of a namespace at the provider now, with the instance each names as its owner. */
export function sessionsOf(provider: Provider, namespace: string): { name: string; owner: string | undefined }[] {
  return provider.waha
    .sessions()
    .filter((session) => session.name.startsWith(`${namespace}__`))
    .map((session) => ({ name: session.name, owner: session.config?.metadata?.[OWNER_KEY] }));
}

/** Deletes every instance (optionally SIGKILLing the operator meanwhile) and reports whether the deletes finished and what they left. */
async function deleteAll(options: {
  ctx: ChaosContext;
  namespace: string;
  watch: InstanceWatch;
  provider: Provider;
  timeoutMs: number;
  /** Delete only these instances (the others' provider may not answer), and wait for them alone. */
  only?: readonly string[];
  kills?: { count: number; gapMs: readonly [number, number]; current: () => Replica; respawn: () => Promise<Replica>; fleet: Fleet };
}): Promise<Figure[]> {
  const { ctx, namespace, watch, provider } = options;
  const startedAt = Date.now();
  await ctx.cluster.kubectl(["delete", "whatsappinstances", ...(options.only ?? ["--all"]), "-n", namespace, "--wait=false"]);
  for (let kill = 0; options.kills && kill < options.kills.count; kill++) {
    await sleep(between(options.kills.gapMs));
    await options.kills.fleet.kill(options.kills.current());
    await options.kills.respawn();
  }
  const remaining = () => watch.list().filter((object) => !options.only || options.only.includes(object.metadata.name)).length;
  const goneAt = await tryWait("every instance deleted", () => (remaining() === 0 ? Date.now() : undefined), options.timeoutMs, 500);
  const left = remaining();
  return [
    ...(options.kills ? [fact("operator SIGKILLs during the deletes", options.kills.count)] : []),
    fact("time for every delete to finish", goneAt ? seconds(goneAt - startedAt) : "never"),
    count("instances left undeleted", left),
    count("orphaned sessions (no instance left)", sessionsOf(provider, namespace).length),
  ];
}

/** What every scenario stands on: a namespace, its operator processes, the provider, and watches on what a user sees. */
interface Stage {
  readonly namespace: string;
  readonly fleet: Fleet;
  readonly provider: Provider;
  readonly watch: InstanceWatch;
  /** The statuses and Events of the namespace, for the secret grep. */
  haystacks(): Promise<Haystack[]>;
  close(): Promise<void>;
}

async function openStage(ctx: ChaosContext, prefix: string, options: Parameters<typeof startProvider>[1]): Promise<Stage> {
  const namespace = await createNamespace(ctx.cluster, prefix);
  const fleet = new Fleet(ctx.cluster, path.join(ctx.dir, namespace));
  const provider = await startProvider(fleet, options);
  const watch = await watchInstances(ctx.cluster.kube, namespace);
  const providers = await watchProviders(ctx.cluster.kube, namespace);
  return {
    namespace,
    fleet,
    provider,
    watch,
    haystacks: async () => [
      { where: `statuses in ${namespace}`, text: [...watch.statuses, ...providers.statuses].join("\n") },
      await eventsIn(ctx.cluster.kube, namespace),
    ],
    close: async () => {
      await fleet.stopAll();
      await watch.stop();
      await providers.stop();
      await provider.stop();
    },
  };
}

/** Instances stay at ScanQR as long as needed: the scenario is about something else than unscanned codes running out. */
export const ENDLESS_QR = { waha: { qr: { maxCodes: 1_000_000 } } };

// ---------------------------------------------------------------- 1. SIGKILLs during convergence

export interface KillsConfig {
  readonly instances: number;
  readonly kills: number;
  readonly deleteKills: number;
  /** Share of instances asked for a restart while the kills go on. */
  readonly restartShare: number;
  /** Time between an operator's start and its SIGKILL. */
  readonly gapMs: readonly [number, number];
  readonly timeoutMs: number;
}

export async function killsScenario(ctx: ChaosContext, config: KillsConfig): Promise<ScenarioReport> {
  const { cluster } = ctx;
  const stage = await openStage(ctx, "chaos-kills", ENDLESS_QR);
  const { namespace, fleet, provider, watch } = stage;
  const httpPort = await freePort();
  const figures: Figure[] = [fact("instances", config.instances), fact("operator SIGKILLs during convergence", config.kills)];
  try {
    await createProvider(cluster, { namespace, url: provider.front.url, apiKey: provider.apiKey, eventsUrl: `http://127.0.0.1:${httpPort}` });
    const spawnOperator = () => fleet.spawn({ namespace, httpPort, args: ctx.operatorArgs });
    let operator = await spawnOperator();
    const createdAt = Date.now();
    const names = await createInstances(cluster, namespace, config.instances, { webhookEvery: 10 });
    const restartTarget = Math.round(config.instances * config.restartShare);
    const perKill = Math.ceil(restartTarget / Math.max(1, config.kills));
    const requested = new Map<string, string>();
    for (let kill = 0; kill < config.kills; kill++) {
      await sleep(between(config.gapMs));
      // Restarts asked for right before a kill are the likeliest to be cut off half-way.
      const batch = names.filter((name) => !requested.has(name) && watch.get(name)?.status?.phase === "ScanQR").slice(0, Math.min(perKill, restartTarget - requested.size));
      const at = new Date().toISOString();
      await Promise.all(batch.map((name) => patchInstance(cluster.kube, namespace, name, { restartRequestedAt: at }).then(() => requested.set(name, at))));
      await sleep(Math.random() * 1500);
      await fleet.kill(operator);
      operator = await spawnOperator();
    }
    const convergedAt = await tryWait("every instance settled", () => (names.every((name) => settled(watch, name, requested.get(name))) ? Date.now() : undefined), config.timeoutMs, 500);
    const settledCount = names.filter((name) => settled(watch, name, requested.get(name))).length;
    figures.push(
      fact("convergence time (create → every instance ScanQR, restarts done)", convergedAt ? seconds(convergedAt - createdAt) : "never"),
      check("every instance converged", convergedAt !== undefined, `${settledCount}/${names.length}`),
      fact("restarts requested", requested.size),
    );
    const restarts = requestedRestarts(provider.front.records);
    figures.push(
      fact("restarts carried out by the provider", restarts.carriedOut),
      count("repeated restarts (one restartRequestedAt restarted twice)", restarts.repeated.length),
      count("duplicate sessions (two for one instance)", duplicateSessions(sessionsOf(provider, namespace)).length),
      count("sessions created twice", sessionsCreatedTwice(provider.front.records).length),
    );
    const credentials = await credentialsIn(cluster.kube, namespace);
    figures.push(
      ...(await deleteAll({
        ctx,
        namespace,
        watch,
        provider,
        timeoutMs: config.timeoutMs,
        kills: { count: config.deleteKills, gapMs: config.gapMs, current: () => operator, respawn: async () => (operator = await spawnOperator()), fleet },
      })),
      fact("provider requests", provider.front.records.length),
    );
    return { title: `1. ${config.instances} instances, ${config.kills} operator SIGKILLs`, figures, haystacks: await stage.haystacks(), credentials, calls: provider.front.records, fleet };
  } finally {
    await stage.close();
  }
}

// ---------------------------------------------------------------- 2. leader election under faults

export interface ElectionConfig {
  readonly instances: number;
  readonly leaseDuration: string;
  /** How long the leader stays SIGSTOPped (past the lease). */
  readonly pauseMs: number;
  /** How long the leader's connection to kube-apiserver is blackholed. */
  readonly blackholeMs: number;
  /** A spec change to some instance this often, so a leader always has provider writes to make. */
  readonly toggleEveryMs: number;
  readonly restartShare: number;
  readonly timeoutMs: number;
}

export async function electionScenario(ctx: ChaosContext, config: ElectionConfig): Promise<ScenarioReport> {
  const { cluster } = ctx;
  const leaseMs = parseDuration(config.leaseDuration);
  const stage = await openStage(ctx, "chaos-election", ENDLESS_QR);
  const { namespace, fleet, provider, watch } = stage;
  const figures: Figure[] = [fact("instances", config.instances), fact("lease duration", config.leaseDuration)];
  let toggling = true;
  let toggler: Promise<void> | undefined;
  try {
    await createProvider(cluster, { namespace, url: provider.front.url, apiKey: provider.apiKey });
    const spawnReplica = () => fleet.spawn({ namespace, proxied: true, args: ["--leader-election", "true", "--lease-duration", config.leaseDuration, ...ctx.operatorArgs] });
    await spawnReplica();
    await spawnReplica();
    await waitFor("a leader", () => fleet.leader(), leaseMs * 3 + 30_000);
    const names = await createInstances(cluster, namespace, config.instances);
    await tryWait("every instance ScanQR", () => (names.every((name) => settled(watch, name, undefined)) ? true : undefined), config.timeoutMs, 500);

    // The workload: some instances flip between Connected and Disconnected all along, others get one restart each.
    const restartable = names.slice(0, Math.round(names.length * config.restartShare));
    const flipping = names.slice(restartable.length);
    const requested = new Map<string, string>();
    const requestRestarts = async (how: number) => {
      const batch = restartable.filter((name) => !requested.has(name)).slice(0, how);
      const at = new Date().toISOString();
      await Promise.all(batch.map((name) => patchInstance(cluster.kube, namespace, name, { restartRequestedAt: at }).then(() => requested.set(name, at)).catch(() => undefined)));
    };
    toggler = (async () => {
      while (toggling && flipping.length > 0) {
        await sleep(config.toggleEveryMs);
        const name = flipping[Math.floor(Math.random() * flipping.length)] as string;
        const state = (watch.get(name)?.spec as { state?: string } | undefined)?.state === "Disconnected" ? "Connected" : "Disconnected";
        await patchInstance(cluster.kube, namespace, name, { state }).catch(() => undefined);
      }
    })();
    const perFault = Math.ceil(restartable.length / 3);
    // A replica that lost its lease on its own (a slow renewal on a busy machine) exits: keep two, as a Deployment would.
    const keepTwo = async () => {
      while (fleet.alive().length < 2) await spawnReplica();
      return waitFor("a leader", () => fleet.leader(), leaseMs * 3 + 30_000);
    };
    const newLeaderSince = (since: number, old: Replica) =>
      waitFor("a new leader", () => fleet.replicas.find((replica) => replica !== old && replica.ledAt !== undefined && replica.ledAt > since), leaseMs * 2 + 30_000).catch(() => undefined);

    // (a) SIGKILL
    await sleep(2000);
    let leader = await keepTwo();
    await requestRestarts(perFault);
    await sleep(Math.random() * 1000);
    const killedAt = Date.now();
    await fleet.kill(leader);
    let next = await newLeaderSince(killedAt, leader);
    figures.push(fact("takeover after the leader's SIGKILL", next?.ledAt ? seconds(next.ledAt - killedAt) : "never"));

    // (b) SIGSTOP past the lease, then SIGCONT
    await sleep(3000);
    leader = await keepTwo();
    await requestRestarts(perFault);
    await sleep(Math.random() * 1000);
    const pausedAt = Date.now();
    leader.kill("SIGSTOP");
    next = await newLeaderSince(pausedAt, leader);
    figures.push(fact(`takeover while the leader is SIGSTOPped (${seconds(config.pauseMs)})`, next?.ledAt ? seconds(next.ledAt - pausedAt) : "never"));
    await sleep(Math.max(0, pausedAt + config.pauseMs - Date.now()));
    const resumedAt = Date.now();
    leader.kill("SIGCONT");
    const paused = leader;
    const pausedExit = await tryWait("the resumed leader to exit", () => paused.exitedAt, 30_000);
    figures.push(
      check("the resumed old leader exits", pausedExit !== undefined, pausedExit ? `after ${seconds(pausedExit - resumedAt)}` : "still running"),
      count("mutating provider calls by the resumed old leader", provider.front.records.filter((call) => call.replica === paused.label && isMutating(call) && call.at >= resumedAt).length),
    );
    if (pausedExit === undefined) await fleet.kill(paused);

    // (c) its connection to kube-apiserver blackholed
    await sleep(3000);
    leader = await keepTwo();
    await requestRestarts(perFault);
    await sleep(Math.random() * 1000);
    const cutAt = Date.now();
    leader.proxy?.freeze();
    next = await newLeaderSince(cutAt, leader);
    figures.push(fact(`takeover while the leader's API-server link is blackholed (${seconds(config.blackholeMs)})`, next?.ledAt ? seconds(next.ledAt - cutAt) : "never"));
    await sleep(Math.max(0, cutAt + config.blackholeMs - Date.now()));
    const cut = leader;
    const takenOverAt = next?.ledAt ?? Number.POSITIVE_INFINITY;
    cut.proxy?.thaw();
    const healedAt = Date.now();
    const cutExit = await tryWait("the cut-off leader to exit", () => cut.exitedAt, 30_000);
    const lastWrite = provider.front.records.filter((call) => call.replica === cut.label && isMutating(call)).at(-1)?.at;
    figures.push(
      check(
        "the cut-off old leader exits",
        cutExit !== undefined,
        cutExit === undefined ? "still running" : cutExit < healedAt ? `${seconds(cutExit - cutAt)} after the cut, while cut off` : `${seconds(cutExit - healedAt)} after the link healed`,
      ),
      fact("its last mutating call, after the cut", lastWrite !== undefined && lastWrite > cutAt ? seconds(lastWrite - cutAt) : "none after the cut"),
      count("mutating provider calls by the cut-off leader after the takeover", provider.front.records.filter((call) => call.replica === cut.label && isMutating(call) && call.at >= takenOverAt).length),
    );
    if (cutExit === undefined) await fleet.kill(cut);
    if (fleet.alive().length === 0) await spawnReplica();

    toggling = false;
    await toggler;
    const convergedAt = await tryWait("every instance settled", () => (names.every((name) => settled(watch, name, requested.get(name))) ? Date.now() : undefined), config.timeoutMs, 500);
    figures.push(check("every instance converged after the faults", convergedAt !== undefined, `${names.filter((name) => settled(watch, name, requested.get(name))).length}/${names.length}`));
    const overlaps = writerOverlaps(provider.front.records);
    figures.push(
      count("windows where two replicas made mutating provider calls", overlaps.length),
      fact("mutating calls inside those windows", overlaps.reduce((sum, overlap) => sum + overlap.calls, 0)),
      ...overlaps.map((overlap) => fact(`  overlap ${overlap.replicas.join("+")}`, `${seconds(overlap.to - overlap.from)} long, ${overlap.calls} calls`)),
      fact("restarts requested", requested.size),
      fact("restarts carried out by the provider", requestedRestarts(provider.front.records).carriedOut),
      count("repeated restarts (one restartRequestedAt restarted twice)", requestedRestarts(provider.front.records).repeated.length),
      fact("replicas started (each fault's victim is replaced)", fleet.replicas.length),
      fact("requests not attributed to a replica", provider.front.records.filter((call) => call.replica === undefined).length),
    );
    const credentials = await credentialsIn(cluster.kube, namespace);
    figures.push(...(await deleteAll({ ctx, namespace, watch, provider, timeoutMs: config.timeoutMs })));
    return { title: "2. two replicas with leader election: leader SIGKILLed, paused, cut off", figures, haystacks: await stage.haystacks(), credentials, calls: provider.front.records, fleet };
  } finally {
    toggling = false;
    await toggler?.catch(() => undefined);
    await stage.close();
  }
}

// ---------------------------------------------------------------- 3. provider faults

export interface FaultsConfig {
  readonly instances: number;
  readonly scan: number;
  readonly serverErrors: number;
  readonly hangs: number;
  readonly malformed: number;
  readonly oversized: number;
  readonly bursts: { readonly everyMs: number; readonly lengthMs: number };
  readonly rateLimit: { readonly requestsPerSecond: number; readonly burst: number };
  readonly providerTimeoutMs: number;
  /** The targets of issue 11: every instance ScanQR within, every scanned one Connected within. */
  readonly scanQrLimitMs: number;
  readonly connectedLimitMs: number;
  /** How long to wait at most for each stage. */
  readonly waitMs: number;
  /** Requests arriving this soon after a 429 was sent were already on their way. */
  readonly graceMs: number;
}

export async function faultsScenario(ctx: ChaosContext, config: FaultsConfig): Promise<ScenarioReport> {
  const { cluster } = ctx;
  const stage = await openStage(ctx, "chaos-faults", {
    faults: {
      serverErrors: config.serverErrors,
      hangs: config.hangs,
      hangMs: config.providerTimeoutMs + 5000,
      malformed: config.malformed,
      oversized: config.oversized,
      rateLimitBursts: config.bursts,
      echoHeader: "x-api-key",
    },
  });
  const { namespace, fleet, provider, watch } = stage;
  const { front, waha } = provider;
  const figures: Figure[] = [
    fact("instances", config.instances),
    fact(
      "faults",
      `${config.serverErrors * 100} % 5xx, ${config.hangs * 100} % hangs, ${config.malformed * 100} % malformed, ${config.oversized * 100} % 2 MiB, 429 for ${seconds(config.bursts.lengthMs)} every ${seconds(config.bursts.everyMs)}`,
    ),
    fact("rate limit", `${config.rateLimit.requestsPerSecond}/s, burst ${config.rateLimit.burst}`),
  ];
  try {
    await createProvider(cluster, { namespace, url: front.url, apiKey: provider.apiKey, rateLimit: config.rateLimit });
    await fleet.spawn({ namespace, args: ["--provider-timeout", `${config.providerTimeoutMs}ms`, ...ctx.operatorArgs] });
    const createdAt = Date.now();
    const names = await createInstances(cluster, namespace, config.instances, { webhookEvery: 10 });
    const allScanQr = await tryWait("every instance ScanQR once", () => (names.every((name) => watch.reached(name, "ScanQR", createdAt)) ? Date.now() : undefined), config.waitMs, 500);
    const times = names.map((name) => watch.reached(name, "ScanQR", createdAt)).filter((at): at is number => at !== undefined).map((at) => at - createdAt);
    const scanQr = spread(times);
    figures.push(
      within("time for every instance to reach ScanQR", allScanQr ? allScanQr - createdAt : undefined, config.scanQrLimitMs),
      check("every instance reached ScanQR", allScanQr !== undefined, `${scanQr.count}/${names.length}`),
      fact("  per instance p50 / p95", `${seconds(scanQr.p50)} / ${seconds(scanQr.p95)}`),
    );

    // The phone scans what the QR Secret shows; a code the provider has already replaced does not link.
    const chosen = names.slice(0, config.scan);
    const scannedAt = new Map<string, number>();
    const triedCode = new Map<string, string>();
    const stale = new Set<string>();
    const scanStart = Date.now();
    while (Date.now() - scanStart < config.waitMs) {
      const waiting = chosen.filter((name) => !scannedAt.has(name) || watch.reached(name, "Connected", scannedAt.get(name)) === undefined);
      if (waiting.length === 0) break;
      for (const name of waiting.filter((candidate) => !scannedAt.has(candidate))) {
        const session = sessionOf(namespace, name);
        const qr = watch.get(name)?.status?.qr;
        if (waha.statusOf(session) !== "SCAN_QR_CODE" || !qr || triedCode.get(name) === qr.updatedAt) continue;
        triedCode.set(name, qr.updatedAt);
        const secret = await cluster.kube.find<KubeObject & { data?: Record<string, string> }>(SECRETS, namespace, qr.secretName).catch(() => undefined);
        const shown = secret?.data?.["qr.txt"] ? Buffer.from(secret.data["qr.txt"], "base64").toString("utf8") : undefined;
        if (shown === undefined || shown !== waha.currentQr(session)) {
          stale.add(name);
          continue;
        }
        try {
          waha.scan(session, phoneOf(names.indexOf(name)));
          scannedAt.set(name, Date.now());
        } catch {
          // it rotated or failed between the look and the scan: the phone tries again with the next code
        }
      }
      await sleep(500);
    }
    // A code scanned late in the stage still gets its fair time to show Connected.
    const lastScan = Math.max(0, ...scannedAt.values());
    await tryWait(
      "every scanned instance Connected",
      () => ([...scannedAt].every(([name, at]) => watch.reached(name, "Connected", at) !== undefined) ? true : undefined),
      Math.max(0, lastScan + config.connectedLimitMs + 60_000 - Date.now()),
      500,
    );
    const connectTimes = [...scannedAt].map(([name, at]) => (watch.reached(name, "Connected", at) ?? Number.NaN) - at).filter((ms) => Number.isFinite(ms));
    const connect = spread(connectTimes);
    figures.push(
      check("instances scanned", scannedAt.size === chosen.length, `${scannedAt.size}/${chosen.length}`),
      fact("  of them first shown a QR the provider had replaced", stale.size),
      check("scanned instances Connected", connect.count === scannedAt.size && scannedAt.size === chosen.length, `${connect.count}/${scannedAt.size}`),
      within("time from scan to Connected (slowest)", connect.count === scannedAt.size ? connect.max : undefined, config.connectedLimitMs),
      fact("  p50 / p95", `${seconds(connect.p50)} / ${seconds(connect.p95)}`),
    );

    const calls = front.records;
    const retry = retryAfterViolations(calls, config.graceMs);
    const busiest = busiestWindow(calls.map((call) => call.at));
    const injected = (fault: string) => calls.filter((call) => call.fault === fault).length;
    figures.push(
      fact("429 answers with Retry-After", retry.rateLimited),
      // Both are read off arrival times at the emulator, which a busy machine can skew: targets, not CI checks.
      { ...count(`requests inside a Retry-After window (> ${config.graceMs} ms after the 429)`, retry.violations.length), target: true },
      { ...count("busiest sliding second (requests)", busiest.count, config.rateLimit.requestsPerSecond + config.rateLimit.burst), target: true },
      fact("injected: 5xx / hangs / malformed / 2 MiB", `${injected("server-error")} / ${injected("hang")} / ${injected("malformed")} / ${injected("oversized")}`),
      fact("provider requests", calls.length),
      fact("longest operator log line", `${fleet.longestLogLine()} bytes`),
      fact("longest Event message", `${await longestEventMessage(cluster.kube, namespace)} bytes`),
      fact("longest condition message in any status", `${longestConditionMessage(watch.statuses)} bytes`),
    );
    const credentials = await credentialsIn(cluster.kube, namespace);
    front.configure({});
    figures.push(...(await deleteAll({ ctx, namespace, watch, provider, timeoutMs: config.waitMs })));
    return {
      title: `3. provider faults: ${config.instances} instances, scan ${config.scan}`,
      figures,
      haystacks: await stage.haystacks(),
      credentials,
      calls,
      fleet,
    };
  } finally {
    await stage.close();
  }
}

// ---------------------------------------------------------------- 7. a provider paused for a day, one for ever

export interface PauseConfig {
  /** Instances on each provider: the open one and each paused one. */
  readonly instances: number;
  /** The Retry-After each paused provider answers every request with. */
  readonly retryAfters: readonly string[];
  /** Reconcile workers of the operator: few, so a provider holding them would show. */
  readonly concurrency: number;
  /** The target of issue 17: the open provider's instances in ScanQR "in seconds". */
  readonly scanQrLimitMs: number;
  readonly waitMs: number;
  /** Requests arriving this soon after a 429 was sent were already on their way. */
  readonly graceMs: number;
}

/**
 * Providers that answer every request 429 with Retry-After: 86400 or 1e10 beside one that
 * works: the open provider's instances reach ScanQR as if the others were not there, the
 * paused ones say RateLimited, and no request reaches a paused provider inside its window,
 * whichever path (health check, observe, create) it would come from. The operator's pause
 * ceiling (PROVIDER_MAX_PAUSE, 15 min) is longer than the scenario, so any request after the
 * first 429s would be one the operator should not have sent.
 */
export async function pauseScenario(ctx: ChaosContext, config: PauseConfig): Promise<ScenarioReport> {
  const { cluster } = ctx;
  const stage = await openStage(ctx, "chaos-pause", ENDLESS_QR);
  const { namespace, fleet, provider, watch } = stage;
  const paused: { retryAfter: string; name: string; provider: Provider }[] = [];
  const figures: Figure[] = [
    fact("instances per provider", config.instances),
    fact("paused providers' Retry-After", config.retryAfters.join(", ")),
    fact("operator workers (--concurrency)", config.concurrency),
  ];
  try {
    for (const [index, retryAfter] of config.retryAfters.entries()) {
      paused.push({ retryAfter, name: `paused-${index}`, provider: await startProvider(fleet, { faults: { paused: { retryAfter } } }) });
    }
    await createProvider(cluster, { namespace, url: provider.front.url, apiKey: provider.apiKey });
    for (const entry of paused) await createProvider(cluster, { namespace, name: entry.name, url: entry.provider.front.url, apiKey: entry.provider.apiKey });
    await fleet.spawn({ namespace, args: [...ctx.operatorArgs, "--concurrency", String(config.concurrency)] });
    const createdAt = Date.now();
    // The paused providers' instances first: they are in line before the open one's.
    const pausedNames = new Map<string, string[]>();
    for (const entry of paused) pausedNames.set(entry.name, await createInstances(cluster, namespace, config.instances, { provider: entry.name }));
    const openNames = await createInstances(cluster, namespace, config.instances);
    const allScanQr = await tryWait("every open instance ScanQR", () => (openNames.every((name) => watch.reached(name, "ScanQR", createdAt)) ? Date.now() : undefined), config.waitMs, 250);
    const scanQr = spread(openNames.map((name) => watch.reached(name, "ScanQR", createdAt)).filter((at): at is number => at !== undefined).map((at) => at - createdAt));
    const readyReason = (name: string) => watch.get(name)?.status?.conditions?.find((condition) => condition.type === "Ready")?.reason;
    const everyPaused = [...pausedNames.values()].flat();
    const limited = await tryWait("every paused instance RateLimited", () => (everyPaused.every((name) => readyReason(name) === "RateLimited") ? Date.now() : undefined), config.waitMs, 250);
    figures.push(
      within("time for every open instance to reach ScanQR", allScanQr ? allScanQr - createdAt : undefined, config.scanQrLimitMs),
      check("every open instance reached ScanQR", allScanQr !== undefined, `${scanQr.count}/${openNames.length}`),
      fact("  per instance p50 / p95", `${seconds(scanQr.p50)} / ${seconds(scanQr.p95)}`),
      check(
        "every paused instance shows Ready False RateLimited",
        limited !== undefined,
        `${everyPaused.filter((name) => readyReason(name) === "RateLimited").length}/${everyPaused.length}${limited ? ` after ${seconds(limited - createdAt)}` : ""}`,
      ),
    );
    // A last look a while later: nothing more may have reached the paused providers meanwhile.
    await sleep(Math.min(config.waitMs, 5000));
    for (const entry of paused) {
      const calls = entry.provider.front.records;
      const retry = retryAfterViolations(calls, config.graceMs);
      figures.push(
        fact(`Retry-After: ${entry.retryAfter}: requests received`, `${calls.length} (${[...new Set(calls.map((call) => `${call.method} ${call.path.replace(/\/api\/sessions\/[^/]+/, "/api/sessions/…")}`))].join(", ")})`),
        count(`  requests inside its Retry-After window (> ${config.graceMs} ms after a 429)`, retry.violations.length),
        count("  requests carried out by the provider behind it", calls.filter((call) => call.forwarded).length),
      );
    }
    const credentials = await credentialsIn(cluster.kube, namespace);
    figures.push(...(await deleteAll({ ctx, namespace, watch, provider, only: openNames, timeoutMs: config.waitMs })));
    return {
      title: `7. providers paused (Retry-After ${config.retryAfters.join(", ")}) beside an open one: ${config.instances} instances each`,
      figures,
      haystacks: await stage.haystacks(),
      credentials,
      calls: [...provider.front.records, ...paused.flatMap((entry) => entry.provider.front.records)],
      fleet,
    };
  } finally {
    await stage.close();
    for (const entry of paused) await entry.provider.stop();
  }
}

// ---------------------------------------------------------------- 4. the API server killed and paused

export interface ApiServerConfig {
  readonly instances: number;
  /** How long kube-apiserver stays dead before it is started again. */
  readonly downMs: number;
  /** How long it stays SIGSTOPped. */
  readonly pauseMs: number;
  readonly timeoutMs: number;
}

export async function apiServerScenario(ctx: ChaosContext, config: ApiServerConfig): Promise<ScenarioReport> {
  const { cluster } = ctx;
  const stage = await openStage(ctx, "chaos-apiserver", ENDLESS_QR);
  const { namespace, fleet, provider, watch } = stage;
  const httpPort = await freePort();
  const figures: Figure[] = [fact("instances", config.instances)];
  try {
    await createProvider(cluster, { namespace, url: provider.front.url, apiKey: provider.apiKey, eventsUrl: `http://127.0.0.1:${httpPort}` });
    await fleet.spawn({ namespace, httpPort, args: ctx.operatorArgs });
    const names = await createInstances(cluster, namespace, Math.max(4, config.instances));
    await tryWait("every instance ScanQR", () => (names.every((name) => settled(watch, name, undefined)) ? true : undefined), config.timeoutMs, 500);

    const outage = async (kind: "killed" | "paused", linked: string, changed: string, lengthMs: number) => {
      const startedAt = Date.now();
      if (kind === "killed") await cluster.killApiServer();
      else cluster.pauseApiServer();
      // The phone is linked while the API server is away: the operator can see it but not record it.
      await sleep(1000);
      try {
        provider.waha.scan(sessionOf(namespace, linked), phoneOf(names.indexOf(linked)));
      } catch {
        // not showing a QR: the figure below will say it never connected
      }
      await sleep(Math.max(0, startedAt + lengthMs - Date.now()));
      if (kind === "killed") await cluster.restartApiServer();
      else cluster.resumeApiServer();
      await waitFor("the API server to answer", () => cluster.kube.list(SECRETS, namespace).then(() => true), 60_000);
      const backAt = Date.now();
      await waitFor("the spec change to be accepted", () => patchInstance(cluster.kube, namespace, changed, { state: "Disconnected" }).then(() => true), 60_000);
      const patchedAt = Date.now();
      const stopPath = `/api/sessions/${encodeURIComponent(sessionOf(namespace, changed))}/stop`;
      const acted = await tryWait("the operator to act", () => provider.front.records.find((call) => call.method === "POST" && call.path === stopPath && call.at >= patchedAt)?.at, config.timeoutMs);
      const shown = await tryWait("the change in status", () => watch.reached(changed, "Disconnected", patchedAt), config.timeoutMs);
      const connected = await tryWait("the link made meanwhile in status", () => watch.reached(linked, "Connected", startedAt), config.timeoutMs);
      figures.push(
        fact(`API server ${kind} for`, seconds(backAt - startedAt)),
        check(`  spec change after it is back: acted on (provider call)`, acted !== undefined, acted ? `after ${seconds(acted - patchedAt)}` : "never"),
        check(`  spec change after it is back: in status`, shown !== undefined, shown ? `after ${seconds(shown - patchedAt)}` : "never"),
        check(`  phone linked while it was away: Connected in status`, connected !== undefined, connected ? `${seconds(Math.max(0, connected - backAt))} after it is back` : "never"),
      );
    };
    await outage("killed", names[0] as string, names[1] as string, config.downMs);
    await outage("paused", names[2] as string, names[3] as string, config.pauseMs);
    figures.push(count("operator restarts (exits)", fleet.replicas.filter((replica) => replica.exitedAt !== undefined).length));
    const credentials = await credentialsIn(cluster.kube, namespace);
    figures.push(...(await deleteAll({ ctx, namespace, watch, provider, timeoutMs: config.timeoutMs })));
    return { title: "4. the API server killed and restarted, then paused", figures, haystacks: await stage.haystacks(), credentials, calls: provider.front.records, fleet };
  } finally {
    await stage.close();
  }
}
