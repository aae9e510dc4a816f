/** kubectl-whatsapp as a user runs it: a separate process, with the test cluster's kubeconfig. */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { kubeconfigPath, REPO } from "./kube.ts";

/** The entry users run (src/bin checks the Node version, then loads src/cli). */
export const PLUGIN = path.join(REPO, "src", "bin", "kubectl-whatsapp.ts");

export const pluginEnv = (): NodeJS.ProcessEnv => ({ ...process.env, KUBECONFIG: kubeconfigPath() });

export interface FollowedPlugin {
  /** stdout so far. */
  output(): string;
  /** stderr so far. */
  errors(): string;
  readonly exited: Promise<number | null>;
}

const running = new Set<ChildProcess>();

/** Starts `kubectl-whatsapp ARGS`, collecting its output as it comes. */
export function followPlugin(args: readonly string[], cwd?: string): FollowedPlugin {
  return collect(spawn(process.execPath, [PLUGIN, ...args], { env: pluginEnv(), cwd, stdio: ["ignore", "pipe", "pipe"] }));
}

/**
 * Starts `kubectl-whatsapp ARGS` on a terminal of the given size: a pseudo-terminal from
 * util-linux's script(1) (Debian: bsdutils, an essential package). Its stdout and stderr
 * both arrive in output(), with the terminal's "\r\n" line ends turned back into "\n".
 */
export function followPluginOnTerminal(args: readonly string[], size: { readonly columns: number; readonly rows: number }, cwd?: string): FollowedPlugin {
  const quote = (word: string) => `'${word.replace(/'/g, "'\\''")}'`;
  const command = `stty rows ${size.rows} cols ${size.columns} && exec ${[process.execPath, PLUGIN, ...args].map(quote).join(" ")}`;
  return collect(spawn("script", ["--quiet", "--return", "--flush", "--command", command, "/dev/null"], { env: pluginEnv(), cwd, stdio: ["ignore", "pipe", "pipe"] }), "\r\n");
}

function collect(child: ChildProcess & { stdout: NodeJS.ReadableStream; stderr: NodeJS.ReadableStream }, lineEnd = "\n"): FollowedPlugin {
  running.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  return { output: () => (lineEnd === "\n" ? stdout : stdout.replaceAll(lineEnd, "\n")), errors: () => stderr, exited };
}

/** Kills every plugin process followPlugin started that is still running. */
export function killPlugins(): void {
  for (const child of running) child.kill("SIGKILL");
}
