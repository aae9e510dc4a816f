/**
 * `node bench/tracing-rss.ts [--runs 5] [--settle 10] [--rev REV]...`: the operator's resident
 * memory with tracing off, against the operator before tracing existed, and with tracing on.
 *
 * Starts a throwaway local control plane with the CRDs and one namespace, then runs each
 * variant as its own process (`node src/cli/operator.ts`, no objects to reconcile), waits for
 * "reconciling" and `--settle` seconds more, and reads VmRSS from /proc. Variants take turns,
 * run by run, so drift on the machine falls on all of them alike:
 *   REV       each --rev's sources and runtime dependencies (npm ci --omit=dev), no OTEL_*
 *             variable; by default the commit that added src/tracing.ts and its parent, which
 *             differ by tracing alone
 *   head-off  this checkout, no OTEL_* variable (tracing off, the default)
 *   head-on   this checkout with OTEL_EXPORTER_OTLP_ENDPOINT at a loopback sink
 * Prints each run and the median per variant. Everything runs on loopback; every process it
 * starts is stopped at the end.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { resolveBinDir, startControlPlane, type ControlPlane } from "../hack/control-plane/cluster.ts";

const REPO = path.resolve(import.meta.dirname, "..");
const { values } = parseArgs({ options: { runs: { type: "string", default: "5" }, settle: { type: "string", default: "10" }, rev: { type: "string", multiple: true } } });
const runs = Number(values.runs);
const settleMs = Number(values.settle) * 1000;
const git = (args: readonly string[]): string => execFileSync("git", ["-C", REPO, ...args], { encoding: "utf8" }).trim();
const tracingAdded = (): string => git(["log", "--diff-filter=A", "--format=%h", "--", "src/tracing.ts"]).split("\n").at(-1) ?? "";
const revs = values.rev ?? [`${tracingAdded()}^`, tracingAdded()];

/** REV's operator sources and runtime dependencies, in `into`. */
function checkout(rev: string, into: string): string {
  execFileSync("sh", ["-c", 'mkdir -p "$1" && git -C "$2" archive "$3" src package.json package-lock.json | tar -x -C "$1"', "sh", into, REPO, rev]);
  execFileSync("npm", ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"], { cwd: into, stdio: ["ignore", "ignore", "inherit"] });
  return into;
}

/** VmRSS of a process, in MiB. */
function rssMiB(pid: number): number {
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  if (!kib) throw new Error(`no VmRSS for ${pid}`);
  return Number(kib) / 1024;
}

/** Runs one operator until it reconciles and `settleMs` more; its RSS then. */
async function measure(root: string, env: Record<string, string>, namespace: string): Promise<number> {
  const child: ChildProcess = spawn(process.execPath, [path.join(root, "src", "cli", "operator.ts"), "--namespaces", namespace, "--operator-namespace", namespace], {
    env: { ...process.env, ...env, HTTP_ADDRESS: "127.0.0.1:0", METRICS_ADDRESS: "127.0.0.1:0", LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no `reconciling` line within 60 s")), 60_000);
      child.once("exit", (code) => reject(new Error(`operator exited ${code}`)));
      createInterface({ input: child.stdout! }).on("line", (line) => {
        if (line.includes('"msg":"reconciling"')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    return rssMiB(child.pid!);
  } finally {
    child.kill("SIGTERM");
    if (child.exitCode === null) await new Promise((resolve) => child.once("exit", resolve));
  }
}

const median = (numbers: readonly number[]): number => {
  const sorted = [...numbers].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};

async function main(): Promise<void> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), "tracing-rss-"));
  let plane: ControlPlane | undefined;
  // Spans go nowhere: a loopback OTLP/HTTP endpoint that accepts everything.
  const sink = http.createServer((req, res) => req.resume().on("end", () => res.writeHead(200, { "Content-Type": "application/json" }).end("{}")));
  try {
    const variants: { name: string; root: string; tracing: boolean }[] = [
      ...revs.map((rev, index) => ({ name: `${git(["rev-parse", "--short", rev])} (${rev})`, root: checkout(rev, path.join(scratch, `rev-${index}`)), tracing: false })),
      { name: "head-off", root: REPO, tracing: false },
      { name: "head-on", root: REPO, tracing: true },
    ];
    await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
    const binDir = await resolveBinDir({ quiet: true });
    plane = await startControlPlane({ dir: path.join(scratch, "cluster"), binDir });
    const kubectl = (args: readonly string[]) => execFileSync(path.join(binDir, "kubectl"), [...args], { env: { ...process.env, KUBECONFIG: plane!.kubeconfigPath }, stdio: ["ignore", "ignore", "inherit"] });
    kubectl(["apply", "--server-side", "-f", path.join(REPO, "crds")]);
    kubectl(["create", "namespace", "rss"]);
    const kubeconfig = { KUBECONFIG: plane.kubeconfigPath };
    const traced = { ...kubeconfig, OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(sink.address() as AddressInfo).port}` };
    for (const name of Object.keys(process.env)) if (name.startsWith("OTEL_")) delete process.env[name];
    const results = new Map(variants.map((variant) => [variant.name, [] as number[]]));
    const width = Math.max(...variants.map((variant) => variant.name.length));
    for (let run = 1; run <= runs; run++) {
      for (const variant of variants) {
        const rss = await measure(variant.root, variant.tracing ? traced : kubeconfig, "rss");
        results.get(variant.name)?.push(rss);
        console.log(`run ${run} ${variant.name.padEnd(width)} ${rss.toFixed(1)} MiB`);
      }
    }
    console.log(`\nnode ${process.version}; ${runs} runs, ${settleMs / 1000} s after "reconciling"; ${revs.map((rev) => git(["log", "-1", "--format=%h %s", rev])).join("; ")}`);
    console.log("| variant | median RSS (MiB) | runs (MiB) |\n|---|---|---|");
    for (const [name, rss] of results) console.log(`| ${name} | ${median(rss).toFixed(1)} | ${rss.map((value) => value.toFixed(1)).join(", ")} |`);
  } finally {
    await plane?.stop();
    sink.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
