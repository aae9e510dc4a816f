import { spawn } from "node:child_process";
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { inodeOfConnection, SocketOwners } from "../chaos/socket-owner.ts";
import { TcpProxy } from "../chaos/tcp-proxy.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A TCP server that hands each accepted socket to `onSocket`; returns its port. */
async function server(onSocket: (socket: Socket) => void): Promise<number> {
  const created: Server = createServer(onSocket);
  await new Promise<void>((resolve) => created.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise((resolve) => created.close(resolve)));
  return (created.address() as AddressInfo).port;
}

const turns = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("inodeOfConnection", () => {
  const table = [
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
    "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0 100 0 0 10 0",
    "   1: 0100007F:A3F7 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2222 1 0 20 4 30 10 -1",
    "   2: 0100007F:1F90 0100007F:A3F7 01 00000000:00000000 00:00000000 00000000     0        0 3333 1 0 20 4 30 10 -1",
  ].join("\n");

  it("finds the socket by its local and remote ports (hex), not the listener or the other end", () => {
    expect(inodeOfConnection(table, 0xa3f7, 0x1f90)).toBe("2222");
    expect(inodeOfConnection(table, 0x1f90, 0xa3f7)).toBe("3333");
    expect(inodeOfConnection(table, 0x1234, 0x1f90)).toBeUndefined();
  });
});

describe.runIf(process.platform === "linux")("SocketOwners", () => {
  it("names the registered process that opened a connection, and no other", async () => {
    const owners = new SocketOwners();
    const seen: Promise<string | undefined>[] = [];
    const port = await server((socket) => {
      seen.push(owners.identify(socket));
      socket.on("error", () => undefined);
    });
    // A child process connects and holds the connection open until killed.
    const child = spawn(process.execPath, ["-e", `require("net").connect(${port}, "127.0.0.1"); setInterval(() => {}, 1000);`], { stdio: "ignore" });
    cleanups.push(() => child.kill("SIGKILL"));
    owners.register(process.pid, "me");
    owners.register(child.pid as number, "child");
    while (seen.length === 0) await turns(20);
    expect(await seen[0]).toBe("child");

    const mine = connect(port, "127.0.0.1");
    cleanups.push(() => mine.destroy());
    while (seen.length < 2) await turns(20);
    expect(await seen[1]).toBe("me");

    owners.forget(process.pid);
    const unregistered = connect(port, "127.0.0.1");
    cleanups.push(() => unregistered.destroy());
    while (seen.length < 3) await turns(20);
    expect(await seen[2]).toBeUndefined();
  });
});

describe("TcpProxy", () => {
  async function echoBehindProxy(): Promise<{ proxy: TcpProxy; port: number; received: Buffer[]; accepted: () => number }> {
    const received: Buffer[] = [];
    let accepted = 0;
    const target = await server((socket) => {
      accepted++;
      socket.on("data", (chunk: Buffer) => {
        received.push(chunk);
        socket.write(chunk);
      });
      socket.on("error", () => undefined);
    });
    const proxy = new TcpProxy({ host: "127.0.0.1", port: target });
    const port = await proxy.start();
    cleanups.push(() => proxy.stop());
    return { proxy, port, received, accepted: () => accepted };
  }

  function client(port: number): { socket: Socket; replies: Buffer[] } {
    const socket = connect(port, "127.0.0.1");
    const replies: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => replies.push(chunk));
    socket.on("error", () => undefined);
    cleanups.push(() => socket.destroy());
    return { socket, replies };
  }

  it("passes bytes both ways", async () => {
    const { port } = await echoBehindProxy();
    const { socket, replies } = client(port);
    socket.write("hello");
    while (Buffer.concat(replies).toString() !== "hello") await turns(10);
  });

  it("frozen, moves nothing and connects nothing onwards; thawed, delivers what it held, in order", async () => {
    const { proxy, port, received, accepted } = await echoBehindProxy();
    const open = client(port);
    open.socket.write("a");
    while (Buffer.concat(open.replies).toString() !== "a") await turns(10);

    proxy.freeze();
    open.socket.write("b");
    const late = client(port);
    late.socket.write("c");
    await turns(200);
    expect(Buffer.concat(received).toString()).toBe("a");
    expect(accepted()).toBe(1);
    expect(Buffer.concat(open.replies).toString()).toBe("a");

    proxy.thaw();
    while (Buffer.concat(open.replies).toString() !== "ab" || Buffer.concat(late.replies).toString() !== "c") await turns(10);
    expect(accepted()).toBe(2);
  });
});
