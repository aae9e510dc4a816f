/**
 * `npm run chaos` (node bench/chaos.ts): the fault suite of issue 11 on a local control plane
 * of its own, with the operator as separate processes and a fault-injecting WAHA emulator.
 * Prints a table of figures per scenario and exits 1 when a check fails.
 *
 *   npm run chaos                      the sizes of issue 11 (300 instances / 15 kills, 200 under faults)
 *   npm run chaos -- --small           the same scenarios, small, in a few minutes
 *   npm run chaos -- --only kills,faults --instances 100 --kills 5 --fault-instances 50 --scan 20
 *   npm run chaos -- --keep            keep the working dir (operator logs, control-plane logs)
 *
 * Scenarios: kills (1), election (2), faults (3), apiserver (4), pause (7: providers
 * answering 429 Retry-After 86400 and 1e10 beside an open one), placement (8: selector
 * instances over three gateways, the leader SIGKILLed while placing); 5 (secret grep) and 6
 * (repeated restarts) are computed over whichever ran.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { resolveBinDir } from "../hack/control-plane/cluster.ts";
import { DEFAULT_CONFIG, formatReport, runChaos, SCENARIOS, SMALL_CONFIG, type ChaosConfig, type ScenarioName } from "../test/chaos/run.ts";

const { values } = parseArgs({
  options: {
    small: { type: "boolean", default: false },
    only: { type: "string" },
    instances: { type: "string" },
    kills: { type: "string" },
    "fault-instances": { type: "string" },
    scan: { type: "string" },
    keep: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
});
if (values.help) {
  console.log("usage: npm run chaos -- [--small] [--only kills,election,faults,apiserver,pause,placement] [--instances N] [--kills K] [--fault-instances N] [--scan N] [--keep]");
  process.exit(0);
}

const number = (text: string | undefined, fallback: number) => (text === undefined ? fallback : Math.max(1, Math.floor(Number(text))) || fallback);
const base = values.small ? SMALL_CONFIG : DEFAULT_CONFIG;
const config: ChaosConfig = {
  ...base,
  kills: { ...base.kills, instances: number(values.instances, base.kills.instances), kills: number(values.kills, base.kills.kills) },
  faults: { ...base.faults, instances: number(values["fault-instances"], base.faults.instances), scan: number(values.scan, base.faults.scan) },
};
const only = values.only?.split(",").map((name) => name.trim()) as ScenarioName[] | undefined;
const unknown = only?.filter((name) => !(SCENARIOS as readonly string[]).includes(name)) ?? [];
if (unknown.length > 0) {
  console.error(`unknown scenario(s): ${unknown.join(", ")}; known: ${SCENARIOS.join(", ")}`);
  process.exit(2);
}

// A signal ends the run through process.exit, so the exit handlers stop every operator process.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => process.exit(130));

const dir = mkdtempSync(path.join(tmpdir(), "wa-operator-chaos-"));
const startedAt = Date.now();
const stamp = () => `[${((Date.now() - startedAt) / 1000).toFixed(0).padStart(4)} s]`;
let exitCode = 1;
try {
  const binDir = await resolveBinDir({ quiet: true });
  const result = await runChaos({
    config,
    ...(only ? { only } : {}),
    binDir,
    dir,
    log: (message) => console.error(`${stamp()} ${message}`),
    onReport: (report) => console.log(`\n${formatReport(report)}`),
  });
  console.log(`\n${result.failures.length === 0 ? "every check held" : `${result.failures.length} check(s) failed:`}`);
  for (const failure of result.failures) console.log(`  - ${failure}`);
  console.log(`total wall time ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
  exitCode = result.failures.length === 0 ? 0 : 1;
} catch (error) {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
} finally {
  if (values.keep || exitCode !== 0) console.error(`working dir kept: ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);
