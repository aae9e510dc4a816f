import { describe, expect, it } from "vitest";
import { evolutionState } from "./states.ts";

describe("Evolution states in our phases", () => {
  it.each([
    ["an open socket is Connected", "open", "open", "Connected"],
    ["a closed socket is Disconnected", "close", "close", "Disconnected"],
    ["connecting after a QR was issued is ScanQR", "connecting", "connecting", "ScanQR"],
    ["connecting before the first QR is Starting", "connecting", "close", "Starting"],
    ["connecting while a linked session reconnects is Starting", "connecting", "open", "Starting"],
    ["an instance this Evolution has not loaded reads as Starting", undefined, "open", "Starting"],
    ["a word this version does not know reads as Starting", "refused", "close", "Starting"],
  ])("%s", (_sentence, live, stored, phase) => {
    expect(evolutionState(live, stored).phase).toBe(phase);
  });

  it("flags only the words it does not know, so the planner never calls them stuck", () => {
    expect([evolutionState("connecting", "close").unknownState, evolutionState("refused", "close").unknownState]).toEqual([undefined, true]);
  });
});
