/**
 * A fault-injecting front for a loopback provider emulator: an HTTP server that forwards
 * each request to the emulator, or instead answers it the way a provider (or the proxy in
 * front of it) misbehaves in production. The faults are the ones issue 11 saw in the field:
 *
 * - `serverErrors`: a share of requests answered 500/502/503 without reaching the provider;
 * - `hangs`: a share carried out by the provider whose answer never comes (the socket is
 *   held for `hangMs`, past any client timeout, then destroyed): the client cannot tell
 *   whether a write happened;
 * - `rateLimitBursts`: periodic windows in which every request is answered 429 with a
 *   Retry-After (whole seconds, rounded up) that ends with the window;
 * - `malformed`: a share carried out whose answer is cut in half (truncated JSON);
 * - `oversized`: a share answered 500 with a `oversizedBytes` (2 MiB) error body;
 * - `echoHeader`: every error body repeats that request header's value, as gateways that
 *   say "invalid request for key …" do (so a client that copies error text leaks its key);
 * - `paused`: every request answered 429 with one Retry-After, as a provider that has
 *   stopped serving a client for a day (86400) or gives a value past any sane bound (1e10,
 *   which RFC 9110 §10.2.3's delay-seconds, 1*DIGIT, does not even allow).
 *
 * Error bodies take the provider's own shape through `errorBody`. Every request is recorded
 * with its arrival time, method, path, the client process that sent it (`identify`, asked
 * once per connection), and what it got. Choices come from a seeded generator, so one seed
 * gives one sequence of faults for one sequence of requests.
 */
import { Agent, createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import type { Socket } from "node:net";
import { close, listen, readBody } from "./http.ts";

export interface RateLimitBursts {
  /** A burst begins every `everyMs` of the injector's life, the first after `firstAfterMs` (default everyMs). */
  readonly everyMs: number;
  /** How long a burst lasts: every request inside it is answered 429. */
  readonly lengthMs: number;
  readonly firstAfterMs?: number;
}

export interface Faults {
  /** Share (0..1) of requests answered 5xx without reaching the provider. */
  readonly serverErrors?: number;
  /** Share of requests carried out but never answered. */
  readonly hangs?: number;
  /** How long a hung request holds its socket before it is destroyed. Default 30 s. */
  readonly hangMs?: number;
  /** Share of requests carried out and answered with half their body. */
  readonly malformed?: number;
  /** Share of requests answered 500 with a huge error body. */
  readonly oversized?: number;
  /** Size of that body. Default 2 MiB. */
  readonly oversizedBytes?: number;
  readonly rateLimitBursts?: RateLimitBursts;
  /** A request header (lower case) whose value every error body repeats, e.g. "x-api-key". */
  readonly echoHeader?: string;
  /** Every request answered 429 with this Retry-After, as sent (e.g. "86400", "1e10"). */
  readonly paused?: { readonly retryAfter: string };
}

export interface FaultInjectorOptions extends Faults {
  /** Base URL of the emulator behind. */
  readonly target: string;
  /** The provider's error body for a status and message. Default `{ statusCode, message }`. */
  readonly errorBody?: (status: number, message: string) => unknown;
  /** Names the client process at the other end of a connection (see ../../chaos/socket-owner.ts). */
  readonly identify?: (socket: Socket) => Promise<string | undefined>;
  /** Facts recorded with each request as it arrives (e.g. which session, and its status then). */
  readonly note?: (method: string, path: string, body: Buffer) => Readonly<Record<string, string>> | undefined;
  readonly seed?: number;
  readonly now?: () => number;
}

export type FaultKind = "none" | "server-error" | "hang" | "malformed" | "oversized" | "rate-limited";

export interface FaultRecord {
  readonly seq: number;
  /** Arrival, in ms since the epoch. */
  readonly at: number;
  readonly method: string;
  /** Pathname, without the query string. */
  readonly path: string;
  /** The client process, when `identify` could tell. */
  readonly replica: string | undefined;
  readonly fault: FaultKind;
  /** Whether the provider carried the request out. */
  readonly forwarded: boolean;
  /** The provider's status, when forwarded and it answered. */
  upstreamStatus?: number;
  /** The status the client was sent; 0 while (or when) it got none. */
  status: number;
  /** For a 429: the time until which its Retry-After asked the client to wait. */
  readonly retryUntil?: number;
  /** When the answer was written (or the hung socket destroyed). */
  doneAt?: number;
  readonly note?: Readonly<Record<string, string>>;
}

/** mulberry32: a small, fast, seedable generator; plenty for picking faults. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOP_BY_HOP = new Set(["host", "connection", "keep-alive", "content-length", "transfer-encoding"]);

export class FaultInjector {
  /** Every request, in arrival order. */
  readonly records: FaultRecord[] = [];
  readonly #options: FaultInjectorOptions;
  #faults: Faults;
  readonly #server: Server;
  readonly #target: URL;
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 64 });
  readonly #random: () => number;
  readonly #now: () => number;
  readonly #peers = new WeakMap<Socket, Promise<string | undefined>>();
  readonly #held = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #startedAt = 0;
  #url: string | undefined;

  constructor(options: FaultInjectorOptions) {
    this.#options = options;
    this.#faults = options;
    this.#target = new URL(options.target);
    this.#random = seeded(options.seed ?? 11);
    this.#now = options.now ?? Date.now;
    this.#server = createServer((req, res) => {
      void (async () => {
        const at = this.#now();
        const url = new URL(req.url ?? "/", "http://injector");
        const method = req.method ?? "GET";
        const body = await readBody(req);
        const replica = await (this.#peers.get(req.socket) ?? Promise.resolve(undefined));
        const note = this.#options.note?.(method, url.pathname, body);
        const decision = this.#decide(at);
        const record: FaultRecord = {
          seq: this.records.length,
          at,
          method,
          path: url.pathname,
          replica,
          fault: decision.fault,
          forwarded: decision.fault === "none" || decision.fault === "hang" || decision.fault === "malformed",
          status: 0,
          ...(decision.retryUntil !== undefined ? { retryUntil: decision.retryUntil } : {}),
          ...(note !== undefined ? { note } : {}),
        };
        this.records.push(record);
        const echo = this.#echo(req.headers);
        const answer = (status: number, headers: Record<string, string>, data: Buffer) => {
          record.status = status;
          record.doneAt = this.#now();
          res.writeHead(status, { ...headers, "Content-Length": String(data.length) });
          res.end(data);
        };
        switch (decision.fault) {
          case "rate-limited": {
            const seconds = decision.retryAfter ?? String(Math.max(1, Math.ceil(((decision.retryUntil as number) - at) / 1000)));
            answer(429, { "Content-Type": "application/json", "Retry-After": seconds }, this.#errorBody(429, `Too Many Requests${echo}`));
            return;
          }
          case "server-error": {
            const status = [500, 502, 503][Math.floor(this.#random() * 3)] as number;
            answer(status, { "Content-Type": "application/json" }, this.#errorBody(status, `upstream request failed${echo}`));
            return;
          }
          case "oversized": {
            const filler = "x".repeat(this.#faults.oversizedBytes ?? 2 * 1024 * 1024);
            answer(500, { "Content-Type": "application/json" }, this.#errorBody(500, `${filler}${echo}`));
            return;
          }
          default:
            break;
        }
        const upstream = await this.#forward(method, req.url ?? "/", req.headers, body);
        record.upstreamStatus = upstream.status;
        if (decision.fault === "hang") {
          // Carried out, never answered: the socket is held past the client's timeout, then dropped.
          this.#held.add(req.socket);
          const timer = setTimeout(() => {
            this.#timers.delete(timer);
            this.#held.delete(req.socket);
            record.doneAt = this.#now();
            req.socket.destroy();
          }, this.#faults.hangMs ?? 30_000);
          this.#timers.add(timer);
          return;
        }
        const headers: Record<string, string> = {};
        for (const name of ["content-type", "retry-after"]) {
          const value = upstream.headers[name];
          if (typeof value === "string") headers[name] = value;
        }
        if (decision.fault === "malformed") {
          const cut = upstream.body.length >= 4 ? upstream.body.subarray(0, Math.floor(upstream.body.length / 2)) : Buffer.from('{"name": "');
          answer(upstream.status, { ...headers, "content-type": "application/json" }, cut);
          return;
        }
        answer(upstream.status, headers, upstream.body);
      })().catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500).end(String(error));
      });
    });
    this.#server.on("connection", (socket: Socket) => {
      if (this.#options.identify) this.#peers.set(socket, this.#options.identify(socket).catch(() => undefined));
    });
  }

  /** Listens on 127.0.0.1 and returns the base URL; bursts count from now. */
  async start(): Promise<string> {
    this.#startedAt = this.#now();
    this.#url = await listen(this.#server);
    return this.#url;
  }

  get url(): string {
    if (!this.#url) throw new Error("FaultInjector: not started");
    return this.#url;
  }

  /** Replaces the faults from now on (e.g. none while a scenario cleans up). */
  configure(faults: Faults): void {
    this.#faults = faults;
  }

  async stop(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const socket of this.#held) socket.destroy();
    this.#held.clear();
    await close(this.#server);
    this.#agent.destroy();
  }

  /** The burst a time falls in, as its end; undefined outside bursts. */
  burstEndAt(time: number): number | undefined {
    const bursts = this.#faults.rateLimitBursts;
    if (!bursts || bursts.everyMs <= 0 || bursts.lengthMs <= 0) return undefined;
    const first = this.#startedAt + (bursts.firstAfterMs ?? bursts.everyMs);
    if (time < first) return undefined;
    const start = first + Math.floor((time - first) / bursts.everyMs) * bursts.everyMs;
    return time < start + bursts.lengthMs ? start + bursts.lengthMs : undefined;
  }

  #decide(at: number): { fault: FaultKind; retryUntil?: number; retryAfter?: string } {
    const paused = this.#faults.paused;
    if (paused) return { fault: "rate-limited", retryUntil: at + Number(paused.retryAfter) * 1000, retryAfter: paused.retryAfter };
    const burstEnd = this.burstEndAt(at);
    if (burstEnd !== undefined) {
      // Retry-After is whole seconds: the client is asked to wait at least to the burst's end.
      return { fault: "rate-limited", retryUntil: at + Math.max(1, Math.ceil((burstEnd - at) / 1000)) * 1000 };
    }
    const faults = this.#faults;
    let roll = this.#random();
    for (const [fault, share] of [
      ["server-error", faults.serverErrors],
      ["hang", faults.hangs],
      ["malformed", faults.malformed],
      ["oversized", faults.oversized],
    ] as const) {
      if (roll < (share ?? 0)) return { fault };
      roll -= share ?? 0;
    }
    return { fault: "none" };
  }

  #echo(headers: IncomingHttpHeaders): string {
    const name = this.#faults.echoHeader;
    const value = name ? headers[name] : undefined;
    return typeof value === "string" && value !== "" ? ` for key ${value}` : "";
  }

  #errorBody(status: number, message: string): Buffer {
    const body = this.#options.errorBody ? this.#options.errorBody(status, message) : { statusCode: status, message };
    return Buffer.from(JSON.stringify(body));
  }

  #forward(method: string, path: string, headers: IncomingHttpHeaders, body: Buffer): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
    const forwarded: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) forwarded[name] = value;
    forwarded["content-length"] = String(body.length);
    return new Promise((resolve, reject) => {
      const req = request(new URL(path, this.#target), { method, headers: forwarded, agent: this.#agent }, (res) => {
        void readBody(res).then((data) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }), reject);
      });
      req.on("error", reject);
      req.end(body);
    });
  }
}
