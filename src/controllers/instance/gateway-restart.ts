/**
 * Gateway restart recovery: a provider that lost its sessions' running state (its process
 * restarted: a new start time or version, or many of its sessions seen STOPPED at once)
 * gets them back through the start slots, maxConcurrentStarts at a time, linked sessions
 * first. GatewayRestarts notices the restart and tells the story of the recovery on the
 * provider: one Event when it is noticed, one per wave (a wave is maxConcurrentStarts
 * starts handed out, or fewer when nobody else waits), one when nothing starts or waits
 * any more. In memory, per operator process; a new leader sees each session stopped and
 * starts it through the same slots, without the Events of a restart it did not see.
 */
import { parseInstanceSpec } from "../../api/parse-once.ts";
import type { InstanceStatus } from "../../api/instance.ts";
import { keyOf } from "../../kube/resources.ts";
import type { ObservedSession } from "../../providers/types.ts";
import type { OperatorContext } from "../context.ts";
import type { ResolvedProvider } from "../provider/connections.ts";
import { instancesUsing } from "./indexes.ts";
import type { PlannedEvent } from "./plan.ts";

/** The phases of a session the operator had running (or was starting) before the gateway lost it. */
const WAS_RUNNING: ReadonlySet<string | undefined> = new Set(["Connected", "ScanQR", "Starting"]);

/**
 * The gateway lost its sessions: says so on the provider, puts every instance it had
 * running in line for a start slot at once (so the first slots go to linked sessions, not
 * to whoever looks first), and has each look now rather than at its next poll.
 */
export function beginRecovery(ctx: OperatorContext, provider: ResolvedProvider, cause: string): void {
  const now = ctx.clock.now();
  if (!ctx.gatewayRestarts.begin(provider.key, provider.maxConcurrentStarts, now)) return;
  const wanted = instancesUsing(ctx, provider.key).filter(
    (instance) => !instance.metadata.deletionTimestamp && parseInstanceSpec(instance.spec).data?.state === "Connected" && WAS_RUNNING.has(instance.status?.phase),
  );
  const line = wanted.map((instance) => ({
    key: keyOf(instance),
    createdAt: instance.metadata.creationTimestamp ?? "",
    linked: instance.status?.phase === "Connected" || instance.status?.phoneNumber !== undefined,
  }));
  ctx.startSlots.enqueue(provider.key, line, now);
  const linked = line.filter((entry) => entry.linked).length;
  const message = `${cause}; starting its ${line.length} sessions again, at most ${provider.maxConcurrentStarts} at a time, the ${linked} linked ones first`;
  ctx.log.info({ provider: provider.key, sessions: line.length, linked }, message);
  ctx.events.record(provider.object, "Warning", "GatewayRestarted", message);
  ctx.wakeInstances?.(line.map((entry) => entry.key));
}

/** Records a recovery's Event on its provider, and logs it. */
export function recordRecoveryEvent(ctx: OperatorContext, provider: ResolvedProvider, event: PlannedEvent | undefined): void {
  if (!event) return;
  ctx.log.info({ provider: provider.key, reason: event.reason }, event.message);
  ctx.events.record(provider.object, event.type, event.reason, event.message);
}

/**
 * What one look found, for the recovery. A session that was running found stopped makes
 * the operator ask the gateway at once whether it restarted (its start time), so that a
 * recovery lines every session up before this one takes a slot; where the gateway cannot
 * tell, STOPPED_AT_ONCE such sessions say it. One seen out of its start may end a recovery.
 */
export async function sawSession(
  ctx: OperatorContext,
  provider: ResolvedProvider,
  key: string,
  session: Pick<ObservedSession, "phase">,
  status: InstanceStatus,
  wanted: string,
): Promise<void> {
  if (session.phase === "Disconnected" && wanted === "Connected" && WAS_RUNNING.has(status.phase) && !ctx.gatewayRestarts.recovering(provider.key)) {
    const server = await provider.client.checkHealth().catch(() => undefined);
    const cause = (server && ctx.gatewayRestarts.sawServer(provider.key, server)) ?? ctx.gatewayRestarts.sawStopped(provider.key, key, ctx.clock.now());
    if (cause) beginRecovery(ctx, provider, cause);
  }
  if (session.phase === "Starting" || !ctx.gatewayRestarts.recovering(provider.key)) return;
  const now = ctx.clock.now();
  const load = ctx.startSlots.load(provider.key, now, ctx.config.stuckTimeout);
  recordRecoveryEvent(ctx, provider, ctx.gatewayRestarts.settled(provider.key, key, session.phase === "Connected", load, now));
}
