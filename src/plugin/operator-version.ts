/**
 * `kubectl whatsapp version`: the plugin's version and the operator's, read from the
 * operator's Deployment (its app.kubernetes.io/version label, else its image's tag). The
 * Deployment is an API object, so this works wherever `kubectl get deploy` does: no Pod
 * needs to run and no port-forward to its /metrics (wa_operator_build_info) is needed.
 */
import type { KubeClient } from "../kube/client.ts";
import { KubeError } from "../kube/client.ts";
import type { KubeObject, ResourceType } from "../kube/resources.ts";

export const DEPLOYMENTS: ResourceType = { group: "apps", version: "v1", plural: "deployments", kind: "Deployment", namespaced: true };

/** The label the chart and manifests/ put on the operator's Deployment. */
export const OPERATOR_SELECTOR = "app.kubernetes.io/name=wa-operator";

export interface DeploymentObject extends KubeObject {
  readonly spec?: { readonly template?: { readonly spec?: { readonly containers?: readonly { readonly name: string; readonly image?: string }[] } } };
}

export interface OperatorDeployment {
  readonly namespace: string;
  readonly name: string;
  /** The version label, else the image tag; undefined when neither says. */
  readonly version: string | undefined;
  readonly image: string | undefined;
}

/** The tag of an image reference ("repo:tag", "repo:tag@sha256:…"), not a registry port. */
export function imageTag(image: string): string | undefined {
  const withoutDigest = image.split("@", 1)[0] as string;
  const lastPart = withoutDigest.slice(withoutDigest.lastIndexOf("/") + 1);
  const colon = lastPart.lastIndexOf(":");
  return colon === -1 ? undefined : lastPart.slice(colon + 1);
}

export function describeDeployment(deployment: DeploymentObject): OperatorDeployment {
  const containers = deployment.spec?.template?.spec?.containers ?? [];
  const image = (containers.find((container) => container.name === "operator") ?? containers[0])?.image;
  const label = deployment.metadata.labels?.["app.kubernetes.io/version"];
  return { namespace: deployment.metadata.namespace ?? "", name: deployment.metadata.name, version: label || (image ? imageTag(image) : undefined), image };
}

/**
 * The operator's Deployments: in every namespace when the user may list them there, else
 * in `namespace` (a user with namespaced rights only).
 */
export async function findOperators(kube: KubeClient, namespace: string): Promise<OperatorDeployment[]> {
  let items: DeploymentObject[];
  try {
    items = (await kube.list<DeploymentObject>(DEPLOYMENTS, undefined, OPERATOR_SELECTOR)).items;
  } catch (error) {
    if (!(error instanceof KubeError && error.status === 403)) throw error;
    items = (await kube.list<DeploymentObject>(DEPLOYMENTS, namespace, OPERATOR_SELECTOR)).items;
  }
  return items.map(describeDeployment).sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
}

/** Two or more lines: the plugin's version, then each operator Deployment found (or that none was). */
export function versionText(pluginVersion: string, operators: readonly OperatorDeployment[]): string {
  const lines = [`kubectl-whatsapp ${pluginVersion}`];
  if (operators.length === 0) lines.push(`wa-operator: no Deployment labelled ${OPERATOR_SELECTOR} found`);
  for (const operator of operators) {
    lines.push(`wa-operator ${operator.version ?? "(unknown version)"} (deployment ${operator.namespace}/${operator.name}${operator.image ? `, image ${operator.image}` : ""})`);
  }
  return `${lines.join("\n")}\n`;
}
