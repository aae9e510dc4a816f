// A throwaway local Kubernetes control plane: etcd, kube-apiserver and a
// kube-controller-manager running only the garbage-collector, namespace and
// ClusterRole-aggregation controllers (the last fills view/edit/admin from aggregate-to-*),
// as local processes on 127.0.0.1. Used by the integration tests (startControlPlane) and
// by `make cluster-up` (the CLI below). Node 24 stdlib only.
//
//   node hack/control-plane/cluster.ts up     --dir .local [--bin-dir DIR]
//   node hack/control-plane/cluster.ts down   --dir .local
//   node hack/control-plane/cluster.ts status --dir .local
//
// The binaries come from hack/control-plane/build.sh (or --bin-dir / WA_CONTROL_PLANE_BIN).
// The servers run under supervisor.ts, which takes them down when its owner goes away, so
// nothing outlives a killed test run.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { createServer, type AddressInfo } from "node:net";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { generateControlPlanePki } from "./pki.ts";

const here = dirname(fileURLToPath(import.meta.url));
const SUPERVISOR = join(here, "supervisor.ts");
const BUILD_SH = join(here, "build.sh");

export interface StartOptions {
  /** Working directory: credentials, etcd data, logs (`*.log`) and `kubeconfig` go here. */
  dir: string;
  /** Directory holding kube-apiserver, kube-controller-manager, kubectl and etcd. */
  binDir: string;
  /** Progress messages. */
  log?: (message: string) => void;
  /** Give up starting after this long (default 180 s). */
  timeoutMs?: number;
  /** Called when a server exits while the control plane is supposed to be running. */
  onUnexpectedExit?: (name: string, code: number | null, signal: string | null) => void;
}

export interface ControlPlane {
  /** `<dir>/kubeconfig`: an admin (system:masters) client certificate for `server`. */
  kubeconfigPath: string;
  /** https://127.0.0.1:PORT */
  server: string;
  /** kube-apiserver gitVersion, e.g. v1.36.3. */
  version: string;
  /** etcd server version, e.g. v3.6.8. */
  etcdVersion: string;
  dir: string;
  pids: { supervisor: number; etcd: number; kubeApiserver: number; kubeControllerManager: number };
  /** Stops every server (SIGTERM, SIGKILL after a grace period) and waits until they are gone. */
  stop(): Promise<void>;
  /**
   * For fault injection (bench/chaos.ts): SIGKILLs kube-apiserver and resolves once it is gone.
   * Its exit is expected, so onUnexpectedExit is not called. `pids.kubeApiserver` stays the old pid until restarted.
   */
  killApiServer(): Promise<void>;
  /** Starts kube-apiserver again after killApiServer, with the same flags and port; resolves once /readyz is ok. */
  restartApiServer(timeoutMs?: number): Promise<void>;
}

const SERVERS = ["etcd", "kube-apiserver", "kube-controller-manager"] as const;
type ServerName = (typeof SERVERS)[number];
const GRACE_MS = 5_000;

// ---- small helpers ----------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function freePorts(n: number): Promise<number[]> {
  // Hold all listeners at once so the ports are distinct, then release them.
  const servers = await Promise.all(
    Array.from({ length: n }, async () => {
      const s = createServer();
      s.listen(0, "127.0.0.1");
      await once(s, "listening");
      return s;
    }),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

interface Tls {
  ca?: string;
  cert?: string;
  key?: string;
  insecure?: boolean;
}

function get(url: string, tls: Tls = {}, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const u = new URL(url);
    const opts = {
      method: "GET",
      timeout: timeoutMs,
      ...(u.protocol === "https:"
        ? { ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: !tls.insecure, agent: false as const }
        : { agent: false as const }),
    };
    const req = (u.protocol === "https:" ? httpsRequest : httpRequest)(u, opts, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolvePromise({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`timeout after ${timeoutMs}ms`)));
    req.on("error", reject);
    req.end();
  });
}

function tail(file: string, lines = 40): string {
  try {
    const all = readFileSync(file, "utf8").trimEnd().split("\n");
    return all
      .slice(-lines)
      .map((l) => (l.length > 500 ? `${l.slice(0, 500)}…` : l))
      .join("\n");
  } catch {
    return "(no log)";
  }
}

function writeAtomic(file: string, content: string, mode = 0o600): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, content, { mode });
  renameSync(tmp, file);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Alive and (where /proc tells) running a command line that mentions `needle`. */
function pidIsOurs(pid: number | undefined, needle: string): pid is number {
  if (!pid || !pidAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(needle);
  } catch {
    return process.platform !== "linux";
  }
}

// ---- the supervisor ---------------------------------------------------------------------

interface SupervisorEvent {
  event: string;
  name?: string;
  pid?: number;
  code?: number | null;
  signal?: string | null;
  message?: string;
}

class Supervisor {
  readonly proc: ChildProcess;
  readonly pids = new Map<string, number>();
  readonly exits = new Map<string, { code: number | null; signal: string | null }>();
  stopping = false;
  onExit?: (name: string, code: number | null, signal: string | null) => void;
  private listeners = new Set<(e: SupervisorEvent) => void>();
  private readonly exited: Promise<void>;

  private constructor(proc: ChildProcess) {
    this.proc = proc;
    this.exited = new Promise((r) => proc.once("exit", () => r()));
    createInterface({ input: proc.stdout! }).on("line", (line) => {
      let e: SupervisorEvent;
      try {
        e = JSON.parse(line) as SupervisorEvent;
      } catch {
        return;
      }
      if (e.event === "spawned" && e.name && e.pid) this.pids.set(e.name, e.pid);
      if (e.event === "exit" && e.name) {
        this.exits.set(e.name, { code: e.code ?? null, signal: e.signal ?? null });
        if (!this.stopping) this.onExit?.(e.name, e.code ?? null, e.signal ?? null);
      }
      for (const l of this.listeners) l(e);
    });
  }

  static async start(logFile: string): Promise<Supervisor> {
    if (!process.features.typescript) {
      throw new Error(`the supervisor is a .ts script: run with Node >= 22.18 / 24 (this is ${process.version}); see hack/node.sh`);
    }
    const fd = openSync(logFile, "a");
    // detached: a new session and process group led by the supervisor, so a Ctrl-C in the
    // owner's terminal does not hit the servers directly and the group can be killed whole.
    const proc = spawn(process.execPath, [SUPERVISOR], { stdio: ["pipe", "pipe", fd], detached: true });
    closeSync(fd);
    const sup = new Supervisor(proc);
    await sup.waitFor((e) => e.event === "ready", 15_000, "supervisor start");
    // Do not keep the owner alive just because the control plane runs: when the owner
    // exits, the pipe closes and the supervisor takes the servers down.
    sup.unref();
    return sup;
  }

  get pid(): number {
    return this.proc.pid ?? 0;
  }

  unref(): void {
    this.proc.unref();
    for (const s of [this.proc.stdin, this.proc.stdout]) (s as unknown as { unref?: () => void } | null)?.unref?.();
  }

  ref(): void {
    this.proc.ref();
    for (const s of [this.proc.stdin, this.proc.stdout]) (s as unknown as { ref?: () => void } | null)?.ref?.();
  }

  private send(msg: object): void {
    if (this.proc.stdin?.writable) this.proc.stdin.write(JSON.stringify(msg) + "\n");
  }

  waitFor(pred: (e: SupervisorEvent) => boolean, timeoutMs: number, what: string): Promise<SupervisorEvent> {
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => done(new Error(`timed out waiting for ${what}`)), timeoutMs);
      const onExit = () => done(new Error(`supervisor exited while waiting for ${what}`));
      const listener = (e: SupervisorEvent) => {
        if (pred(e)) done(undefined, e);
      };
      const done = (err?: Error, e?: SupervisorEvent) => {
        clearTimeout(timer);
        this.listeners.delete(listener);
        this.proc.off("exit", onExit);
        if (err) reject(err);
        else resolvePromise(e!);
      };
      this.listeners.add(listener);
      this.proc.once("exit", onExit);
    });
  }

  async spawn(name: ServerName, command: string, args: string[], log: string): Promise<number> {
    const result = this.waitFor(
      (e) => e.name === name && (e.event === "spawned" || e.event === "spawn-error"),
      15_000,
      `${name} to spawn`,
    );
    this.send({ op: "spawn", name, command, args, log });
    const e = await result;
    if (e.event === "spawn-error") throw new Error(`cannot start ${name} (${command}): ${e.message}`);
    return e.pid!;
  }

  async stop(graceMs = GRACE_MS): Promise<void> {
    this.stopping = true;
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.ref(); // keep the owner alive until the servers are gone
    this.send({ op: "stop", graceMs });
    this.proc.stdin?.end();
    const deadline = graceMs * SERVERS.length + 5_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), deadline))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      try {
        process.kill(-this.pid, "SIGKILL");
      } catch {
        // gone
      }
      for (const pid of this.pids.values()) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      }
      await Promise.race([this.exited, new Promise((r) => setTimeout(r, 2_000).unref())]);
    }
    this.unref();
  }
}

// ---- credentials and configuration ---------------------------------------------------------

interface Layout {
  dir: string;
  pki: string;
  etcdData: string;
  kubeconfig: string;
  kcmKubeconfig: string;
  log: (name: ServerName | "supervisor") => string;
}

function layout(dir: string): Layout {
  const pki = join(dir, "pki");
  return {
    dir,
    pki,
    etcdData: join(dir, "etcd-data"),
    kubeconfig: join(dir, "kubeconfig"),
    kcmKubeconfig: join(pki, "controller-manager.kubeconfig"),
    log: (name) => join(dir, `${name}.log`),
  };
}

function kubeconfigYaml(server: string, user: string, ca: string, cert: string, key: string): string {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  return `apiVersion: v1
kind: Config
clusters:
- name: wa-local
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(ca)}
users:
- name: ${user}
  user:
    client-certificate-data: ${b64(cert)}
    client-key-data: ${b64(key)}
contexts:
- name: wa-local
  context:
    cluster: wa-local
    user: ${user}
    namespace: default
current-context: wa-local
preferences: {}
`;
}

// ---- startControlPlane --------------------------------------------------------------------

export async function startControlPlane(opts: StartOptions): Promise<ControlPlane> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      lastError = err;
      // Free ports are picked, then released, before the servers bind them; if someone
      // else grabbed one in between, try again with new ones.
      if (!(err instanceof Error) || !/address already in use/i.test(err.message)) throw err;
      opts.log?.(`a port was taken meanwhile; retrying (${attempt}/3)`);
    }
  }
  throw lastError;
}

async function startOnce(opts: StartOptions): Promise<ControlPlane> {
  const log = opts.log ?? (() => {});
  const dir = resolve(opts.dir);
  const binDir = resolve(opts.binDir);
  const L = layout(dir);
  const deadline = Date.now() + (opts.timeoutMs ?? 180_000);
  const bin = (name: string) => join(binDir, name);
  for (const b of ["etcd", "kube-apiserver", "kube-controller-manager"]) {
    if (!existsSync(bin(b))) throw new Error(`${bin(b)} not found (run hack/control-plane/build.sh)`);
  }

  // A clean slate for everything this function owns in `dir`.
  mkdirSync(dir, { recursive: true });
  for (const p of [L.pki, L.etcdData, join(dir, "kcm-certs"), join(dir, "apiserver-certs"), L.kubeconfig]) {
    rmSync(p, { recursive: true, force: true });
  }
  for (const n of [...SERVERS, "supervisor"] as const) rmSync(L.log(n), { force: true });
  mkdirSync(L.pki, { recursive: true, mode: 0o700 });
  mkdirSync(L.etcdData, { recursive: true, mode: 0o700 });

  log("generating credentials");
  const pki = generateControlPlanePki();
  const files: Record<string, string> = {
    "ca.crt": pki.ca.cert,
    "apiserver.crt": pki.apiserver.cert,
    "apiserver.key": pki.apiserver.key,
    "admin.crt": pki.admin.cert,
    "admin.key": pki.admin.key,
    "controller-manager.crt": pki.controllerManager.cert,
    "controller-manager.key": pki.controllerManager.key,
    "sa.key": pki.serviceAccount.key,
    "sa.pub": pki.serviceAccount.pub,
  };
  for (const [name, content] of Object.entries(files)) writeFileSync(join(L.pki, name), content, { mode: 0o600 });
  const p = (name: string) => join(L.pki, name);

  const [etcdClient, etcdPeer, apiPort, kcmPort] = (await freePorts(4)) as [number, number, number, number];
  const server = `https://127.0.0.1:${apiPort}`;
  const adminTls: Tls = { ca: pki.ca.cert, cert: pki.admin.cert, key: pki.admin.key };
  writeFileSync(
    L.kcmKubeconfig,
    kubeconfigYaml(server, "kube-controller-manager", pki.ca.cert, pki.controllerManager.cert, pki.controllerManager.key),
    { mode: 0o600 },
  );

  const sup = await Supervisor.start(L.log("supervisor"));
  const failure = async (what: string, cause?: unknown): Promise<never> => {
    // The log of whichever server died, then the others.
    const died = new Set(sup.exits.keys());
    const order = [...SERVERS].sort((a, b) => Number(died.has(b)) - Number(died.has(a)));
    await sup.stop(1_000);
    const logs = order
      .filter((n) => existsSync(L.log(n)))
      .map((n) => `--- ${L.log(n)} (last lines) ---\n${tail(L.log(n))}`)
      .join("\n");
    const reason = cause instanceof Error ? `: ${cause.message}` : "";
    throw new Error(`control plane failed to start: ${what}${reason}\n${logs}`);
  };

  // Polls `check` until it returns a value, a server dies, or the deadline passes.
  const waitUntil = async <T>(what: string, check: () => Promise<T | undefined>, limit = deadline): Promise<T> => {
    let lastErr: unknown;
    while (Date.now() < limit) {
      for (const [name, e] of sup.exits) {
        const addr = /address already in use/i.test(tail(L.log(name as ServerName), 200)) ? " (address already in use)" : "";
        return failure(`${name} exited (code ${e.code}, signal ${e.signal})${addr} while waiting for ${what}`);
      }
      try {
        const v = await check();
        if (v !== undefined) return v;
      } catch (err) {
        lastErr = err;
      }
      await sleep(250);
    }
    return failure(`timed out waiting for ${what}`, lastErr);
  };

  try {
    // etcd: plain HTTP on loopback; the data is throwaway, so skip fsync.
    log(`starting etcd on 127.0.0.1:${etcdClient}`);
    await sup.spawn(
      "etcd",
      bin("etcd"),
      [
        "--name=wa-local",
        `--data-dir=${L.etcdData}`,
        `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=wa-local=http://127.0.0.1:${etcdPeer}`,
        "--initial-cluster-state=new",
        "--unsafe-no-fsync=true",
        "--log-level=warn",
      ],
      L.log("etcd"),
    );
    await waitUntil("etcd /health", async () => {
      const r = await get(`http://127.0.0.1:${etcdClient}/health`);
      return r.status === 200 && (JSON.parse(r.body) as { health?: string }).health === "true" ? true : undefined;
    });
    const etcdVersion = await waitUntil("etcd /version", async () => {
      const r = await get(`http://127.0.0.1:${etcdClient}/version`);
      const v = (JSON.parse(r.body) as { etcdserver?: string }).etcdserver;
      return v ? `v${v}` : undefined;
    });

    log(`starting kube-apiserver on ${server}`);
    const apiserverArgs = [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      "--bind-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      "--advertise-address=127.0.0.1",
      // No kubelets/nodes: nothing can use endpoints for the `kubernetes` service, and a
      // loopback address is not a valid endpoint anyway.
      "--endpoint-reconciler-type=none",
      "--service-cluster-ip-range=10.0.0.0/24",
      `--cert-dir=${join(dir, "apiserver-certs")}`,
      `--tls-cert-file=${p("apiserver.crt")}`,
      `--tls-private-key-file=${p("apiserver.key")}`,
      `--client-ca-file=${p("ca.crt")}`,
      "--authorization-mode=RBAC",
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      `--service-account-key-file=${p("sa.pub")}`,
      `--service-account-signing-key-file=${p("sa.key")}`,
      // The ServiceAccount admission plugin needs the serviceaccount controller to create
      // each namespace's `default` ServiceAccount before pods can be created; that
      // controller does not run here.
      "--disable-admission-plugins=ServiceAccount",
      "--allow-privileged=true",
      "--profiling=false",
    ];
    await sup.spawn("kube-apiserver", bin("kube-apiserver"), apiserverArgs, L.log("kube-apiserver"));
    const apiserverReady = async () => {
      const r = await get(`${server}/readyz`, adminTls);
      return r.status === 200 && r.body.trim() === "ok" ? true : undefined;
    };
    await waitUntil("kube-apiserver /readyz", apiserverReady);
    const version = await waitUntil("kube-apiserver /version", async () => {
      const r = await get(`${server}/version`, adminTls);
      return r.status === 200 ? (JSON.parse(r.body) as { gitVersion: string }).gitVersion : undefined;
    });

    log(`starting kube-controller-manager (garbage-collector, namespace, clusterrole-aggregation) on 127.0.0.1:${kcmPort}`);
    await sup.spawn(
      "kube-controller-manager",
      bin("kube-controller-manager"),
      [
        `--kubeconfig=${L.kcmKubeconfig}`,
        `--authentication-kubeconfig=${L.kcmKubeconfig}`,
        `--authorization-kubeconfig=${L.kcmKubeconfig}`,
        "--controllers=garbage-collector-controller,namespace-controller,clusterrole-aggregation-controller",
        "--leader-elect=false",
        "--use-service-account-credentials=false",
        "--bind-address=127.0.0.1",
        `--secure-port=${kcmPort}`,
        `--cert-dir=${join(dir, "kcm-certs")}`,
        "--profiling=false",
      ],
      L.log("kube-controller-manager"),
    );
    await waitUntil("kube-controller-manager /healthz", async () => {
      const r = await get(`https://127.0.0.1:${kcmPort}/healthz`, { insecure: true });
      return r.status === 200 && r.body.trim() === "ok" ? true : undefined;
    });
    await waitUntil("the default namespace", async () => {
      const r = await get(`${server}/api/v1/namespaces/default`, adminTls);
      return r.status === 200 ? true : undefined;
    });
    // The garbage collector syncs its informers for every resource before it collects
    // anything; it logs this line once it does (or once its initial sync gives up).
    const gcLimit = Math.min(deadline, Date.now() + 60_000);
    let gcSynced = false;
    while (!gcSynced && Date.now() < gcLimit && sup.exits.size === 0) {
      gcSynced = readFileSync(L.log("kube-controller-manager"), "utf8").includes("Proceeding to collect garbage");
      if (!gcSynced) await sleep(250);
    }
    if (sup.exits.size > 0) await waitUntil("the garbage collector", async () => true); // reports the exit
    // Unknown log wording (a newer version?): the controller runs; carry on.
    if (!gcSynced) log("warning: did not see the garbage collector report its initial sync");

    writeAtomic(L.kubeconfig, kubeconfigYaml(server, "admin", pki.ca.cert, pki.admin.cert, pki.admin.key));
    let apiserverKilled = false;
    sup.onExit = (name, code, signal) => {
      if (name === "kube-apiserver" && apiserverKilled) return;
      log(`${name} exited unexpectedly (code ${code}, signal ${signal}); see ${L.log(name as ServerName)}`);
      opts.onUnexpectedExit?.(name, code, signal);
    };
    log(`ready: kube-apiserver ${version} (etcd ${etcdVersion}) at ${server}`);
    let stopped: Promise<void> | undefined;
    const pids = {
      supervisor: sup.pid,
      etcd: sup.pids.get("etcd") ?? 0,
      kubeApiserver: sup.pids.get("kube-apiserver") ?? 0,
      kubeControllerManager: sup.pids.get("kube-controller-manager") ?? 0,
    };
    return {
      kubeconfigPath: L.kubeconfig,
      server,
      version,
      etcdVersion,
      dir,
      pids,
      stop: () => (stopped ??= sup.stop()),
      killApiServer: async () => {
        if (apiserverKilled) return;
        apiserverKilled = true;
        const exited = sup.waitFor((e) => e.event === "exit" && e.name === "kube-apiserver", 15_000, "kube-apiserver to exit");
        process.kill(pids.kubeApiserver, "SIGKILL");
        await exited;
      },
      restartApiServer: async (timeoutMs = 120_000) => {
        if (!apiserverKilled) throw new Error("restartApiServer: kube-apiserver was not killed");
        pids.kubeApiserver = await sup.spawn("kube-apiserver", bin("kube-apiserver"), apiserverArgs, L.log("kube-apiserver"));
        sup.exits.delete("kube-apiserver");
        apiserverKilled = false;
        const limit = Date.now() + timeoutMs;
        for (;;) {
          if (sup.exits.has("kube-apiserver")) throw new Error(`kube-apiserver exited on restart; see ${L.log("kube-apiserver")}`);
          if (await apiserverReady().catch(() => undefined)) return;
          if (Date.now() > limit) throw new Error(`kube-apiserver was not ready ${timeoutMs} ms after its restart`);
          await sleep(100);
        }
      },
    };
  } catch (err) {
    if (err instanceof Error && err.message.startsWith("control plane failed to start")) throw err;
    return failure("unexpected error", err);
  }
}

// ---- binaries ------------------------------------------------------------------------------

/** WA_CONTROL_PLANE_BIN if set, else the output of build.sh (building on first use). */
export async function resolveBinDir(opts: { quiet?: boolean } = {}): Promise<string> {
  const fromEnv = process.env.WA_CONTROL_PLANE_BIN;
  if (fromEnv) return resolve(fromEnv);
  const child = spawn("bash", [BUILD_SH], { stdio: ["ignore", "pipe", opts.quiet ? "pipe" : "inherit"] });
  let out = "";
  let err = "";
  child.stdout?.setEncoding("utf8").on("data", (c: string) => (out += c));
  child.stderr?.setEncoding("utf8").on("data", (c: string) => (err += c));
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) throw new Error(`hack/control-plane/build.sh failed (exit ${code})${err ? `:\n${err.slice(-4000)}` : ""}`);
  const last = out.trim().split("\n").pop();
  if (!last) throw new Error("hack/control-plane/build.sh printed no bin dir");
  return last;
}

// ---- CLI ---------------------------------------------------------------------------------

interface ClusterState {
  pid: number;
  supervisorPid: number;
  pids: ControlPlane["pids"];
  server: string;
  kubeconfig: string;
  version: string;
  etcdVersion: string;
  binDir: string;
  startedAt: string;
}

const stateFile = (dir: string) => join(dir, "cluster.json");

function readState(dir: string): ClusterState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile(dir), "utf8")) as ClusterState;
  } catch {
    return undefined;
  }
}

function adminTlsFromDir(dir: string): Tls {
  const p = join(dir, "pki");
  return {
    ca: readFileSync(join(p, "ca.crt"), "utf8"),
    cert: readFileSync(join(p, "admin.crt"), "utf8"),
    key: readFileSync(join(p, "admin.key"), "utf8"),
  };
}

async function healthy(dir: string, st: ClusterState): Promise<boolean> {
  if (!pidIsOurs(st.pid, "cluster.ts")) return false;
  try {
    const r = await get(`${st.server}/readyz`, adminTlsFromDir(dir), 3_000);
    return r.status === 200 && r.body.trim() === "ok";
  } catch {
    return false;
  }
}

/** Every process a recorded cluster may have left, with what its command line must mention. */
function recordedProcesses(st: ClusterState): Array<[number, string]> {
  return [
    [st.pid, "cluster.ts"],
    [st.supervisorPid, "supervisor.ts"],
    [st.pids.kubeControllerManager, "kube-controller-manager"],
    [st.pids.kubeApiserver, "kube-apiserver"],
    [st.pids.etcd, "etcd"],
  ];
}

async function down(dir: string, quiet = false): Promise<void> {
  const st = readState(dir);
  const say = (m: string) => quiet || console.error(m);
  if (!st) {
    say(`no control plane recorded in ${stateFile(dir)}`);
    return;
  }
  const alive = () => recordedProcesses(st).filter(([pid, needle]) => pidIsOurs(pid, needle));
  if (alive().length > 0) {
    say(`stopping the control plane at ${st.server}`);
    if (pidIsOurs(st.pid, "cluster.ts")) process.kill(st.pid, "SIGTERM");
    else if (pidIsOurs(st.supervisorPid, "supervisor.ts")) process.kill(st.supervisorPid, "SIGTERM");
    const limit = Date.now() + GRACE_MS * SERVERS.length + 5_000;
    while (alive().length > 0 && Date.now() < limit) await sleep(100);
    const left = alive();
    if (left.length > 0) {
      say(`killing ${left.map(([pid]) => pid).join(", ")}`);
      if (pidIsOurs(st.supervisorPid, "supervisor.ts")) {
        try {
          process.kill(-st.supervisorPid, "SIGKILL");
        } catch {
          // gone
        }
      }
      for (const [pid] of left) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      }
      const hard = Date.now() + 5_000;
      while (alive().length > 0 && Date.now() < hard) await sleep(100);
    }
  }
  rmSync(stateFile(dir), { force: true });
  rmSync(join(dir, "kubeconfig"), { force: true });
  say("control plane stopped");
}

async function up(dir: string, binDirArg: string | undefined): Promise<void> {
  const st = readState(dir);
  if (st && (await healthy(dir, st))) {
    console.error(`control plane already running: kube-apiserver ${st.version} (etcd ${st.etcdVersion}) at ${st.server}`);
    printExports(st);
    return;
  }
  if (st) await down(dir, true); // stale or unhealthy: clear it away first
  const binDir = binDirArg ? resolve(binDirArg) : await resolveBinDir();
  mkdirSync(dir, { recursive: true });
  const logFile = join(dir, "cluster.log");
  const fd = openSync(logFile, "w");
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), "serve", "--dir", dir, "--bin-dir", binDir], {
    stdio: ["ignore", fd, fd, "ipc"],
    detached: true,
  });
  closeSync(fd);
  const result = await new Promise<{ ok: boolean; message: string }>((res) => {
    child.on("message", (m: { type: string; message?: string }) => {
      if (m.type === "ready") res({ ok: true, message: "" });
      if (m.type === "error") res({ ok: false, message: m.message ?? "unknown error" });
    });
    child.on("exit", (code, signal) => res({ ok: false, message: `exited (code ${code}, signal ${signal}); see ${logFile}` }));
  });
  if (!result.ok) {
    throw new Error(`cluster up failed: ${result.message}`);
  }
  child.disconnect();
  child.unref();
  const now = readState(dir)!;
  console.error(`control plane up: kube-apiserver ${now.version} (etcd ${now.etcdVersion}) at ${now.server}`);
  console.error(`logs: ${dir}/*.log; stop with: node hack/control-plane/cluster.ts down --dir ${dir}`);
  printExports(now);
}

/** On stdout, so that `eval "$(node hack/control-plane/cluster.ts up)"` works. */
function printExports(st: ClusterState): void {
  console.log(`export KUBECONFIG=${st.kubeconfig}`);
  console.log(`export PATH=${st.binDir}:$PATH`);
}

/** The detached background process behind `up`: owns the supervisor until `down`. */
async function serve(dir: string, binDir: string): Promise<void> {
  const stamp = (m: string) => console.log(`${new Date().toISOString()} ${m}`);
  let cp: ControlPlane | undefined;
  let exiting = false;
  const shutdown = async (code: number) => {
    if (exiting) return;
    exiting = true;
    stamp("stopping");
    await cp?.stop();
    const st = readState(dir);
    if (st?.pid === process.pid) rmSync(stateFile(dir), { force: true });
    stamp("stopped");
    process.exit(code);
  };
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(sig, () => void shutdown(0));
  process.on("disconnect", () => {}); // the `up` process leaving is expected
  try {
    cp = await startControlPlane({
      dir,
      binDir,
      log: stamp,
      onUnexpectedExit: () => void shutdown(1),
    });
  } catch (err) {
    stamp(err instanceof Error ? (err.stack ?? err.message) : String(err));
    if (process.connected) process.send?.({ type: "error", message: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  }
  const state: ClusterState = {
    pid: process.pid,
    supervisorPid: cp.pids.supervisor,
    pids: cp.pids,
    server: cp.server,
    kubeconfig: cp.kubeconfigPath,
    version: cp.version,
    etcdVersion: cp.etcdVersion,
    binDir,
    startedAt: new Date().toISOString(),
  };
  writeAtomic(stateFile(dir), JSON.stringify(state, null, 2) + "\n", 0o644);
  if (process.connected) process.send?.({ type: "ready" });
  // Stay alive until told to stop.
  setInterval(() => {}, 1 << 30);
}

async function status(dir: string): Promise<number> {
  const st = readState(dir);
  if (!st) {
    console.log(`not running (no ${stateFile(dir)})`);
    return 1;
  }
  const procs = recordedProcesses(st).map(([pid, needle]) => `${needle}=${pid}${pidIsOurs(pid, needle) ? "" : " (gone)"}`);
  const ok = await healthy(dir, st);
  console.log(`${ok ? "running" : "NOT HEALTHY"}: kube-apiserver ${st.version} (etcd ${st.etcdVersion}) at ${st.server}`);
  console.log(`kubeconfig: ${st.kubeconfig}`);
  console.log(`processes: ${procs.join(" ")}`);
  console.log(`started: ${st.startedAt}; logs: ${dir}/*.log`);
  return ok ? 0 : 1;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const flags = new Map<string, string>();
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    const m = /^--([^=]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`unexpected argument: ${a}`);
    flags.set(m[1]!, m[2] ?? rest[++i] ?? "");
  }
  const dir = resolve(flags.get("dir") ?? ".local");
  switch (cmd) {
    case "up":
      await up(dir, flags.get("bin-dir"));
      return 0;
    case "down":
      await down(dir);
      return 0;
    case "status":
      return status(dir);
    case "serve":
      await serve(dir, flags.get("bin-dir") ?? (await resolveBinDir()));
      return -1; // keeps running
    default:
      console.error("usage: node hack/control-plane/cluster.ts up|down|status [--dir .local] [--bin-dir DIR]");
      return 2;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exitCode = code;
    },
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exitCode = 1;
    },
  );
}
