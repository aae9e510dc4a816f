/**
 * Every Kubernetes API permission the operator uses, and why. This is the contract for
 * all code the operator process runs (src/kube/*.ts, src/runtime/**, src/controllers/**,
 * src/http/**, src/operator.ts, src/cli/operator.ts): a code path that calls the API
 * server must stay within this list, and a new kind of call must be added here first.
 *
 * `npm run crds` renders the RBAC from this list (scripts/rendered-files.ts): `cluster`
 * entries in the ClusterRole `wa-operator`, `watched-namespaces` entries in the ClusterRole
 * `wa-operator-secrets` (in the chart, a Role in each of `watchNamespaces` and the
 * release's namespace when that is set), `operator-namespace` entries in the Role
 * `wa-operator-leader-election` of the operator's own namespace, in manifests/ and in the
 * Helm chart. test/integration/manifests.test.ts derives the calls from the code, compares
 * them with this list and this list with the rendered RBAC, and asks the API server
 * (`kubectl auth can-i`) as the ServiceAccount.
 *
 * Not covered: the kubectl-whatsapp plugin (src/cli/kubectl-whatsapp.ts, src/plugin/),
 * which runs with its user's own credentials.
 */
import { CLUSTER_PROVIDERS, EVENTS, INSTANCES, LEASES, NAMESPACES, PROVIDERS, SECRETS, type ResourceType } from "./resources.ts";

export const VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"] as const;
export type Verb = (typeof VERBS)[number];

/**
 * Where a grant applies: every namespace (ClusterRole); the namespaces the operator watches
 * and its own (a ClusterRole, or Roles where the chart names the namespaces); or only the
 * operator's own (Role).
 */
export type PermissionScope = "cluster" | "watched-namespaces" | "operator-namespace";

export interface Permission {
  readonly apiGroup: string;
  /** The plural, or plural/subresource. */
  readonly resource: string;
  readonly verbs: readonly Verb[];
  readonly scope: PermissionScope;
  /** Which code needs it. */
  readonly why: string;
}

const on = (type: ResourceType, subresource?: "status" | "finalizers"): { apiGroup: string; resource: string } => ({
  apiGroup: type.group,
  resource: subresource ? `${type.plural}/${subresource}` : type.plural,
});

export const REQUIRED_PERMISSIONS: readonly Permission[] = [
  {
    ...on(INSTANCES),
    verbs: ["list", "watch", "patch"],
    scope: "cluster",
    why: "informer (list, watch: every pass reads the cache); the reconciler merge-patches its finalizer",
  },
  {
    ...on(PROVIDERS),
    verbs: ["list", "watch"],
    scope: "cluster",
    why: "informer (list, watch: the provider reconciler reads the cache)",
  },
  {
    ...on(CLUSTER_PROVIDERS),
    verbs: ["list", "watch"],
    scope: "cluster",
    why: "informer (list, watch: the provider reconciler reads the cache)",
  },
  { ...on(INSTANCES, "status"), verbs: ["patch"], scope: "cluster", why: "the instance reconciler's status, as a merge patch" },
  { ...on(PROVIDERS, "status"), verbs: ["patch"], scope: "cluster", why: "the provider reconciler's status, as a merge patch" },
  { ...on(CLUSTER_PROVIDERS, "status"), verbs: ["patch"], scope: "cluster", why: "the provider reconciler's status, as a merge patch" },
  {
    ...on(INSTANCES, "finalizers"),
    verbs: ["update"],
    scope: "cluster",
    why: "<name>-qr and <name>-webhook carry an owner reference with blockOwnerDeletion, which OwnerReferencesPermissionEnforcement allows only with update on the owner's finalizers",
  },
  {
    ...on(PROVIDERS, "finalizers"),
    verbs: ["update"],
    scope: "cluster",
    why: "<provider>-events carries an owner reference with blockOwnerDeletion (see whatsappinstances/finalizers)",
  },
  {
    ...on(CLUSTER_PROVIDERS, "finalizers"),
    verbs: ["update"],
    scope: "cluster",
    why: "<provider>-events carries an owner reference with blockOwnerDeletion (see whatsappinstances/finalizers)",
  },
  {
    ...on(SECRETS),
    verbs: ["get", "list", "watch", "create", "update", "delete"],
    scope: "watched-namespaces",
    why: "informers on the operator's own Secrets and those labelled wa-operator.io/credential=true (list, watch); a referenced Secret the cache lacks is looked up once to tell absent from unlabelled (get); the operator's own <name>-qr, <name>-webhook and <provider>-events are created, replaced (update) and deleted, which the ValidatingAdmissionPolicy wa-operator-secrets limits to Secrets labelled app.kubernetes.io/managed-by=wa-operator",
  },
  {
    ...on(NAMESPACES),
    verbs: ["list", "watch"],
    scope: "cluster",
    why: "informer on namespaces' labels: a ClusterWhatsAppProvider's allowedNamespaces selector decides which namespaces may use it",
  },
  { ...on(EVENTS), verbs: ["create", "patch"], scope: "cluster", why: "the event recorder creates Events and patches the count of repeats" },
  {
    ...on(LEASES),
    verbs: ["get", "create", "update"],
    scope: "operator-namespace",
    why: "leader election: reads, creates and replaces (update, guarded by resourceVersion) one Lease in the operator's namespace",
  },
];

/** The list as (apiGroup, resource, verb, scope) rows, one per verb. */
export function permissionRows(permissions: readonly Permission[] = REQUIRED_PERMISSIONS): {
  apiGroup: string;
  resource: string;
  verb: Verb;
  scope: PermissionScope;
}[] {
  return permissions.flatMap((permission) =>
    permission.verbs.map((verb) => ({ apiGroup: permission.apiGroup, resource: permission.resource, verb, scope: permission.scope })),
  );
}
