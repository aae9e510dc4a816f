/** Which provider an instance names, and which instances use a provider: from the caches alone. */
import { instanceSpecSchema, type InstanceSpec } from "../../api/instance.ts";
import type { InstanceObject, OperatorContext } from "../context.ts";
import { providerKey } from "../provider/connections.ts";

/** Instances (from the cache) whose providerRef resolves to the given provider key. */
export function instancesUsing(ctx: Pick<OperatorContext, "caches">, key: string): InstanceObject[] {
  return ctx.caches.instances.list().filter((other) => {
    const parsed = instanceSpecSchema.safeParse(other.spec);
    return parsed.success && providerKey(providerRefOf(other, parsed.data)) === key;
  });
}

export function providerRefOf(instance: InstanceObject, spec: InstanceSpec): { kind: string; namespace: string | undefined; name: string } {
  return {
    kind: spec.providerRef.kind,
    namespace: spec.providerRef.kind === "ClusterWhatsAppProvider" ? undefined : instance.metadata.namespace,
    name: spec.providerRef.name,
  };
}
