/**
 * `kubectl whatsapp qr NAME --web`: the code on a page in the browser, for when the
 * terminal is too small or far from the phone. A tiny HTTP server on 127.0.0.1 only
 * serves one page and its event stream; the page updates as the provider rotates codes,
 * shows "Connected as +<phone>" once linked, and the command exits when every open page
 * has shown that (or on Ctrl-C).
 *
 * The code is as good as the link itself, so the server answers only on loopback, only
 * under a random path printed once (other local users cannot guess it), and only to
 * requests naming it by its loopback address (a DNS-rebinding page cannot reach it).
 * Nothing it prints contains a code.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { qrModules } from "../providers/qr.ts";
import { EXIT, PluginError, type ExitCode } from "./errors.ts";
import { pageCsp, renderPage, type PageState } from "./qr-page.ts";
import { codeKey, connectedLine, followQr, PngSaver, qrNotes, QUIET_ZONE, Wakeup, type FollowOptions, type NoteContext, type QrView } from "./qr.ts";

/** The page has room: level M survives the glare and blur of a camera pointed at a screen. */
export const PAGE_QR_LEVEL = "M";

/** Pixels per module: crisp on any screen, and a version-10 code stays under 600 px. */
const MODULE_PX = 8;

/** The QR code as SVG markup, quiet zone included, dark modules as one path of runs. */
export function qrSvg(modules: readonly (readonly boolean[])[]): string {
  const side = modules.length + 2 * QUIET_ZONE;
  let path = "";
  modules.forEach((row, y) => {
    for (let x = 0; x < row.length; ) {
      if (!row[x]) {
        x++;
        continue;
      }
      let end = x;
      while (row[end]) end++;
      path += `M${x + QUIET_ZONE} ${y + QUIET_ZONE}h${end - x}v1h-${end - x}z`;
      x = end;
    }
  });
  const px = side * MODULE_PX;
  return `<svg viewBox="0 0 ${side} ${side}" width="${px}" height="${px}" shape-rendering="crispEdges" role="img" aria-label="QR code"><rect width="${side}" height="${side}" fill="#fff"/><path d="${path}" fill="#000"/></svg>`;
}

const SCAN = "In WhatsApp on the phone: Linked devices → Link a device, then point the camera at this code.";

/** What the page shows for a view: the same story as the terminal, told with the code at full size. */
export function pageState(view: QrView, context: NoteContext): PageState {
  const who = `${context.namespace}/${context.name}`;
  const notes = qrNotes(view, context);
  switch (view.kind) {
    case "qrText":
      return { kind: view.kind, heading: `Scan to link ${who}`, svg: qrSvg(qrModules(view.text, PAGE_QR_LEVEL)), lines: [SCAN, ...notes], final: false };
    case "qrPng":
      return { kind: view.kind, heading: `Scan to link ${who}`, image: `data:image/png;base64,${view.png.toString("base64")}`, lines: [SCAN, ...notes], final: false };
    case "pairingCode":
      return {
        kind: view.kind,
        heading: `Pairing code for ${who}`,
        code: view.code,
        lines: ["In WhatsApp on the phone: Linked devices → Link a device → Link with phone number instead, then enter this code.", ...notes],
        final: false,
      };
    case "waiting":
      return { kind: view.kind, heading: "Waiting for a code", lines: [`${who} is ${view.phase}; the code shows here as soon as the operator has one.`], final: false };
    case "failed":
      return { kind: view.kind, heading: "The session failed", lines: notes, final: false };
    case "connected":
      return { kind: view.kind, heading: connectedLine(view), lines: [`${who} is linked. You can close this page.`], final: true };
    case "cannotLink":
      return { kind: view.kind, heading: `${who} cannot link`, lines: [view.message], final: true };
  }
}

export interface QrPageOptions {
  /** 0 takes a free port. */
  readonly port: number;
  /** A line shown above everything (the demo says it is one). */
  readonly banner?: string | undefined;
}

/** How long a page may take to show the final state before the server stops anyway. */
const FINISH_GRACE_MS = 10_000;
/** A comment on idle streams, so proxies and browsers keep them open. */
const HEARTBEAT_MS = 15_000;

/** The page's HTTP server: GET <base> (the page), <base>events (SSE), <base>state (JSON). */
export class QrPageServer {
  readonly url: string;
  private readonly server: Server;
  private readonly base: string;
  private readonly hosts: ReadonlySet<string>;
  private readonly banner: string | undefined;
  private readonly streams = new Set<ServerResponse>();
  private readonly heartbeat: NodeJS.Timeout;
  private state: PageState = { kind: "waiting", heading: "Waiting for a code", lines: [], final: false };
  private sent = "";
  private drained: (() => void) | undefined;
  private closed: Promise<void> | undefined;

  private constructor(server: Server, base: string, banner: string | undefined) {
    this.server = server;
    this.base = base;
    this.banner = banner;
    const { port } = server.address() as AddressInfo;
    this.hosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
    this.url = `http://127.0.0.1:${port}${base}`;
    this.heartbeat = setInterval(() => this.streams.forEach((stream) => stream.write(": keep-alive\n\n")), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** Listens on 127.0.0.1 (never another address) under a fresh random path. */
  static async start(options: QrPageOptions): Promise<QrPageServer> {
    const base = `/${randomBytes(18).toString("base64url")}/`;
    let page: QrPageServer | undefined;
    const server = createServer((request, response) => page?.handle(request, response));
    await new Promise<void>((resolve, reject) => {
      server.once("error", (error: NodeJS.ErrnoException) =>
        reject(
          error.code === "EADDRINUSE"
            ? new PluginError(EXIT.error, `cannot serve the page: 127.0.0.1:${options.port} is in use (leave --port out to take a free port)`)
            : error,
        ),
      );
      server.listen({ host: "127.0.0.1", port: options.port }, resolve);
    });
    page = new QrPageServer(server, base, options.banner);
    return page;
  }

  /** Shows `state` on every open page (and on pages opened later). */
  show(state: PageState): void {
    this.state = state;
    const json = JSON.stringify(state);
    if (json === this.sent) return;
    this.sent = json;
    for (const stream of this.streams) stream.write(`data: ${json}\n\n`);
  }

  /** Shows a final state, then waits until every open page has shown it (they close their streams), or a grace period. */
  async finish(state: PageState): Promise<void> {
    this.show(state);
    if (this.streams.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, FINISH_GRACE_MS);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    await this.close();
  }

  /** Stops serving (again: a no-op). */
  close(): Promise<void> {
    this.closed ??= new Promise<void>((resolve) => {
      clearInterval(this.heartbeat);
      for (const stream of this.streams) stream.end();
      this.streams.clear();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.closed;
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    response.setHeader("Cache-Control", "no-store");
    response.setHeader("X-Content-Type-Options", "nosniff");
    response.setHeader("Referrer-Policy", "no-referrer");
    if (!this.hosts.has(request.headers.host ?? "")) return plain(response, 421, "this server answers only as 127.0.0.1 or localhost\n");
    if (request.method !== "GET" && request.method !== "HEAD") return plain(response, 405, "only GET\n");
    const path = new URL(request.url ?? "/", "http://127.0.0.1").pathname;
    if (path === this.base.slice(0, -1)) {
      response.writeHead(308, { Location: this.base }).end();
      return;
    }
    switch (path) {
      case this.base: {
        const nonce = randomBytes(16).toString("base64");
        response.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": pageCsp(nonce) });
        response.end(renderPage({ state: this.state, nonce, banner: this.banner }));
        return;
      }
      case `${this.base}state`:
        response.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(this.state));
        return;
      case `${this.base}events`:
        return this.stream(request, response);
      default:
        return plain(response, 404, "not found\n");
    }
  }

  private stream(request: IncomingMessage, response: ServerResponse): void {
    response.writeHead(200, { "Content-Type": "text/event-stream", Connection: "keep-alive" });
    response.write(`retry: 1000\ndata: ${JSON.stringify(this.state)}\n\n`);
    this.streams.add(response);
    request.on("close", () => {
      this.streams.delete(response);
      if (this.streams.size === 0) this.drained?.();
    });
  }
}

function plain(response: ServerResponse, status: number, text: string): void {
  response.writeHead(status, { "Content-Type": "text/plain; charset=utf-8" }).end(text);
}

export interface QrWebOptions extends Omit<FollowOptions, "wake" | "once"> {
  readonly pngFile?: string | undefined;
  /** The URL, and "Connected as +<phone>" at the end. */
  readonly out: NodeJS.WritableStream;
  /** What happens meanwhile, in words: never a code. */
  readonly err: NodeJS.WritableStream;
  readonly now?: () => number;
}

/** `qr NAME --web`: serves the page, prints its URL, follows the code; returns the exit code. */
export async function serveQrPage(options: QrWebOptions & QrPageOptions): Promise<ExitCode> {
  const page = await QrPageServer.start(options);
  options.out.write(`Open ${page.url} in a browser on this machine: it shows the code that links ${options.namespace}/${options.name}, as it changes. Ctrl-C stops.\n`);
  return followOnPage(page, options);
}

/** Follows the instance and shows each view on `page` until linked; the page is closed on return. */
export async function followOnPage(page: QrPageServer, options: QrWebOptions): Promise<ExitCode> {
  const { namespace, name } = options;
  const who = `${namespace}/${name}`;
  const now = options.now ?? Date.now;
  const png = new PngSaver(options.pngFile);
  let key = "";
  let notes = "";
  let ended: QrView | undefined;
  try {
    for await (const view of followQr({ ...options, once: false, wake: new Wakeup() })) {
      const state = pageState(view, { namespace, name, now: now(), following: true });
      if (view.kind === "connected" || view.kind === "cannotLink") {
        ended = view;
        await page.finish(state);
        break;
      }
      page.show(state);
      const saved = png.save(view);
      if (saved) options.err.write(`${saved}\n`);
      const shown = view.kind === "waiting" || view.kind === "failed" ? "" : codeKey(view);
      if (shown && shown !== key) options.err.write(`the page shows a new ${view.kind === "pairingCode" ? "pairing code" : "QR code"} for ${who}\n`);
      key = shown;
      const said = qrNotes(view, { namespace, name, now: now(), following: true }).join("\n");
      if (said && said !== notes) options.err.write(`${said}\n`);
      notes = said;
    }
  } catch (error) {
    // Timed out, or the instance is gone: say so on the page too, then end as the terminal would.
    await page.finish({ kind: "stopped", heading: "Stopped", lines: [error instanceof Error ? error.message : String(error)], final: true });
    throw error;
  } finally {
    await page.close();
  }
  if (ended?.kind === "cannotLink") throw new PluginError(EXIT.cannotLink, `${who} cannot link: ${ended.message}`);
  if (ended?.kind === "connected") options.out.write(`${connectedLine(ended)}\n`);
  return EXIT.ok;
}
