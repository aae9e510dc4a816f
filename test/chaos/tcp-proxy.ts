/**
 * A loopback TCP proxy that can be frozen: a network partition between one client (an
 * operator replica) and one server (kube-apiserver), healed by thawing. Bytes pass
 * through untouched (TLS included), so the client sees the server's own certificate.
 *
 * Frozen, nothing moves either way and new connections are accepted but not connected
 * onwards, as when packets are dropped: the client learns nothing until its own
 * timeouts fire. What was held is delivered on thaw, as TCP retransmission would.
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";

interface Pipe {
  readonly client: Socket;
  upstream: Socket | undefined;
  readonly toUpstream: Buffer[];
  readonly toClient: Buffer[];
}

export class TcpProxy {
  readonly #target: { host: string; port: number };
  readonly #server: Server;
  readonly #pipes = new Set<Pipe>();
  #frozen = false;

  constructor(target: { host: string; port: number }) {
    this.#target = target;
    this.#server = createServer((client) => this.#accept(client));
  }

  /** Listens on 127.0.0.1 and returns the port. */
  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(0, "127.0.0.1", () => resolve());
    });
    return (this.#server.address() as AddressInfo).port;
  }

  get frozen(): boolean {
    return this.#frozen;
  }

  /** From now on nothing passes, in either direction. */
  freeze(): void {
    this.#frozen = true;
    for (const pipe of this.#pipes) {
      pipe.client.pause();
      pipe.upstream?.pause();
    }
  }

  /** Delivers what was held and lets everything through again. */
  thaw(): void {
    this.#frozen = false;
    for (const pipe of this.#pipes) {
      if (!pipe.upstream) this.#connect(pipe);
      this.#flush(pipe);
      pipe.client.resume();
      pipe.upstream?.resume();
    }
  }

  async stop(): Promise<void> {
    for (const pipe of this.#pipes) {
      pipe.client.destroy();
      pipe.upstream?.destroy();
    }
    this.#pipes.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    const pipe: Pipe = { client, upstream: undefined, toUpstream: [], toClient: [] };
    this.#pipes.add(pipe);
    client.on("data", (chunk: Buffer) => {
      if (this.#frozen || !pipe.upstream) {
        pipe.toUpstream.push(chunk);
        if (this.#frozen) client.pause();
      } else {
        pipe.upstream.write(chunk);
      }
    });
    const end = () => {
      this.#pipes.delete(pipe);
      client.destroy();
      pipe.upstream?.destroy();
    };
    client.on("close", end);
    client.on("error", end);
    if (this.#frozen) client.pause();
    else this.#connect(pipe);
  }

  #connect(pipe: Pipe): void {
    const upstream = connect(this.#target.port, this.#target.host);
    pipe.upstream = upstream;
    upstream.on("data", (chunk: Buffer) => {
      if (this.#frozen) {
        pipe.toClient.push(chunk);
        upstream.pause();
      } else {
        pipe.client.write(chunk);
      }
    });
    const end = () => {
      this.#pipes.delete(pipe);
      upstream.destroy();
      pipe.client.destroy();
    };
    upstream.on("close", end);
    upstream.on("error", end);
  }

  #flush(pipe: Pipe): void {
    // A socket still connecting queues writes in order, so held bytes go first.
    if (pipe.upstream) for (const chunk of pipe.toUpstream.splice(0)) pipe.upstream.write(chunk);
    for (const chunk of pipe.toClient.splice(0)) pipe.client.write(chunk);
  }
}
