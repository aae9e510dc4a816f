/**
 * The operator as the benchmark runs it: `node src/cli/operator.ts` in its own process,
 * so its CPU time and memory can be read from /proc/<pid> apart from everything else.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import path from "node:path";

const REPO = path.resolve(import.meta.dirname, "..", "..");

export interface OperatorProcessOptions {
  readonly kubeconfig: string;
  /** Namespaces it watches (WATCH_NAMESPACES). */
  readonly namespaces: readonly string[];
  readonly concurrency: number;
  readonly logFile: string;
  readonly logLevel: string;
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
  readonly #exited: Promise<void>;

  private constructor(child: ChildProcess, url: string) {
    this.child = child;
    this.url = url;
    this.#exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once("exit", () => resolve());
    });
  }

  static async start(options: OperatorProcessOptions): Promise<OperatorProcess> {
    const port = await freePort();
    const log = openSync(options.logFile, "w");
    const child = spawn(
      process.execPath,
      ["--import", path.join(import.meta.dirname, "exit-with-parent.ts"), path.join(REPO, "src/cli/operator.ts")],
      {
        cwd: REPO,
        env: {
          ...process.env,
          KUBECONFIG: options.kubeconfig,
          LEADER_ELECTION: "false",
          WATCH_NAMESPACES: options.namespaces.join(","),
          CONCURRENCY: String(options.concurrency),
          HTTP_ADDRESS: `127.0.0.1:${port}`,
          LOG_LEVEL: options.logLevel,
        },
        stdio: ["ignore", log, log],
      },
    );
    closeSync(log);
    const operator = new OperatorProcess(child, `http://127.0.0.1:${port}`);
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

  /** CPU time and memory from /proc/<pid>/stat and /proc/<pid>/status. */
  sample(): ProcessSample {
    const stat = readFileSync(`/proc/${this.pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start at state (field 3): utime is 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    const status = readFileSync(`/proc/${this.pid}/status`, "utf8");
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
    return { cpuSeconds: ticks / clockTicks(), rssBytes: kb("VmRSS"), peakRssBytes: kb("VmHWM") };
  }

  /** SIGTERM (it finishes in-flight work), SIGKILL after 15 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 15_000);
    await this.#exited;
    clearTimeout(timer);
  }
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
