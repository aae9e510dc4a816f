import { describe, expect, it } from "vitest";
import { pino } from "pino";
import { instanceSpecSchema } from "../../api/instance.ts";
import { KubeError } from "../../kube/client.ts";
import { keyOf, type KubeObject } from "../../kube/resources.ts";
import type { InstanceObject, OperatorContext, ProviderObject } from "../context.ts";
import { choosePlacement, placeInstance, placementCandidates, type PlacementCandidate } from "./placement.ts";

function candidate(name: string, fields: Partial<PlacementCandidate> = {}): PlacementCandidate {
  return { kind: "WhatsAppProvider", name, labels: { fleet: "a" }, ready: true, allowed: true, capacity: 40, maxInstances: undefined, placed: 0, ...fields };
}

const fleet = { matchLabels: { fleet: "a" } };

describe("choosePlacement", () => {
  it.each<[string, PlacementCandidate[], string | undefined]>([
    ["the provider with the most free slots", [candidate("a", { placed: 30 }), candidate("b", { placed: 10 }), candidate("c", { placed: 20 })], "b"],
    ["free slots, not capacity, decide", [candidate("a", { capacity: 100, placed: 95 }), candidate("b", { capacity: 10 })], "b"],
    ["equal free slots go to the first by name", [candidate("c"), candidate("b"), candidate("a")], "a"],
    ["maxInstances bounds it where smaller", [candidate("a", { maxInstances: 5 }), candidate("b", { capacity: 10 })], "b"],
    ["a provider that does not match is skipped", [candidate("a", { labels: { fleet: "b" } }), candidate("b", { placed: 39 })], "b"],
    ["a provider that is not Ready is skipped", [candidate("a", { ready: false }), candidate("b", { placed: 39 })], "b"],
    ["a provider without a capacity is skipped", [candidate("a", { capacity: undefined }), candidate("b", { placed: 39 })], "b"],
    ["a cluster provider that does not let the namespace in is skipped", [candidate("a", { kind: "ClusterWhatsAppProvider", allowed: false }), candidate("b", { placed: 39 })], "b"],
    ["a cluster provider that lets it in takes part", [candidate("a", { kind: "ClusterWhatsAppProvider" }), candidate("b", { placed: 39 })], "a"],
    ["a full provider is skipped", [candidate("a", { placed: 40 }), candidate("b", { capacity: 1 })], "b"],
    ["nothing when every match is full", [candidate("a", { placed: 40 }), candidate("b", { placed: 40 })], undefined],
    ["nothing when nothing matches", [candidate("a", { labels: {} })], undefined],
  ])("%s", (_sentence, candidates, chosen) => {
    const choice = choosePlacement(fleet, candidates);
    expect(choice.placed ? choice.name : undefined).toBe(chosen);
  });

  it("says why nothing has room, provider by provider", () => {
    const choice = choosePlacement(fleet, [candidate("a", { placed: 40 }), candidate("b", { ready: false }), candidate("c", { capacity: undefined })]);
    expect(choice).toEqual({ placed: false, message: "no matching provider has room: a is full (40/40), b is not Ready, c has no capacity; waiting for one" });
  });

  it("spreads 100 instances over three empty providers of 40 as 34/33/33, and refuses the 121st", () => {
    const providers = [candidate("a"), candidate("b"), candidate("c")];
    const place = () => {
      const choice = choosePlacement(fleet, providers);
      if (!choice.placed) return false;
      const index = providers.findIndex((provider) => provider.name === choice.name);
      providers[index] = { ...(providers[index] as PlacementCandidate), placed: (providers[index] as PlacementCandidate).placed + 1 };
      return true;
    };
    for (let i = 0; i < 100; i++) expect(place()).toBe(true);
    expect(providers.map((provider) => provider.placed)).toEqual([34, 33, 33]);
    for (let i = 100; i < 120; i++) expect(place()).toBe(true);
    expect(place()).toBe(false);
  });
});

class MemoryCache<T extends KubeObject> {
  readonly store = new Map<string, T>();
  get(key: string): T | undefined {
    return this.store.get(key);
  }
  list(): T[] {
    return [...this.store.values()];
  }
  remember(object: T): void {
    this.store.set(keyOf(object), object);
  }
  forget(): void {}
  covers(): boolean {
    return true;
  }
}

function provider(name: string, maxSessions: number): ProviderObject {
  return {
    metadata: { name, namespace: "ns", uid: name, labels: { fleet: "a" } },
    spec: { type: "waha", url: "http://127.0.0.1:3000", credentialsSecretRef: { name: "k" }, capacity: { maxSessions } },
    status: { conditions: [{ type: "Ready", status: "True", reason: "Available", message: "", lastTransitionTime: "2026-01-01T00:00:00Z" }] },
  };
}

function instance(name: string): InstanceObject {
  return { metadata: { name, namespace: "ns", uid: `uid-${name}`, resourceVersion: "1" }, spec: { providerSelector: fleet } };
}

/** A context whose status writes answer only when released, so passes overlap. */
function fleetContext(providers: ProviderObject[]) {
  const instances = new MemoryCache<InstanceObject>();
  const providerCache = new MemoryCache<ProviderObject>();
  for (const object of providers) providerCache.remember(object);
  const held: (() => void)[] = [];
  const events: string[] = [];
  let version = 1;
  const kube = {
    patch: async (_type: unknown, namespace: string, name: string, body: { metadata: { resourceVersion: string }; status: object }) => {
      const current = instances.get(`${namespace}/${name}`) as InstanceObject;
      if (current.metadata.resourceVersion !== body.metadata.resourceVersion) throw new KubeError(409, "conflict");
      await new Promise<void>((resolve) => held.push(resolve));
      return { ...current, metadata: { ...current.metadata, resourceVersion: String(++version) }, status: { ...current.status, ...body.status } };
    },
  };
  const ctx = {
    kube,
    log: pino({ level: "silent" }),
    events: { record: (_object: unknown, _type: string, reason: string, message: string) => events.push(`${reason}: ${message}`) },
    config: { pollInterval: 30_000 },
    caches: { instances, providers: providerCache, clusterProviders: new MemoryCache<ProviderObject>() },
    connections: { allows: () => true },
  } as unknown as OperatorContext;
  return { ctx, instances, held, events };
}

describe("placeInstance", () => {
  it("counts placements whose write is in flight, so a burst of passes never over-fills a provider", async () => {
    const { ctx, instances, held } = fleetContext([provider("a", 2), provider("b", 1)]);
    const burst = ["i1", "i2", "i3", "i4"].map(instance);
    for (const object of burst) instances.remember(object);
    const passes = burst.map((object) => placeInstance(ctx, object, instanceSpecSchema.parse(object.spec)));
    // Every write is still in flight: three slots were handed out, the fourth pass waits.
    const fourth = await passes[3];
    expect(fourth).toMatchObject({ verdict: { reason: "NoCapacity", stalled: false } });
    for (const release of held) release();
    const placed = await Promise.all(passes.slice(0, 3));
    expect(placed.map((outcome) => ("instance" in outcome ? outcome.instance.status?.providerRef?.name : undefined))).toEqual(["a", "a", "b"]);
    expect(placementCandidates(ctx, "ns").map((candidate) => candidate.placed)).toEqual([2, 1]);
  });

  it("records the choice with the cached resourceVersion: a stale view gets a conflict and looks again", async () => {
    const { ctx, instances, held, events } = fleetContext([provider("a", 2)]);
    const stale = instance("i1");
    instances.remember({ ...stale, metadata: { ...stale.metadata, resourceVersion: "7" }, status: { providerRef: { kind: "WhatsAppProvider", name: "a" } } });
    expect(await placeInstance(ctx, stale, instanceSpecSchema.parse(stale.spec))).toEqual({ result: { requeueAfterMs: 500 } });
    expect(held).toEqual([]);
    expect(events).toEqual([]);
  });
});
