/**
 * What `kubectl whatsapp qr NAME` shows, wherever it shows it (terminal: qr-terminal.ts,
 * browser: qr-web.ts): the code that links a number — the QR code from the Secret
 * <name>-qr, or the pairing code — followed as the provider rotates it, until the
 * instance is Connected.
 *
 * What to show is a pure function (qrView) of the instance and the Secret, and so is the
 * wording around it (qrNotes); following (followQr) only re-reads both whenever a watch
 * says either changed, with a short poll as the fallback for users who may read but not
 * watch, and so that an expiry time passing is noticed.
 */
import { createHash } from "node:crypto";
import { closeSync, constants, fchmodSync, openSync, writeSync } from "node:fs";
import type { InstanceObject } from "../api/objects.ts";
import type { KubeClient } from "../kube/client.ts";
import { INSTANCES, SECRETS, type ResourceType } from "../kube/resources.ts";
import { decodeSecretData, type SecretObject } from "../kube/secrets.ts";
import { EXIT, PluginError } from "./errors.ts";

/** Light modules around a drawn code on every side: the quiet zone ISO/IEC 18004 asks for. */
export const QUIET_ZONE = 4;

/** The keys of <name>-qr (API contract). */
export const QR_SECRET_KEYS = { png: "qr.png", text: "qr.txt", pairingCode: "pairing-code" } as const;

export type QrView =
  | { readonly kind: "connected"; readonly phoneNumber: string | undefined }
  | { readonly kind: "cannotLink"; readonly message: string }
  | { readonly kind: "pairingCode"; readonly code: string; readonly expiresAt?: number | undefined }
  | { readonly kind: "qrText"; readonly text: string; readonly png: Buffer | undefined; readonly expiresAt?: number | undefined }
  | { readonly kind: "qrPng"; readonly png: Buffer; readonly expiresAt?: number | undefined }
  /** The session failed (e.g. its codes ran out unscanned); the operator restarts it at restartAt. */
  | { readonly kind: "failed"; readonly message: string | undefined; readonly restartAt: number | undefined; readonly attempt: number }
  | { readonly kind: "waiting"; readonly phase: string };

/** Views that hold something to scan or type. */
export type CodeView = Extract<QrView, { kind: "pairingCode" | "qrText" | "qrPng" }>;

/** What the user should see now, from the instance and its QR Secret's data. */
export function qrView(instance: InstanceObject, data: Record<string, Buffer>): QrView {
  const phase = instance.status?.phase ?? "Pending";
  const desired = (instance.spec as { state?: string } | undefined)?.state ?? "Connected";
  if (phase === "Connected") return { kind: "connected", phoneNumber: instance.status?.phoneNumber };
  if (desired !== "Connected") {
    return { kind: "cannotLink", message: `spec.state is ${desired}, so there is nothing to scan; run kubectl whatsapp connect ${instance.metadata.name} first` };
  }
  const conditions = instance.status?.conditions ?? [];
  const stalled = conditions.find((condition) => condition.type === "Stalled" && condition.status === "True");
  if (stalled && (stalled.observedGeneration === undefined || stalled.observedGeneration === instance.metadata.generation)) {
    return { kind: "cannotLink", message: `it is Stalled (${stalled.reason}): ${stalled.message}` };
  }
  if (phase === "Failed") {
    const recovery = instance.status?.recovery;
    return {
      kind: "failed",
      message: conditions.find((condition) => condition.type === "Ready")?.message || undefined,
      restartAt: timestamp(recovery?.notBefore),
      // attempts counts the restarts already made; notBefore is set for the next one.
      attempt: (recovery?.attempts ?? 0) + 1,
    };
  }
  // The Secret holds a code only while the phase is ScanQR; anything else is stale.
  if (phase !== "ScanQR") return { kind: "waiting", phase };
  const expiresAt = timestamp(instance.status?.qr?.expiresAt);
  const pairingCode = data[QR_SECRET_KEYS.pairingCode]?.toString("utf8").trim();
  if (pairingCode) return { kind: "pairingCode", code: pairingCode, expiresAt };
  const text = data[QR_SECRET_KEYS.text]?.toString("utf8");
  const png = data[QR_SECRET_KEYS.png];
  if (text) return { kind: "qrText", text, png: png && png.length > 0 ? png : undefined, expiresAt };
  if (png && png.length > 0) return { kind: "qrPng", png, expiresAt };
  return { kind: "waiting", phase };
}

function timestamp(iso: string | undefined): number | undefined {
  const ms = iso ? Date.parse(iso) : Number.NaN;
  return Number.isFinite(ms) ? ms : undefined;
}

/** Identifies the code a view shows, so a display redraws only when it changes. */
export function codeKey(view: CodeView): string {
  switch (view.kind) {
    case "pairingCode":
      return `code:${view.code}`;
    case "qrText":
      return `text:${view.text}`;
    case "qrPng":
      return `png:${createHash("sha256").update(view.png).digest("hex")}`;
  }
}

export interface NoteContext {
  readonly namespace: string;
  readonly name: string;
  readonly now: number;
  /** Whether the display keeps following (and so will show what comes next). */
  readonly following: boolean;
  /** How a time of day is shown: the user's local clock by default. */
  readonly clock?: (ms: number) => string;
}

/**
 * The sentences around a view that say what is going on and what happens next: when the
 * code is replaced or that it expired, why there is nothing to scan and when there will be.
 * Shared by the terminal and the page so both tell the same story.
 */
export function qrNotes(view: QrView, context: NoteContext): string[] {
  const clock = context.clock ?? localClock;
  const who = `${context.namespace}/${context.name}`;
  switch (view.kind) {
    case "pairingCode":
    case "qrText":
    case "qrPng": {
      if (view.expiresAt === undefined) return [];
      const at = clock(view.expiresAt);
      return context.now < view.expiresAt
        ? [`A new code replaces this one from ${at} on${context.following ? "; this view follows" : ""}.`]
        : // expiresAt is the operator's estimate (the earliest a provider may rotate), hence "or is about to".
          [`This code expired at ${at}, or is about to; the operator ${context.following ? "shows the next one here" : "fetches the next one"} as soon as the provider has it.`];
    }
    case "waiting":
      return [`waiting for a QR code: ${who} is ${view.phase}`];
    case "failed": {
      const restart = `kubectl whatsapp restart ${context.name} -n ${context.namespace}`;
      return [
        `The session of ${who} failed, so there is no code to scan.`,
        view.restartAt !== undefined && context.now < view.restartAt
          ? `The operator restarts it at ${clock(view.restartAt)} (attempt ${view.attempt})${context.following ? ", then a new code shows here" : ""}; to restart it now: ${restart}`
          : `The operator is restarting it (attempt ${view.attempt})${context.following ? "; a new code shows here" : ""}.`,
        ...(view.message ? [`Ready condition: ${view.message}`] : []),
      ];
    }
    case "connected":
    case "cannotLink":
      return [];
  }
}

/** HH:MM:SS on the local clock: the user compares it with the clock on their screen. */
export function localClock(ms: number): string {
  const date = new Date(ms);
  return [date.getHours(), date.getMinutes(), date.getSeconds()].map((part) => String(part).padStart(2, "0")).join(":");
}

/** The line printed once the number is linked (the last line on stdout). */
export function connectedLine(view: Extract<QrView, { kind: "connected" }>): string {
  return view.phoneNumber ? `Connected as +${view.phoneNumber}` : "Connected";
}

export interface FollowOptions {
  readonly kube: KubeClient;
  readonly namespace: string;
  readonly name: string;
  /** Read once and stop, instead of following. */
  readonly once: boolean;
  readonly timeoutMs?: number | undefined;
  /** Notified to look again at once (e.g. the terminal was resized); also woken by the watches. */
  readonly wake?: Wakeup | undefined;
}

/** A fallback re-read for when watches fail (e.g. a user who may get but not watch Secrets). */
const POLL_MS = 2000;

/**
 * The view now, then again each time the instance or its Secret changes (or POLL_MS
 * passes), until the caller stops iterating. Throws a PluginError when the instance does
 * not exist or is deleted, and when timeoutMs runs out.
 */
export async function* followQr(options: FollowOptions): AsyncGenerator<QrView, void, undefined> {
  const { kube, namespace, name } = options;
  const first = await kube.find<InstanceObject>(INSTANCES, namespace, name);
  if (!first) throw new PluginError(EXIT.error, `whatsappinstance "${name}" not found in namespace "${namespace}"`);
  const wake = options.wake ?? new Wakeup();
  const watches = options.once ? undefined : new Watches(kube, namespace, wake);
  watches?.start(INSTANCES, name);
  watches?.start(SECRETS, `${name}-qr`);
  const deadline = options.timeoutMs ? Date.now() + options.timeoutMs : undefined;
  try {
    let instance: InstanceObject | undefined = first;
    for (;;) {
      if (!instance) throw new PluginError(EXIT.error, `whatsappinstance "${name}" was deleted`);
      const secret = await kube.find<SecretObject>(SECRETS, namespace, `${name}-qr`);
      yield qrView(instance, decodeSecretData(secret));
      if (options.once) return;
      const remaining = deadline === undefined ? POLL_MS : Math.min(POLL_MS, deadline - Date.now());
      if (remaining <= 0) throw new PluginError(EXIT.noCode, `timed out before ${namespace}/${name} was Connected`);
      await wake.wait(remaining);
      instance = await kube.find<InstanceObject>(INSTANCES, namespace, name);
    }
  } finally {
    watches?.stop();
  }
}

/** --png FILE: writes each new image once; returns the line to tell the user, if it wrote. */
export class PngSaver {
  private readonly file: string | undefined;
  private written = "";

  constructor(file: string | undefined) {
    this.file = file;
  }

  save(view: QrView): string | undefined {
    const png = view.kind === "qrText" || view.kind === "qrPng" ? view.png : undefined;
    if (!png || !this.file) return undefined;
    const digest = createHash("sha256").update(png).digest("hex");
    if (digest === this.written) return undefined;
    writePrivately(this.file, png);
    this.written = digest;
    return `wrote the QR code image to ${this.file}`;
  }
}

/**
 * Writes the file readable by its owner only, refusing a symbolic link at its path: with
 * O_NOFOLLOW the open itself refuses, so no link can be swapped in between a check and
 * the write (a QR code links a number to whoever scans it).
 */
function writePrivately(file: string, data: Buffer): void {
  let fd: number;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ELOOP") throw new PluginError(EXIT.usage, `--png ${file} is a symbolic link; give the path of a regular file`);
    throw error;
  }
  try {
    // A file that was there keeps its mode through open(): narrow it before writing the code.
    fchmodSync(fd, 0o600);
    writeSync(fd, data);
  } finally {
    closeSync(fd);
  }
}

/** A one-shot signal: wait() resolves on the next notify() (or one that came before), or after ms. */
export class Wakeup {
  private resolve: (() => void) | undefined;
  private pending = false;

  notify(): void {
    if (this.resolve) this.resolve();
    else this.pending = true;
  }

  wait(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.resolve = undefined;
        resolve();
      }, ms);
      this.resolve = () => {
        clearTimeout(timer);
        this.resolve = undefined;
        resolve();
      };
    });
  }
}

/** Watches single objects by name, restarting each watch when it ends, until stopped. */
class Watches {
  private readonly kube: KubeClient;
  private readonly namespace: string;
  private readonly wake: Wakeup;
  private readonly controllers = new Set<AbortController>();
  private stopped = false;

  constructor(kube: KubeClient, namespace: string, wake: Wakeup) {
    this.kube = kube;
    this.namespace = namespace;
    this.wake = wake;
  }

  start(type: ResourceType, name: string): void {
    if (this.stopped) return;
    const controller = this.kube.watch(
      type,
      this.namespace,
      { fieldSelector: `metadata.name=${name}`, timeoutSeconds: 300 },
      () => this.wake.notify(),
      () => {
        this.controllers.delete(controller);
        if (!this.stopped) setTimeout(() => this.start(type, name), 1000).unref();
      },
    );
    this.controllers.add(controller);
  }

  stop(): void {
    this.stopped = true;
    for (const controller of this.controllers) controller.abort();
    this.controllers.clear();
  }
}
