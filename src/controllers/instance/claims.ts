/**
 * One claim per session. A spec can name a session that already exists (spec.adopt.id, a
 * cloud_api phone number, a whapi device's key); two resources naming one session would
 * drive it against each other, and the second could be another tenant. Of all the
 * instances, in any namespace and through any provider resource reaching the same gateway,
 * that name the session (or have it recorded in status), one holds the claim: one whose
 * status records the session first (only the operator writes status, after it created or
 * claimed the session), then the oldest by creation time, then uid, so every replica and
 * every pass decides alike. Creation times have one-second resolution: without the first
 * rule, a resource created in the same second as the session's holder could take the claim
 * by the luck of its uid. The others are Stalled (SessionClaimed) and make no call on it.
 */
import type { InstanceSpec } from "../../api/instance.ts";
import { parseInstanceSpec } from "../../api/parse-once.ts";
import { PROVIDER_MODULES } from "../../providers/registry.ts";
import type { InstanceObject, OperatorContext } from "../context.ts";
import type { ResolvedProvider } from "../provider/connections.ts";
import { BY_SESSION, INSTANCE_INDEXERS, instancesBy } from "./indexes.ts";
import { placedRefOf } from "./provider-ref.ts";

export interface SessionClaim {
  /** The session the spec names (provider-specific id). */
  readonly id: string;
  /** Whether naming it takes over a session the operator did not create for this resource. */
  readonly adopts: boolean;
  /** Why another instance holds the claim, when one does. */
  readonly heldElsewhere?: string;
}

/** The claim this instance's spec makes, if it names a session, with who holds it. */
export function sessionClaim(
  ctx: Pick<OperatorContext, "caches" | "connections">,
  instance: InstanceObject,
  spec: InstanceSpec,
  provider: Pick<ResolvedProvider, "type" | "settings">,
): SessionClaim | undefined {
  const namespace = instance.metadata.namespace as string;
  const ownership = PROVIDER_MODULES[provider.type].ownership;
  const named = ownership.sessionNamed(spec, namespace);
  if (!named) return undefined;
  const endpoint = `${provider.type} ${provider.settings.url}`;
  const endpoints = new Map<string, string | undefined>();
  let holder: InstanceObject = instance;
  // Only the instances that name this id or have it in status can hold its claim: a lookup, not a scan.
  const contenders = instancesBy(ctx.caches.instances, BY_SESSION, named.id, (other) => INSTANCE_INDEXERS[BY_SESSION]?.(other).includes(named.id) === true);
  for (const other of contenders) {
    if (other.metadata.uid === instance.metadata.uid) continue;
    const parsed = parseInstanceSpec(other.spec);
    if (!parsed.success) continue;
    const ref = placedRefOf(other, parsed.data);
    if (!ref) continue;
    const refKey = `${ref.kind}/${ref.namespace ?? ""}/${ref.name}`;
    if (!endpoints.has(refKey)) endpoints.set(refKey, ctx.connections.endpoint(ref));
    if (endpoints.get(refKey) !== endpoint) continue;
    const otherId = ownership.sessionNamed(parsed.data, other.metadata.namespace as string)?.id ?? other.status?.providerInstanceId;
    if (otherId === named.id && ranksBefore(other, holder, named.id)) holder = other;
  }
  if (holder === instance) return named;
  const by =
    holder.metadata.namespace === namespace ? `WhatsAppInstance ${holder.metadata.name}` : "a WhatsAppInstance in another namespace";
  return { ...named, heldElsewhere: `the ${provider.type} session ${named.id} is already claimed by ${by}; only one resource may drive a session` };
}

function ranksBefore(a: InstanceObject, b: InstanceObject, id: string): boolean {
  const aHolds = a.status?.providerInstanceId === id;
  const bHolds = b.status?.providerInstanceId === id;
  return aHolds !== bHolds ? aHolds : earlier(a, b);
}

function earlier(a: InstanceObject, b: InstanceObject): boolean {
  const byTime = (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? "");
  return byTime !== 0 ? byTime < 0 : (a.metadata.uid ?? "") < (b.metadata.uid ?? "");
}
