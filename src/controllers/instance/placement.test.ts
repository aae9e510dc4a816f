import { describe, expect, it } from "vitest";
import { pino } from "pino";
import { instanceSpecSchema } from "../../api/instance.ts";
import { KubeError } from "../../kube/client.ts";
import { keyOf, type KubeObject } from "../../kube/resources.ts";
import type { InstanceObject, OperatorContext, ProviderObject } from "../context.ts";
import { choosePlacement, placeInstance, placementCandidates, type PlacementCandidate } from "./placement.ts";
import { Placements } from "./placement-reservations.ts";

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

/**
 * A context over a fake API server (`server`, the truth) and a cache of it that may lag
 * (`instances`, a stand-by's watch). Status writes answer only when released, so passes
 * overlap; `landButLose` makes the next write land and its answer get lost.
 */
function fleetContext(providers: ProviderObject[], options: { mayWrite?: () => boolean; held?: boolean } = {}) {
  const instances = new MemoryCache<InstanceObject>();
  const server = new Map<string, InstanceObject>();
  const providerCache = new MemoryCache<ProviderObject>();
  for (const object of providers) providerCache.remember(object);
  const held: (() => void)[] = [];
  const events: string[] = [];
  const writes: string[] = [];
  const lists: string[] = [];
  let version = 1;
  const state = { landButLose: false };
  const kube = {
    patch: async (_type: unknown, namespace: string, name: string, body: { metadata: { resourceVersion: string }; status: object }) => {
      const current = server.get(`${namespace}/${name}`) as InstanceObject;
      if (current.metadata.resourceVersion !== body.metadata.resourceVersion) throw new KubeError(409, "conflict");
      writes.push(name);
      if (options.held !== false) await new Promise<void>((resolve) => held.push(resolve));
      const written = { ...current, metadata: { ...current.metadata, resourceVersion: String(++version) }, status: { ...current.status, ...body.status } };
      server.set(`${namespace}/${name}`, written);
      if (state.landButLose) {
        state.landButLose = false;
        throw new Error("socket hang up");
      }
      return written;
    },
    list: async (_type: unknown, namespace: string | undefined, _labels?: string, fields?: string) => {
      lists.push(fields ?? `all of ${namespace ?? "every namespace"}`);
      const name = fields?.replace("metadata.name=", "");
      return { items: [...server.values()].filter((object) => name === undefined || object.metadata.name === name), resourceVersion: String(version) };
    },
  };
  const ctx = {
    kube,
    log: pino({ level: "silent" }),
    events: { record: (_object: unknown, _type: string, reason: string, message: string) => events.push(`${reason}: ${message}`) },
    config: { pollInterval: 30_000, namespaces: [] },
    caches: { instances, providers: providerCache, clusterProviders: new MemoryCache<ProviderObject>() },
    connections: { allows: () => true },
    placements: new Placements(options.mayWrite ? { mayWrite: options.mayWrite } : {}),
  } as unknown as OperatorContext;
  /** An instance as both the server and the cache hold it. */
  const apply = (object: InstanceObject): InstanceObject => {
    server.set(keyOf(object), object);
    instances.remember(object);
    return object;
  };
  /** Another replica's placement, which this replica's cache has not seen. */
  const placedElsewhere = (name: string, provider: string): void => {
    const current = server.get(`ns/${name}`) as InstanceObject;
    server.set(`ns/${name}`, { ...current, metadata: { ...current.metadata, resourceVersion: String(++version) }, status: { providerRef: { kind: "WhatsAppProvider", name: provider } } });
  };
  return { ctx, instances, server, held, events, writes, lists, state, apply, placedElsewhere };
}

const place = (ctx: OperatorContext, object: InstanceObject) => placeInstance(ctx, object, instanceSpecSchema.parse(object.spec));
const placedOn = (outcome: Awaited<ReturnType<typeof placeInstance>>) => ("instance" in outcome ? outcome.instance.status?.providerRef?.name : undefined);

describe("placeInstance", () => {
  it("counts placements whose write is in flight, so a burst of passes never over-fills a provider", async () => {
    const { ctx, held, apply } = fleetContext([provider("a", 2), provider("b", 1)]);
    const burst = ["i1", "i2", "i3", "i4"].map((name) => apply(instance(name)));
    const passes = burst.map((object) => place(ctx, object));
    // Every write is still in flight: three slots were handed out, the fourth pass waits.
    const fourth = await passes[3];
    expect(fourth).toMatchObject({ verdict: { reason: "NoCapacity", stalled: false } });
    for (const release of held) release();
    const placed = await Promise.all(passes.slice(0, 3));
    expect(placed.map(placedOn)).toEqual(["a", "a", "b"]);
    expect(placementCandidates(ctx, "ns").map((candidate) => candidate.placed)).toEqual([2, 1]);
  });

  it("a conflict reads the instance again and keeps the placement another replica recorded, without a second write", async () => {
    const { ctx, events, writes, apply, placedElsewhere } = fleetContext([provider("a", 2), provider("b", 2)], { held: false });
    await place(ctx, apply(instance("i0")));
    const stale = apply(instance("i1"));
    placedElsewhere("i1", "b");
    const outcome = await place(ctx, stale);
    expect(placedOn(outcome)).toBe("b");
    expect(writes).toEqual(["i0"]);
    expect(events.filter((event) => event.includes("WhatsAppProvider b"))).toEqual([]);
    // And the cache now holds it, so no later pass chooses again.
    expect(ctx.caches.instances.get("ns/i1")?.status?.providerRef?.name).toBe("b");
  });

  it("a new leader reads every instance from the API server before its first placement: what the old leader placed counts", async () => {
    const { ctx, writes, lists, apply, placedElsewhere } = fleetContext([provider("a", 1), provider("b", 1)], { held: false });
    // The stand-by's warm cache has not yet seen the old leader's last placement.
    const old = apply(instance("i0"));
    placedElsewhere("i0", "a");
    const next = apply(instance("i1"));
    expect(placedOn(await place(ctx, next))).toBe("b");
    // The instance the old leader placed keeps its placement, with no write.
    expect(placedOn(await place(ctx, old))).toBe("a");
    expect(writes).toEqual(["i1"]);
    // Once per process, not per pass.
    expect(lists).toEqual(["all of every namespace"]);
  });

  it("a write whose answer was lost keeps its slot until the cache shows what became of it", async () => {
    const { ctx, instances, server, state, apply } = fleetContext([provider("a", 1)], { held: false });
    await ctx.placements.catchUp(async () => undefined);
    state.landButLose = true;
    await expect(place(ctx, apply(instance("i1")))).rejects.toThrow("socket hang up");
    // It landed; the cache does not know yet: the slot is still taken.
    expect(await place(ctx, apply(instance("i2")))).toMatchObject({ verdict: { reason: "NoCapacity" } });
    // The watch delivers it: the cache counts it, once.
    instances.remember(server.get("ns/i1") as InstanceObject);
    expect(placementCandidates(ctx, "ns").map((candidate) => candidate.placed)).toEqual([1]);
  });

  it("a lost write that the cache shows did not land gives its slot back", async () => {
    const { ctx, instances, state, apply } = fleetContext([provider("a", 1)], { held: false });
    await ctx.placements.catchUp(async () => undefined);
    state.landButLose = true;
    const object = apply(instance("i1"));
    await expect(place(ctx, object)).rejects.toThrow("socket hang up");
    // Seen moved on without a placement (say, a label edit won the race): it cannot have landed.
    instances.remember({ ...object, metadata: { ...object.metadata, resourceVersion: "99" } });
    expect(placementCandidates(ctx, "ns").map((candidate) => candidate.placed)).toEqual([0]);
  });

  it("an instance being deleted holds its slot until it is gone: its session may still be at the gateway", async () => {
    const { ctx, instances, apply } = fleetContext([provider("a", 1)], { held: false });
    const leaving = apply({ ...instance("i0"), metadata: { ...instance("i0").metadata, deletionTimestamp: "2026-01-01T00:00:00Z", finalizers: ["wa-operator.io/finalizer"] }, status: { providerRef: { kind: "WhatsAppProvider", name: "a" } } });
    const next = apply(instance("i1"));
    expect(await place(ctx, next)).toMatchObject({ verdict: { reason: "NoCapacity" } });
    instances.store.delete(keyOf(leaving));
    expect(placedOn(await place(ctx, next))).toBe("a");
  });

  it("a replica that is not surely the leader places nothing", async () => {
    let leading = false;
    const { ctx, writes, lists, apply } = fleetContext([provider("a", 1)], { held: false, mayWrite: () => leading });
    const object = apply(instance("i1"));
    expect(await place(ctx, object)).toEqual({ result: { requeueAfterMs: 1000 } });
    expect(writes).toEqual([]);
    expect(lists).toEqual([]);
    leading = true;
    expect(placedOn(await place(ctx, object))).toBe("a");
  });
});
