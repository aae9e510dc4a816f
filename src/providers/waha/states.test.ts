import { describe, expect, it } from "vitest";
import { isKnownWahaStatus, wahaPhase } from "./states.ts";

describe("WAHA statuses in our phases", () => {
  it.each([
    ["a stopped session is Disconnected", "STOPPED", "Disconnected"],
    ["a booting session is Starting", "STARTING", "Starting"],
    ["a session showing a QR is ScanQR", "SCAN_QR_CODE", "ScanQR"],
    ["a GOWS passkey step still waits for the phone", "PASSKEY_REQUIRED", "ScanQR"],
    ["a GOWS passkey confirmation still waits for the phone", "PASSKEY_CONFIRMATION_REQUIRED", "ScanQR"],
    ["a working session is Connected", "WORKING", "Connected"],
    ["a failed session is Failed", "FAILED", "Failed"],
    ["a status this version does not know reads as Starting", "HIBERNATING", "Starting"],
    ["a word that is a property of every object still reads as Starting", "constructor", "Starting"],
  ])("%s", (_sentence, status, phase) => {
    expect(wahaPhase(status)).toBe(phase);
  });

  it("tells a status it does not know from one it does", () => {
    expect([isKnownWahaStatus("STARTING"), isKnownWahaStatus("HIBERNATING"), isKnownWahaStatus("constructor")]).toEqual([true, false, false]);
  });
});
