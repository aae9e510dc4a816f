/**
 * What this process knows of each gateway's restarts and recoveries (ctx.gatewayRestarts):
 * the last server start time and version seen, sessions found stopped, and the recovery
 * under way with its waves. Apart from gateway-restart.ts, which acts on the context.
 */
import type { PlannedEvent } from "./plan.ts";

/** This many sessions of one provider seen stopped within STOPPED_WINDOW_MS say it lost them all. */
export const STOPPED_AT_ONCE = 3;
export const STOPPED_WINDOW_MS = 60_000;
/** A recovery nobody starts or waits in is over after this long, whatever it counted. */
export const RECOVERY_MAX_MS = 60 * 60_000;

interface Recovery {
  readonly since: number;
  readonly max: number;
  /** Sessions started during the recovery, in waves. */
  started: number;
  waves: number;
  /** The wave being handed out: how many started in it, how many of those were linked. */
  wave: { started: number; linked: number };
  /** Of those started, how many were seen Connected afterwards, and how many otherwise out of their start. */
  connected: number;
  other: number;
  readonly members: Set<string>;
}

/** What the start slots of the provider look like now. */
export interface SlotLoad {
  readonly starting: number;
  readonly waiting: number;
}

export class GatewayRestarts {
  private readonly stopped = new Map<string, Map<string, number>>();
  private readonly servers = new Map<string, { readonly version?: string; readonly startedAt?: number }>();
  private readonly recoveries = new Map<string, Recovery>();

  /**
   * A health check's answer: a start time or version other than the last one seen says the
   * gateway restarted (the first answer only sets the mark). Returns the cause, if so.
   */
  sawServer(provider: string, server: { readonly version?: string; readonly startedAt?: number }): string | undefined {
    const last = this.servers.get(provider);
    this.servers.set(provider, server);
    if (!last) return undefined;
    if (server.startedAt !== undefined && last.startedAt !== undefined && server.startedAt !== last.startedAt) {
      return `the gateway restarted (it reports a new start time, ${new Date(server.startedAt).toISOString()})`;
    }
    if (server.version !== undefined && last.version !== undefined && server.version !== last.version) {
      return `the gateway restarted (its version changed from ${last.version} to ${server.version})`;
    }
    return undefined;
  }

  /**
   * A session that was running is seen stopped although Connected is wanted. Returns the
   * cause when it is the STOPPED_AT_ONCE-th of its provider within STOPPED_WINDOW_MS.
   */
  sawStopped(provider: string, key: string, now: number): string | undefined {
    const seen = this.stopped.get(provider) ?? new Map<string, number>();
    this.stopped.set(provider, seen);
    for (const [other, at] of seen) if (now - at >= STOPPED_WINDOW_MS) seen.delete(other);
    seen.set(key, now);
    if (seen.size < STOPPED_AT_ONCE) return undefined;
    seen.clear();
    return `${STOPPED_AT_ONCE} of its sessions were found stopped within ${STOPPED_WINDOW_MS / 1000} s although they were running`;
  }

  /** Opens a recovery; false when one is already under way. */
  begin(provider: string, max: number, now: number): boolean {
    const open = this.recoveries.get(provider);
    if (open && now - open.since < RECOVERY_MAX_MS) return false;
    this.recoveries.set(provider, { since: now, max, started: 0, waves: 0, wave: { started: 0, linked: 0 }, connected: 0, other: 0, members: new Set() });
    return true;
  }

  recovering(provider: string): boolean {
    return this.recoveries.has(provider);
  }

  /** A start slot was handed out; the Event of the wave when this start closes it. */
  granted(provider: string, key: string, linked: boolean, load: SlotLoad): PlannedEvent | undefined {
    const recovery = this.recoveries.get(provider);
    if (!recovery) return undefined;
    recovery.members.add(key);
    recovery.started += 1;
    recovery.wave.started += 1;
    if (linked) recovery.wave.linked += 1;
    if (recovery.wave.started < recovery.max && load.waiting > 0) return undefined;
    recovery.waves += 1;
    const { started, linked: linkedInWave } = recovery.wave;
    recovery.wave = { started: 0, linked: 0 };
    return {
      type: "Normal",
      reason: "RecoveryWave",
      message: `restart recovery, wave ${recovery.waves}: started ${started} session${started === 1 ? "" : "s"} (${linkedInWave} linked, ${started - linkedInWave} to link anew); ${recovery.started} started so far, ${load.waiting} waiting`,
    };
  }

  /**
   * A session was seen out of its start (a QR, working, failed or stopped). When nothing of
   * the provider starts or waits any more, the recovery is over: its Event.
   */
  settled(provider: string, key: string, connected: boolean, load: SlotLoad, now: number): PlannedEvent | undefined {
    const recovery = this.recoveries.get(provider);
    if (!recovery) return undefined;
    if (recovery.members.delete(key)) {
      if (connected) recovery.connected += 1;
      else recovery.other += 1;
    }
    if (recovery.members.size > 0 || load.starting > 0 || load.waiting > 0) {
      if (now - recovery.since >= RECOVERY_MAX_MS) this.recoveries.delete(provider);
      return undefined;
    }
    if (recovery.started === 0) {
      // Nothing needed a start (the gateway brought its sessions back itself): no story to tell.
      if (now - recovery.since >= STOPPED_WINDOW_MS) this.recoveries.delete(provider);
      return undefined;
    }
    this.recoveries.delete(provider);
    const seconds = ((now - recovery.since) / 1000).toFixed(1);
    return {
      type: "Normal",
      reason: "Recovered",
      message: `restart recovery done in ${seconds} s: ${recovery.started} session${recovery.started === 1 ? "" : "s"} started in ${recovery.waves} wave${recovery.waves === 1 ? "" : "s"} of at most ${recovery.max}; ${recovery.connected} back Connected, ${recovery.other} otherwise (waiting for a QR, failed or stopped)`,
    };
  }
}
