// The supervisor the control-plane servers run under, so that they never outlive their
// owner. cluster.ts starts it (node supervisor.ts) as the leader of a new process group
// with a pipe on stdin; the servers it spawns share that group.
//
//  - When stdin closes (the owner exited, crashed or was SIGKILLed: the kernel closes the
//    pipe) it stops every server at once (SIGTERM, SIGKILL after 2 s); on a "stop"
//    request or SIGTERM/SIGINT/SIGHUP it stops them one by one in reverse start order
//    (SIGTERM, SIGKILL after a grace period). Then it kills whatever is left in its
//    process group and exits.
//  - Where util-linux setpriv is available the servers are started with a parent-death
//    signal (SIGKILL), so even a SIGKILLed supervisor takes them down.
//
// Protocol: JSON lines. Owner -> stdin:
//   {"op":"spawn","name":"etcd","command":"/abs/etcd","args":[...],"log":"/abs/etcd.log"}
//   {"op":"stop","graceMs":5000}
// Supervisor -> stdout:
//   {"event":"ready","pid":123}
//   {"event":"spawned","name":"etcd","pid":124} | {"event":"spawn-error","name":"etcd","message":"..."}
//   {"event":"exit","name":"etcd","code":0,"signal":null}
//   {"event":"stopped"}
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { createInterface } from "node:readline";

interface SpawnRequest {
  op: "spawn";
  name: string;
  command: string;
  args: string[];
  log: string;
  env?: Record<string, string>;
}
interface StopRequest {
  op: "stop";
  graceMs?: number;
}
type Request = SpawnRequest | StopRequest;

interface Child {
  name: string;
  proc: ChildProcess;
  exited: Promise<void>;
  done: boolean;
}

const DEFAULT_GRACE_MS = 5_000;
const ORPHAN_GRACE_MS = 2_000;
const children: Child[] = [];
let stopping: Promise<void> | undefined;

function emit(event: Record<string, unknown>): void {
  try {
    // Writes to a pipe are synchronous on Linux, so nothing is lost on exit.
    process.stdout.write(JSON.stringify(event) + "\n");
  } catch {
    // The owner is gone; keep going, the stdin close will stop us.
  }
}
process.stdout.on("error", () => {});

const pdeathsig: string[] = (() => {
  if (process.platform !== "linux") return [];
  const r = spawnSync("setpriv", ["--help"], { encoding: "utf8" });
  return r.status === 0 && r.stdout.includes("--pdeathsig") ? ["setpriv", "--pdeathsig", "KILL", "--"] : [];
})();

function startChild(req: SpawnRequest): void {
  if (stopping) {
    emit({ event: "spawn-error", name: req.name, message: "supervisor is stopping" });
    return;
  }
  let fd: number;
  try {
    fd = openSync(req.log, "a");
  } catch (err) {
    emit({ event: "spawn-error", name: req.name, message: String(err) });
    return;
  }
  const [cmd, ...args] = [...pdeathsig, req.command, ...req.args] as [string, ...string[]];
  const proc = spawn(cmd, args, {
    stdio: ["ignore", fd, fd],
    env: { ...process.env, ...req.env },
  });
  closeSync(fd);
  let resolveExit!: () => void;
  const child: Child = { name: req.name, proc, done: false, exited: new Promise((r) => (resolveExit = r)) };
  children.push(child);
  proc.on("error", (err) => {
    emit({ event: "spawn-error", name: req.name, message: err.message });
    child.done = true;
    resolveExit();
  });
  proc.on("spawn", () => emit({ event: "spawned", name: req.name, pid: proc.pid }));
  proc.on("exit", (code, signal) => {
    child.done = true;
    emit({ event: "exit", name: req.name, code, signal });
    resolveExit();
  });
}

function signal(child: Child, sig: NodeJS.Signals): void {
  if (child.done) return;
  try {
    child.proc.kill(sig);
  } catch {
    // already gone
  }
}

async function stopChild(child: Child, graceMs: number): Promise<void> {
  if (child.done) return;
  signal(child, "SIGTERM");
  const timer = setTimeout(() => signal(child, "SIGKILL"), graceMs);
  await child.exited;
  clearTimeout(timer);
}

function stop(graceMs: number, all = false): Promise<void> {
  stopping ??= (async () => {
    if (all) {
      // The owner is gone: nobody waits for an orderly shutdown, so be quick.
      await Promise.all(children.map((c) => stopChild(c, graceMs)));
    } else {
      // Reverse start order: controller-manager, then apiserver, then etcd.
      for (const child of [...children].reverse()) await stopChild(child, graceMs);
    }
    emit({ event: "stopped" });
    // Anything that escaped into our process group (nothing should) goes too. This also
    // ends the supervisor itself.
    try {
      process.kill(-process.pid, "SIGKILL");
    } catch {
      // not a group leader (started without detached): only our own children existed
    }
    process.exit(0);
  })();
  return stopping;
}

const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (!line.trim()) return;
  let req: Request;
  try {
    req = JSON.parse(line) as Request;
  } catch {
    emit({ event: "protocol-error", line });
    return;
  }
  if (req.op === "spawn") startChild(req);
  else if (req.op === "stop") void stop(req.graceMs ?? DEFAULT_GRACE_MS);
});
// The owner's end of the pipe closed: the owner is gone (or, after a stop request, wants
// us gone; then the orderly stop is already under way).
rl.on("close", () => void stop(ORPHAN_GRACE_MS, true));
process.stdin.on("error", () => void stop(ORPHAN_GRACE_MS, true));
for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(sig, () => void stop(DEFAULT_GRACE_MS));

emit({ event: "ready", pid: process.pid });
