import { describe, expect, it } from "vitest";
import { PHASES } from "../types.ts";
import { CLOUD_API_STATUS_PHASES, cloudApiStatusMeaning } from "./states.ts";

describe("cloudApiStatusMeaning", () => {
  it.each([
    ["CONNECTED", "Connected"],
    ["LINKED", "Connected"],
    ["PENDING", "Pending"],
    ["UNVERIFIED", "Pending"],
    ["DISCONNECTED", "LoggedOut"],
    ["UNLINKED", "LoggedOut"],
    ["OFFLINE", "LoggedOut"],
    ["BANNED", "Failed"],
    ["DELETED", "Failed"],
    ["MIGRATED", "Failed"],
  ] as const)("maps status %s to %s", (status, phase) => {
    expect(cloudApiStatusMeaning(status).phase).toBe(phase);
  });

  it.each(["FLAGGED", "RESTRICTED", "RATE_LIMITED"])("keeps a %s number Connected but explains why", (status) => {
    const meaning = cloudApiStatusMeaning(status);
    expect(meaning.phase).toBe("Connected");
    expect(meaning.note).toMatch(/\w+/);
  });

  it("says nothing extra about a plainly connected number", () => {
    expect(cloudApiStatusMeaning("CONNECTED").note).toBeUndefined();
  });

  it.each([
    ["Meta's own UNKNOWN", "UNKNOWN", /"UNKNOWN"/],
    ["a word nobody documented", "WARMING_UP", /"WARMING_UP"/],
    ["an empty status", "", /no status/],
    ["no status at all", undefined, /no status/],
    ["a prototype key", "constructor", /"constructor"/],
  ])("waits (Starting) on %s, names it and flags it unknown", (_case, status, named) => {
    const meaning = cloudApiStatusMeaning(status);
    expect(meaning.phase).toBe("Starting");
    expect(meaning.note).toMatch(named);
    expect(meaning.unknown).toBe(true);
  });

  it("reads lower-case words", () => {
    expect(cloudApiStatusMeaning("connected").phase).toBe("Connected");
  });

  it("uses only contract phases in its table", () => {
    for (const { phase } of Object.values(CLOUD_API_STATUS_PHASES)) expect(PHASES).toContain(phase);
  });
});
