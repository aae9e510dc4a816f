/**
 * `kubectl whatsapp qr NAME`: shows the code that links a number — the QR code from the
 * Secret <name>-qr drawn in the terminal, or the pairing code — and follows it as the
 * provider rotates it, until the instance is Connected.
 *
 * What to show is decided by a pure function (qrView) of the instance and the Secret;
 * following only re-reads both whenever a watch says either changed (with a short poll
 * as the fallback, for users who may read but not watch).
 */
import { Watch, type KubeConfig } from "@kubernetes/client-node";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import type { InstanceObject } from "../controllers/context.ts";
import type { KubeClient } from "../kube/client.ts";
import { collectionPath, INSTANCES, SECRETS } from "../kube/resources.ts";
import { decodeSecretData, type SecretObject } from "../kube/secrets.ts";
import { renderQrTerminal } from "../providers/qr.ts";
import { EXIT, PluginError, type ExitCode } from "./errors.ts";

/** The keys of <name>-qr (API contract). */
export const QR_SECRET_KEYS = { png: "qr.png", text: "qr.txt", pairingCode: "pairing-code" } as const;

export type QrView =
  | { readonly kind: "connected"; readonly phoneNumber: string | undefined }
  | { readonly kind: "cannotLink"; readonly message: string }
  | { readonly kind: "pairingCode"; readonly code: string }
  | { readonly kind: "qrText"; readonly text: string; readonly png: Buffer | undefined }
  | { readonly kind: "qrPng"; readonly png: Buffer }
  | { readonly kind: "waiting"; readonly phase: string };

/** What the user should see now, from the instance and its QR Secret's data. */
export function qrView(instance: InstanceObject, data: Record<string, Buffer>): QrView {
  const phase = instance.status?.phase ?? "Pending";
  const desired = (instance.spec as { state?: string } | undefined)?.state ?? "Connected";
  if (phase === "Connected") return { kind: "connected", phoneNumber: instance.status?.phoneNumber };
  if (desired !== "Connected") {
    return { kind: "cannotLink", message: `spec.state is ${desired}, so there is nothing to scan; run kubectl whatsapp connect ${instance.metadata.name} first` };
  }
  const stalled = instance.status?.conditions?.find((condition) => condition.type === "Stalled" && condition.status === "True");
  if (stalled && (stalled.observedGeneration === undefined || stalled.observedGeneration === instance.metadata.generation)) {
    return { kind: "cannotLink", message: `it is Stalled (${stalled.reason}): ${stalled.message}` };
  }
  // The Secret holds a code only while the phase is ScanQR; anything else is stale.
  if (phase !== "ScanQR") return { kind: "waiting", phase };
  const pairingCode = data[QR_SECRET_KEYS.pairingCode]?.toString("utf8").trim();
  if (pairingCode) return { kind: "pairingCode", code: pairingCode };
  const text = data[QR_SECRET_KEYS.text]?.toString("utf8");
  const png = data[QR_SECRET_KEYS.png];
  if (text) return { kind: "qrText", text, png: png && png.length > 0 ? png : undefined };
  if (png && png.length > 0) return { kind: "qrPng", png };
  return { kind: "waiting", phase };
}

export interface QrOptions {
  readonly kube: KubeClient;
  readonly config: KubeConfig;
  readonly namespace: string;
  readonly name: string;
  /** Also (or, when the provider gives only an image, instead) write the PNG here. */
  readonly pngFile?: string | undefined;
  /** Show what there is now and exit, instead of following. */
  readonly once: boolean;
  readonly timeoutMs?: number | undefined;
  readonly out: NodeJS.WritableStream;
  readonly err: NodeJS.WritableStream;
  /** Redraw in place (clear the screen) rather than print one code after another. */
  readonly tty: boolean;
}

/** A fallback re-read for when watches fail (e.g. a user who may get but not watch Secrets). */
const POLL_MS = 2000;

export async function showQr(options: QrOptions): Promise<ExitCode> {
  const { kube, namespace, name } = options;
  const first = await kube.find<InstanceObject>(INSTANCES, namespace, name);
  if (!first) throw new PluginError(EXIT.error, `whatsappinstance "${name}" not found in namespace "${namespace}"`);
  const wake = new Wakeup();
  const watches = options.once ? undefined : new Watches(options.config, wake);
  watches?.start(collectionPath(INSTANCES, namespace), name);
  watches?.start(collectionPath(SECRETS, namespace), `${name}-qr`);
  const deadline = options.timeoutMs ? Date.now() + options.timeoutMs : undefined;
  let shown = "";
  let waitingFor = "";
  let pngWritten = "";
  try {
    let instance: InstanceObject | undefined = first;
    for (;;) {
      if (!instance) throw new PluginError(EXIT.error, `whatsappinstance "${name}" was deleted`);
      const secret = await kube.find<SecretObject>(SECRETS, namespace, `${name}-qr`);
      const view = qrView(instance, decodeSecretData(secret));
      const png = view.kind === "qrText" ? view.png : view.kind === "qrPng" ? view.png : undefined;
      if (png && options.pngFile) {
        const digest = createHash("sha256").update(png).digest("hex");
        if (digest !== pngWritten) {
          writeFileSync(options.pngFile, png);
          pngWritten = digest;
          options.err.write(`wrote the QR code image to ${options.pngFile}\n`);
        }
      }
      switch (view.kind) {
        case "connected":
          options.out.write(view.phoneNumber ? `Connected as +${view.phoneNumber}\n` : "Connected\n");
          return EXIT.ok;
        case "cannotLink":
          throw new PluginError(EXIT.cannotLink, `${namespace}/${name} cannot link: ${view.message}`);
        case "waiting":
          if (options.once) throw new PluginError(EXIT.noCode, `no QR code yet: ${namespace}/${name} is ${view.phase}`);
          if (waitingFor !== view.phase) options.err.write(`waiting for a QR code: ${namespace}/${name} is ${view.phase}\n`);
          waitingFor = view.phase;
          break;
        default: {
          const key = view.kind === "pairingCode" ? `code:${view.code}` : view.kind === "qrText" ? `text:${view.text}` : `png:${pngWritten}`;
          if (key !== shown) {
            shown = key;
            waitingFor = "";
            if (options.tty && !options.once) options.out.write("\x1b[2J\x1b[3J\x1b[H");
            options.out.write(await frame(view, instance, options));
          }
          if (options.once) return view.kind === "qrPng" && !options.pngFile ? EXIT.noCode : EXIT.ok;
        }
      }
      const remaining = deadline === undefined ? POLL_MS : Math.min(POLL_MS, deadline - Date.now());
      if (remaining <= 0) throw new PluginError(EXIT.noCode, `timed out before ${namespace}/${name} was Connected`);
      await wake.wait(remaining);
      instance = await kube.find<InstanceObject>(INSTANCES, namespace, name);
    }
  } finally {
    watches?.stop();
  }
}

async function frame(view: Exclude<QrView, { kind: "connected" | "cannotLink" | "waiting" }>, instance: InstanceObject, options: QrOptions): Promise<string> {
  const who = `${options.namespace}/${options.name}`;
  const expires = instance.status?.qr?.expiresAt ? ` It is replaced at ${instance.status.qr.expiresAt}${options.once ? "" : "; this view follows"}.` : "";
  switch (view.kind) {
    case "pairingCode":
      return `Pairing code for ${who}: ${view.code}\nIn WhatsApp on the phone: Linked devices → Link a device → Link with phone number instead, then enter the code.${expires}\n`;
    case "qrText":
      return `Scan with WhatsApp on the phone (Linked devices → Link a device) to link ${who}.${expires}\n${await renderQrTerminal(view.text)}\n`;
    case "qrPng":
      return options.pngFile
        ? `The provider gives the QR code for ${who} only as an image: open ${options.pngFile} and scan it with WhatsApp (Linked devices → Link a device).${expires}\n`
        : `The provider gives the QR code for ${who} only as an image, which a terminal cannot show; rerun with --png FILE to save it.\n`;
  }
}

/** A one-shot signal: wait() resolves on the next notify() (or one that came before), or after ms. */
class Wakeup {
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
  private readonly watcher: Watch;
  private readonly wake: Wakeup;
  private readonly controllers = new Set<AbortController>();
  private stopped = false;

  constructor(config: KubeConfig, wake: Wakeup) {
    this.watcher = new Watch(config);
    this.wake = wake;
  }

  start(path: string, name: string): void {
    if (this.stopped) return;
    let controller: AbortController | undefined;
    const restart = () => {
      if (controller) this.controllers.delete(controller);
      if (!this.stopped) setTimeout(() => this.start(path, name), 1000).unref();
    };
    this.watcher
      .watch(path, { fieldSelector: `metadata.name=${name}`, timeoutSeconds: 300 }, () => this.wake.notify(), restart)
      .then(
        (abort) => {
          controller = abort;
          if (this.stopped) abort.abort();
          else this.controllers.add(abort);
        },
        restart,
      );
  }

  stop(): void {
    this.stopped = true;
    for (const controller of this.controllers) controller.abort();
    this.controllers.clear();
  }
}
