/** Which provider an instance names, and which instances use a provider: from the caches alone. */
import { instanceSpecSchema, type InstanceSpec } from "../../api/instance.ts";
import type { InstanceObject, OperatorContext } from "../context.ts";
import { CLUSTER_PROVIDER_KIND, ProviderResolutionError, providerKey } from "../provider/connections.ts";

export interface InstanceProviderRef {
  readonly kind: string;
  readonly namespace: string | undefined;
  readonly name: string;
}

/** Instances (from the cache) whose provider, named or placed, is the given provider key. */
export function instancesUsing(ctx: Pick<OperatorContext, "caches">, key: string): InstanceObject[] {
  return ctx.caches.instances.list().filter((other) => {
    const parsed = instanceSpecSchema.safeParse(other.spec);
    const ref = parsed.success ? placedRefOf(other, parsed.data) : undefined;
    return ref !== undefined && providerKey(ref) === key;
  });
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
