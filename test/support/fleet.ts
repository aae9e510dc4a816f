/** Manifests and figures shared by the fleet integration test and its bench. */
import type { WahaSessionSnapshot } from "../emulators/waha/emulator.ts";

/** Providers fleet-a, fleet-b, ... (one per url, labelled fleet: waha) and `instances` instances selecting them. */
export function fleetManifests(options: { readonly urls: readonly string[]; readonly capacity: number; readonly starts: number; readonly instances: number }): string {
  const providers = options.urls.map(
    (url, index) => `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: fleet-${String.fromCharCode(97 + index)}, labels: {fleet: waha}}
spec: {type: waha, url: "${url}", credentialsSecretRef: {name: waha-key}, capacity: {maxSessions: ${options.capacity}}, maxConcurrentStarts: ${options.starts}}`,
  );
  const instances = Array.from(
    { length: options.instances },
    (_, index) => `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: line-${String(index).padStart(3, "0")}}
spec: {providerSelector: {matchLabels: {fleet: waha}}}`,
  );
  return [...providers, ...instances].join("\n---\n");
}

/** The most sessions a gateway had in STARTING at the same moment, from its status histories. */
export function mostStartingAtOnce(sessions: readonly WahaSessionSnapshot[]): number {
  const edges: { at: number; delta: number }[] = [];
  for (const session of sessions) {
    session.statuses.forEach((point, index) => {
      if (point.status !== "STARTING") return;
      const next = session.statuses[index + 1];
      edges.push({ at: point.timestamp, delta: 1 }, { at: next ? next.timestamp : Number.POSITIVE_INFINITY, delta: -1 });
    });
  }
  return mostAtOnce(edges);
}

/**
 * The highest count reached by +1/-1 edges in time order. At the same instant an end
 * comes before a start: something that stopped frees its place for what starts then.
 */
export function mostAtOnce(edges: { readonly at: number; readonly delta: number }[]): number {
  edges.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let now = 0;
  let most = 0;
  for (const edge of edges) {
    now += edge.delta;
    most = Math.max(most, now);
  }
  return most;
}
