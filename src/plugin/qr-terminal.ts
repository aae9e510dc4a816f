/**
 * `kubectl whatsapp qr NAME` in the terminal. The code is drawn with half-blocks (one
 * character cell holds two modules stacked, so each module is about square), inside the
 * 4-module quiet zone a camera needs to find it. On a terminal the view is redrawn in
 * place and fitted to the window: when the code cannot fit, the view says how large the
 * window must be instead of drawing a code that cannot scan. Anywhere else (a pipe, a
 * file) each new code is appended below the last, and the notes go to stderr.
 *
 * Frames are pure (terminalFrame, fitScreen); only the displays and showQr write.
 */
import { qrModules } from "../providers/qr.ts";
import { EXIT, PluginError, type ExitCode } from "./errors.ts";
import { codeKey, connectedLine, followQr, PngSaver, qrNotes, QUIET_ZONE, Wakeup, type FollowOptions, type QrView } from "./qr.ts";
import { terminalSafe } from "./terminal-text.ts";

/**
 * Error correction for the terminal: level L gives the smallest code, and a terminal
 * draws it without the blur or glare that the higher levels are there to survive.
 */
export const TERMINAL_QR_LEVEL = "L";

/** Black on white, whatever the terminal's theme: a phone reads dark modules on light. */
const DARK_ON_LIGHT = "\x1b[30;47m";
const RESET = "\x1b[0m";
/** Indexed by (top dark ? 2 : 0) + (bottom dark ? 1 : 0). */
const HALF_BLOCKS = [" ", "▄", "▀", "█"] as const;

/** The code as terminal lines: two module rows per line, quiet zone included. */
export function halfBlockLines(modules: readonly (readonly boolean[])[]): string[] {
  const side = modules.length + 2 * QUIET_ZONE;
  const dark = (x: number, y: number) => modules[y - QUIET_ZONE]?.[x - QUIET_ZONE] ?? false;
  const lines: string[] = [];
  for (let y = 0; y < side; y += 2) {
    let line = "";
    for (let x = 0; x < side; x++) line += HALF_BLOCKS[(dark(x, y) ? 2 : 0) + (dark(x, y + 1) ? 1 : 0)];
    lines.push(`${DARK_ON_LIGHT}${line}${RESET}`);
  }
  return lines;
}

/** One state of the view, before it is fitted to a terminal. */
export interface Frame {
  /** Changes when what to scan or read changes; a plain display prints text and drawing again only then. */
  readonly key: string;
  /** What this is and how to use it, for stdout ("Scan with WhatsApp ...", "Connected as +..."). */
  readonly text: readonly string[];
  /** A one-line stand-in for `text` when the window has no room for all of it. */
  readonly shortText: string;
  /** The QR code in half-blocks, quiet zone included; empty when there is nothing to draw. */
  readonly drawing: readonly string[];
  /** What is going on and what happens next: under the code on a terminal, on stderr elsewhere. */
  readonly notes: readonly string[];
}

export interface FrameContext {
  readonly namespace: string;
  readonly name: string;
  readonly now: number;
  readonly following: boolean;
  readonly pngFile?: string | undefined;
  readonly clock?: (ms: number) => string;
}

/** The frame for a view; cannotLink has none (it ends the command with an error). */
export function terminalFrame(view: Exclude<QrView, { kind: "cannotLink" }>, context: FrameContext): Frame {
  // The words may carry provider text (a phone number, a push name, a note): the drawing is ours.
  const frame = rawFrame(view, context);
  return { ...frame, text: frame.text.map(terminalSafe), shortText: terminalSafe(frame.shortText), notes: frame.notes.map(terminalSafe) };
}

function rawFrame(view: Exclude<QrView, { kind: "cannotLink" }>, context: FrameContext): Frame {
  const who = `${context.namespace}/${context.name}`;
  const notes = qrNotes(view, context);
  switch (view.kind) {
    case "connected": {
      const line = connectedLine(view);
      return { key: "connected", text: [line], shortText: line, drawing: [], notes };
    }
    case "waiting":
    case "failed":
      return { key: "", text: [], shortText: "", drawing: [], notes };
    case "pairingCode":
      return {
        key: codeKey(view),
        text: [
          `Pairing code for ${who}: ${view.code}`,
          "In WhatsApp on the phone: Linked devices → Link a device → Link with phone number instead, then enter the code.",
        ],
        shortText: `Pairing code for ${who}: ${view.code}`,
        drawing: [],
        notes,
      };
    case "qrText":
      return {
        key: codeKey(view),
        text: [`Scan with WhatsApp on the phone (Linked devices → Link a device) to link ${who}.`],
        shortText: `Scan with WhatsApp to link ${who}`,
        drawing: halfBlockLines(qrModules(view.text, TERMINAL_QR_LEVEL)),
        notes,
      };
    case "qrPng": {
      const line = context.pngFile
        ? `The provider gives the QR code for ${who} only as an image: open ${context.pngFile} and scan it with WhatsApp (Linked devices → Link a device).`
        : `The provider gives the QR code for ${who} only as an image, which a terminal cannot show; rerun with --png FILE to save it, or with --web to see it in a browser.`;
      return { key: codeKey(view), text: [line], shortText: line, drawing: [], notes };
    }
  }
}

export interface TerminalSize {
  readonly columns: number;
  readonly rows: number;
}

export interface Screen {
  readonly lines: readonly string[];
  /** False when the frame has a code but the window is too small to draw it. */
  readonly drawn: boolean;
}

const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;
const visibleWidth = (line: string) => line.replace(ANSI, "").length;

/**
 * The lines to show in a window of `size`: everything when it fits; else the code under
 * one short line; else, instead of a code cut off (which no camera reads), the size the
 * window needs. One row stays free for the cursor, so the frame never scrolls.
 */
export function fitScreen(frame: Frame, size: TerminalSize, context: { readonly namespace: string; readonly name: string }): Screen {
  const width = Math.max(20, size.columns);
  const room = Math.max(1, size.rows - 1);
  const notes = frame.notes.flatMap((note) => wrap(note, width));
  const text = frame.text.flatMap((line) => wrap(line, width));
  const clip = (lines: string[]) => lines.slice(0, room);
  if (frame.drawing.length === 0) return { lines: clip([...text, ...notes]), drawn: true };
  const drawingWidth = Math.max(...frame.drawing.map(visibleWidth));
  if (drawingWidth <= size.columns) {
    const full = [...text, ...frame.drawing, ...notes];
    if (full.length <= room) return { lines: full, drawn: true };
    if (frame.drawing.length + 1 <= room) return { lines: [truncate(frame.shortText, width), ...frame.drawing], drawn: true };
  }
  const needed = `The QR code for ${context.namespace}/${context.name} needs a terminal of ${drawingWidth} columns × ${frame.drawing.length + 2} rows; this one is ${size.columns} × ${size.rows}.`;
  const remedy = `Enlarge the window or make the font smaller (the code is redrawn), or see it in a browser: kubectl whatsapp qr ${context.name} -n ${context.namespace} --web`;
  return { lines: clip([...wrap(needed, width), ...wrap(remedy, width), ...notes]), drawn: false };
}

/** Breaks text at spaces into lines of at most `width` characters (longer words are cut). */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/ +/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = "";
    }
    line = line ? `${line} ${word}` : word;
    while (line.length > width) {
      lines.push(line.slice(0, width));
      line = line.slice(width);
    }
  }
  if (line || lines.length === 0) lines.push(line);
  return lines;
}

function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

/** stdout when it is a terminal (a tty.WriteStream fits). */
export interface Terminal {
  readonly columns: number;
  readonly rows: number;
  on(event: "resize", listener: () => void): unknown;
  off(event: "resize", listener: () => void): unknown;
}

/** Lines a caller adds under the view (the demo's "press Enter ..."), and a way to say they changed. */
export interface Hints {
  lines(view: QrView): readonly string[];
  /** Calls listener whenever lines() would answer differently; returns a function that stops it. */
  onChange(listener: () => void): () => void;
}

export interface Display {
  /** Shows the frame; false when its code did not fit the window. */
  show(frame: Frame): boolean;
  /** A one-off message (e.g. a file was written). */
  notice(message: string): void;
}

/** Redraws in place: moves up over the previous frame and clears from there down. */
export class ScreenDisplay implements Display {
  private readonly out: NodeJS.WritableStream;
  private readonly terminal: Terminal;
  private readonly context: { readonly namespace: string; readonly name: string };
  private shown = "";
  private height = 0;
  private resized = false;
  private notices: string[] = [];

  constructor(out: NodeJS.WritableStream, terminal: Terminal, context: { readonly namespace: string; readonly name: string }) {
    this.out = out;
    this.terminal = terminal;
    this.context = context;
  }

  /** After a resize the terminal may have re-wrapped the old frame: clear the whole window. */
  markResized(): void {
    this.resized = true;
  }

  show(frame: Frame): boolean {
    const screen = fitScreen({ ...frame, notes: [...frame.notes, ...this.notices] }, { columns: this.terminal.columns, rows: this.terminal.rows }, this.context);
    const text = screen.lines.map((line) => `${line}\n`).join("");
    if (text === this.shown && !this.resized) return screen.drawn;
    const erase = this.resized ? "\x1b[H\x1b[2J" : this.height > 0 ? `\r\x1b[${this.height}A\x1b[J` : "";
    this.out.write(erase + text);
    this.shown = text;
    this.height = screen.lines.length;
    this.resized = false;
    return screen.drawn;
  }

  notice(message: string): void {
    this.notices = [message];
  }
}

/** Appends: text and drawing on stdout when the code changes, notes on stderr when they change. */
export class PlainDisplay implements Display {
  private readonly out: NodeJS.WritableStream;
  private readonly err: NodeJS.WritableStream;
  private key = "";
  private notes = "";

  constructor(out: NodeJS.WritableStream, err: NodeJS.WritableStream) {
    this.out = out;
    this.err = err;
  }

  show(frame: Frame): boolean {
    if (frame.key && frame.key !== this.key) this.out.write([...frame.text, ...frame.drawing].map((line) => `${line}\n`).join(""));
    this.key = frame.key;
    const notes = frame.notes.map((line) => `${line}\n`).join("");
    if (notes && notes !== this.notes) this.err.write(notes);
    this.notes = notes;
    return true;
  }

  notice(message: string): void {
    this.err.write(`${message}\n`);
  }
}

export interface QrTerminalOptions extends Omit<FollowOptions, "wake"> {
  /** Also (or, when the provider gives only an image, instead) write the PNG here. */
  readonly pngFile?: string | undefined;
  readonly out: NodeJS.WritableStream;
  readonly err: NodeJS.WritableStream;
  /** Set when stdout is a terminal: the view is then fitted to it and redrawn in place. */
  readonly terminal?: Terminal | undefined;
  readonly hints?: Hints | undefined;
  readonly now?: () => number;
}

/** Shows the code in the terminal until the instance is Connected (or once); returns the exit code. */
export async function showQr(options: QrTerminalOptions): Promise<ExitCode> {
  const { namespace, name, terminal } = options;
  const who = `${namespace}/${name}`;
  const now = options.now ?? Date.now;
  const wake = new Wakeup();
  const screen = terminal ? new ScreenDisplay(options.out, terminal, { namespace, name }) : undefined;
  const display: Display = screen ?? new PlainDisplay(options.out, options.err);
  const onResize = () => {
    screen?.markResized();
    wake.notify();
  };
  terminal?.on("resize", onResize);
  const stopHints = options.hints?.onChange(() => wake.notify());
  const png = new PngSaver(options.pngFile);
  try {
    for await (const view of followQr({ ...options, wake })) {
      if (view.kind === "cannotLink") throw new PluginError(EXIT.cannotLink, `${who} cannot link: ${terminalSafe(view.message)}`);
      // --once has nothing to show but the reason, which the error says.
      if (options.once && (view.kind === "waiting" || view.kind === "failed")) throw new PluginError(EXIT.noCode, `no QR code yet: ${who} is ${view.kind === "failed" ? "Failed" : view.phase}`);
      const saved = png.save(view);
      if (saved) display.notice(saved);
      const frame = terminalFrame(view, { namespace, name, now: now(), following: !options.once, pngFile: options.pngFile });
      const hints = options.hints?.lines(view) ?? [];
      const drawn = display.show(hints.length > 0 ? { ...frame, notes: [...frame.notes, ...hints] } : frame);
      if (view.kind === "connected") return EXIT.ok;
      if (!options.once) continue;
      if (!drawn) throw new PluginError(EXIT.noCode, `the terminal is too small to draw the QR code of ${who}`);
      return view.kind === "qrPng" && !options.pngFile ? EXIT.noCode : EXIT.ok;
    }
    return EXIT.ok;
  } finally {
    terminal?.off("resize", onResize);
    stopHints?.();
  }
}
