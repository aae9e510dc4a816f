/** Which provider an instance names: from its spec alone. */
import type { InstanceSpec } from "../../api/instance.ts";
import type { InstanceObject } from "../context.ts";

export function providerRefOf(instance: InstanceObject, spec: InstanceSpec): { kind: string; namespace: string | undefined; name: string } {
  return {
    kind: spec.providerRef.kind,
    namespace: spec.providerRef.kind === "ClusterWhatsAppProvider" ? undefined : instance.metadata.namespace,
    name: spec.providerRef.name,
  };
}
