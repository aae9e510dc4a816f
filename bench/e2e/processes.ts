/**
 * The processes the benchmark starts besides the control plane: the operator (bundled, as
 * the image runs it: scripts/bundle-operator.ts) and the bare loop (bench/e2e/bare-loop.ts), each on its own,
 * so neither shares an event loop with the benchmark's driver and emulator, and /proc tells
 * their CPU time and memory apart. Both end by themselves when the benchmark is gone.
 */
import { execFileSync, spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import path from "node:path";
import { createInterface } from "node:readline";
import { parse } from "yaml";
import type { RequestTally } from "./figures.ts";

const REPO = path.resolve(import.meta.dirname, "..", "..");

export interface OperatorProcessOptions {
  /**
   * The bundled entry point (bundleOperator): run from TypeScript sources, Node would also
   * load its type stripper, about 18 MB that users never pay.
   */
  readonly entry: string;
  readonly kubeconfig: string;
  /** Namespaces it watches (WATCH_NAMESPACES). */
  readonly namespaces: readonly string[];
  readonly concurrency: number;
  readonly logFile: string;
  readonly logLevel: string;
  /**
   * Runs it in a memory cgroup of this many bytes, as a Pod with that limit runs (Node sizes its
   * heap from the limit it finds); where no cgroup can be made, without one (see `memoryLimited`).
   */
  readonly memoryLimitBytes?: number;
}

export interface ProcessSample {
  /** user + system CPU seconds so far. */
  readonly cpuSeconds: number;
  readonly rssBytes: number;
  /** Peak resident set size (VmHWM). */
  readonly peakRssBytes: number;
}

export class OperatorProcess {
  readonly child: ChildProcess;
  readonly url: string;
  /** Where /metrics is served (METRICS_ADDRESS). */
  readonly metricsUrl: string;
  /** The memory cgroup it runs in, when one could be made. */
  readonly cgroup: MemoryCgroup | undefined;
  readonly #exited: Promise<void>;

  private constructor(child: ChildProcess, url: string, metricsUrl: string, cgroup: MemoryCgroup | undefined) {
    this.child = child;
    this.url = url;
    this.metricsUrl = metricsUrl;
    this.cgroup = cgroup;
    this.#exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once("exit", () => resolve());
    });
  }

  static async start(options: OperatorProcessOptions): Promise<OperatorProcess> {
    const port = await freePort();
    const metricsPort = await freePort();
    const log = openSync(options.logFile, "w");
    const cgroup = options.memoryLimitBytes ? MemoryCgroup.make(options.memoryLimitBytes) : undefined;
    const child = spawnNode(
      [...imageNodeFlags(), options.entry],
      {
        KUBECONFIG: options.kubeconfig,
        LEADER_ELECTION: "false",
        WATCH_NAMESPACES: options.namespaces.join(","),
        CONCURRENCY: String(options.concurrency),
        HTTP_ADDRESS: `127.0.0.1:${port}`,
        METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
        LOG_LEVEL: options.logLevel,
      },
      ["ignore", log, log],
      cgroup,
    );
    closeSync(log);
    const operator = new OperatorProcess(child, `http://127.0.0.1:${port}`, `http://127.0.0.1:${metricsPort}`, cgroup);
    child.once("exit", () => cgroup?.remove());
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the operator exited (${child.exitCode}); see ${options.logFile}`);
      try {
        if ((await fetch(`${operator.url}/readyz`)).status === 200) return operator;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await operator.stop();
        throw new Error(`the operator did not become ready within 60 s; see ${options.logFile}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  sample(): ProcessSample {
    return sampleProcess(this.pid);
  }

  /**
   * Resolves with 0 once the operator has sent the Events it queued (its wa_operator_events_pending
   * gauge reads 0): they trail the writes a pass waits for, and count in the phase's requests.
   * After `timeoutMs` it resolves with the number still queued: with thousands of codes waiting
   * for a scan, new codes keep bringing QRUpdated Events, so the queue may never be empty.
   */
  async settle(timeoutMs = 60_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = await (await fetch(`${this.metricsUrl}/metrics`)).text();
      const pending = /^wa_operator_events_pending (\S+)$/m.exec(text)?.[1];
      if (pending === undefined) throw new Error("the operator's /metrics has no wa_operator_events_pending");
      if (Number(pending) === 0 || Date.now() > deadline) return Number(pending);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** SIGTERM (it finishes in-flight work), SIGKILL after 15 s. */
  stop(): Promise<void> {
    return terminate(this.child, this.#exited);
  }
}

export interface BareLoopSettings {
  readonly kubeconfig: string;
  readonly namespace: string;
  readonly wahaUrl: string;
  readonly apiKey: string;
  readonly concurrency: number;
}

export class BareLoopProcess {
  readonly child: ChildProcess;
  readonly #lines: AsyncIterator<string>;
  /** What it had sent when it reported ready (its initial list). */
  readonly #sentAtReady: RequestTally;
  #stopped: Promise<{ sent: RequestTally; failures: string[] }> | undefined;

  private constructor(child: ChildProcess, lines: AsyncIterator<string>, sentAtReady: RequestTally) {
    this.child = child;
    this.#lines = lines;
    this.#sentAtReady = sentAtReady;
  }

  /** Starts it and waits until its watch has listed the namespace. */
  static async start(settings: BareLoopSettings): Promise<BareLoopProcess> {
    const child = spawnNode([path.join(import.meta.dirname, "bare-loop.ts"), JSON.stringify(settings)], {}, ["ignore", "pipe", "inherit"]);
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const first = await Promise.race([lines.next(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the bare loop did not start within 30 s")), 30_000))]);
    if (first.done) throw new Error("the bare loop exited before it was ready");
    const ready = JSON.parse(first.value as string) as { sent: Record<string, number> };
    return new BareLoopProcess(child, lines, new Map(Object.entries(ready.sent)));
  }

  sample(): ProcessSample {
    return sampleProcess(this.child.pid ?? 0);
  }

  /** Stops it (once); returns the requests it sent since it was ready, and its failures. */
  stop(): Promise<{ sent: RequestTally; failures: string[] }> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<{ sent: RequestTally; failures: string[] }> {
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    this.child.kill("SIGTERM");
    const last = await this.#lines.next();
    await terminate(this.child, exited);
    const report = last.done ? { sent: {}, failures: ["the bare loop reported nothing"] } : (JSON.parse(last.value as string) as { sent: Record<string, number>; failures: string[] });
    const sent: RequestTally = new Map();
    for (const [key, count] of Object.entries(report.sent)) {
      const delta = count - (this.#sentAtReady.get(key) ?? 0);
      if (delta !== 0) sent.set(key, delta);
    }
    return { sent, failures: report.failures };
  }
}

/** The Node flags the image's ENTRYPOINT gives the operator (Dockerfile), so the benchmark measures what users run. */
export function imageNodeFlags(): string[] {
  const dockerfile = readFileSync(path.join(REPO, "Dockerfile"), "utf8");
  const line = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile)?.[1];
  if (!line) throw new Error("the Dockerfile has no ENTRYPOINT in exec form");
  const [node, ...rest] = JSON.parse(line) as string[];
  if (node !== "node") throw new Error(`the Dockerfile's ENTRYPOINT does not run node: ${line}`);
  return rest.filter((argument) => argument.startsWith("--"));
}

/**
 * `node --import exit-with-parent.mjs ARGS`: ends by itself if the benchmark is killed. In a
 * cgroup, a shell joins it and then becomes node (exec), so node starts inside it with the same pid.
 */
function spawnNode(args: readonly string[], env: Record<string, string>, stdio: StdioOptions, cgroup?: MemoryCgroup): ChildProcess {
  const node = [process.execPath, "--import", path.join(import.meta.dirname, "exit-with-parent.mjs"), ...args];
  const [command, ...rest] = cgroup ? ["sh", "-c", `echo $$ > "${cgroup.procsFile}" && exec "$@"`, "sh", ...node] : node;
  return spawn(command as string, rest, { cwd: REPO, env: { ...process.env, ...env }, stdio });
}

/**
 * A memory cgroup (v2, or v1's memory controller) made under the benchmark's own, with a
 * limit: what a container's memory limit is to the processes in it. Root and a writable
 * cgroup tree are needed; make() answers undefined without them.
 */
export class MemoryCgroup {
  readonly dir: string;
  readonly limitBytes: number;

  private constructor(dir: string, limitBytes: number) {
    this.dir = dir;
    this.limitBytes = limitBytes;
  }

  get procsFile(): string {
    return path.join(this.dir, "cgroup.procs");
  }

  static make(limitBytes: number): MemoryCgroup | undefined {
    const own = readFileSync("/proc/self/cgroup", "utf8").split("\n");
    const v1 = own.find((line) => line.split(":")[1]?.split(",").includes("memory"))?.split(":")[2];
    const v2 = own.find((line) => line.startsWith("0::"))?.slice(3);
    const candidates: [string, string][] = [];
    if (v1 !== undefined) candidates.push([path.join("/sys/fs/cgroup/memory", v1), "memory.limit_in_bytes"]);
    if (v2 !== undefined && existsSync("/sys/fs/cgroup/cgroup.controllers")) candidates.push([path.join("/sys/fs/cgroup", v2), "memory.max"]);
    for (const [parent, limitFile] of candidates) {
      const dir = path.join(parent, `wa-bench-${process.pid}-${Date.now()}`);
      try {
        mkdirSync(dir);
        writeFileSync(path.join(dir, limitFile), String(limitBytes));
        return new MemoryCgroup(dir, limitBytes);
      } catch {
        try {
          rmdirSync(dir);
        } catch {
          // not made
        }
      }
    }
    return undefined;
  }

  /** Removes it once its processes are gone. */
  remove(): void {
    try {
      rmdirSync(this.dir);
    } catch {
      // still in use or already gone; the kernel keeps an empty cgroup harmlessly
    }
  }
}

/** The chart's default memory limit for the operator (charts/wa-operator/values.yaml resources.limits.memory), in bytes. */
export function chartMemoryLimitBytes(): number {
  const values = parse(readFileSync(path.join(REPO, "charts", "wa-operator", "values.yaml"), "utf8")) as { resources?: { limits?: { memory?: string } } };
  const text = values.resources?.limits?.memory ?? "";
  const match = /^(\d+)(Ki|Mi|Gi)?$/.exec(text);
  if (!match) throw new Error(`charts/wa-operator/values.yaml: resources.limits.memory ${JSON.stringify(text)} is not a size this benchmark reads`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30 }[match[2] as "Ki" | "Mi" | "Gi"] ?? 1;
  return Number(match[1]) * unit;
}

async function terminate(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(timer);
}

/** CPU time and memory from /proc/<pid>/stat and /proc/<pid>/status. */
export function sampleProcess(pid: number): ProcessSample {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces) start at state (field 3): utime is 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
  return { cpuSeconds: ticks / clockTicks(), rssBytes: kb("VmRSS"), peakRssBytes: kb("VmHWM") };
}

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
