/**
 * The WhatsAppInstance controller, declared: its pass (reconciler.ts) and every event that
 * makes an instance worth a look.
 */
import { parseInstanceSpec } from "../../api/parse-once.ts";
import type { InstanceObject, ProviderObject } from "../../api/objects.ts";
import { INSTANCES, keyOf, type KubeObject } from "../../kube/resources.ts";
import type { SlimSecret } from "../../kube/secret-cache.ts";
import { ProviderError } from "../../providers/errors.ts";
import type { InformerEvent } from "../../runtime/informer.ts";
import type { OperatorContext } from "../context.ts";
import { watch, type ControllerDefinition, type Wake } from "../kit/controller.ts";
import { CLUSTER_PROVIDER_KIND, PROVIDER_KIND, providerKey, type ProviderRefKey } from "../provider/connections.ts";
import { metadataChanged, providerOwning, providersReading, secretsNamedBy, type WatchSource } from "../watch-sources.ts";
import { instancesUsing } from "./indexes.ts";
import { unplacedInstances } from "./placement.ts";
import { placedRefOf } from "./provider-ref.ts";
import { reconcileInstance } from "./reconciler.ts";

export interface InstanceControllerOptions {
  readonly workers: number;
  /** At most this many workers wait on one provider; the rest serve the others. */
  readonly maxPerProvider: number;
  /** Stands in for the pass (tests of the kit's logging and metrics). */
  readonly reconcile?: typeof reconcileInstance;
}

export function instanceController(options: InstanceControllerOptions): ControllerDefinition<WatchSource, OperatorContext> {
  return {
    name: "whatsappinstance",
    workers: options.workers,
    groupOf: (key, ctx) => providerOfKey(ctx, key),
    maxPerGroup: options.maxPerProvider,
    failedInGroup: (error) => error instanceof ProviderError,
    reconcile: options.reconcile ?? reconcileInstance,
    watches: [
      watch("instances", instanceChanged),
      watch("providers", providerChanged(PROVIDER_KIND)),
      watch("clusterProviders", providerChanged(CLUSTER_PROVIDER_KIND)),
      watch("secrets", secretChanged),
      watch("namespaces", namespaceLabelsChanged),
    ],
  };
}

/** The provider key an instance's passes depend on ("kind/namespace/name"). */
export function providerOfKey(ctx: Pick<OperatorContext, "caches">, key: string): string | undefined {
  const instance = ctx.caches.instances.get(key);
  const spec = instance ? parseInstanceSpec(instance.spec) : undefined;
  const ref = instance && spec?.success ? placedRefOf(instance, spec.data) : undefined;
  return ref ? providerKey(ref) : undefined;
}

const using = (ctx: OperatorContext, ref: ProviderRefKey): Wake[] => instancesUsing(ctx, providerKey(ref)).map((instance) => ({ key: keyOf(instance) }));

/** Instances with a providerSelector and no placement yet: room may have appeared for them. */
const unplaced = (ctx: OperatorContext): Wake[] => unplacedInstances(ctx).map((instance) => ({ key: keyOf(instance) }));

function* instanceChanged(event: InformerEvent<InstanceObject>, ctx: OperatorContext): Iterable<Wake> {
  const key = keyOf(event.object);
  // Our own status writes come back as updates; looking again for them would only double the calls to providers.
  if (event.type === "updated" && event.old && !metadataChanged(event.old, event.object)) return;
  // A resync only makes sure nothing is forgotten: an instance with a look scheduled is not.
  if (event.type === "resync") return yield { key, priority: "routine", unlessScheduled: true };
  yield { key };
  if (event.type !== "deleted") return;
  // A removed instance frees a quota slot for the others of its provider, and room for an unplaced one.
  const spec = parseInstanceSpec(event.object.spec);
  if (!spec.success) return;
  yield* unplaced(ctx);
  const ref = placedRefOf(event.object, spec.data);
  if (ref) yield* using(ctx, ref);
}

/**
 * A provider's spec, labels or readiness changed (or it came or went): its instances look
 * again, and so do those waiting for placement (it may now match, or have room).
 */
const providerChanged =
  (kind: string) =>
  (event: InformerEvent<ProviderObject>, ctx: OperatorContext): Wake[] => {
    const ready = (object: ProviderObject | undefined) => object?.status?.conditions?.find((condition) => condition.type === "Ready")?.status;
    const specChanged = event.old?.metadata.generation !== event.object.metadata.generation;
    const labelsChanged = JSON.stringify(event.old?.metadata.labels ?? {}) !== JSON.stringify(event.object.metadata.labels ?? {});
    if (event.type === "resync" || (event.type === "updated" && !specChanged && !labelsChanged && ready(event.old) === ready(event.object))) return [];
    return [...unplaced(ctx), ...using(ctx, { kind, namespace: event.object.metadata.namespace, name: event.object.metadata.name })];
  };

function* secretChanged(event: InformerEvent<SlimSecret>, ctx: OperatorContext): Iterable<Wake> {
  if (event.type === "resync") return;
  if (event.type === "updated" && event.old?.dataDigest === event.object.dataDigest) return;
  const provider = providerOwning(event.object);
  // A provider's events Secret appeared or changed: its sessions get the new wiring.
  if (provider) return yield* using(ctx, provider);
  const { namespace, name } = event.object.metadata;
  const owner = event.object.metadata.ownerReferences?.find((reference) => reference.kind === INSTANCES.kind);
  // Our own Secrets change because we write them; only a deletion needs repair.
  if (owner) return event.type === "deleted" ? yield { key: `${namespace}/${owner.name}` } : undefined;
  for (const { kind, object } of providersReading(ctx, event.object)) {
    yield* using(ctx, { kind, namespace: object.metadata.namespace, name: object.metadata.name });
  }
  for (const instance of ctx.caches.instances.list()) {
    if (instance.metadata.namespace === namespace && secretsNamedBy(instance).includes(name as string)) yield { key: keyOf(instance) };
  }
}

/** A namespace's labels changed: which cluster providers let it in (or a selector may place it on) may have too. */
function* namespaceLabelsChanged(event: InformerEvent<KubeObject>, ctx: OperatorContext): Iterable<Wake> {
  if (event.type === "resync" || event.type === "deleted") return;
  if (event.type === "updated" && JSON.stringify(event.old?.metadata.labels ?? {}) === JSON.stringify(event.object.metadata.labels ?? {})) return;
  for (const instance of ctx.caches.instances.list()) {
    if (instance.metadata.namespace !== event.object.metadata.name) continue;
    const spec = parseInstanceSpec(instance.spec);
    if (spec.success && (placedRefOf(instance, spec.data)?.kind === CLUSTER_PROVIDER_KIND || spec.data.providerSelector)) yield { key: keyOf(instance) };
  }
}
