/** The resource types the operator reads and writes, with their API paths. */
import { GROUP, VERSION } from "../api/common.ts";

export interface ResourceType {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

export const INSTANCES: ResourceType = { group: GROUP, version: VERSION, plural: "whatsappinstances", kind: "WhatsAppInstance", namespaced: true };
export const PROVIDERS: ResourceType = { group: GROUP, version: VERSION, plural: "whatsappproviders", kind: "WhatsAppProvider", namespaced: true };
export const CLUSTER_PROVIDERS: ResourceType = {
  group: GROUP,
  version: VERSION,
  plural: "clusterwhatsappproviders",
  kind: "ClusterWhatsAppProvider",
  namespaced: false,
};
export const SECRETS: ResourceType = { group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true };
export const EVENTS: ResourceType = { group: "", version: "v1", plural: "events", kind: "Event", namespaced: true };
export const NAMESPACES: ResourceType = { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false };
export const LEASES: ResourceType = { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true };

export function apiVersionOf(type: ResourceType): string {
  return type.group === "" ? type.version : `${type.group}/${type.version}`;
}

/** The collection path, e.g. /apis/wa-operator.io/v1alpha1/namespaces/ns/whatsappinstances. */
export function collectionPath(type: ResourceType, namespace?: string): string {
  const root = type.group === "" ? `/api/${type.version}` : `/apis/${type.group}/${type.version}`;
  return type.namespaced && namespace ? `${root}/namespaces/${namespace}/${type.plural}` : `${root}/${type.plural}`;
}

export function objectPath(type: ResourceType, namespace: string | undefined, name: string): string {
  return `${collectionPath(type, namespace)}/${encodeURIComponent(name)}`;
}

/** Minimal shape of any Kubernetes object. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    finalizers?: string[];
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
  };
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** The queue key of an object: namespace/name, or name for cluster-scoped ones. */
export function keyOf(object: KubeObject): string {
  return object.metadata.namespace ? `${object.metadata.namespace}/${object.metadata.name}` : object.metadata.name;
}

/**
 * Whether `candidate` is a later version than `current`. resourceVersions are opaque to
 * clients in general, but every API server backed by etcd issues them as increasing
 * integers; anything else is taken as newer, as a plain informer would.
 */
export function isNewer(candidate: KubeObject, current: KubeObject): boolean {
  const a = candidate.metadata.resourceVersion;
  const b = current.metadata.resourceVersion;
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return a !== b || !a;
  return BigInt(a) > BigInt(b);
}
