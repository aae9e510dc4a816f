/**
 * What the chaos scenarios stand on: a control plane of their own (so its kube-apiserver
 * can be killed and paused), the operator as separate processes (each optionally behind
 * its own freezable proxy to kube-apiserver), the WAHA emulator behind a fault injector
 * that knows which process sent each request, and watches that remember when every
 * instance first reached each phase. No vitest here: bench/chaos.ts runs it as a plain
 * script and test/integration/chaos.test.ts as a test.
 *
 * Every wait is bounded, everything listens on loopback, and `cleanup()` (also run on exit)
 * kills every process this module started.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import path from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { startControlPlane, type ControlPlane } from "../../hack/control-plane/cluster.ts";
import type { InstanceObject, ProviderObject } from "../../src/controllers/context.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { EVENTS, INSTANCES, PROVIDERS, SECRETS, type KubeObject, type ResourceType } from "../../src/kube/resources.ts";
import { createLogger } from "../../src/logger.ts";
import { Informer } from "../../src/runtime/informer.ts";
import { WahaEmulator, type WahaEmulatorOptions } from "../emulators/waha/emulator.ts";
import { faultyWaha } from "../emulators/waha/faults.ts";
import { kubeClientOf } from "../support/kube-config.ts";
import { eventually as waitFor } from "../support/wait.ts";
import type { FaultInjector, Faults } from "../emulators/shared/fault-injector.ts";
import type { Credential, Haystack } from "./figures.ts";
import { SocketOwners } from "./socket-owner.ts";
import { TcpProxy } from "./tcp-proxy.ts";

const run = promisify(execFile);
export const REPO = path.resolve(import.meta.dirname, "..", "..");
const sleepMs = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
export { sleepMs as sleep };

export { waitFor };

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export const randomKey = (bytes = 24) => randomBytes(bytes).toString("hex");

// ---------------------------------------------------------------- the control plane

export class ChaosCluster {
  readonly plane: ControlPlane;
  readonly kube: KubeClient;
  readonly binDir: string;
  #paused = false;

  private constructor(plane: ControlPlane, binDir: string) {
    this.plane = plane;
    this.binDir = binDir;
    this.kube = ChaosCluster.client(plane.kubeconfigPath);
  }

  static client(kubeconfig: string): KubeClient {
    return kubeClientOf(kubeconfig);
  }

  static async start(options: { binDir: string; dir: string; log: (message: string) => void }): Promise<ChaosCluster> {
    const plane = await startControlPlane({ dir: options.dir, binDir: options.binDir, log: options.log });
    const cluster = new ChaosCluster(plane, options.binDir);
    await cluster.kubectl(["apply", "-f", path.join(REPO, "crds")]);
    await cluster.kubectl(["wait", "--for=condition=Established", "--timeout=60s", "-f", path.join(REPO, "crds")]);
    return cluster;
  }

  get kubeconfig(): string {
    return this.plane.kubeconfigPath;
  }

  get apiPort(): number {
    return Number(new URL(this.plane.server).port);
  }

  async kubectl(args: readonly string[], input?: string): Promise<string> {
    const env = { ...process.env, KUBECONFIG: this.kubeconfig, PATH: `${this.binDir}${path.delimiter}${process.env["PATH"] ?? ""}` };
    const child = run("kubectl", [...args], { env, maxBuffer: 64 * 1024 * 1024 });
    if (input !== undefined) child.child.stdin?.end(input);
    try {
      return (await child).stdout;
    } catch (error) {
      const failed = error as { stderr?: string; message: string };
      throw new Error(`kubectl ${args.join(" ")}: ${failed.stderr || failed.message}`);
    }
  }

  /** A copy of the admin kubeconfig that reaches kube-apiserver through 127.0.0.1:port. */
  kubeconfigVia(port: number, file: string): string {
    const text = readFileSync(this.kubeconfig, "utf8").replace(this.plane.server, `https://127.0.0.1:${port}`);
    writeFileSync(file, text, { mode: 0o600 });
    return file;
  }

  async killApiServer(): Promise<void> {
    await this.plane.killApiServer();
  }

  async restartApiServer(): Promise<void> {
    await this.plane.restartApiServer();
  }

  pauseApiServer(): void {
    process.kill(this.plane.pids.kubeApiserver, "SIGSTOP");
    this.#paused = true;
  }

  resumeApiServer(): void {
    process.kill(this.plane.pids.kubeApiserver, "SIGCONT");
    this.#paused = false;
  }

  async stop(): Promise<void> {
    if (this.#paused) this.resumeApiServer();
    await this.plane.stop();
  }
}

// ---------------------------------------------------------------- operator processes

export interface Replica {
  /** r1, r2, … in start order; the fault injector names requests by it. */
  readonly label: string;
  readonly pid: number;
  readonly url: string;
  readonly logFile: string;
  readonly exited: Promise<number | null>;
  /** When it logged "became the leader" (its own clock, which is ours). */
  ledAt: number | undefined;
  /** When it logged that it lost the lease. */
  lostAt: number | undefined;
  exitedAt: number | undefined;
  /** Its proxy to kube-apiserver, when started behind one. */
  readonly proxy: TcpProxy | undefined;
  readonly child: ChildProcess;
  kill(signal: NodeJS.Signals): void;
}

export interface SpawnOptions {
  readonly namespace: string;
  readonly args?: readonly string[];
  /** Fixed HTTP port (so provider events keep reaching a restarted operator); default any free port. */
  readonly httpPort?: number;
  /** Reach kube-apiserver through a proxy of its own that the scenario can freeze. */
  readonly proxied?: boolean;
}

/**
 * Where util-linux setpriv exists, operators start with a parent-death signal (as the
 * control plane's servers do), so even a SIGKILLed bench leaves none behind; setpriv execs
 * node, so the pid stays the operator's.
 */
const PARENT_DEATH: readonly string[] = (() => {
  if (process.platform !== "linux") return [];
  const probe = spawnSync("setpriv", ["--help"], { encoding: "utf8" });
  return probe.status === 0 && probe.stdout.includes("--pdeathsig") ? ["setpriv", "--pdeathsig", "KILL", "--"] : [];
})();

/** Every operator process still running: none may outlive this process, however it ends. */
const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) {
    child.kill("SIGCONT");
    child.kill("SIGKILL");
  }
});

/** Runs `node src/cli/operator.ts` processes, logs to files, and remembers them all. */
export class Fleet {
  readonly replicas: Replica[] = [];
  readonly owners = new SocketOwners();
  readonly #cluster: ChaosCluster;
  readonly #dir: string;

  /** Logs and kubeconfigs go to `dir` (created), one per scenario so replica labels never collide. */
  constructor(cluster: ChaosCluster, dir: string) {
    this.#cluster = cluster;
    this.#dir = dir;
    mkdirSync(dir, { recursive: true });
  }

  async spawn(options: SpawnOptions): Promise<Replica> {
    const label = `r${this.replicas.length + 1}`;
    let proxy: TcpProxy | undefined;
    let kubeconfig = this.#cluster.kubeconfig;
    if (options.proxied) {
      proxy = new TcpProxy({ host: "127.0.0.1", port: this.#cluster.apiPort });
      kubeconfig = this.#cluster.kubeconfigVia(await proxy.start(), path.join(this.#dir, `${label}.kubeconfig`));
    }
    const logFile = path.join(this.#dir, `${label}.log`);
    const out = createWriteStream(logFile);
    const child = spawn(
      PARENT_DEATH[0] ?? process.execPath,
      [
        ...PARENT_DEATH.slice(1),
        ...(PARENT_DEATH.length > 0 ? [process.execPath] : []),
        path.join(REPO, "src/cli/operator.ts"),
        "--http-address",
        `127.0.0.1:${options.httpPort ?? 0}`,
        "--metrics-address",
        "127.0.0.1:0",
        "--namespaces",
        options.namespace,
        "--operator-namespace",
        options.namespace,
        ...(options.args ?? []),
      ],
      { env: { ...process.env, KUBECONFIG: kubeconfig, LOG_LEVEL: "debug" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    const pid = child.pid as number;
    this.owners.register(pid, label);
    let url: string | undefined;
    running.add(child);
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code, signal) => resolve(code ?? (signal ? -1 : null))));
    const replica: Replica = {
      label,
      pid,
      logFile,
      exited,
      ledAt: undefined,
      lostAt: undefined,
      exitedAt: undefined,
      proxy,
      child,
      get url() {
        return url ?? "";
      },
      kill: (signal) => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      },
    };
    void exited.then(() => {
      running.delete(child);
      replica.exitedAt = Date.now();
      void proxy?.stop();
    });
    child.stdout?.pipe(out);
    child.stderr?.pipe(createWriteStream(`${logFile}.stderr`));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      // Only the few lines the scenarios act on are parsed; the file keeps them all.
      if (line.includes("serving /healthz") || line.includes("leader")) {
        try {
          const entry = JSON.parse(line) as { msg?: string; url?: string; time?: string };
          const time = entry.time ? Date.parse(entry.time) : Date.now();
          if (entry.msg?.startsWith("serving /healthz") && entry.msg.includes("/provider-events")) url = entry.url;
          if (entry.msg === "became the leader") replica.ledAt = time;
          if (entry.msg === "lost the leader lease" || entry.msg?.startsWith("lost leadership")) replica.lostAt ??= time;
        } catch {
          // not JSON: kept in the file, looked at by the secret grep
        }
      }
    });
    this.replicas.push(replica);
    await waitFor(
      `${label}'s HTTP endpoint`,
      () => {
        if (child.exitCode !== null) throw new Error(`${label} exited ${child.exitCode}; see ${logFile}.stderr`);
        return url;
      },
      60_000,
      100,
    );
    return replica;
  }

  alive(): Replica[] {
    return this.replicas.filter((replica) => replica.exitedAt === undefined && replica.child.exitCode === null && replica.child.signalCode === null);
  }

  /** The live replica that most recently became the leader. */
  leader(): Replica | undefined {
    return this.alive()
      .filter((replica) => replica.ledAt !== undefined && replica.lostAt === undefined)
      .sort((a, b) => (b.ledAt as number) - (a.ledAt as number))[0];
  }

  /** SIGKILLs and waits for the exit. */
  async kill(replica: Replica): Promise<void> {
    replica.kill("SIGKILL");
    await replica.exited;
  }

  /** SIGTERMs every live replica (SIGKILL after 15 s). */
  async stopAll(): Promise<void> {
    await Promise.all(
      this.alive().map(async (replica) => {
        replica.kill("SIGCONT");
        replica.kill("SIGTERM");
        const timer = setTimeout(() => replica.kill("SIGKILL"), 15_000);
        await replica.exited;
        clearTimeout(timer);
      }),
    );
  }

  /** Every log line of every replica, for the secret grep. */
  haystacks(): Haystack[] {
    return this.replicas.flatMap((replica) => [
      { where: `log ${replica.label}`, text: readFileSync(replica.logFile, "utf8") },
      { where: `stderr ${replica.label}`, text: readFileSync(`${replica.logFile}.stderr`, "utf8") },
    ]);
  }

  /** The longest log line any replica wrote, in bytes. */
  longestLogLine(): number {
    let longest = 0;
    for (const replica of this.replicas) {
      for (const line of readFileSync(replica.logFile, "utf8").split("\n")) longest = Math.max(longest, Buffer.byteLength(line));
    }
    return longest;
  }
}

// ---------------------------------------------------------------- the provider

export interface Provider {
  readonly waha: WahaEmulator;
  readonly front: FaultInjector;
  readonly apiKey: string;
  stop(): Promise<void>;
}

/** A WAHA emulator (real clock) behind a fault injector that names the replica of each request. */
export async function startProvider(fleet: Fleet, options: { waha?: Omit<WahaEmulatorOptions, "apiKey">; faults?: Faults; seed?: number } = {}): Promise<Provider> {
  const apiKey = randomKey();
  const waha = new WahaEmulator({ apiKey, ...options.waha });
  await waha.start();
  const front = faultyWaha(waha, { ...options.faults, ...(options.seed !== undefined ? { seed: options.seed } : {}), identify: (socket) => fleet.owners.identify(socket) });
  await front.start();
  return {
    waha,
    front,
    apiKey,
    stop: async () => {
      await front.stop();
      await waha.stop();
    },
  };
}

// ---------------------------------------------------------------- watching what a user sees

export interface PhaseChange {
  readonly phase: string;
  readonly at: number;
}

/** A watch on one kind in one namespace that keeps every status it saw and each object's phase history. */
export class StatusWatch<T extends KubeObject & { status?: { phase?: string } }> {
  readonly #informer: Informer<T>;
  readonly #history = new Map<string, PhaseChange[]>();
  /** Every distinct status seen, as JSON (for the secret grep). */
  readonly statuses = new Set<string>();

  constructor(kube: KubeClient, type: ResourceType, namespace: string) {
    // Short backoff: after an API-server outage the watch should see the operator's writes promptly.
    this.#informer = new Informer<T>({ kube, type, namespace, log: createLogger("silent"), resyncMs: 0, maxBackoffMs: 1000, minBackoffMs: 200 });
    this.#informer.on((event) => {
      if (event.type === "deleted") return;
      const object = event.object;
      if (object.status) this.statuses.add(JSON.stringify(object.status));
      const phase = object.status?.phase;
      if (!phase) return;
      const history = this.#history.get(object.metadata.name) ?? [];
      if (history.at(-1)?.phase !== phase) history.push({ phase, at: Date.now() });
      this.#history.set(object.metadata.name, history);
    });
  }

  async start(): Promise<void> {
    this.#informer.start();
    await this.#informer.synced;
  }

  stop(): Promise<void> {
    return this.#informer.stop();
  }

  get(name: string): T | undefined {
    return this.#informer.list().find((object) => object.metadata.name === name);
  }

  list(): T[] {
    return this.#informer.list();
  }

  /** When `name` first entered `phase` at or after `since`. */
  reached(name: string, phase: string, since = 0): number | undefined {
    return this.#history.get(name)?.find((change) => change.phase === phase && change.at >= since)?.at;
  }
}

export type InstanceWatch = StatusWatch<InstanceObject & { status?: InstanceObject["status"] }>;

export async function watchInstances(kube: KubeClient, namespace: string): Promise<InstanceWatch> {
  const watch = new StatusWatch<InstanceObject>(kube, INSTANCES, namespace);
  await watch.start();
  return watch;
}

export async function watchProviders(kube: KubeClient, namespace: string): Promise<StatusWatch<ProviderObject & { status?: { phase?: string } }>> {
  const watch = new StatusWatch<ProviderObject & { status?: { phase?: string } }>(kube, PROVIDERS, namespace);
  await watch.start();
  return watch;
}

// ---------------------------------------------------------------- objects

export async function createNamespace(cluster: ChaosCluster, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString("hex")}`;
  await cluster.kubectl(["create", "namespace", name]);
  return name;
}

export interface ProviderSetup {
  readonly namespace: string;
  /** The WhatsAppProvider's name; default "waha" (its key Secret is `<name>-key`). */
  readonly name?: string;
  readonly url: string;
  readonly apiKey: string;
  /** Base URL of the operator's event receiver, when provider events are wanted. */
  readonly eventsUrl?: string;
  readonly rateLimit?: { readonly requestsPerSecond: number; readonly burst: number };
  /** A fleet member: its labels, spec.capacity.maxSessions and spec.maxConcurrentStarts. */
  readonly fleet?: { readonly labels: Readonly<Record<string, string>>; readonly capacity: number; readonly maxConcurrentStarts: number };
}

export async function createProvider(cluster: ChaosCluster, setup: ProviderSetup): Promise<void> {
  const name = setup.name ?? "waha";
  await cluster.kubectl(["create", "secret", "generic", `${name}-key`, "-n", setup.namespace, `--from-literal=api-key=${setup.apiKey}`]);
  await cluster.kubectl(["label", "secret", `${name}-key`, "-n", setup.namespace, "wa-operator.io/credential=true"]);
  const spec = {
    type: "waha",
    url: setup.url,
    credentialsSecretRef: { name: `${name}-key` },
    ...(setup.eventsUrl ? { events: { url: setup.eventsUrl } } : {}),
    ...(setup.rateLimit ? { rateLimit: setup.rateLimit } : {}),
    ...(setup.fleet ? { capacity: { maxSessions: setup.fleet.capacity }, maxConcurrentStarts: setup.fleet.maxConcurrentStarts } : {}),
  };
  const metadata = { name, ...(setup.fleet ? { labels: setup.fleet.labels } : {}) };
  await cluster.kubectl(["create", "-n", setup.namespace, "-f", "-"], JSON.stringify({ apiVersion: "wa-operator.io/v1alpha1", kind: "WhatsAppProvider", metadata, spec }));
}

export const instanceName = (index: number) => `i-${String(index).padStart(3, "0")}`;

/**
 * Creates `count` instances of provider `waha` (or `provider`, named `<provider>-i-NNN`) in one
 * kubectl call; every `webhookEvery`-th gets a webhook (an HMAC key). With `selector`, they name
 * no provider but a spec.providerSelector matching those labels.
 */
export async function createInstances(
  cluster: ChaosCluster,
  namespace: string,
  count: number,
  options: { webhookEvery?: number; provider?: string; selector?: Readonly<Record<string, string>> } = {},
): Promise<string[]> {
  const names = Array.from({ length: count }, (_, index) => (options.provider ? `${options.provider}-${instanceName(index)}` : instanceName(index)));
  const items = names.map((name, index) => ({
    apiVersion: "wa-operator.io/v1alpha1",
    kind: "WhatsAppInstance",
    metadata: { name },
    spec: {
      ...(options.selector ? { providerSelector: { matchLabels: options.selector } } : { providerRef: { name: options.provider ?? "waha" } }),
      ...(options.webhookEvery && index % options.webhookEvery === 0 ? { webhook: { url: "http://127.0.0.1:9/hook", events: ["message"] } } : {}),
    },
  }));
  await cluster.kubectl(["create", "-n", namespace, "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items }));
  return names;
}

export async function patchInstance(kube: KubeClient, namespace: string, name: string, spec: Record<string, unknown>): Promise<void> {
  await kube.patch(INSTANCES, namespace, name, { spec });
}

/** The credentials the operator holds or made in a namespace: API keys, webhook and events HMAC keys. */
export async function credentialsIn(kube: KubeClient, namespace: string): Promise<Credential[]> {
  const secrets = await kube.list<KubeObject & { data?: Record<string, string> }>(SECRETS, namespace);
  const found: Credential[] = [];
  for (const secret of secrets.items) {
    for (const [key, kind] of [
      ["api-key", "provider API key"],
      ["hmac-key", secret.metadata.name.endsWith("-events") ? "events HMAC key" : "webhook HMAC key"],
      ["pin", "PIN"],
    ] as const) {
      const value = secret.data?.[key];
      if (value) found.push({ kind, value: Buffer.from(value, "base64").toString("utf8") });
    }
  }
  return found;
}

/** Every Event in a namespace, as one text. */
export async function eventsIn(kube: KubeClient, namespace: string): Promise<Haystack> {
  const events = await kube.list<KubeObject>(EVENTS, namespace);
  return { where: `Events in ${namespace}`, text: events.items.map((event) => JSON.stringify(event)).join("\n") };
}

/** The longest Event message in a namespace, in bytes. */
export async function longestEventMessage(kube: KubeClient, namespace: string): Promise<number> {
  const events = await kube.list<KubeObject & { message?: string }>(EVENTS, namespace);
  return Math.max(0, ...events.items.map((event) => Buffer.byteLength(event.message ?? "")));
}
