/**
 * A real browser for tests: Debian's headless Chromium, driven over the DevTools protocol
 * with Node's own WebSocket (no browser automation package), and zbarimg to read a QR
 * code from a screenshot as a phone camera would. hack/browser.sh installs both
 * (`make test` runs it first).
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const CHROMIUM = process.env.WA_CHROMIUM ?? "chromium";

function missingTools(): string[] {
  const onPath = (tool: string) => (process.env.PATH ?? "").split(path.delimiter).some((dir) => existsSync(path.join(dir, tool)));
  return [CHROMIUM, "zbarimg"].filter((tool) => !(path.isAbsolute(tool) ? existsSync(tool) : onPath(tool)));
}

/** Fails with the remedy when chromium or zbarimg is not installed. */
export function requireBrowserTools(): void {
  const missing = missingTools();
  if (missing.length > 0) throw new Error(`${missing.join(" and ")} not found on PATH: run hack/browser.sh (make test does)`);
}

interface CdpMessage {
  readonly id?: number;
  readonly method?: string;
  readonly result?: Record<string, unknown>;
  readonly error?: { readonly message: string };
}

export class BrowserPage {
  private readonly socket: WebSocket;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: Record<string, unknown>) => void; reject: (error: Error) => void }>();

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(String(event.data)) as CdpMessage;
      const waiter = message.id === undefined ? undefined : this.pending.get(message.id);
      if (!waiter || message.id === undefined) return;
      this.pending.delete(message.id);
      if (message.error) waiter.reject(new Error(`DevTools: ${message.error.message}`));
      else waiter.resolve(message.result ?? {});
    });
  }

  static async connect(webSocketUrl: string): Promise<BrowserPage> {
    const socket = new WebSocket(webSocketUrl);
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener("open", () => resolve(), { once: true });
      socket.addEventListener("error", () => reject(new Error(`cannot connect to ${webSocketUrl}`)), { once: true });
    });
    return new BrowserPage(socket);
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /** A PNG of the viewport, as the screen shows it. */
  async screenshot(): Promise<Buffer> {
    const { data } = await this.send("Page.captureScreenshot", { format: "png" });
    return Buffer.from(String(data), "base64");
  }

  /** The text a reader sees (document.body.innerText). */
  async text(): Promise<string> {
    const { result } = await this.send("Runtime.evaluate", { expression: "document.body ? document.body.innerText : ''", returnByValue: true });
    return String((result as { value?: unknown } | undefined)?.value ?? "");
  }

  close(): void {
    this.socket.close();
  }
}

export class Chromium {
  private readonly child: ChildProcess;
  private readonly dir: string;
  private readonly port: number;
  private readonly pages: BrowserPage[] = [];

  private constructor(child: ChildProcess, dir: string, port: number) {
    this.child = child;
    this.dir = dir;
    this.port = port;
  }

  /** Starts headless Chromium with a throwaway profile, its DevTools endpoint on loopback. */
  static async launch(): Promise<Chromium> {
    requireBrowserTools();
    const dir = mkdtempSync(path.join(tmpdir(), "wa-chromium-"));
    const child = spawn(
      CHROMIUM,
      [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        `--user-data-dir=${dir}`,
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "--window-size=900,1000",
        "about:blank",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString("utf8")).slice(-4000)));
    // Chromium writes the port it chose to DevToolsActivePort in the profile once it listens.
    const portFile = path.join(dir, "DevToolsActivePort");
    const deadline = Date.now() + 30_000;
    while (!existsSync(portFile) || readFileSync(portFile, "utf8").split("\n").length < 2) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill("SIGKILL");
        rmSync(dir, { recursive: true, force: true });
        throw new Error(`chromium did not start (exit ${child.exitCode}): ${stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return new Chromium(child, dir, Number(readFileSync(portFile, "utf8").split("\n")[0]));
  }

  /** Opens `url` in a new tab with a fixed 900×1000 viewport. */
  async open(url: string): Promise<BrowserPage> {
    const response = await fetch(`http://127.0.0.1:${this.port}/json/new?${encodeURIComponent(url)}`, { method: "PUT" });
    if (!response.ok) throw new Error(`DevTools /json/new answered ${response.status}`);
    const target = (await response.json()) as { webSocketDebuggerUrl: string };
    const page = await BrowserPage.connect(target.webSocketDebuggerUrl);
    this.pages.push(page);
    await page.send("Emulation.setDeviceMetricsOverride", { width: 900, height: 1000, deviceScaleFactor: 1, mobile: false });
    return page;
  }

  async close(): Promise<void> {
    for (const page of this.pages) page.close();
    if (this.child.exitCode === null) {
      const exited = new Promise((resolve) => this.child.once("exit", resolve));
      this.child.kill("SIGTERM");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
      if (this.child.exitCode === null) this.child.kill("SIGKILL");
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The QR code zbarimg reads from a PNG, or undefined when it finds none. */
export async function zbarDecode(png: Buffer): Promise<string | undefined> {
  const dir = mkdtempSync(path.join(tmpdir(), "wa-zbar-"));
  const file = path.join(dir, "screenshot.png");
  writeFileSync(file, png);
  try {
    return await new Promise((resolve, reject) => {
      execFile("zbarimg", ["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", file], (error, stdout) => {
        // zbarimg exits 4 when the image holds no code it can read.
        if (error && (error as { code?: unknown }).code === 4) resolve(undefined);
        else if (error) reject(error);
        else resolve(stdout.replace(/\n$/, ""));
      });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
