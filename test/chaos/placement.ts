/**
 * Scenario 8: selector placement across leader kills. Three WAHA emulators with a capacity
 * each, two operator replicas with leader election, more selector instances applied at
 * once than the fleet holds; the leader is SIGKILLed as soon as placement shows, and again
 * as room appears (deletes). Watched all along: a status.providerRef that changes or goes
 * once set, a provider with more placements or sessions than its capacity, an instance
 * with sessions on two gateways.
 */
import path from "node:path";
import { parseDuration } from "../../src/config.ts";
import type { InstanceObject } from "../../src/controllers/context.ts";
import { INSTANCES } from "../../src/kube/resources.ts";
import { createLogger } from "../../src/logger.ts";
import { wahaSessionName } from "../../src/providers/waha/client.ts";
import { Informer } from "../../src/runtime/informer.ts";
import { mostStartingAtOnce } from "../support/fleet.ts";
import { mostSessionsAtOnce } from "./figures.ts";
import { createInstances, createNamespace, createProvider, credentialsIn, eventsIn, Fleet, sleep, startProvider, waitFor, watchInstances, watchProviders, type Provider, type Replica } from "./harness.ts";
import { check, count, ENDLESS_QR, fact, seconds, sessionsOf, settled, tryWait, type ChaosContext, type Figure, type ScenarioReport } from "./scenarios.ts";

export interface PlacementConfig {
  readonly instances: number;
  /** spec.capacity.maxSessions of each of the three providers. */
  readonly capacity: number;
  readonly maxConcurrentStarts: number;
  readonly leaseDuration: string;
  readonly timeoutMs: number;
}

const PROVIDERS = ["fleet-a", "fleet-b", "fleet-c"] as const;
const LABELS = { fleet: "chaos" };
const refOf = (object: InstanceObject | undefined): string => (object?.status?.providerRef ? `${object.status.providerRef.kind}/${object.status.providerRef.name}` : "");

/**
 * Every value status.providerRef took per instance, in order, and the most instances each
 * provider had recorded at any moment: from a watch of its own, not the operator's cache.
 */
class PlacementLog {
  readonly #informer: Informer<InstanceObject>;
  readonly history = new Map<string, string[]>();
  readonly most = new Map<string, number>();

  constructor(ctx: ChaosContext, namespace: string) {
    this.#informer = new Informer<InstanceObject>({ kube: ctx.cluster.kube, type: INSTANCES, namespace, log: createLogger("silent"), resyncMs: 0, maxBackoffMs: 1000, minBackoffMs: 200 });
    this.#informer.on((event) => {
      if (event.type === "deleted") return;
      const name = event.object.metadata.name;
      const values = this.history.get(name) ?? [""];
      if (values.at(-1) !== refOf(event.object)) values.push(refOf(event.object));
      this.history.set(name, values);
      for (const provider of PROVIDERS) this.most.set(provider, Math.max(this.most.get(provider) ?? 0, this.placedOn(provider)));
    });
  }

  async start(): Promise<void> {
    this.#informer.start();
    await this.#informer.synced;
  }

  stop(): Promise<void> {
    return this.#informer.stop();
  }

  placedOn(provider: string): number {
    return this.#informer.list().filter((object) => object.status?.providerRef?.name === provider).length;
  }

  get placed(): number {
    return this.#informer.list().filter((object) => object.status?.providerRef).length;
  }

  /** Instances whose providerRef, once set, changed or went away (every history starts unplaced, then may take one value). */
  movedOrLost(): string[] {
    return [...this.history].filter(([, values]) => values.length > 2).map(([name]) => name);
  }
}

export async function placementScenario(ctx: ChaosContext, config: PlacementConfig): Promise<ScenarioReport> {
  const { cluster } = ctx;
  const leaseMs = parseDuration(config.leaseDuration);
  const namespace = await createNamespace(cluster, "chaos-placement");
  const fleet = new Fleet(cluster, path.join(ctx.dir, namespace));
  // Sessions boot for a while, so starts overlap and the start limit matters.
  const gateways: Provider[] = [];
  for (const _ of PROVIDERS) gateways.push(await startProvider(fleet, { waha: { ...ENDLESS_QR.waha, startDelayMs: 300 } }));
  const watch = await watchInstances(cluster.kube, namespace);
  const providers = await watchProviders(cluster.kube, namespace);
  const placements = new PlacementLog(ctx, namespace);
  await placements.start();
  const room = PROVIDERS.length * config.capacity;
  const waiting = Math.max(0, config.instances - room);
  const figures: Figure[] = [
    fact("instances applied at once", config.instances),
    fact("providers × capacity (maxConcurrentStarts)", `${PROVIDERS.length} × ${config.capacity} (${config.maxConcurrentStarts})`),
    fact("lease duration", config.leaseDuration),
  ];
  // Sessions at each gateway, sampled: the most at once, and instances with a session on two gateways.
  const sessionsAt = (gateway: Provider) => sessionsOf(gateway, namespace).length;
  const mostSessions = PROVIDERS.map(() => 0);
  const onTwo = new Set<string>();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      gateways.forEach((gateway, index) => (mostSessions[index] = Math.max(mostSessions[index] as number, sessionsAt(gateway))));
      const seen = new Map<string, number>();
      for (const gateway of gateways) for (const session of sessionsOf(gateway, namespace)) seen.set(session.name, (seen.get(session.name) ?? 0) + 1);
      for (const [name, times] of seen) if (times > 1) onTwo.add(name);
      await sleep(100);
    }
  })();
  try {
    for (const [index, name] of PROVIDERS.entries()) {
      const gateway = gateways[index] as Provider;
      await createProvider(cluster, { namespace, name, url: gateway.front.url, apiKey: gateway.apiKey, fleet: { labels: LABELS, capacity: config.capacity, maxConcurrentStarts: config.maxConcurrentStarts } });
    }
    const spawnReplica = () => fleet.spawn({ namespace, args: ["--leader-election", "true", "--lease-duration", config.leaseDuration, ...ctx.operatorArgs] });
    await spawnReplica();
    await spawnReplica();
    await waitFor("a leader", () => fleet.leader(), leaseMs * 3 + 30_000);
    const ready = (name: string) => providers.get(name)?.status && (providers.get(name)?.status as { conditions?: { type: string; status: string }[] }).conditions?.some((c) => c.type === "Ready" && c.status === "True");
    await waitFor("every provider Ready", () => (PROVIDERS.every(ready) ? true : undefined), 60_000, 200);
    const keepTwo = async (): Promise<Replica> => {
      while (fleet.alive().length < 2) await spawnReplica();
      return waitFor("a leader", () => fleet.leader(), leaseMs * 3 + 30_000);
    };
    const killLeader = async (what: string): Promise<void> => {
      const leader = fleet.leader() as Replica;
      const placedThen = placements.placed;
      const killedAt = Date.now();
      await fleet.kill(leader);
      const next = await keepTwo();
      figures.push(fact(`leader SIGKILLed ${what}`, `${placedThen} placed then; new leader after ${seconds((next.ledAt ?? Date.now()) - killedAt)}`));
    };

    // The burst, and the leader killed as soon as its first placement shows.
    const appliedAt = Date.now();
    const names = await createInstances(cluster, namespace, config.instances, { selector: LABELS });
    await waitFor("a first placement", () => (placements.placed > 0 ? true : undefined), 60_000, 10);
    await killLeader("as placement began");
    const isWaiting = (name: string) => (watch.get(name)?.status?.conditions ?? []).some((c) => c.type === "Reconciling" && c.reason === "NoCapacity");
    const full = await tryWait(
      "the fleet full and at ScanQR, the rest waiting NoCapacity",
      () => {
        const placed = names.filter((name) => refOf(watch.get(name)) !== "");
        return placed.length === Math.min(room, names.length) && placed.every((name) => settled(watch, name, undefined)) && names.filter(isWaiting).length === waiting ? Date.now() : undefined;
      },
      config.timeoutMs,
      250,
    );
    figures.push(
      check("the fleet filled: every placed instance ScanQR, the rest waiting NoCapacity", full !== undefined, `${placements.placed} placed, ${names.filter(isWaiting).length} waiting`),
      fact("apply → fleet full and at ScanQR", full ? seconds(full - appliedAt) : "never"),
      fact("placed per provider", PROVIDERS.map((name) => placements.placedOn(name)).join("/")),
    );

    // Room appears (a delete on each provider, up to the number waiting) with the leader killed as it does.
    const leaving = PROVIDERS.flatMap((provider) => names.filter((name) => watch.get(name)?.status?.providerRef?.name === provider).slice(0, 1)).slice(0, Math.max(1, waiting));
    const deletedAt = Date.now();
    await cluster.kubectl(["delete", "whatsappinstances", ...leaving, "-n", namespace, "--wait=false"]);
    await killLeader("as room appeared");
    const kept = names.filter((name) => !leaving.includes(name));
    const refilled = await tryWait(
      "every instance left placed and at ScanQR",
      () => (watch.list().length === kept.length && kept.every((name) => refOf(watch.get(name)) !== "" && settled(watch, name, undefined)) ? Date.now() : undefined),
      config.timeoutMs,
      250,
    );
    figures.push(
      check(`the ${kept.length} left all placed and at ScanQR`, refilled !== undefined, `${kept.filter((name) => refOf(watch.get(name)) !== "" && settled(watch, name, undefined)).length}/${kept.length}`),
      fact("delete → the waiting placed and at ScanQR", refilled ? seconds(refilled - deletedAt) : "never"),
    );
    // The gateways and the statuses agree, instance by instance.
    const misplaced = kept.filter((name) => {
      const where = PROVIDERS.indexOf(watch.get(name)?.status?.providerRef?.name as (typeof PROVIDERS)[number]);
      return gateways.some((gateway, index) => (index === where) !== sessionsOf(gateway, namespace).some((session) => session.name === wahaSessionName(namespace, name)));
    });
    sampling = false;
    await sampler;
    const moved = placements.movedOrLost();
    figures.push(
      count("instances whose status.providerRef changed or went once set", moved.length),
      ...moved.slice(0, 5).map((name) => fact(`  ${name}`, (placements.history.get(name) ?? []).join(" → "))),
      count("instances with a session on two gateways", onTwo.size),
      count("instances whose session is not (only) at the gateway status.providerRef names", misplaced.length),
      ...PROVIDERS.map((name) => count(`most placements recorded on ${name} at once`, placements.most.get(name) ?? 0, config.capacity)),
      ...PROVIDERS.map((name, index) =>
        count(`most sessions at ${name}'s gateway at once`, Math.max(mostSessions[index] as number, mostSessionsAtOnce((gateways[index] as Provider).front.records)), config.capacity),
      ),
      fact("  sampled / from its calls", gateways.map((gateway, index) => `${mostSessions[index]}/${mostSessionsAtOnce(gateway.front.records)}`).join(", ")),
      fact("most sessions starting at once per gateway", gateways.map((gateway) => mostStartingAtOnce(gateway.waha.sessions())).join("/")),
      fact("replicas started", fleet.replicas.length),
    );
    const credentials = await credentialsIn(cluster.kube, namespace);
    await cluster.kubectl(["delete", "whatsappinstances", "--all", "-n", namespace, "--wait=false"]);
    await tryWait("every instance deleted", () => (watch.list().length === 0 ? true : undefined), config.timeoutMs, 500);
    figures.push(count("instances left undeleted", watch.list().length), count("orphaned sessions (no instance left)", gateways.reduce((sum, gateway) => sum + sessionsAt(gateway), 0)));
    return {
      title: `8. ${config.instances} selector instances over ${PROVIDERS.length} × ${config.capacity}, the leader SIGKILLed during placement`,
      figures,
      haystacks: [{ where: `statuses in ${namespace}`, text: [...watch.statuses, ...providers.statuses].join("\n") }, await eventsIn(cluster.kube, namespace)],
      credentials,
      calls: gateways.flatMap((gateway) => gateway.front.records),
      fleet,
    };
  } finally {
    sampling = false;
    await sampler;
    await fleet.stopAll();
    await placements.stop();
    await watch.stop();
    await providers.stop();
    for (const gateway of gateways) await gateway.stop();
  }
}
