/**
 * The provider controller (both kinds), declared: its pass (reconciler.ts) and the events
 * that make a provider worth a look. Its keys are "<kind>|<namespace/name or name>".
 */
import { parseInstanceSpec } from "../../api/parse-once.ts";
import type { InstanceObject, ProviderObject } from "../../api/objects.ts";
import type { SlimSecret } from "../../kube/secret-cache.ts";
import type { InformerEvent } from "../../runtime/informer.ts";
import type { OperatorContext } from "../context.ts";
import { placedRefOf } from "../instance/provider-ref.ts";
import { watch, type ControllerDefinition, type Wake } from "../kit/controller.ts";
import { providerOwning, providersReading, type WatchSource } from "../watch-sources.ts";
import { CLUSTER_PROVIDER_KIND, PROVIDER_KIND, type ProviderRefKey } from "./connections.ts";
import { reconcileProvider } from "./reconciler.ts";

export function providerController(options: { readonly workers: number }): ControllerDefinition<WatchSource, OperatorContext> {
  return {
    name: "whatsappprovider",
    workers: options.workers,
    reconcile: (ctx, key) => {
      const bar = key.indexOf("|");
      return reconcileProvider(ctx, key.slice(0, bar), key.slice(bar + 1));
    },
    watches: [
      watch("providers", providerChanged(PROVIDER_KIND)),
      watch("clusterProviders", providerChanged(CLUSTER_PROVIDER_KIND)),
      watch("instances", instanceCameOrWent),
      watch("secrets", secretChanged),
    ],
  };
}

/** The provider controller's key for a provider resource. */
export function providerQueueKey(ref: ProviderRefKey): string {
  return `${ref.kind}|${ref.kind === CLUSTER_PROVIDER_KIND ? ref.name : `${ref.namespace}/${ref.name}`}`;
}

const providerChanged =
  (kind: string) =>
  (event: InformerEvent<ProviderObject>): Wake[] => [
    { key: providerQueueKey({ kind, namespace: event.object.metadata.namespace, name: event.object.metadata.name }), priority: event.type === "resync" ? "routine" : "urgent" },
  ];

/** How soon a provider recounts its instances after one is added or removed. */
export const PROVIDER_COUNT_DELAY_MS = 1_000;

/**
 * A new, removed or newly placed instance changes its provider's count (and may free a quota slot), and
 * one whose phase changed its linked and starting counts. The
 * count is taken once a second at most: a burst of N new instances is one provider pass
 * (one health check), not N.
 */
function instanceCameOrWent(event: InformerEvent<InstanceObject>): Wake[] {
  const placedNow = event.type === "updated" && !event.old?.status?.providerRef && event.object.status?.providerRef !== undefined;
  // A phase change moves status.sessions (linked, starting): a recovery's progress shows there.
  const phaseChanged = event.type === "updated" && event.old !== undefined && event.old.status?.phase !== event.object.status?.phase;
  if (event.type !== "added" && event.type !== "deleted" && !placedNow && !phaseChanged) return [];
  const spec = parseInstanceSpec(event.object.spec);
  const ref = spec.success ? placedRefOf(event.object, spec.data) : undefined;
  return ref ? [{ key: providerQueueKey(ref), afterMs: PROVIDER_COUNT_DELAY_MS }] : [];
}

/** Its events Secret went away (it writes it again), or its credentials changed. */
function* secretChanged(event: InformerEvent<SlimSecret>, ctx: OperatorContext): Iterable<Wake> {
  if (event.type === "resync") return;
  if (event.type === "updated" && event.old?.dataDigest === event.object.dataDigest) return;
  const owner = providerOwning(event.object);
  if (owner) return event.type === "deleted" ? yield { key: providerQueueKey(owner) } : undefined;
  for (const { kind, object } of providersReading(ctx, event.object)) {
    yield { key: providerQueueKey({ kind, namespace: object.metadata.namespace, name: object.metadata.name }) };
  }
}
