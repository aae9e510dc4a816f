/**
 * Placement of an instance with spec.providerSelector on one provider of a fleet. The
 * choice is a pure function of the candidates (choosePlacement, a table test); the rest
 * gathers the candidates from the caches and records the choice in status.providerRef,
 * once: a linked session cannot move without a new QR.
 */
import type { InstanceSpec } from "../../api/instance.ts";
import { parseInstanceSpec } from "../../api/parse-once.ts";
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
  /** Instances already there (pinned or placed, also while being deleted), and placements in flight. */
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

/** Reads every watched instance from the API server into the cache (a quorum read: nothing written before it is missed). */
async function readInstances(ctx: Pick<OperatorContext, "kube" | "config" | "caches">): Promise<void> {
  const namespaces = ctx.config.namespaces.length > 0 ? ctx.config.namespaces : [undefined];
  for (const namespace of namespaces) {
    const { items } = await ctx.kube.list<InstanceObject>(INSTANCES, namespace);
    for (const item of items) ctx.caches.instances.remember(item);
  }
}

/** One instance from the API server (list: the operator may not get), written through to the cache. */
async function rereadInstance(ctx: Pick<OperatorContext, "kube" | "caches">, namespace: string, name: string): Promise<InstanceObject | undefined> {
  const { items } = await ctx.kube.list<InstanceObject>(INSTANCES, namespace, undefined, `metadata.name=${name}`);
  const found = items[0];
  if (found) ctx.caches.instances.remember(found);
  return found;
}

/** Every provider of both kinds, as placement sees it for an instance in `namespace`. */
export function placementCandidates(ctx: Pick<OperatorContext, "caches" | "connections" | "placements">, namespace: string): PlacementCandidate[] {
  const pending = ctx.placements.pending(ctx.caches.instances);
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
      // One being deleted counts until it is gone: its session may still be at the gateway (its finalizer removes it).
      placed: instancesUsing(ctx, key).length + (pending.get(key) ?? 0),
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
 * a conflict, reads the instance again and keeps the placement it finds there.
 */
export async function placeInstance(ctx: OperatorContext, instance: InstanceObject, spec: InstanceSpec): Promise<PlacementOutcome> {
  const namespace = instance.metadata.namespace as string;
  const name = instance.metadata.name;
  if (!ctx.placements.mayPlace) return { result: { requeueAfterMs: 1000 } };
  await ctx.placements.catchUp(() => readInstances(ctx));
  // The catch-up may have brought a placement the old leader made.
  const current = ctx.caches.instances.get(`${namespace}/${name}`);
  if (current && current.metadata.uid === instance.metadata.uid && current.status?.providerRef) return { instance: current };
  const choice = choosePlacement(spec.providerSelector ?? {}, placementCandidates(ctx, namespace));
  if (!choice.placed) {
    // The operator wakes it when room appears (operator.ts wakeUnplaced); the poll is the fallback.
    return { verdict: { ready: false, stalled: false, reason: "NoCapacity", message: choice.message }, result: { requeueAfterMs: ctx.config.pollInterval } };
  }
  const ref: ProviderRefKey = { kind: choice.kind, namespace: choice.kind === PROVIDER_KIND ? namespace : undefined, name: choice.name };
  const uid = instance.metadata.uid as string;
  ctx.placements.reserve(uid, { key: `${namespace}/${name}`, provider: providerKey(ref), resourceVersion: instance.metadata.resourceVersion });
  let written: InstanceObject;
  try {
    written = await ctx.kube.patch<InstanceObject>(
      INSTANCES,
      namespace,
      name,
      { metadata: { resourceVersion: instance.metadata.resourceVersion }, status: { providerRef: { kind: choice.kind, name: choice.name } } },
      "merge",
      "status",
    );
  } catch (error) {
    // Any other failure may have landed: the reservation stays until the cache tells.
    if (!isConflict(error) && !isNotFound(error)) throw error;
    ctx.placements.release(uid);
    if (isNotFound(error)) return { result: {} };
    // Our view was behind: what is there now decides, never a second choice over it.
    const fresh = await rereadInstance(ctx, namespace, name);
    if (fresh && fresh.metadata.uid === uid && fresh.status?.providerRef) return { instance: fresh };
    return { result: { requeueAfterMs: 500 } };
  }
  // From here the cache counts it; the reservation can go.
  ctx.caches.instances.remember(written);
  ctx.placements.release(uid);
  ctx.events.record(written, "Normal", "Placed", `placed on ${choice.kind} ${choice.name}, which had ${choice.free} free slots`);
  ctx.log.info({ namespace, name, provider: choice.name, kind: choice.kind, free: choice.free }, "placed");
  return { instance: written };
}

/** Instances with a providerSelector that are not placed yet (and not being deleted). */
export function unplacedInstances(ctx: Pick<OperatorContext, "caches">): InstanceObject[] {
  const unplaced = (instance: InstanceObject): boolean => {
    if (instance.status?.providerRef) return false;
    const parsed = parseInstanceSpec(instance.spec);
    return parsed.success && parsed.data.providerSelector !== undefined;
  };
  return instancesBy(ctx.caches.instances, BY_PROVIDER, UNPLACED, unplaced).filter((instance) => !instance.metadata.deletionTimestamp);
}
