/**
 * `kubectl whatsapp connect|disconnect|logout|restart NAME`: each is one merge patch of
 * the instance's spec; the operator does the rest. The messages say what was asked,
 * in kubectl's words ("patched", "no change").
 */
import type { InstanceObject } from "../api/objects.ts";
import type { KubeClient } from "../kube/client.ts";
import { INSTANCES } from "../kube/resources.ts";
import { EXIT, PluginError } from "./errors.ts";

export type DesiredState = "Connected" | "Disconnected" | "LoggedOut";

const OBJECT = (name: string) => `whatsappinstance.wa-operator.io/${name}`;

async function current(kube: KubeClient, namespace: string, name: string): Promise<InstanceObject> {
  const instance = await kube.find<InstanceObject>(INSTANCES, namespace, name);
  if (!instance) throw new PluginError(EXIT.error, `whatsappinstance "${name}" not found in namespace "${namespace}"`);
  return instance;
}

/** Sets spec.state; returns the line to print. */
export async function setState(kube: KubeClient, namespace: string, name: string, state: DesiredState): Promise<string> {
  const instance = await current(kube, namespace, name);
  const before = (instance.spec as { state?: string } | undefined)?.state ?? "Connected";
  if (before === state) return `${OBJECT(name)} patched (no change: spec.state is already ${state})`;
  await kube.patch(INSTANCES, namespace, name, { spec: { state } });
  const next: Record<DesiredState, string> = {
    Connected: `run kubectl whatsapp qr ${name} -n ${namespace} if it needs linking`,
    Disconnected: "the session stops and keeps its link",
    LoggedOut: `the link is removed; kubectl whatsapp connect ${name} and kubectl whatsapp qr ${name} link it again`,
  };
  return `${OBJECT(name)} patched (spec.state: ${before} → ${state}); ${next[state]}`;
}

/** RFC 3339 in whole seconds, as the CRD and kubectl show times. */
export function rfc3339Seconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * Sets spec.restartRequestedAt to now. A new value is what restarts the session, so two
 * restarts within one second still get two different values.
 */
export async function requestRestart(kube: KubeClient, namespace: string, name: string, now: number): Promise<string> {
  const instance = await current(kube, namespace, name);
  const previous = Date.parse((instance.spec as { restartRequestedAt?: string } | undefined)?.restartRequestedAt ?? "");
  const at = rfc3339Seconds(Number.isFinite(previous) && previous >= Math.floor(now / 1000) * 1000 ? previous + 1000 : now);
  await kube.patch(INSTANCES, namespace, name, { spec: { restartRequestedAt: at } });
  return `${OBJECT(name)} patched (spec.restartRequestedAt: ${at}); the session restarts once, keeping its link`;
}
