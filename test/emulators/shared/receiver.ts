/**
 * A loopback HTTP server that records every request it gets: the stand-in for an
 * operator's webhook endpoint in emulator tests. Keeps the raw body bytes, since
 * signatures are computed over them.
 */
import { createServer, type IncomingHttpHeaders } from "node:http";

import { close, listen, readBody } from "./http.ts";

export interface ReceivedRequest {
  readonly method: string;
  /** Path and query, as sent. */
  readonly url: string;
  /** Node lower-cases header names. */
  readonly headers: IncomingHttpHeaders;
  readonly rawBody: Buffer;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  readonly json: unknown;
}

export interface Receiver {
  /** Base URL, e.g. `http://127.0.0.1:40123`; any path is accepted. */
  readonly url: string;
  readonly received: ReceivedRequest[];
  /** Status answered to the next requests (default 200). */
  respondWith(status: number): void;
  /** Resolves once at least `count` requests arrived; rejects after `timeoutMs` of real time. */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const received: ReceivedRequest[] = [];
  let status = 200;
  const waiters = new Set<() => void>();
  const server = createServer((req, res) => {
    void readBody(req).then((rawBody) => {
      let json: unknown;
      try {
        json = rawBody.length > 0 ? JSON.parse(rawBody.toString("utf8")) : undefined;
      } catch {
        json = undefined;
      }
      received.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, rawBody, json });
      res.writeHead(status, { "Content-Length": 0 });
      res.end();
      for (const w of [...waiters]) w();
    });
  });
  const url = await listen(server);
  return {
    url,
    received,
    respondWith(next) {
      status = next;
    },
    waitFor(count, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (received.length < count) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(received.slice());
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`receiver: expected ${count} requests, got ${received.length} in ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () => close(server),
  };
}
