/**
 * The API's objects as the operator and the plugin hold them: Kubernetes metadata with
 * the spec not yet parsed (a spec is parsed where it is used, so one bad object never
 * breaks a list) and the status as the operator writes it.
 */
import type { KubeObject } from "../kube/resources.ts";
import type { InstanceStatus } from "./instance.ts";
import type { ProviderStatus } from "./provider.ts";

export interface InstanceObject extends KubeObject {
  spec: unknown;
  status?: InstanceStatus;
}

export interface ProviderObject extends KubeObject {
  spec: unknown;
  status?: ProviderStatus;
}
