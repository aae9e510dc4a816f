// vitest globalSetup of the `integration` project: one fresh, throwaway control plane
// (etcd + kube-apiserver + kube-controller-manager with the garbage-collector, namespace
// and ClusterRole-aggregation controllers) per test run, on loopback ports, torn down afterwards.
//
// Tests get the admin kubeconfig as process.env.KUBECONFIG and inject("kubeconfig"), and
// the built kubectl first on PATH. The binaries come from WA_CONTROL_PLANE_BIN when set,
// else from hack/control-plane/build.sh (built on first use, cached afterwards).
// Set WA_KEEP_CONTROL_PLANE_DIR=1 to keep the working dir (logs, etcd data) after the run.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import type { TestProject } from "vitest/node";
import { resolveBinDir, startControlPlane } from "../../hack/control-plane/cluster.ts";

const PREFIX = "wa-operator-control-plane-";
const OWNER_FILE = "owner.pid";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes the dirs of earlier runs that were killed before their teardown (owner gone). */
function sweepOrphanedDirs(): void {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = join(tmpdir(), name);
    try {
      const owner = Number(readFileSync(join(dir, OWNER_FILE), "utf8"));
      if (owner > 0 && !alive(owner) && !process.env.WA_KEEP_CONTROL_PLANE_DIR) rmSync(dir, { recursive: true, force: true });
    } catch {
      // no owner file (yet, or a kept dir from a failed start): leave it
    }
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  sweepOrphanedDirs();
  const binDir = await resolveBinDir();
  const dir = mkdtempSync(join(tmpdir(), PREFIX));
  writeFileSync(join(dir, OWNER_FILE), String(process.pid));
  const verbose = !!process.env.WA_CONTROL_PLANE_VERBOSE;
  let cp;
  try {
    cp = await startControlPlane({
      dir,
      binDir,
      log: (m) => {
        if (verbose) console.error(`control plane: ${m}`);
      },
    });
  } catch (err) {
    // Keep the dir: its *.log files tell why.
    rmSync(join(dir, OWNER_FILE), { force: true });
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n(control plane dir kept: ${dir})`, { cause: err });
  }

  process.env.KUBECONFIG = cp.kubeconfigPath;
  process.env.PATH = `${binDir}${delimiter}${process.env.PATH ?? ""}`;
  project.provide("kubeconfig", cp.kubeconfigPath);
  project.provide("kubeApiserverVersion", cp.version);
  project.provide("kubeApiserverUrl", cp.server);
  project.provide("etcdVersion", cp.etcdVersion);
  project.provide("controlPlaneBinDir", binDir);
  console.log(`control plane: kube-apiserver ${cp.version} (etcd ${cp.etcdVersion}) at ${cp.server}`);

  const running = cp;
  return async () => {
    await running.stop();
    if (process.env.WA_KEEP_CONTROL_PLANE_DIR) console.log(`control plane dir kept: ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  };
}
