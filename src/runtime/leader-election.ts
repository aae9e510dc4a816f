/**
 * Leader election over a coordination.k8s.io Lease, as client-go does it: acquire when
 * the Lease is free or its holder stopped renewing for leaseDuration; renew every
 * retryPeriod; a leader that cannot renew within renewDeadline gives up (and the process
 * exits), so two replicas never reconcile at once. Optimistic concurrency on the Lease's
 * resourceVersion decides every race.
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
  private lastRenew = 0;
  /** The Lease as last seen, with when we saw its renewTime change (clock skew safe). */
  private observed: { record: string; at: number } | undefined;
  /** When the current holder's Lease runs out, as far as we can tell. */
  private expiresAt = 0;

  constructor(options: LeaderElectionOptions) {
    this.options = options;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    void this.tick();
  }

  /** Stops trying; a leader releases the Lease so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
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
    let held = false;
    try {
      held = await this.tryAcquireOrRenew();
    } catch (error) {
      this.options.log.warn({ err: (error as Error).message }, "leader election: lease request failed");
    }
    const nowMs = Date.now();
    if (held) {
      this.lastRenew = nowMs;
      if (!this.leading) {
        this.leading = true;
        this.options.log.info({ lease: this.options.name, identity: this.options.identity }, "became the leader");
        this.options.onStartedLeading();
      }
    } else if (this.leading && nowMs - this.lastRenew > this.options.renewDeadlineMs) {
      this.leading = false;
      this.stopped = true;
      this.options.log.error({ lease: this.options.name }, "lost the leader lease");
      this.options.onStoppedLeading();
      return;
    }
    // A follower looks again right when the holder's Lease runs out, not up to a period later.
    const untilExpiry = this.expiresAt - Date.now();
    this.schedule(!this.leading && untilExpiry > 0 ? Math.min(this.options.retryPeriodMs, untilExpiry + 20) : this.options.retryPeriodMs);
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { kube, namespace, name, identity } = this.options;
    const durationSeconds = Math.ceil(this.options.leaseDurationMs / 1000);
    const lease = await kube.find<Lease>(LEASES, namespace, name);
    if (!lease) {
      try {
        await kube.create(LEASES, namespace, {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name, namespace },
          spec: { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: now(), renewTime: now(), leaseTransitions: 0 },
        });
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
      await kube.replace(LEASES, namespace, name, {
        ...lease,
        spec: {
          holderIdentity: identity,
          leaseDurationSeconds: durationSeconds,
          acquireTime: takingOver ? now() : spec.acquireTime ?? now(),
          renewTime: now(),
          leaseTransitions: (spec.leaseTransitions ?? 0) + (takingOver ? 1 : 0),
        },
      });
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
