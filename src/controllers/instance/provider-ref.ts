/** Which provider an instance names, and which instances use a provider: from the caches alone. */
import type { InstanceSpec } from "../../api/instance.ts";
import type { InstanceObject } from "../context.ts";
import { CLUSTER_PROVIDER_KIND, ProviderResolutionError } from "../provider/connections.ts";

export interface InstanceProviderRef {
  readonly kind: string;
  readonly namespace: string | undefined;
  readonly name: string;
}

/**
 * The provider an instance uses: spec.providerRef, or for a providerSelector the placement
 * recorded in status.providerRef; undefined while a selector instance is not placed yet.
 */
export function placedRefOf(instance: InstanceObject, spec: InstanceSpec): InstanceProviderRef | undefined {
  const named = spec.providerRef ?? (spec.providerSelector ? instance.status?.providerRef : undefined);
  if (!named) return undefined;
  return {
    kind: named.kind,
    namespace: named.kind === CLUSTER_PROVIDER_KIND ? undefined : instance.metadata.namespace,
    name: named.name,
  };
}

/** placedRefOf for the paths that talk to the provider: an unplaced instance has none (ProviderNotFound, nothing to clean up). */
export function providerRefOf(instance: InstanceObject, spec: InstanceSpec): InstanceProviderRef {
  const ref = placedRefOf(instance, spec);
  if (!ref) throw new ProviderResolutionError("ProviderNotFound", "not placed on a provider yet");
  return ref;
}
