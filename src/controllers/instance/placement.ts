/**
 * Placement of an instance with spec.providerSelector on one provider of a fleet. The
 * choice is a pure function of the candidates (choosePlacement, a table test); the rest
 * gathers the candidates from the caches and records the choice in status.providerRef,
 * once: a linked session cannot move without a new QR.
 */
import type { InstanceSpec } from "../../api/instance.ts";
import { instanceSpecSchema } from "../../api/instance.ts";
import { isConflict, isNotFound } from "../../kube/client.ts";
import { matchesSelector, type LabelSelectorLike } from "../../kube/label-selector.ts";
import { INSTANCES } from "../../kube/resources.ts";
import type { Verdict } from "../conditions.ts";
import type { InstanceObject, OperatorContext, ProviderObject, ReconcileResult } from "../context.ts";
import { CLUSTER_PROVIDER_KIND, PROVIDER_KIND, providerKey, smallerBound, type ProviderRefKey } from "../provider/connections.ts";
import { BY_PROVIDER, instancesBy, instancesUsing, UNPLACED } from "./indexes.ts";

export type PlacedKind = typeof PROVIDER_KIND | typeof CLUSTER_PROVIDER_KIND;

/** One provider as placement sees it. */
export interface PlacementCandidate {
  readonly kind: PlacedKind;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>> | undefined;
  /** Its Ready condition is True. */
  readonly ready: boolean;
  /** The tenant boundary: a cluster provider whose allowedNamespaces lets the instance's namespace in. */
  readonly allowed: boolean;
  /** spec.capacity.maxSessions; a provider without one takes no part. */
  readonly capacity: number | undefined;
  /** spec.maxInstances, which bounds it too where smaller. */
  readonly maxInstances: number | undefined;
  /** Instances already there (pinned or placed), and placements in flight. */
  readonly placed: number;
}

export type PlacementChoice =
  | { readonly placed: true; readonly kind: PlacedKind; readonly name: string; readonly free: number }
  | { readonly placed: false; readonly message: string };

/**
 * The matching, allowed, Ready provider with a capacity and the most free slots; ties go
 * to the first by name (then kind), so a burst spreads evenly over empty providers.
 */
export function choosePlacement(selector: LabelSelectorLike, candidates: readonly PlacementCandidate[]): PlacementChoice {
  const matching = candidates.filter((candidate) => candidate.allowed && matchesSelector(selector, candidate.labels));
  if (matching.length === 0) return { placed: false, message: "no provider this namespace may use matches spec.providerSelector" };
  const open = matching
    .filter((candidate) => candidate.ready && candidate.capacity !== undefined)
    .map((candidate) => ({ candidate, free: (smallerBound(candidate.maxInstances, candidate.capacity) as number) - candidate.placed }))
    .filter(({ free }) => free > 0)
    .sort((a, b) => b.free - a.free || a.candidate.name.localeCompare(b.candidate.name) || a.candidate.kind.localeCompare(b.candidate.kind));
  const best = open[0];
  if (best) return { placed: true, kind: best.candidate.kind, name: best.candidate.name, free: best.free };
  const why = matching
    .slice(0, 5)
    .map((candidate) => `${candidate.name} ${candidate.capacity === undefined ? "has no capacity" : !candidate.ready ? "is not Ready" : `is full (${candidate.placed}/${smallerBound(candidate.maxInstances, candidate.capacity)})`}`);
  return { placed: false, message: `no matching provider has room: ${why.join(", ")}${matching.length > 5 ? ", ..." : ""}; waiting for one` };
}

/**
 * Placements whose status write is in flight, per operator process (keyed by its caches,
 * which every per-pass copy of the context shares): counted as placed, so a burst of
 * passes never over-fills a provider before their writes reach the cache.
 */
const inFlight = new WeakMap<object, Map<string, string>>();

function reservations(ctx: Pick<OperatorContext, "caches">): Map<string, string> {
  let map = inFlight.get(ctx.caches);
  if (!map) {
    map = new Map();
    inFlight.set(ctx.caches, map);
  }
  return map;
}

/** Every provider of both kinds, as placement sees it for an instance in `namespace`. */
export function placementCandidates(ctx: Pick<OperatorContext, "caches" | "connections">, namespace: string): PlacementCandidate[] {
  const pending = [...reservations(ctx).values()];
  const candidate = (kind: PlacedKind, object: ProviderObject): PlacementCandidate => {
    const ref: ProviderRefKey = { kind, namespace: kind === PROVIDER_KIND ? namespace : undefined, name: object.metadata.name };
    const key = providerKey(ref);
    const spec = (object.spec ?? {}) as { capacity?: { maxSessions?: number }; maxInstances?: number };
    return {
      kind,
      name: object.metadata.name,
      labels: object.metadata.labels,
      ready: object.status?.conditions?.some((condition) => condition.type === "Ready" && condition.status === "True") === true,
      allowed: kind === PROVIDER_KIND || ctx.connections.allows(ref, namespace),
      capacity: spec.capacity?.maxSessions,
      maxInstances: spec.maxInstances,
      placed: instancesUsing(ctx, key).filter((user) => !user.metadata.deletionTimestamp).length + pending.filter((other) => other === key).length,
    };
  };
  const live = (object: ProviderObject) => !object.metadata.deletionTimestamp;
  return [
    ...ctx.caches.providers.list().filter((object) => live(object) && object.metadata.namespace === namespace).map((object) => candidate(PROVIDER_KIND, object)),
    ...ctx.caches.clusterProviders.list().filter(live).map((object) => candidate(CLUSTER_PROVIDER_KIND, object)),
  ];
}

/** What placing an instance came to: the instance as written with its placement, or what to report and when to try again. */
export type PlacementOutcome = { readonly instance: InstanceObject } | { readonly verdict?: Verdict; readonly result: ReconcileResult };

/**
 * Places an instance with a providerSelector: picks a provider, counts it as taken while
 * the write is in flight, and records it in status.providerRef with the cached
 * resourceVersion, so a replica whose view was behind (one that placed it already) gets
 * a conflict and looks again instead of placing it twice.
 */
export async function placeInstance(ctx: OperatorContext, instance: InstanceObject, spec: InstanceSpec): Promise<PlacementOutcome> {
  const namespace = instance.metadata.namespace as string;
  const choice = choosePlacement(spec.providerSelector ?? {}, placementCandidates(ctx, namespace));
  if (!choice.placed) {
    // The operator wakes it when room appears (operator.ts wakeUnplaced); the poll is the fallback.
    return { verdict: { ready: false, stalled: false, reason: "NoCapacity", message: choice.message }, result: { requeueAfterMs: ctx.config.pollInterval } };
  }
  const ref: ProviderRefKey = { kind: choice.kind, namespace: choice.kind === PROVIDER_KIND ? namespace : undefined, name: choice.name };
  const uid = instance.metadata.uid as string;
  const pending = reservations(ctx);
  pending.set(uid, providerKey(ref));
  try {
    const written = await ctx.kube.patch<InstanceObject>(
      INSTANCES,
      namespace,
      instance.metadata.name,
      { metadata: { resourceVersion: instance.metadata.resourceVersion }, status: { providerRef: { kind: choice.kind, name: choice.name } } },
      "merge",
      "status",
    );
    // From here the cache counts it; the reservation can go.
    ctx.caches.instances.remember(written);
    ctx.events.record(written, "Normal", "Placed", `placed on ${choice.kind} ${choice.name}, which had ${choice.free} free slots`);
    ctx.log.info({ namespace, name: instance.metadata.name, provider: choice.name, kind: choice.kind, free: choice.free }, "placed");
    return { instance: written };
  } catch (error) {
    if (isConflict(error)) return { result: { requeueAfterMs: 500 } };
    if (isNotFound(error)) return { result: {} };
    throw error;
  } finally {
    pending.delete(uid);
  }
}

/** Instances with a providerSelector that are not placed yet (and not being deleted). */
export function unplacedInstances(ctx: Pick<OperatorContext, "caches">): InstanceObject[] {
  const unplaced = (instance: InstanceObject): boolean => {
    if (instance.status?.providerRef) return false;
    const parsed = instanceSpecSchema.safeParse(instance.spec);
    return parsed.success && parsed.data.providerSelector !== undefined;
  };
  return instancesBy(ctx.caches.instances, BY_PROVIDER, UNPLACED, unplaced).filter((instance) => !instance.metadata.deletionTimestamp);
}
