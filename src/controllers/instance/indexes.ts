/**
 * The instance cache's indexes, so that a pass finds the instances of one provider, or
 * those naming one session, by a lookup instead of parsing every cached instance: at
 * 10,000 instances a scan per pass made a burst cost O(N²). Kept by the informer with
 * every change it sees or we write through (Informer.put).
 */
import { parseInstanceSpec } from "../../api/parse-once.ts";
import type { KubeObject } from "../../kube/resources.ts";
import type { ProviderModule } from "../../providers/module.ts";
import { PROVIDER_MODULES } from "../../providers/registry.ts";
import type { Cache, InstanceObject, OperatorContext } from "../context.ts";
import { providerKey } from "../provider/connections.ts";
import { placedRefOf } from "./provider-ref.ts";

export const BY_PROVIDER = "provider";
export const BY_SESSION = "session";
/** The BY_PROVIDER value of an instance whose providerSelector has not placed it yet (no provider key looks like it). */
export const UNPLACED = "(unplaced)";

export const INSTANCE_INDEXERS: Readonly<Record<string, (object: KubeObject) => readonly string[]>> = {
  /** The provider key (providerKey) of the provider it names, or where a selector placed it; UNPLACED until then. */
  [BY_PROVIDER]: (object) => {
    const instance = object as InstanceObject;
    const parsed = parseInstanceSpec(instance.spec);
    if (!parsed.success) return [];
    const ref = placedRefOf(instance, parsed.data);
    return [ref ? providerKey(ref) : UNPLACED];
  },
  /**
   * Every session id it may claim (sessionClaim): the one its spec names for any provider
   * type (the type is the provider object's, not the instance's) and the one in its status.
   */
  [BY_SESSION]: (object) => {
    const instance = object as InstanceObject;
    const parsed = parseInstanceSpec(instance.spec);
    if (!parsed.success) return [];
    const ids = new Set<string>();
    for (const module of Object.values(PROVIDER_MODULES) as ProviderModule[]) {
      const named = module.ownership.sessionNamed(parsed.data, instance.metadata.namespace as string);
      if (named) ids.add(named.id);
    }
    if (instance.status?.providerInstanceId) ids.add(instance.status.providerInstanceId);
    return [...ids];
  },
};

/** The cached instances an index files under `value`; a scan where the cache keeps no index (tests). */
export function instancesBy(cache: Cache<InstanceObject>, index: string, value: string, scan: (instance: InstanceObject) => boolean): InstanceObject[] {
  return cache.byIndex?.(index, value) ?? cache.list().filter(scan);
}

/** Instances (from the cache) whose provider, named or placed, is the given provider key. */
export function instancesUsing(ctx: Pick<OperatorContext, "caches">, key: string): InstanceObject[] {
  return instancesBy(ctx.caches.instances, BY_PROVIDER, key, (other) => INSTANCE_INDEXERS[BY_PROVIDER]?.(other).includes(key) === true);
}
