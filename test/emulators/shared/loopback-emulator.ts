/**
 * The plumbing every loopback provider emulator shares: a node:http server on 127.0.0.1,
 * a log of answered requests, an outage switch and scripted answers for error paths the
 * provider cannot be pushed into on demand (a broken body, a 429 it never documents).
 * A provider emulator extends this class and only writes `handle` and its outage reply.
 */
import { createServer, type Server } from "node:http";
import { close, listen, readBody, sendReply, type EmulatorRequest, type Reply } from "./http.ts";

export interface CallRecord {
  readonly method: string;
  /** Pathname only: credentials travel in headers or bodies and are never recorded. */
  readonly path: string;
  readonly status: number;
}

/** A 200 whose body is not JSON at all, or JSON in a shape no endpoint documents. */
export type Corruption = "not-json" | "wrong-shape";

export abstract class LoopbackEmulator {
  /** Every answered request, in order. */
  readonly calls: CallRecord[] = [];
  readonly #server: Server;
  #available = true;
  readonly #scripted: Reply[] = [];

  constructor() {
    this.#server = createServer((req, res) => {
      void (async () => {
        const rawBody = await readBody(req);
        const url = new URL(req.url ?? "/", "http://emulator");
        const method = req.method ?? "GET";
        const reply = await this.#answer({ method, path: url.pathname, query: url.searchParams, headers: req.headers, params: {}, rawBody });
        this.calls.push({ method, path: url.pathname, status: reply.status });
        sendReply(res, reply);
      })().catch((error: unknown) => {
        res.writeHead(500).end(String(error));
      });
    });
  }

  /** Listens on 127.0.0.1 with a free port; returns the base URL. */
  start(): Promise<string> {
    return listen(this.#server);
  }

  stop(): Promise<void> {
    return close(this.#server);
  }

  /** false: every request answers the provider's 503 until set back to true. */
  setAvailable(available: boolean): void {
    this.#available = available;
  }

  /** Answers the next request with `reply` instead of carrying it out. Queued replies go first-in, first-out. */
  respondNext(reply: Reply): void {
    this.#scripted.push(reply);
  }

  /** Answers the next request with a broken 200 instead of carrying it out. */
  corruptNext(kind: Corruption): void {
    this.respondNext(
      kind === "not-json"
        ? { status: 200, raw: { contentType: "application/json", data: Buffer.from('{"data": {"id": "trunc') } }
        : { status: 200, body: { unexpected: true } },
    );
  }

  /** The calls whose method and path match, for assertions. */
  callsTo(method: string, path: string | RegExp): CallRecord[] {
    return this.calls.filter((call) => call.method === method && (typeof path === "string" ? call.path === path : path.test(call.path)));
  }

  /** The provider's own answer to any request while it is down. */
  protected abstract unavailableReply(): Reply;

  /** Carries out one request as the provider would. */
  protected abstract handle(req: EmulatorRequest): Promise<Reply>;

  #answer(req: EmulatorRequest): Promise<Reply> {
    if (!this.#available) return Promise.resolve(this.unavailableReply());
    const scripted = this.#scripted.shift();
    if (scripted) return Promise.resolve(scripted);
    return this.handle(req);
  }
}

/** The request body as JSON, or undefined when it is empty or not JSON (the emulator answers the error). */
export function jsonBody(req: EmulatorRequest): unknown {
  try {
    return JSON.parse(req.rawBody.toString("utf8"));
  } catch {
    return undefined;
  }
}
