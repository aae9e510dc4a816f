import { createHash } from "node:crypto";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { qrModules } from "../providers/qr.ts";
import { QUIET_ZONE } from "./qr.ts";
import { fitScreen, halfBlockLines, PlainDisplay, ScreenDisplay, terminalFrame, TERMINAL_QR_LEVEL, wrap, type Frame } from "./qr-terminal.ts";

// A code the size WAHA serves: "2@" + a 48-byte ref, two 32-byte keys and ",1", base64
// (from a hash rather than random bytes, so the code's version is always the same: 8-L).
let seed = 0;
const b64 = (bytes: number) => Buffer.concat([0, 1].map((part) => createHash("sha256").update(`${seed}:${part}`).digest())).subarray(0, bytes).toString("base64");
const wahaSized = () => {
  seed++;
  return `2@${b64(48)},${b64(32)},${b64(32)},1`;
};
const WAHA_SIZED = wahaSized();
const context = { namespace: "demo", name: "support-line" };
const NOW = Date.UTC(2026, 10, 21, 10, 0, 0);
const frameContext = { ...context, now: NOW, following: true, clock: (ms: number) => new Date(ms).toISOString().slice(11, 19) };
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;
const plain = (line: string) => line.replace(ANSI, "");

function qrFrame(payload = wahaSized(), expiresAt: number | undefined = NOW + 20_000): Frame {
  return terminalFrame({ kind: "qrText", text: payload, png: undefined, expiresAt }, frameContext);
}

/** Module rows back out of half-block lines: [top, bottom] per line. */
function moduleRows(lines: readonly string[]): boolean[][] {
  return lines.map(plain).flatMap((line) => [[...line].map((cell) => "▀█".includes(cell)), [...line].map((cell) => "▄█".includes(cell))]);
}

describe("halfBlockLines", () => {
  it("draws every module, two rows per line, inside a light quiet zone of 4 modules", () => {
    const modules = qrModules("2@abc", TERMINAL_QR_LEVEL);
    const lines = halfBlockLines(modules);
    const side = modules.length + 2 * QUIET_ZONE;
    expect(QUIET_ZONE).toBe(4);
    expect(lines).toHaveLength(Math.ceil(side / 2));
    for (const line of lines) expect(plain(line)).toHaveLength(side);
    const rows = moduleRows(lines);
    const inner = rows.slice(4, 4 + modules.length).map((row) => row.slice(4, 4 + modules.length));
    expect(inner).toEqual(modules);
    // Everything outside the code is light.
    const darkOutside = rows.some((row, y) => row.some((dark, x) => dark && (y < 4 || y >= 4 + modules.length || x < 4 || x >= 4 + modules.length)));
    expect(darkOutside).toBe(false);
  });

  it("paints black on white whatever the terminal's colours", () => {
    for (const line of halfBlockLines(qrModules("x", TERMINAL_QR_LEVEL))) expect(line).toMatch(/^\x1b\[30;47m[ ▀▄█]+\x1b\[0m$/);
  });
});

describe("fitScreen: the view fitted to the window", () => {
  it("a WAHA-sized code does not fit 80×24: it says the size it needs instead of drawing a cut-off code", () => {
    const screen = fitScreen(qrFrame(), { columns: 80, rows: 24 }, context);
    expect(screen.drawn).toBe(false);
    expect(screen.lines.join(" ")).toContain("The QR code for demo/support-line needs a terminal of 57 columns × 31 rows; this one is 80 × 24.");
    expect(screen.lines.join(" ")).toContain("kubectl whatsapp qr support-line -n demo --web");
    expect(screen.lines.some((line) => /[▀▄█]/.test(line))).toBe(false);
    expect(screen.lines.length).toBeLessThanOrEqual(23);
    for (const line of screen.lines) expect(line.length).toBeLessThanOrEqual(80);
  });

  it("at exactly the size it asked for, the code is drawn under one short line, leaving the cursor's row free", () => {
    const frame = qrFrame();
    const screen = fitScreen(frame, { columns: 57, rows: 31 }, context);
    expect(screen.drawn).toBe(true);
    expect(screen.lines).toHaveLength(30);
    expect(screen.lines[0]).toBe("Scan with WhatsApp to link demo/support-line");
    expect(screen.lines.slice(1)).toEqual(frame.drawing);
  });

  it("one column or row less and it is not drawn", () => {
    expect(fitScreen(qrFrame(), { columns: 56, rows: 40 }, context).drawn).toBe(false);
    expect(fitScreen(qrFrame(), { columns: 80, rows: 30 }, context).drawn).toBe(false);
  });

  it("with room to spare: the instructions, the code and what happens next", () => {
    const frame = qrFrame();
    const screen = fitScreen(frame, { columns: 100, rows: 50 }, context);
    expect(screen.drawn).toBe(true);
    expect(screen.lines).toEqual([
      "Scan with WhatsApp on the phone (Linked devices → Link a device) to link demo/support-line.",
      ...frame.drawing,
      "A new code replaces this one from 10:00:20 on; this view follows.",
    ]);
  });

  it("wraps sentences to the window's width", () => {
    const frame = terminalFrame({ kind: "failed", message: "the waha session failed (FAILED)", restartAt: NOW + 60_000, attempt: 1 }, frameContext);
    const screen = fitScreen(frame, { columns: 40, rows: 24 }, context);
    for (const line of screen.lines) expect(line.length).toBeLessThanOrEqual(40);
    expect(screen.lines.join(" ")).toBe(frame.notes.join(" "));
  });
});

describe("terminalFrame: provider text", () => {
  it("a phone number or message carrying escape sequences reaches the screen as plain text; the drawing keeps its own", () => {
    const connected = terminalFrame({ kind: "connected", phoneNumber: "316\x1b[2J\x1b]0;title\x07123" }, frameContext);
    expect(connected.text).toEqual(["Connected as +316123"]);
    expect(connected.shortText).toBe("Connected as +316123");
    const failed = terminalFrame({ kind: "failed", message: "boom\x1b[1A\x1b[2Kall fine\r", restartAt: NOW + 60_000, attempt: 1 }, frameContext);
    for (const note of failed.notes) expect(note).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
  });
});

describe("terminalFrame: what it says happens next", () => {
  it("before the code's expiry: when the next one comes; after it: that it expired and the operator fetches the next", () => {
    expect(qrFrame(WAHA_SIZED, NOW + 1000).notes).toEqual(["A new code replaces this one from 10:00:01 on; this view follows."]);
    expect(qrFrame(WAHA_SIZED, NOW).notes).toEqual(["This code expired at 10:00:00, or is about to; the operator shows the next one here as soon as the provider has it."]);
  });

  it("a failed session: why there is nothing to scan, when the operator restarts it, and how to restart it now", () => {
    const frame = terminalFrame({ kind: "failed", message: "the waha session failed (FAILED)", restartAt: NOW + 60_000, attempt: 2 }, frameContext);
    expect(frame.drawing).toEqual([]);
    expect(frame.notes).toEqual([
      "The session of demo/support-line failed, so there is no code to scan.",
      "The operator restarts it at 10:01:00 (attempt 2), then a new code shows here; to restart it now: kubectl whatsapp restart support-line -n demo",
      "Ready condition: the waha session failed (FAILED)",
    ]);
    const due = terminalFrame({ kind: "failed", message: undefined, restartAt: NOW, attempt: 1 }, frameContext);
    expect(due.notes).toEqual(["The session of demo/support-line failed, so there is no code to scan.", "The operator is restarting it (attempt 1); a new code shows here."]);
  });

  it("connected: the last line says the phone", () => {
    expect(terminalFrame({ kind: "connected", phoneNumber: "5511999998888" }, frameContext).text).toEqual(["Connected as +5511999998888"]);
  });
});

describe("wrap", () => {
  it.each([
    ["short text stays", "a b c", 10, ["a b c"]],
    ["breaks at spaces", "aaa bbb ccc", 7, ["aaa bbb", "ccc"]],
    ["cuts a word longer than the width", "abcdefghij", 4, ["abcd", "efgh", "ij"]],
  ] as const)("%s", (_name, text, width, lines) => {
    expect(wrap(text, width)).toEqual(lines);
  });
});

function collect(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
  return { stream, text: () => text };
}

describe("displays", () => {
  const terminal = { columns: 100, rows: 50, on: () => undefined, off: () => undefined };

  it("on a terminal: redraws in place, moving up over the previous frame and clearing below it", () => {
    const out = collect();
    const display = new ScreenDisplay(out.stream, terminal, context);
    const first = qrFrame();
    display.show(first);
    const firstHeight = 1 + first.drawing.length + 1;
    expect(out.text()).not.toMatch(/\x1b\[\d*[ABJH]/);
    expect(out.text().split("\n")).toHaveLength(firstHeight + 1);
    const written = out.text().length;
    display.show({ ...first });
    expect(out.text()).toHaveLength(written);
    display.show(qrFrame());
    expect(out.text().slice(written).startsWith(`\r\x1b[${firstHeight}A\x1b[J`)).toBe(true);
    display.markResized();
    display.show(qrFrame());
    expect(out.text()).toContain("\x1b[H\x1b[2J");
  });

  it("elsewhere: appends the code only when it changes, and each change of the notes on stderr", () => {
    const out = collect();
    const err = collect();
    const display = new PlainDisplay(out.stream, err.stream);
    const payload = WAHA_SIZED;
    display.show(qrFrame(payload, NOW + 1000));
    display.show(qrFrame(payload, NOW + 1000));
    display.show(qrFrame(payload, NOW));
    expect(out.text().match(/Scan with WhatsApp/g)).toHaveLength(1);
    expect(err.text()).toBe("A new code replaces this one from 10:00:01 on; this view follows.\nThis code expired at 10:00:00, or is about to; the operator shows the next one here as soon as the provider has it.\n");
    display.show(qrFrame());
    expect(out.text().match(/Scan with WhatsApp/g)).toHaveLength(2);
    expect(out.text()).not.toMatch(/\x1b\[\d*[ABJH]/);
  });
});
