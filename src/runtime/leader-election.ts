/**
 * Leader election over a coordination.k8s.io Lease, as client-go does it: acquire when
 * the Lease is free or its holder stopped renewing for leaseDuration; renew every
 * retryPeriod; a leader that cannot renew within renewDeadline gives up (and the process
 * exits), so two replicas never reconcile at once. Optimistic concurrency on the Lease's
 * resourceVersion decides every race.
 *
 * The renew deadline is a hard bound, as client-go's renew loop under its timeout
 * context: every Lease call carries a signal that aborts it (and the client's read
 * retries) at the deadline, and a timer stops leading at the deadline itself, not when a
 * hung call finally returns. `isLeader` reads the clock, so it is false from that instant
 * on even before any timer runs (a process resumed after SIGSTOP asks it first).
 */
import type { Logger } from "pino";
import { isConflict, isNotFound, type KubeClient } from "../kube/client.ts";
import { LEASES, type KubeObject } from "../kube/resources.ts";

interface Lease extends KubeObject {
  spec?: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number;
  };
}

export interface LeaderElectionOptions {
  readonly kube: KubeClient;
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  readonly log: Logger;
  readonly onStartedLeading: () => void;
  /** Called once when leadership is lost (not when released on shutdown). */
  readonly onStoppedLeading: () => void;
}

export class LeaderElector {
  private readonly options: LeaderElectionOptions;
  private leading = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  /** Fires at the renew deadline while leading; moved on by every successful renewal. */
  private deadlineTimer: NodeJS.Timeout | undefined;
  /** Aborts the Lease calls in flight (at the deadline, or on stop). */
  private inFlight: AbortController | undefined;
  /** When the last successful acquisition or renewal was sent (not when it returned). */
  private lastRenew = 0;
  /** The Lease as last seen, with when we saw its renewTime change (clock skew safe). */
  private observed: { record: string; at: number } | undefined;
  /** When the current holder's Lease runs out, as far as we can tell. */
  private expiresAt = 0;

  constructor(options: LeaderElectionOptions) {
    this.options = options;
  }

  /**
   * True only while this replica holds the Lease and its last renewal is younger than
   * the renew deadline: the test every write to a provider makes (ProviderDeps.mayWrite).
   */
  get isLeader(): boolean {
    return this.leading && Date.now() < this.deadline;
  }

  private get deadline(): number {
    return this.lastRenew + this.options.renewDeadlineMs;
  }

  start(): void {
    void this.tick();
  }

  /** Stops trying; a leader releases the Lease so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.inFlight?.abort();
    const wasLeading = this.isLeader;
    this.leading = false;
    if (!wasLeading) return;
    try {
      const lease = await this.options.kube.get<Lease>(LEASES, this.options.namespace, this.options.name);
      if (lease.spec?.holderIdentity !== this.options.identity) return;
      await this.options.kube.replace(LEASES, this.options.namespace, this.options.name, {
        ...lease,
        spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: now() },
      });
      this.options.log.info({ lease: this.options.name }, "released the leader lease");
    } catch (error) {
      this.options.log.warn({ err: (error as Error).message }, "could not release the leader lease");
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const sentAt = Date.now();
    // A leader's attempt may run until the deadline and no further; a follower's for as long as a leader's could.
    const bound = this.leading ? Math.max(0, this.deadline - sentAt) : this.options.renewDeadlineMs;
    const attempt = new AbortController();
    this.inFlight = attempt;
    const abortAt = setTimeout(() => attempt.abort(new Error(`no answer within ${bound} ms`)), bound);
    let held = false;
    try {
      held = await this.tryAcquireOrRenew(attempt.signal);
    } catch (error) {
      if (!this.stopped) this.options.log.warn({ err: (error as Error).message }, "leader election: lease request failed");
    } finally {
      clearTimeout(abortAt);
      if (this.inFlight === attempt) this.inFlight = undefined;
    }
    if (this.stopped) return;
    if (held && (!this.leading || sentAt < this.deadline)) {
      this.lastRenew = sentAt;
      this.armDeadline();
      if (!this.leading) {
        this.leading = true;
        this.options.log.info({ lease: this.options.name, identity: this.options.identity }, "became the leader");
        this.options.onStartedLeading();
      }
    } else if (this.leading && Date.now() >= this.deadline) {
      this.lose();
      return;
    }
    // A follower looks again right when the holder's Lease runs out, not up to a period later.
    const untilExpiry = this.expiresAt - Date.now();
    this.schedule(!this.leading && untilExpiry > 0 ? Math.min(this.options.retryPeriodMs, untilExpiry + 20) : this.options.retryPeriodMs);
  }

  /** Stops leading at the renew deadline unless a renewal moves it first. */
  private armDeadline(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(() => {
      if (this.leading && !this.stopped && Date.now() >= this.deadline) this.lose();
    }, Math.max(0, this.deadline - Date.now()));
  }

  private lose(): void {
    this.leading = false;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.inFlight?.abort(new Error("renew deadline passed"));
    this.options.log.error({ lease: this.options.name, renewDeadlineMs: this.options.renewDeadlineMs }, "lost the leader lease");
    this.options.onStoppedLeading();
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const { kube, namespace, name, identity } = this.options;
    const durationSeconds = Math.ceil(this.options.leaseDurationMs / 1000);
    const lease = await kube.find<Lease>(LEASES, namespace, name, { signal });
    if (!lease) {
      try {
        await kube.create(
          LEASES,
          namespace,
          {
            apiVersion: "coordination.k8s.io/v1",
            kind: "Lease",
            metadata: { name, namespace },
            spec: { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: now(), renewTime: now(), leaseTransitions: 0 },
          },
          { signal },
        );
        return true;
      } catch (error) {
        if (isConflict(error)) return false;
        throw error;
      }
    }
    const spec = lease.spec ?? {};
    const record = `${spec.holderIdentity ?? ""}|${spec.renewTime ?? ""}`;
    if (!this.observed || this.observed.record !== record) this.observed = { record, at: Date.now() };
    const holder = spec.holderIdentity ?? "";
    // Expiry counts from the holder's own renewTime when it is plausible (not in our
    // future), else from when we first saw this record: a takeover never waits longer
    // than the lease duration after the holder's last renewal.
    const renewed = Date.parse(spec.renewTime ?? "");
    const since = Number.isFinite(renewed) && renewed <= Date.now() ? Math.max(renewed, this.observed.at - this.options.retryPeriodMs) : this.observed.at;
    this.expiresAt = since + (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (holder !== "" && holder !== identity && Date.now() < this.expiresAt) return false;
    const takingOver = holder !== identity;
    try {
      await kube.replace(
        LEASES,
        namespace,
        name,
        {
          ...lease,
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: takingOver ? now() : spec.acquireTime ?? now(),
            renewTime: now(),
            leaseTransitions: (spec.leaseTransitions ?? 0) + (takingOver ? 1 : 0),
          },
        },
        { signal },
      );
      return true;
    } catch (error) {
      if (isConflict(error) || isNotFound(error)) return false;
      throw error;
    }
  }
}

/** MicroTime, as Lease wants it. */
function now(): string {
  return new Date().toISOString().replace("Z", "000Z");
}
