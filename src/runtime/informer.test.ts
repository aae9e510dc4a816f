/**
 * The informer's failure paths, which a healthy API server will not produce on demand
 * (410 Gone after compaction, broken or silent watches): a scripted stand-in for the two
 * calls the informer makes, list and watch. Everything else is tested against the real
 * API server in test/integration.
 */
import { describe, expect, it } from "vitest";
import { pino } from "pino";
import { KubeError, type KubeClient, type WatchEvent, type WatchQuery } from "../kube/client.ts";
import { INSTANCES, type KubeObject } from "../kube/resources.ts";
import { Informer, type InformerEvent, type InformerOptions } from "./informer.ts";

type WatchScript = (onEvent: (event: WatchEvent<KubeObject>) => void, done: (error: unknown) => void, signal: AbortSignal) => void;

class ScriptedKube {
  lists: string[] = [];
  watches: string[] = [];
  listResults: (() => { items: KubeObject[]; resourceVersion: string })[] = [];
  watchScripts: WatchScript[] = [];

  async list(): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    const next = this.listResults.shift();
    if (!next) throw new Error("no list scripted");
    const result = next();
    this.lists.push(result.resourceVersion);
    return result;
  }

  watch(
    _type: unknown,
    _namespace: unknown,
    query: WatchQuery,
    onEvent: (event: WatchEvent<KubeObject>) => void,
    done: (error: unknown) => void,
  ): AbortController {
    this.watches.push(query.resourceVersion ?? "");
    const controller = new AbortController();
    const script = this.watchScripts.shift() ?? (() => undefined);
    setTimeout(() => script(onEvent, done, controller.signal), 1);
    return controller;
  }
}

const object = (name: string, resourceVersion: string): KubeObject => ({ metadata: { name, namespace: "ns", resourceVersion } });

function informer(kube: ScriptedKube, options: { watchdogMs?: number; resyncMs?: number; indexers?: InformerOptions["indexers"] } = {}) {
  const events: InformerEvent<KubeObject>[] = [];
  const subject = new Informer<KubeObject>({
    kube: kube as unknown as KubeClient,
    type: INSTANCES,
    log: pino({ level: "silent" }),
    minBackoffMs: 5,
    maxBackoffMs: 20,
    resyncMs: options.resyncMs ?? 0,
    watchdogMs: options.watchdogMs ?? 60_000,
    ...(options.indexers ? { indexers: options.indexers } : {}),
  });
  subject.on((event) => events.push(event));
  return { subject, events };
}

async function until(what: string, test: () => boolean): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (test()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`never happened: ${what}`);
}

describe("Informer", () => {
  it("relists after 410 Gone, and reports what changed meanwhile", async () => {
    const kube = new ScriptedKube();
    kube.listResults.push(() => ({ items: [object("a", "1"), object("b", "1")], resourceVersion: "10" }));
    kube.listResults.push(() => ({ items: [object("a", "2")], resourceVersion: "20" }));
    kube.watchScripts.push((onEvent) => onEvent({ type: "ERROR", object: { code: 410 } as unknown as KubeObject }));
    const { subject, events } = informer(kube);
    subject.start();
    await until("the relist", () => kube.lists.length === 2);
    await until("the watch from the new list", () => kube.watches.includes("20"));
    await subject.stop();
    expect(kube.watches).toEqual(["10", "20"]);
    expect(subject.restarts.gone).toBe(1);
    expect(events.map((event) => `${event.type} ${event.object.metadata.name}`)).toEqual(["added a", "added b", "updated a", "deleted b"]);
    expect(subject.list().map((item) => item.metadata.name)).toEqual(["a"]);
  });

  it("keeps its indexes with every change: list, watch, our own writes, deletes and a relist", async () => {
    const kube = new ScriptedKube();
    const labelled = (name: string, resourceVersion: string, team: string): KubeObject => ({ metadata: { name, namespace: "ns", resourceVersion, labels: { team } } });
    kube.listResults.push(() => ({ items: [labelled("a", "1", "red"), labelled("b", "1", "red")], resourceVersion: "10" }));
    kube.listResults.push(() => ({ items: [labelled("b", "4", "red")], resourceVersion: "20" }));
    let send: ((event: WatchEvent<KubeObject>) => void) | undefined;
    kube.watchScripts.push((onEvent) => (send = onEvent));
    const { subject } = informer(kube, { indexers: { team: (item) => (item.metadata.labels?.["team"] ? [item.metadata.labels["team"]] : []) } });
    const team = (value: string) => (subject.byIndex("team", value) ?? []).map((item) => item.metadata.name).sort();
    subject.start();
    await subject.synced;
    expect(team("red")).toEqual(["a", "b"]);
    subject.remember(labelled("a", "2", "blue"));
    expect([team("red"), team("blue")]).toEqual([["b"], ["a"]]);
    await until("the watch", () => send !== undefined);
    send?.({ type: "ADDED", object: labelled("c", "3", "blue") });
    send?.({ type: "DELETED", object: labelled("a", "2", "blue") });
    expect(team("blue")).toEqual(["c"]);
    expect(subject.byIndex("unknown", "x")).toBeUndefined();
    // A relist drops what is gone from the indexes too.
    send?.({ type: "ERROR", object: { code: 410 } as unknown as KubeObject });
    await until("the relist", () => kube.lists.length === 2);
    await subject.stop();
    expect([team("red"), team("blue")]).toEqual([["b"], []]);
  });

  it("relists when the watch request itself is answered 410 Gone", async () => {
    const kube = new ScriptedKube();
    kube.listResults.push(() => ({ items: [object("a", "1")], resourceVersion: "10" }));
    kube.listResults.push(() => ({ items: [object("a", "1")], resourceVersion: "20" }));
    kube.watchScripts.push((_onEvent, done) => done(new KubeError(410, "too old resource version: 10 (15)", "Expired")));
    const { subject } = informer(kube);
    subject.start();
    await until("the watch from the new list", () => kube.watches.includes("20"));
    await subject.stop();
    expect(kube.watches).toEqual(["10", "20"]);
    expect(subject.restarts.gone).toBe(1);
    expect(subject.restarts.error).toBe(0);
  });

  it("restarts a failed watch with backoff from the last resourceVersion it saw", async () => {
    const kube = new ScriptedKube();
    kube.listResults.push(() => ({ items: [], resourceVersion: "10" }));
    kube.watchScripts.push((onEvent, done) => {
      onEvent({ type: "ADDED", object: object("a", "11") });
      done(new Error("connection reset"));
    });
    const { subject, events } = informer(kube);
    subject.start();
    await until("the second watch", () => kube.watches.length === 2);
    await subject.stop();
    expect(kube.watches).toEqual(["10", "11"]);
    expect(kube.lists).toHaveLength(1);
    expect(subject.restarts.error).toBe(1);
    expect(events.map((event) => event.type)).toEqual(["added"]);
  });

  it("restarts a watch that has gone silent", async () => {
    const kube = new ScriptedKube();
    kube.listResults.push(() => ({ items: [], resourceVersion: "10" }));
    const { subject } = informer(kube, { watchdogMs: 30 });
    subject.start();
    await until("a restart by the watchdog", () => kube.watches.length >= 2);
    await subject.stop();
    expect(subject.restarts.watchdog).toBeGreaterThanOrEqual(1);
    expect(kube.lists).toHaveLength(1);
  });

  it("keeps trying a failing list with backoff, and is synced once it succeeds", async () => {
    const kube = new ScriptedKube();
    kube.listResults.push(() => {
      throw new Error("apiserver unavailable");
    });
    kube.listResults.push(() => ({ items: [object("a", "5")], resourceVersion: "5" }));
    const { subject } = informer(kube);
    subject.start();
    expect(subject.hasSynced).toBe(false);
    await subject.synced;
    // Stopping right as the list completes must not leave a watch running.
    await subject.stop();
    expect(subject.hasSynced).toBe(true);
    expect(subject.get("ns/a")?.metadata.resourceVersion).toBe("5");
  });

  it("replays its cache on every resync", async () => {
    const kube = new ScriptedKube();
    kube.listResults.push(() => ({ items: [object("a", "1")], resourceVersion: "1" }));
    const { subject, events } = informer(kube, { resyncMs: 20 });
    subject.start();
    await until("two resyncs", () => events.filter((event) => event.type === "resync").length >= 2);
    await subject.stop();
    expect(events[0]?.type).toBe("added");
  });

  it("ignores bookmarks except for their resourceVersion", async () => {
    const kube = new ScriptedKube();
    kube.listResults.push(() => ({ items: [], resourceVersion: "10" }));
    kube.watchScripts.push((onEvent, done) => {
      onEvent({ type: "BOOKMARK", object: object("", "42") });
      done(null);
    });
    const { subject, events } = informer(kube);
    subject.start();
    await until("the second watch", () => kube.watches.length === 2);
    await subject.stop();
    expect(kube.watches).toEqual(["10", "42"]);
    expect(events).toEqual([]);
  });

  it("keeps what our own write returned until the watch brings that version or a later one, without managedFields", async () => {
    const kube = new ScriptedKube();
    kube.listResults.push(() => ({ items: [object("a", "5")], resourceVersion: "5" }));
    let feed: ((event: WatchEvent<KubeObject>) => void) | undefined;
    kube.watchScripts.push((onEvent) => (feed = onEvent));
    const { subject, events } = informer(kube);
    subject.start();
    await until("the watch", () => feed !== undefined);
    const written = { metadata: { ...object("a", "7").metadata, managedFields: [{ manager: "x" }] } } as KubeObject;
    subject.remember(written);
    expect(subject.get("ns/a")?.metadata.resourceVersion).toBe("7");
    expect((subject.get("ns/a")?.metadata as { managedFields?: unknown }).managedFields).toBeUndefined();
    feed?.({ type: "MODIFIED", object: object("a", "6") });
    expect(subject.get("ns/a")?.metadata.resourceVersion).toBe("7");
    feed?.({ type: "MODIFIED", object: object("a", "8") });
    await subject.stop();
    expect(subject.get("ns/a")?.metadata.resourceVersion).toBe("8");
    expect(events.map((event) => `${event.type} ${event.object.metadata.resourceVersion}`)).toEqual(["added 5", "updated 8"]);
  });

  it("never brings back an object deleted while our write was on its way", async () => {
    const kube = new ScriptedKube();
    kube.listResults.push(() => ({ items: [object("a", "5")], resourceVersion: "5" }));
    let feed: ((event: WatchEvent<KubeObject>) => void) | undefined;
    kube.watchScripts.push((onEvent) => (feed = onEvent));
    const { subject } = informer(kube);
    subject.start();
    await until("the watch", () => feed !== undefined);
    // The last finalizer is removed: the DELETED event arrives before the patch's answer.
    feed?.({ type: "DELETED", object: object("a", "7") });
    subject.remember({ metadata: { ...object("a", "6").metadata, deletionTimestamp: "2026-12-01T00:00:00Z", finalizers: [] } });
    subject.remember(object("a", "6"));
    await subject.stop();
    expect(subject.get("ns/a")).toBeUndefined();
  });
});
