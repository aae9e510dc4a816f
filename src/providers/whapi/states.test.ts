import { describe, expect, it } from "vitest";
import { PHASES } from "../types.ts";
import { WHAPI_STATE_PHASES, whapiPhase } from "./states.ts";

describe("whapiPhase", () => {
  it.each([
    ["CONNECTED", "Connected"],
    ["PAIRING", "Starting"],
    ["SERVICE_SCAN", "ScanQR"],
    ["SERVICE_OFF", "Disconnected"],
  ] as const)("maps the documented state %s to %s", (state, phase) => {
    expect(whapiPhase(state)).toBe(phase);
  });

  it.each([
    ["lower case", "connected", "Connected"],
    ["surrounding blanks", " SERVICE_SCAN\n", "ScanQR"],
  ] as const)("reads a state written in %s", (_case, state, phase) => {
    expect(whapiPhase(state)).toBe(phase);
  });

  it.each([
    ["an undocumented word", "LOADING"],
    ["an empty word", ""],
    ["a prototype key", "toString"],
  ])("waits (Starting) on %s instead of throwing", (_case, state) => {
    expect(whapiPhase(state)).toBe("Starting");
  });

  it("uses only contract phases in its table", () => {
    for (const phase of Object.values(WHAPI_STATE_PHASES)) expect(PHASES).toContain(phase);
  });
});
