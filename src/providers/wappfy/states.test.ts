import { describe, expect, it } from "vitest";
import { PHASES } from "../types.ts";
import { WAPPFY_STATUS_PHASES, wappfyState } from "./states.ts";

describe("wappfyState", () => {
  it.each([
    ["a freshly created instance is Pending", "created", "Pending"],
    ["a booting instance is Starting", "starting", "Starting"],
    ["an instance waiting for the phone is ScanQR", "scan_qr", "ScanQR"],
    ["a linked, running instance is Connected", "connected", "Connected"],
    ["a stopped instance is Disconnected (also right after a logout: Wappfy has no word for it)", "disconnected", "Disconnected"],
    ["an instance that failed to start is Failed", "failed", "Failed"],
    ["words in capitals still map", "CONNECTED", "Connected"],
    ["surrounding blanks are ignored", " scan_qr ", "ScanQR"],
    ["an unknown word is treated as an in-between state", "migrating", "Starting"],
    ["an empty word is treated as an in-between state", "", "Starting"],
    ["a word that names an Object property is not mistaken for a status", "constructor", "Starting"],
  ])("%s", (_sentence, word, phase) => {
    expect(wappfyState(word)).toEqual({ phase, providerState: word });
  });

  it("covers every documented status word with a phase of the contract", () => {
    expect(Object.keys(WAPPFY_STATUS_PHASES).sort()).toEqual(
      ["connected", "created", "disconnected", "failed", "scan_qr", "starting"],
    );
    for (const phase of Object.values(WAPPFY_STATUS_PHASES)) expect(PHASES).toContain(phase);
  });
});
