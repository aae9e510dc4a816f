import { lstatSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { InstanceObject } from "../api/objects.ts";
import { PngSaver, qrView } from "./qr.ts";

const png = Buffer.from([0x89, 0x50, 0x4e, 0x47]);

function instance(status: InstanceObject["status"], spec: Record<string, unknown> = {}, generation = 1): InstanceObject {
  return { metadata: { name: "line", namespace: "support", generation }, spec: { providerRef: { name: "waha" }, ...spec }, status };
}

const stalled = (observedGeneration: number) => ({
  type: "Stalled",
  status: "True" as const,
  reason: "ProviderNotFound",
  message: "WhatsAppProvider waha does not exist",
  lastTransitionTime: "2026-11-21T10:00:00Z",
  observedGeneration,
});

describe("qrView: what `kubectl whatsapp qr` shows", () => {
  it.each([
    ["a connected instance shows its phone", instance({ phase: "Connected", phoneNumber: "5511" }), {}, { kind: "connected", phoneNumber: "5511" }],
    [
      "a pairing code wins over a QR code",
      instance({ phase: "ScanQR" }),
      { "pairing-code": Buffer.from("ABCD-EFGH\n"), "qr.txt": Buffer.from("2@x") },
      { kind: "pairingCode", code: "ABCD-EFGH" },
    ],
    ["the raw payload is drawn, with the image alongside", instance({ phase: "ScanQR" }), { "qr.txt": Buffer.from("2@x"), "qr.png": png }, { kind: "qrText", text: "2@x", png }],
    ["only an image: the image", instance({ phase: "ScanQR" }), { "qr.png": png }, { kind: "qrPng", png }],
    ["an empty Secret while ScanQR: wait", instance({ phase: "ScanQR" }), {}, { kind: "waiting", phase: "ScanQR" }],
    ["a stale code while Starting is not shown", instance({ phase: "Starting" }), { "qr.txt": Buffer.from("old") }, { kind: "waiting", phase: "Starting" }],
    ["no status yet: Pending", instance(undefined), {}, { kind: "waiting", phase: "Pending" }],
    ["Stalled for this generation: cannot link", instance({ phase: "Pending", conditions: [stalled(1)] }), {}, { kind: "cannotLink", message: "it is Stalled (ProviderNotFound): WhatsAppProvider waha does not exist" }],
    ["Stalled for an older generation: wait for the operator", instance({ phase: "Pending", conditions: [stalled(1)] }, {}, 2), {}, { kind: "waiting", phase: "Pending" }],
  ] as const)("%s", (_name, object, data, view) => {
    expect(qrView(object, data as Record<string, Buffer>)).toEqual(view);
  });

  it("a code carries the time the operator expects it to be replaced", () => {
    const status = { phase: "ScanQR" as const, qr: { secretName: "line-qr", updatedAt: "2026-11-21T10:00:00Z", expiresAt: "2026-11-21T10:00:20Z" } };
    expect(qrView(instance(status), { "qr.txt": Buffer.from("2@x") })).toMatchObject({ kind: "qrText", expiresAt: Date.parse("2026-11-21T10:00:20Z") });
  });

  it("a failed session: the operator's message, when it restarts it, and which attempt that is", () => {
    const ready = { type: "Ready", status: "False" as const, reason: "Failed", message: "the waha session failed (FAILED)", lastTransitionTime: "2026-11-21T10:00:00Z" };
    const failed = instance({ phase: "Failed", conditions: [ready], recovery: { attempts: 1, notBefore: "2026-11-21T10:02:00Z" } });
    expect(qrView(failed, { "qr.txt": Buffer.from("stale") })).toEqual({
      kind: "failed",
      message: "the waha session failed (FAILED)",
      restartAt: Date.parse("2026-11-21T10:02:00Z"),
      attempt: 2,
    });
    expect(qrView(instance({ phase: "Failed" }), {})).toEqual({ kind: "failed", message: undefined, restartAt: undefined, attempt: 1 });
  });

  it("an instance asked to stay Disconnected has nothing to scan", () => {
    expect(qrView(instance({ phase: "Disconnected" }, { state: "Disconnected" }), {})).toEqual({
      kind: "cannotLink",
      message: "spec.state is Disconnected, so there is nothing to scan; run kubectl whatsapp connect line first",
    });
  });
});

describe("--png FILE", () => {
  const image = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
  const inTemp = (run: (dir: string) => void): void => {
    const dir = mkdtempSync(join(tmpdir(), "wa-png-"));
    try {
      run(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it("writes the image readable by its owner only, also over a file that was readable by all", () => {
    inTemp((dir) => {
      const fresh = join(dir, "fresh.png");
      expect(new PngSaver(fresh).save({ kind: "qrPng", png: image })).toContain(fresh);
      expect(statSync(fresh).mode & 0o777).toBe(0o600);
      expect(readFileSync(fresh)).toEqual(image);
      const old = join(dir, "old.png");
      writeFileSync(old, "a longer file that was there before", { mode: 0o644 });
      new PngSaver(old).save({ kind: "qrPng", png: image });
      expect(statSync(old).mode & 0o777).toBe(0o600);
      expect(readFileSync(old)).toEqual(image);
    });
  });

  it("refuses a symbolic link at FILE and leaves the file it points at untouched", () => {
    inTemp((dir) => {
      const target = join(dir, "target");
      writeFileSync(target, "precious", { mode: 0o644 });
      const link = join(dir, "qr.png");
      symlinkSync(target, link);
      expect(() => new PngSaver(link).save({ kind: "qrPng", png: image })).toThrow(/symbolic link/);
      expect(readFileSync(target, "utf8")).toBe("precious");
      expect(statSync(target).mode & 0o777).toBe(0o644);
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
    });
  });
});
