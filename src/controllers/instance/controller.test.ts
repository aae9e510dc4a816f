import { describe, expect, it } from "vitest";
import type { InstanceObject, ProviderObject } from "../../api/objects.ts";
import type { KubeObject } from "../../kube/resources.ts";
import type { InformerEvent } from "../../runtime/informer.ts";
import type { OperatorContext } from "../context.ts";
import { providerController } from "../provider/controller.ts";
import type { WatchSource } from "../watch-sources.ts";
import { instanceController } from "./controller.ts";

function instance(namespace: string, name: string, provider: { kind?: string; name: string }, extra: Record<string, unknown> = {}): InstanceObject {
  return {
    metadata: { namespace, name, uid: `${namespace}-${name}`, generation: 1 },
    spec: { providerRef: { kind: provider.kind ?? "WhatsAppProvider", name: provider.name }, ...extra },
  } as InstanceObject;
}

const INSTANCES = [
  instance("a", "one", { name: "p" }, { credentialsSecretRef: { name: "own-key", key: "k" } }),
  instance("a", "two", { name: "p" }),
  instance("a", "three", { name: "other" }),
  instance("b", "four", { kind: "ClusterWhatsAppProvider", name: "shared" }),
  instance("b", "five", { name: "p" }),
  // A providerSelector instance not placed yet, and one placed on a/p.
  { metadata: { namespace: "a", name: "six", uid: "a-six", generation: 1 }, spec: { providerSelector: { matchLabels: { tier: "x" } } } } as InstanceObject,
  {
    metadata: { namespace: "a", name: "seven", uid: "a-seven", generation: 1 },
    spec: { providerSelector: { matchLabels: { tier: "x" } } },
    status: { providerRef: { kind: "WhatsAppProvider", name: "p" } },
  } as InstanceObject,
];
const PROVIDERS: ProviderObject[] = [{ metadata: { namespace: "a", name: "p", generation: 1 }, spec: { type: "waha", credentialsSecretRef: { name: "api-key", key: "k" } } } as ProviderObject];

const ctx = {
  caches: {
    instances: { list: () => INSTANCES, get: () => undefined },
    providers: { list: () => PROVIDERS, get: () => undefined },
    clusterProviders: { list: () => [], get: () => undefined },
  },
} as unknown as OperatorContext;

/** The keys a controller queues for one event, with their priority. */
function wakes(controller: ReturnType<typeof instanceController>, source: WatchSource, event: InformerEvent<KubeObject>): string[] {
  return controller.watches
    .filter((entry) => entry.source === source)
    .flatMap((entry) => [...entry.wakes(event, ctx)])
    .map((wake) => `${wake.key}${wake.priority === "routine" ? " (routine)" : ""}${wake.unlessScheduled ? " unless scheduled" : ""}${wake.afterMs !== undefined ? ` after ${wake.afterMs} ms` : ""}`);
}

const instances = instanceController({ workers: 1, maxPerProvider: 1 });
const providers = providerController({ workers: 1 });
const one = INSTANCES[0] as InstanceObject;
const statusOnly = { ...one, status: { phase: "Connected" as const } };
const respecced = { ...one, metadata: { ...one.metadata, generation: 2 } };
const secret = (namespace: string, name: string, extra: Partial<KubeObject["metadata"]> = {}, digest = "d1") => ({ metadata: { namespace, name, ...extra }, dataDigest: digest }) as KubeObject;

describe("which event wakes which instance", () => {
  it.each([
    ["an instance's own status write wakes nothing", "instances", { type: "updated", object: statusOnly, old: one }, []],
    ["a spec change wakes the instance", "instances", { type: "updated", object: respecced, old: one }, ["a/one"]],
    ["a resync wakes it only if no look is scheduled, in the routine lane", "instances", { type: "resync", object: one }, ["a/one (routine) unless scheduled"]],
    ["a deleted instance frees a slot: the unplaced and the others of its provider look again", "instances", { type: "deleted", object: one }, ["a/one", "a/six", "a/one", "a/two", "a/seven"]],
    ["a provider's spec change wakes the instances using it", "providers", { type: "updated", object: { ...PROVIDERS[0], metadata: { ...PROVIDERS[0]?.metadata, generation: 2 } }, old: PROVIDERS[0] }, ["a/six", "a/one", "a/two", "a/seven"]],
    ["a provider relabelled may now match a selector: the unplaced look again", "providers", { type: "updated", object: { ...PROVIDERS[0], metadata: { ...PROVIDERS[0]?.metadata, labels: { tier: "x" } } }, old: PROVIDERS[0] }, ["a/six", "a/one", "a/two", "a/seven"]],
    ["a provider's status-only change wakes nobody", "providers", { type: "updated", object: PROVIDERS[0], old: PROVIDERS[0] }, []],
    ["its credentials changing wakes the provider's instances", "secrets", { type: "updated", object: secret("a", "api-key", {}, "d2"), old: secret("a", "api-key") }, ["a/one", "a/two", "a/seven"]],
    ["a Secret an instance names wakes that instance", "secrets", { type: "added", object: secret("a", "own-key") }, ["a/one"]],
    ["an unchanged Secret wakes nobody", "secrets", { type: "updated", object: secret("a", "api-key"), old: secret("a", "api-key") }, []],
    ["a deleted Secret of ours wakes its owner to write it again", "secrets", { type: "deleted", object: secret("a", "one-qr", { ownerReferences: [{ kind: "WhatsAppInstance", name: "one", uid: "u", apiVersion: "v" }] }) }, ["a/one"]],
    ["a rewritten Secret of ours wakes nobody", "secrets", { type: "updated", object: secret("a", "one-qr", { ownerReferences: [{ kind: "WhatsAppInstance", name: "one", uid: "u", apiVersion: "v" }] }, "d2"), old: secret("a", "one-qr") }, []],
    ["new labels on a namespace wake its instances on cluster providers", "namespaces", { type: "updated", object: { metadata: { name: "b", labels: { team: "x" } } }, old: { metadata: { name: "b" } } }, ["b/four"]],
    ["new labels on a namespace wake its selector instances, placed or not", "namespaces", { type: "updated", object: { metadata: { name: "a", labels: { team: "x" } } }, old: { metadata: { name: "a" } } }, ["a/six", "a/seven"]],
    ["a namespace's resync wakes nobody", "namespaces", { type: "resync", object: { metadata: { name: "b" } } }, []],
  ] as const)("%s", (_, source, event, expected) => {
    expect(wakes(instances, source, event as unknown as InformerEvent<KubeObject>)).toEqual(expected);
  });
});

describe("which event wakes which provider", () => {
  it.each([
    ["its own change wakes it", "providers", { type: "updated", object: PROVIDERS[0] }, ["WhatsAppProvider|a/p"]],
    ["its resync wakes it in the routine lane", "providers", { type: "resync", object: PROVIDERS[0] }, ["WhatsAppProvider|a/p (routine)"]],
    ["a new instance changes its provider's count, recounted once a second at most", "instances", { type: "added", object: INSTANCES[3] }, ["ClusterWhatsAppProvider|shared after 1000 ms"]],
    ["an instance's update does not", "instances", { type: "updated", object: respecced, old: one }, []],
    ["an instance placed by its selector is counted where it was placed", "instances", { type: "updated", object: INSTANCES[6], old: INSTANCES[5] }, ["WhatsAppProvider|a/p after 1000 ms"]],
    ["an unplaced instance counts nowhere", "instances", { type: "added", object: INSTANCES[5] }, []],
    ["its credentials changing wakes it", "secrets", { type: "updated", object: secret("a", "api-key", {}, "d2"), old: secret("a", "api-key") }, ["WhatsAppProvider|a/p"]],
    ["its events Secret deleted wakes it", "secrets", { type: "deleted", object: secret("a", "p-events", { ownerReferences: [{ kind: "WhatsAppProvider", name: "p", uid: "u", apiVersion: "v" }] }) }, ["WhatsAppProvider|a/p"]],
  ] as const)("%s", (_, source, event, expected) => {
    expect(wakes(providers, source, event as unknown as InformerEvent<KubeObject>)).toEqual(expected);
  });
});
