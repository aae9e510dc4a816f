/**
 * The elector on fake time against a fake Lease store that can be cut off: a cut-off
 * call hangs until its signal aborts it (or forever, without one), as a request to an
 * unreachable API server does until a socket timeout.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { KubeError, type CallOptions, type KubeClient } from "../kube/client.ts";
import { createLogger } from "../logger.ts";
import { LeaderElector } from "./leader-election.ts";

interface StoredLease {
  metadata: { name: string; namespace: string; resourceVersion: string };
  spec: Record<string, unknown>;
}

class FakeLeases {
  lease: StoredLease | undefined;
  cutOff = false;
  failing = false;
  /** Calls that hung, with whether their signal has aborted them. */
  readonly hung: { signal: AbortSignal | undefined }[] = [];
  private version = 0;

  readonly kube = {
    find: (_type: unknown, _namespace: string, _name: string, call?: CallOptions) => this.call(call, () => structuredClone(this.lease)),
    get: (_type: unknown, _namespace: string, _name: string, call?: CallOptions) => this.call(call, () => structuredClone(this.lease)),
    create: (_type: unknown, _namespace: string, body: StoredLease, call?: CallOptions) =>
      this.call(call, () => {
        if (this.lease) throw new KubeError(409, "exists");
        this.lease = { ...body, metadata: { ...body.metadata, resourceVersion: String(++this.version) } };
        return this.lease;
      }),
    replace: (_type: unknown, _namespace: string, _name: string, body: StoredLease, call?: CallOptions) =>
      this.call(call, () => {
        if (body.metadata.resourceVersion !== this.lease?.metadata.resourceVersion) throw new KubeError(409, "conflict");
        this.lease = { ...body, metadata: { ...body.metadata, resourceVersion: String(++this.version) } };
        return this.lease;
      }),
  } as unknown as KubeClient;

  /** Another replica renewing the Lease as its holder. */
  holdAs(identity: string): void {
    this.lease = {
      metadata: { name: "lease", namespace: "ops", resourceVersion: String(++this.version) },
      spec: { holderIdentity: identity, leaseDurationSeconds: 15, renewTime: new Date().toISOString(), leaseTransitions: 0 },
    };
  }

  private call<T>(call: CallOptions | undefined, answer: () => T): Promise<T> {
    if (this.failing) return Promise.reject(new KubeError(503, "unavailable"));
    if (!this.cutOff) return Promise.resolve().then(answer);
    const signal = call?.signal;
    this.hung.push({ signal });
    return new Promise((_resolve, reject) => signal?.addEventListener("abort", () => reject(signal.reason)));
  }
}

const LEASE_MS = 15_000;
const RENEW_DEADLINE_MS = 10_000;
const RETRY_MS = 2_000;

let leases: FakeLeases;
let events: string[];

function elector(identity = "me"): LeaderElector {
  return new LeaderElector({
    kube: leases.kube,
    namespace: "ops",
    name: "lease",
    identity,
    leaseDurationMs: LEASE_MS,
    renewDeadlineMs: RENEW_DEADLINE_MS,
    retryPeriodMs: RETRY_MS,
    log: createLogger("silent"),
    onStartedLeading: () => events.push("started"),
    onStoppedLeading: () => events.push("stopped"),
  });
}

beforeEach(() => {
  vi.useFakeTimers({ now: Date.parse("2026-11-21T10:00:00Z") });
  leases = new FakeLeases();
  events = [];
});

afterEach(() => {
  vi.useRealTimers();
});

describe("LeaderElector", () => {
  it("acquires a free Lease and leads", async () => {
    const candidate = elector();
    candidate.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(candidate.isLeader).toBe(true);
    expect(events).toEqual(["started"]);
    expect(leases.lease?.spec["holderIdentity"]).toBe("me");
  });

  it("cut off from the API server, stops leading at the renew deadline, not when a hung call returns", async () => {
    const leader = elector();
    leader.start();
    await vi.advanceTimersByTimeAsync(0);
    const lastRenewal = Date.now();
    leases.cutOff = true;
    await vi.advanceTimersByTimeAsync(RENEW_DEADLINE_MS - 1);
    expect(leader.isLeader).toBe(true);
    expect(events).toEqual(["started"]);
    await vi.advanceTimersByTimeAsync(1);
    expect(Date.now() - lastRenewal).toBe(RENEW_DEADLINE_MS);
    expect(events).toEqual(["started", "stopped"]);
    expect(leader.isLeader).toBe(false);
    // Every hung Lease call carried a signal, and the deadline aborted it.
    expect(leases.hung.length).toBeGreaterThan(0);
    expect(leases.hung.every((call) => call.signal?.aborted)).toBe(true);
    // Having stopped, it never tries again (the process exits and rejoins fresh).
    const calls = leases.hung.length;
    leases.cutOff = false;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(leases.hung.length).toBe(calls);
    expect(events).toEqual(["started", "stopped"]);
  });

  it("is no longer the leader the instant the deadline passes, before any timer runs (a process resumed from SIGSTOP)", async () => {
    const leader = elector();
    leader.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(leader.isLeader).toBe(true);
    // The clock jumps without timers firing, as for a paused process.
    vi.setSystemTime(Date.now() + RENEW_DEADLINE_MS + 5_000);
    expect(leader.isLeader).toBe(false);
  });

  it("keeps leading through renewals that fail fast, as long as one succeeds before the deadline", async () => {
    const leader = elector();
    leader.start();
    await vi.advanceTimersByTimeAsync(0);
    leases.failing = true;
    // Renewals every retry period fail until the last one before the deadline.
    await vi.advanceTimersByTimeAsync(RENEW_DEADLINE_MS - 2 * RETRY_MS + 1);
    expect(leader.isLeader).toBe(true);
    leases.failing = false;
    await vi.advanceTimersByTimeAsync(RETRY_MS);
    await vi.advanceTimersByTimeAsync(3 * RENEW_DEADLINE_MS);
    expect(leader.isLeader).toBe(true);
    expect(events).toEqual(["started"]);
  });

  it("renewals that keep failing end leadership at the deadline", async () => {
    const leader = elector();
    leader.start();
    await vi.advanceTimersByTimeAsync(0);
    leases.failing = true;
    await vi.advanceTimersByTimeAsync(RENEW_DEADLINE_MS);
    expect(events).toEqual(["started", "stopped"]);
    expect(leader.isLeader).toBe(false);
  });

  it("a follower waits while the holder renews, and takes over once the Lease runs out", async () => {
    leases.holdAs("other");
    const follower = elector();
    follower.start();
    await vi.advanceTimersByTimeAsync(LEASE_MS - 1_000);
    expect(follower.isLeader).toBe(false);
    expect(events).toEqual([]);
    await vi.advanceTimersByTimeAsync(2_000 + RETRY_MS);
    expect(follower.isLeader).toBe(true);
    expect(leases.lease?.spec["holderIdentity"]).toBe("me");
    expect(leases.lease?.spec["leaseTransitions"]).toBe(1);
  });

  it("on stop, a leader releases the Lease and stops leading at once", async () => {
    const leader = elector();
    leader.start();
    await vi.advanceTimersByTimeAsync(0);
    await leader.stop();
    expect(leader.isLeader).toBe(false);
    expect(leases.lease?.spec["holderIdentity"]).toBeNull();
    expect(events).toEqual(["started"]);
  });
});
