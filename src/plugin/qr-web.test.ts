import { request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { qrModules } from "../providers/qr.ts";
import type { PageState } from "./qr-page.ts";
import { PAGE_QR_LEVEL, pageState, QrPageServer, qrSvg } from "./qr-web.ts";
import { QUIET_ZONE } from "./qr.ts";

const NOW = Date.UTC(2026, 10, 21, 10, 0, 0);
const context = { namespace: "demo", name: "line", now: NOW, following: true, clock: (ms: number) => new Date(ms).toISOString().slice(11, 19) };
const waiting: PageState = { kind: "waiting", heading: "Waiting for a code", lines: ["demo/line is Starting"], final: false };

/** The modules an SVG from qrSvg paints dark, read back from its path of runs. */
function svgModules(svg: string): boolean[][] {
  const side = Number(/viewBox="0 0 (\d+) \d+"/.exec(svg)?.[1]);
  const grid = Array.from({ length: side }, () => Array.from({ length: side }, () => false));
  for (const [, x, y, run] of svg.matchAll(/M(\d+) (\d+)h(\d+)v1h-\d+z/g)) {
    for (let dx = 0; dx < Number(run); dx++) (grid[Number(y)] as boolean[])[Number(x) + dx] = true;
  }
  return grid;
}

describe("pageState and qrSvg", () => {
  it("draws every module of the code (level M) inside a white 4-module quiet zone", () => {
    const payload = "2@abc,def,ghi==,1";
    const state = pageState({ kind: "qrText", text: payload, png: undefined, expiresAt: NOW + 20_000 }, context);
    const modules = qrModules(payload, PAGE_QR_LEVEL);
    const drawn = svgModules(state.svg ?? "");
    expect(drawn).toHaveLength(modules.length + 2 * QUIET_ZONE);
    expect(drawn.slice(QUIET_ZONE, -QUIET_ZONE).map((row) => row.slice(QUIET_ZONE, -QUIET_ZONE))).toEqual(modules);
    expect(drawn.flat().filter(Boolean)).toHaveLength(modules.flat().filter(Boolean).length);
    expect(state.svg).toContain('fill="#fff"');
    expect(state.lines).toContain("A new code replaces this one from 10:00:20 on; this view follows.");
  });

  it("a pairing code is text; connected and cannot-link are final", () => {
    expect(pageState({ kind: "pairingCode", code: "ABCD-EFGH" }, context)).toMatchObject({ code: "ABCD-EFGH", final: false });
    expect(pageState({ kind: "connected", phoneNumber: "5511999998888" }, context)).toMatchObject({ heading: "Connected as +5511999998888", final: true });
    expect(pageState({ kind: "cannotLink", message: "it is Stalled" }, context)).toMatchObject({ lines: ["it is Stalled"], final: true });
  });

  it("an image-only provider's PNG is shown as a data: URL", () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2]);
    expect(pageState({ kind: "qrPng", png }, context).image).toBe(`data:image/png;base64,${png.toString("base64")}`);
  });
});

/** A raw GET, so the Host header can be anything. */
function get(url: string, host?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: host ? { Host: host } : {} }, (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Reads an SSE stream's data events as they arrive. */
async function openStream(url: string): Promise<{ next: () => Promise<PageState>; close: () => void }> {
  const controller = new AbortController();
  const response = await fetch(url, { signal: controller.signal });
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  return {
    async next() {
      for (;;) {
        const match = /data: (.*)\n\n/.exec(buffer);
        if (match) {
          buffer = buffer.slice((match.index ?? 0) + match[0].length);
          return JSON.parse(match[1] as string) as PageState;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error("stream ended");
        buffer += decoder.decode(value, { stream: true });
      }
    },
    close: () => controller.abort(),
  };
}

describe("QrPageServer", () => {
  let server: QrPageServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("listens on 127.0.0.1 only, under a random path", async () => {
    server = await QrPageServer.start({ port: 0 });
    const other = await QrPageServer.start({ port: 0 });
    await other.close();
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]{24}\/$/);
    expect(new URL(server.url).pathname).not.toBe(new URL(other.url).pathname);
    const { port } = new URL(server.url);
    expect((await get(`http://127.0.0.1:${port}/`)).status).toBe(404);
    expect((await get(`http://127.0.0.1:${port}/guess/`)).status).toBe(404);
    expect((await get(server.url.slice(0, -1))).headers.location).toBe(new URL(server.url).pathname);
  });

  it("answers only requests that name it by its loopback address (no DNS rebinding)", async () => {
    server = await QrPageServer.start({ port: 0 });
    const { port } = new URL(server.url);
    expect((await get(server.url, `localhost:${port}`)).status).toBe(200);
    expect((await get(server.url, `attacker.example:${port}`)).status).toBe(421);
  });

  it("a port in use is a clear error", async () => {
    server = await QrPageServer.start({ port: 0 });
    const port = Number(new URL(server.url).port);
    await expect(QrPageServer.start({ port })).rejects.toThrow(`cannot serve the page: 127.0.0.1:${port} is in use`);
  });

  it("serves one self-contained page: inline script and style under a nonce, nothing loaded from elsewhere", async () => {
    server = await QrPageServer.start({ port: 0, banner: "DEMO" });
    server.show(pageState({ kind: "qrText", text: "2@abc", png: undefined }, context));
    const page = await get(server.url);
    expect(page.status).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    const nonce = /script-src 'nonce-([^']+)'/.exec(String(page.headers["content-security-policy"]))?.[1];
    expect(nonce).toBeTruthy();
    expect(page.headers["content-security-policy"]).toContain("default-src 'none'");
    expect(page.body).toContain(`<script nonce="${nonce}">`);
    expect(page.body).not.toMatch(/(src|href)\s*=\s*["']?(https?:)?\/\//i);
    expect(page.body).not.toMatch(/@import|url\(/i);
    expect(page.body).toContain('<p class="banner">DEMO</p>');
    expect(page.body).toContain("Scan to link demo/line");
  });

  it("streams each new state to open pages, and finish() returns once every page has shown the final one", async () => {
    server = await QrPageServer.start({ port: 0 });
    server.show(waiting);
    const stream = await openStream(`${server.url}events`);
    expect(await stream.next()).toEqual(waiting);
    const code = pageState({ kind: "pairingCode", code: "ABCD-EFGH" }, context);
    server.show(code);
    server.show(code);
    expect(await stream.next()).toEqual(code);
    const connected = pageState({ kind: "connected", phoneNumber: "5511" }, context);
    let finished = false;
    const finishing = server.finish(connected).then(() => (finished = true));
    expect(await stream.next()).toEqual(connected);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(finished).toBe(false);
    stream.close();
    await finishing;
    expect(finished).toBe(true);
  });

  it("finish() with no page open returns at once, and the server stops", async () => {
    server = await QrPageServer.start({ port: 0 });
    const url = server.url;
    await server.finish(pageState({ kind: "connected", phoneNumber: undefined }, context));
    await expect(get(url)).rejects.toThrow(/ECONNREFUSED/);
  });
});
