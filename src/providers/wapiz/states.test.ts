import { describe, expect, it } from "vitest";
import { PHASES } from "../types.ts";
import { WAPIZ_STATUS_PHASES, wapizState, type WapizStatusReport } from "./states.ts";

describe("wapizState", () => {
  it.each<[string, WapizStatusReport, string]>([
    ["a logged-in device is Connected", { status: "logged_in", connected: true, loggedIn: true }, "Connected"],
    ["a connected device that is not logged in waits for a QR scan", { status: "connected", connected: true, loggedIn: false }, "ScanQR"],
    ["a disconnected device is Disconnected", { status: "disconnected", connected: false, loggedIn: false }, "Disconnected"],
    ["the word wins over contradicting flags", { status: "connected", connected: true, loggedIn: true }, "ScanQR"],
    ["words in capitals still map", { status: "LOGGED_IN" }, "Connected"],
    ["an unknown word with loggedIn set is Connected", { status: "online", connected: true, loggedIn: true }, "Connected"],
    ["an unknown word with only connected set waits for a QR scan", { status: "pairing", connected: true, loggedIn: false }, "ScanQR"],
    ["an unknown word without flags is Disconnected", { status: "reconnecting" }, "Disconnected"],
    ["a word that names an Object property is not mistaken for a status", { status: "toString" }, "Disconnected"],
  ])("%s", (_sentence, report, phase) => {
    expect(wapizState(report)).toEqual({ phase, providerState: report.status });
  });

  it("covers every documented status word with a phase of the contract", () => {
    expect(Object.keys(WAPIZ_STATUS_PHASES).sort()).toEqual(["connected", "disconnected", "logged_in"]);
    for (const phase of Object.values(WAPIZ_STATUS_PHASES)) expect(PHASES).toContain(phase);
  });
});
