/**
 * Runs the built `wa-operator` command as a separate process, as a Deployment would,
 * collecting its JSON log lines so tests can read what it did and when.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { eventually, kubeconfigPath, REPO } from "./kube.ts";

export interface LogLine {
  readonly time: string;
  readonly level: string;
  readonly msg: string;
  readonly [key: string]: unknown;
}

export interface OperatorProcess {
  readonly child: ChildProcess;
  readonly logs: LogLine[];
  /** Base URL of its HTTP endpoint (healthz, readyz, provider events). */
  readonly url: string;
  /** Base URL of its metrics endpoint (/metrics). */
  readonly metricsUrl: string;
  readonly exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export async function spawnOperator(args: readonly string[], env: Record<string, string> = {}): Promise<OperatorProcess> {
  const child = spawn(process.execPath, [path.join(REPO, "src/cli/operator.ts"), "--http-address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0", ...args], {
    env: { ...process.env, KUBECONFIG: kubeconfigPath(), LOG_LEVEL: "debug", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  const logs: LogLine[] = [];
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  createInterface({ input: child.stdout! }).on("line", (line) => {
    try {
      logs.push(JSON.parse(line) as LogLine);
    } catch {
      logs.push({ time: new Date().toISOString(), level: "raw", msg: line });
    }
  });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const url = await eventually(
    "the operator's HTTP endpoint",
    async () => {
      if (child.exitCode !== null) throw new Error(`operator exited ${child.exitCode}: ${stderr}`);
      return logs.find((line) => line.msg.startsWith("serving /healthz") && line.msg.includes("/provider-events"))?.["url"] as string | undefined;
    },
    30_000,
  );
  const metricsUrl = await eventually("the operator's metrics endpoint", () => logs.find((line) => line.msg.startsWith("serving /healthz") && line.msg.includes("/metrics"))?.["url"] as string | undefined);
  return { child, logs, url, metricsUrl, exited, kill: (signal) => child.kill(signal) };
}
