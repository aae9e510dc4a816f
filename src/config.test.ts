import { describe, expect, it } from "vitest";
import { loadConfig, parseDuration } from "./config.ts";

describe("parseDuration", () => {
  it.each([
    ["30s", 30_000],
    ["200ms", 200],
    ["1h30m", 5_400_000],
    ["1.5s", 1500],
  ])("%s is %i ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(["", "30", "soon", "5 m", "1h30"])("rejects %j", (text) => {
    expect(() => parseDuration(text)).toThrow(/not a duration/);
  });
});

describe("loadConfig", () => {
  it("has defaults for everything", () => {
    const config = loadConfig([], {});
    expect(config).toMatchObject({ namespaces: [], concurrency: 8, logLevel: "info", pollInterval: 30_000, failureBackoff: 60_000, leaderElection: false, leaseDuration: 15_000, providerMaxInFlight: 4 });
  });

  it("issue 9.14: bounds a session's time in STARTING by STUCK_TIMEOUT, 5 minutes unless set", () => {
    expect(loadConfig([], {}).stuckTimeout).toBe(5 * 60_000);
    expect(loadConfig([], { STUCK_TIMEOUT: "90s" }).stuckTimeout).toBe(90_000);
    expect(loadConfig(["--stuck-timeout", "2m"], {}).stuckTimeout).toBe(120_000);
  });

  it("reads the environment, and flags win over it", () => {
    const config = loadConfig(["--concurrency", "3"], { CONCURRENCY: "16", WATCH_NAMESPACES: "a, b", POLL_INTERVAL: "1m", LEADER_ELECTION: "true", POD_NAMESPACE: "ops" });
    expect(config).toMatchObject({ concurrency: 3, namespaces: ["a", "b"], pollInterval: 60_000, leaderElection: true, operatorNamespace: "ops" });
  });

  it("names every invalid setting with its flag and variable", () => {
    expect(() => loadConfig(["--concurrency", "0", "--poll-interval", "often"], { LOG_LEVEL: "chatty" })).toThrow(
      /--concurrency \(CONCURRENCY\)[\s\S]*--log-level \(LOG_LEVEL\)[\s\S]*--poll-interval \(POLL_INTERVAL\)/,
    );
  });

  it("refuses unknown flags", () => {
    expect(() => loadConfig(["--colour", "green"], {})).toThrow(/colour/);
  });
});
