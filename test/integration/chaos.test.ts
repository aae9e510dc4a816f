/**
 * A small configuration of the fault suite (`npm run chaos`, bench/chaos.ts) as tests: the
 * same four scenarios on a control plane of their own, asserting only correctness — no
 * duplicate or orphaned session, no credential anywhere a user or a log reader can see,
 * never two replicas writing to the provider at once, no restart repeated, and everything
 * converges. Times and rates are printed, never asserted.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DEFAULT_CONFIG, formatReport, runChaos, type ChaosConfig, type ChaosRun } from "../chaos/run.ts";
import type { Figure } from "../chaos/scenarios.ts";

const CI_CONFIG: ChaosConfig = {
  kills: { instances: 12, kills: 3, deleteKills: 1, restartShare: 0.34, gapMs: [800, 2000], timeoutMs: 90_000 },
  election: { instances: 8, leaseDuration: "4s", pauseMs: 6000, blackholeMs: 7000, toggleEveryMs: 300, restartShare: 0.38, timeoutMs: 60_000 },
  faults: {
    ...DEFAULT_CONFIG.faults,
    instances: 10,
    scan: 4,
    malformed: 0.03,
    oversized: 0.03,
    bursts: { everyMs: 8000, lengthMs: 2000 },
    rateLimit: { requestsPerSecond: 20, burst: 20 },
    providerTimeoutMs: 1500,
    waitMs: 90_000,
  },
  apiServer: { instances: 4, downMs: 4000, pauseMs: 4000, timeoutMs: 60_000 },
  pause: { ...DEFAULT_CONFIG.pause, instances: 4, concurrency: 2, waitMs: 60_000 },
  placement: { instances: 14, capacity: 4, maxConcurrentStarts: 2, leaseDuration: "4s", timeoutMs: 60_000 },
  operatorArgs: ["--poll-interval", "2s", "--pairing-poll-interval", "500ms", "--qr-refresh-interval", "1s", "--failure-backoff", "2s", "--failure-backoff-max", "8s", "--provider-check-interval", "2s"],
};

const dir = mkdtempSync(path.join(tmpdir(), "wa-operator-chaos-test-"));
let run: ChaosRun;

beforeAll(async () => {
  run = await runChaos({ config: CI_CONFIG, binDir: inject("controlPlaneBinDir"), dir, log: () => undefined });
  for (const report of [...run.reports, ...run.overall]) console.log(`\n${formatReport(report)}`);
}, 360_000);

afterAll(() => {
  if (run && run.correctnessFailures.length === 0) rmSync(dir, { recursive: true, force: true });
  else console.log(`chaos working dir kept: ${dir}`);
});

/** The failed correctness checks of the report whose title starts with `number.`; the report must exist. */
function failedChecks(number: string): Figure[] {
  const report = [...run.reports, ...run.overall].find((candidate) => candidate.title.startsWith(`${number}.`));
  expect(report, `scenario ${number} ran`).toBeDefined();
  return (report?.figures ?? []).filter((figure) => figure.ok === false && !figure.target);
}

describe("the fault suite, small", () => {
  it("1. SIGKILLs during convergence: no duplicate or orphaned session, no repeated restart, every instance converges and every delete finishes", () => {
    expect(failedChecks("1")).toEqual([]);
  });

  it("2. the leader SIGKILLed, paused past its lease and cut off from the API server: never two replicas writing to the provider, and all converges", () => {
    expect(failedChecks("2")).toEqual([]);
  });

  it("3. 30 % 5xx, 10 % hangs, 429 bursts, malformed and 2 MiB answers: every instance reaches ScanQR and every scanned one Connected", () => {
    expect(failedChecks("3")).toEqual([]);
  });

  it("4. the API server killed and restarted, then paused: a spec change made after it is back is carried out, with no operator restart", () => {
    expect(failedChecks("4")).toEqual([]);
  });

  it("7. providers answering 429 Retry-After 86400 and 1e10: their instances show RateLimited, receive nothing inside the window, and another provider's instances still reach ScanQR", () => {
    expect(failedChecks("7")).toEqual([]);
  });

  it("8. selector instances over three gateways with the leader SIGKILLed while placing: each placed once, no gateway over capacity, all reach ScanQR", () => {
    expect(failedChecks("8")).toEqual([]);
  });

  it("5. no credential (API key, webhook and events HMAC keys) in any log line, status or Event", () => {
    expect(failedChecks("5")).toEqual([]);
  });

  it("6. no restartRequestedAt value restarted twice across the kills", () => {
    expect(failedChecks("6")).toEqual([]);
  });
});
