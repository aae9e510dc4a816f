import { describe, expect, it } from "vitest";
import { formatDuration, loadConfig, parseDuration, usage } from "./config.ts";

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
    expect(config).toMatchObject({ namespaces: [], concurrency: 32, logLevel: "info", pollInterval: 30_000, failureBackoff: 60_000, leaderElection: false, leaseDuration: 15_000, providerMaxInFlight: 16 });
  });

  it("bounds a session's time in STARTING by STUCK_TIMEOUT, 5 minutes unless set", () => {
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

describe("formatDuration", () => {
  it.each([
    [30_000, "30s"],
    [60_000, "1m"],
    [5_400_000, "1h30m"],
    [1500, "1s500ms"],
    [0, "0s"],
  ])("%i ms reads %s, which parseDuration reads back", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
    expect(parseDuration(text)).toBe(ms);
  });
});

describe("usage (wa-operator --help)", () => {
  /** "--flag VALUE  [ENV]" then an indented line "description Default: x." per setting. */
  const settings = () => {
    const lines = usage().split("\n");
    return lines.flatMap((line, index) => {
      const match = /^  --([a-z-]+) (\S+)  \[([A-Z_]+)\]$/.exec(line);
      const help = /^      (.+) Default: (.+)\.$/.exec(lines[index + 1] ?? "");
      return match && help ? [{ flag: match[1] as string, env: match[3] as string, description: help[1] as string, defaultText: help[2] as string }] : [];
    });
  };

  it("gives every setting a flag, a variable, a description and a default", () => {
    const listed = settings();
    expect(listed.map((setting) => setting.flag)).toEqual([
      "namespaces",
      "concurrency",
      "log-level",
      "poll-interval",
      "pairing-poll-interval",
      "qr-refresh-interval",
      "failure-backoff",
      "failure-backoff-max",
      "stuck-timeout",
      "provider-check-interval",
      "provider-timeout",
      "provider-max-in-flight",
      "provider-max-pause",
      "provider-max-workers",
      "egress-deny-cidrs",
      "resync",
      "http-address",
      "metrics-address",
      "leader-election",
      "lease-name",
      "operator-namespace",
      "lease-duration",
    ]);
    for (const setting of listed) expect(setting.description.length, setting.flag).toBeGreaterThan(10);
    expect(usage()).toContain("--version");
  });

  it("shows each default as a value that, given back, is the default", () => {
    const defaults = loadConfig([], {});
    for (const setting of settings()) {
      if (setting.flag === "namespaces") {
        expect(setting.defaultText).toBe("every namespace");
        continue;
      }
      expect(loadConfig([`--${setting.flag}`, setting.defaultText], {}), setting.flag).toEqual(defaults);
      expect(loadConfig([], { [setting.env]: setting.defaultText }), setting.env).toEqual(defaults);
    }
  });

  it("shows durations as durations (30s, not 30000)", () => {
    expect(settings().find((setting) => setting.flag === "poll-interval")?.defaultText).toBe("30s");
  });
});
