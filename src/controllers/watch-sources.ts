/**
 * The informers a controller can be woken by, and what each event in them means to more
 * than one controller: small helpers the declarations share.
 */
import { parseInstanceSpec } from "../api/parse-once.ts";
import type { InstanceObject, ProviderObject } from "../api/objects.ts";
import type { KubeObject } from "../kube/resources.ts";
import { PROVIDER_MODULES } from "../providers/registry.ts";
import type { OperatorContext } from "./context.ts";
import { CLUSTER_PROVIDER_KIND, PROVIDER_KIND, type ProviderRefKey } from "./provider/connections.ts";

export type WatchSource = "instances" | "providers" | "clusterProviders" | "secrets" | "namespaces";

/** The provider resource whose Secret (its events key) this is, from its owner reference. */
export function providerOwning(secret: KubeObject): ProviderRefKey | undefined {
  const owner = secret.metadata.ownerReferences?.find((reference) => reference.kind === PROVIDER_KIND || reference.kind === CLUSTER_PROVIDER_KIND);
  if (!owner) return undefined;
  return { kind: owner.kind, namespace: owner.kind === PROVIDER_KIND ? secret.metadata.namespace : undefined, name: owner.name };
}

/** The provider resources whose credentials are this Secret. */
export function providersReading(ctx: Pick<OperatorContext, "caches">, secret: KubeObject): { kind: string; object: ProviderObject }[] {
  const { namespace, name } = secret.metadata;
  const found: { kind: string; object: ProviderObject }[] = [];
  for (const [kind, cache] of [
    [PROVIDER_KIND, ctx.caches.providers],
    [CLUSTER_PROVIDER_KIND, ctx.caches.clusterProviders],
  ] as const) {
    for (const provider of cache.list()) {
      const ref = (provider.spec as { credentialsSecretRef?: { name?: string; namespace?: string } }).credentialsSecretRef;
      if (ref?.name === name && (ref.namespace ?? provider.metadata.namespace) === namespace) found.push({ kind, object: provider });
    }
  }
  return found;
}

/** The Secrets an instance's spec names: its key, its webhook's, and its provider type's own (the cloud_api PIN). */
export function secretsNamedBy(instance: InstanceObject): readonly string[] {
  const parsed = parseInstanceSpec(instance.spec);
  if (!parsed.success) return [];
  const spec = parsed.data;
  const own = Object.values(PROVIDER_MODULES).flatMap((module) => module.referencedSecrets?.(spec) ?? []);
  return [spec.credentialsSecretRef?.name, spec.webhook?.secretRef?.name, spec.session?.proxy?.credentialsSecretRef?.name, ...own].filter((name): name is string => name !== undefined);
}

/** Whether an update changed what a pass acts on: spec (generation), deletion, finalizers or annotations. Status alone does not. */
export function metadataChanged(before: KubeObject, after: KubeObject): boolean {
  const a = before.metadata;
  const b = after.metadata;
  return (
    a.generation !== b.generation ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    JSON.stringify(a.finalizers ?? []) !== JSON.stringify(b.finalizers ?? []) ||
    JSON.stringify(a.annotations ?? {}) !== JSON.stringify(b.annotations ?? {})
  );
}
