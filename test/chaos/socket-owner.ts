/**
 * Which of our child processes is at the other end of a loopback TCP connection, read
 * from Linux's /proc: the client's socket is the /proc/net/tcp{,6} entry whose local
 * port is the connection's remote port and whose remote port is ours; its inode shows
 * up as `socket:[inode]` among the fds of the process that holds it.
 *
 * The operator sends nothing that tells its replicas apart (no User-Agent, no replica
 * header) and every replica reads the provider URL from the same resource, so this is
 * how a provider emulator learns which replica sent a request without a change to the
 * operator.
 */
import { readdir, readFile, readlink } from "node:fs/promises";
import type { Socket } from "node:net";

/** Parses /proc/net/tcp text: the inode of the socket from `localPort` to `remotePort`. */
export function inodeOfConnection(procNetTcp: string, localPort: number, remotePort: number): string | undefined {
  const local = localPort.toString(16).toUpperCase().padStart(4, "0");
  const remote = remotePort.toString(16).toUpperCase().padStart(4, "0");
  for (const line of procNetTcp.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    if (fields[1]?.endsWith(`:${local}`) && fields[2]?.endsWith(`:${remote}`)) return fields[9];
  }
  return undefined;
}

export class SocketOwners {
  readonly #candidates = new Map<number, string>();

  /** A process whose connections should be named `label`. */
  register(pid: number, label: string): void {
    this.#candidates.set(pid, label);
  }

  forget(pid: number): void {
    this.#candidates.delete(pid);
  }

  /** The label of the registered process holding the client end of `socket`, if any. */
  async identify(socket: Socket): Promise<string | undefined> {
    const clientPort = socket.remotePort;
    const serverPort = socket.localPort;
    if (clientPort === undefined || serverPort === undefined) return undefined;
    let inode: string | undefined;
    for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
      inode = inodeOfConnection(await readFile(table, "utf8").catch(() => ""), clientPort, serverPort);
      if (inode) break;
    }
    if (!inode || inode === "0") return undefined;
    const link = `socket:[${inode}]`;
    for (const [pid, label] of this.#candidates) {
      const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
      for (const fd of fds) {
        if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "")) === link) return label;
      }
    }
    return undefined;
  }
}
