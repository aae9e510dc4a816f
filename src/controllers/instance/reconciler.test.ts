/**
 * What one pass writes, at the controller level: the real reconciler over in-memory
 * caches, a recording fake of the API server and a scripted provider. Milliseconds per
 * case; the same rules are proven end to end in test/integration/waha.test.ts.
 */
import { describe, expect, it, vi } from "vitest";
import { pino } from "pino";
import { configSchema } from "../../config.ts";
import { KubeError, type KubeClient } from "../../kube/client.ts";
import { EventRecorder } from "../../kube/events.ts";
import { keyOf, type KubeObject, type ResourceType } from "../../kube/resources.ts";
import { SecretReader, slimSecret, type SlimSecret } from "../../kube/secret-cache.ts";
import { ProviderError } from "../../providers/errors.ts";
import { renderQrPng } from "../../providers/qr.ts";
import { wahaCapabilities } from "../../providers/waha/client.ts";
import type { ObservedSession, Phase, ProviderClient } from "../../providers/types.ts";
import { FINALIZER, type InstanceObject, type OperatorContext } from "../context.ts";
import type { ProviderConnections, ResolvedProvider } from "../provider/connections.ts";
import { LookBudget } from "../look-budget.ts";
import { reconcileInstance } from "./reconciler.ts";
import { GatewayRestarts } from "./restart-recovery.ts";
import { SessionLists } from "./session-lists.ts";
import { StartSlots } from "./start-slots.ts";
import { Placements } from "./placement-reservations.ts";
import { isWebhookSecret } from "./secrets.ts";

// Drawings of a code are counted: the operator draws a provider's payload itself, and only when it is new.
vi.mock("../../providers/qr.ts", async (importOriginal) => {
  const actual = await importOriginal<typeof import("../../providers/qr.ts")>();
  return { ...actual, renderQrPng: vi.fn(actual.renderQrPng) };
});
const drawings = () => vi.mocked(renderQrPng).mock.calls.length;

/** An in-memory cache with the informer's write-through rule. */
class MemoryCache<T extends KubeObject> {
  readonly store = new Map<string, T>();
  private readonly shape: (object: T) => T;
  constructor(shape: (object: T) => T = (object) => object) {
    this.shape = shape;
  }
  get(key: string): T | undefined {
    return this.store.get(key);
  }
  list(): T[] {
    return [...this.store.values()];
  }
  remember(object: T): void {
    this.store.set(keyOf(object), this.shape(object));
  }
  forget(_namespace: string | undefined, key: string): void {
    this.store.delete(key);
  }
  covers(): boolean {
    return true;
  }
}

interface Request {
  readonly verb: string;
  readonly resource: string;
  readonly name: string;
  readonly body?: unknown;
}

/** Records every request; answers writes as the API server would (a new resourceVersion). */
class RecordingKube {
  readonly requests: Request[] = [];
  private version = 100;
  failNext: KubeError | undefined;
  /** When set, failNext waits for a request to this resource (an Event sent meanwhile does not take it). */
  failNextOn: string | undefined;

  private answer<T>(request: Request, object: T): T {
    this.requests.push(request);
    if (this.failNext && (this.failNextOn === undefined || request.resource === this.failNextOn)) {
      const error = this.failNext;
      this.failNext = undefined;
      throw error;
    }
    return object;
  }

  async patch(type: ResourceType, namespace: string, name: string, body: { metadata?: object; status?: object }, _patchType: string, subresource?: string) {
    if (type.plural !== "whatsappinstances") return this.answer({ verb: "PATCH", resource: type.plural, name, body }, body);
    const current = this.objects.get(`${namespace}/${name}`) as InstanceObject;
    const merged = structuredClone(current);
    merged.metadata = { ...merged.metadata, ...body.metadata, resourceVersion: String(++this.version) };
    if (body.status) merged.status = dropNulls({ ...merged.status, ...body.status });
    this.objects.set(`${namespace}/${name}`, merged);
    return this.answer({ verb: "PATCH", resource: type.plural + (subresource ? `/${subresource}` : ""), name, body }, merged);
  }
  async create(type: ResourceType, namespace: string, body: KubeObject) {
    const created = { ...body, metadata: { ...body.metadata, namespace, uid: `uid-${this.version}`, resourceVersion: String(++this.version) } };
    return this.answer({ verb: "POST", resource: type.plural, name: body.metadata.name, body }, created);
  }
  async replace(type: ResourceType, _namespace: string, name: string, body: KubeObject) {
    return this.answer({ verb: "PUT", resource: type.plural, name, body }, { ...body, metadata: { ...body.metadata, resourceVersion: String(++this.version) } });
  }
  async delete(type: ResourceType, _namespace: string, name: string) {
    this.answer({ verb: "DELETE", resource: type.plural, name }, undefined);
  }
  async find(type: ResourceType, namespace: string, name: string) {
    return this.answer({ verb: "GET", resource: type.plural, name }, type.plural === "secrets" ? this.objects.get(`${namespace}/${name}`) : undefined);
  }
  /** The API server's copy of the instances (status patches land here). */
  readonly objects = new Map<string, KubeObject>();

  writes(): Request[] {
    return this.requests.filter((request) => request.verb !== "GET");
  }
}

function dropNulls<T extends object>(object: T): T {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== null)) as T;
}

/** A provider whose session the test sets; every call is recorded, and any call can be made to fail once. */
class ScriptedProvider {
  readonly calls: string[] = [];
  session: ObservedSession | null = null;
  qr = "code-1";
  failures = new Map<string, ProviderError>();
  /** Whether start answers with the session's new state (WAHA's SessionDTO does). */
  answersStart = false;
  /** Whether a code comes as its payload alone, for the operator to draw (WAHA's format=raw), not as an image. */
  payloadOnly = false;
  /** What the session becomes after each operation. */
  after: Partial<Record<string, Phase>> = { create: "Pending", createStarted: "ScanQR", connect: "ScanQR", restart: "Starting" };

  private call(name: string): void {
    this.calls.push(name);
    const failure = this.failures.get(name);
    if (failure) {
      this.failures.delete(name);
      throw failure;
    }
    const next = this.after[name];
    if (next && name !== "create") this.session = { ...(this.session as ObservedSession), phase: next, providerState: next };
  }

  readonly client: ProviderClient = {
    type: "waha",
    capabilities: wahaCapabilities,
    checkHealth: async () => ({}),
    observe: async () => {
      this.call("observe");
      return this.session;
    },
    // As WAHA's client: a name in use answers with the session already there, whoever made it.
    create: async (ref, options) => {
      this.call(options?.start ? "create+start" : "create");
      if (this.session) return this.session;
      const phase = options?.start ? (this.after.createStarted ?? "ScanQR") : (this.after.create ?? "Pending");
      this.session = { id: `${ref.namespace}__${ref.name}`, phase, providerState: phase === "ScanQR" ? "SCAN_QR_CODE" : "STARTING", ownerUid: ref.uid, webhookInSync: true };
      return this.session;
    },
    connect: async () => {
      this.call("connect");
      return this.answersStart ? (this.session ?? undefined) : undefined;
    },
    disconnect: async () => this.call("disconnect"),
    restart: async () => this.call("restart"),
    logout: async () => this.call("logout"),
    remove: async () => this.call("remove"),
    // As the interface says: a code only while the session waits for a scan.
    fetchQr: async () => {
      this.call("fetchQr");
      if (this.session?.phase !== "ScanQR") return null;
      return this.payloadOnly ? { text: this.qr, validForMs: 20_000 } : { png: Buffer.from(`png:${this.qr}`), text: this.qr, validForMs: 20_000 };
    },
    requestPairingCode: async () => {
      this.call("requestPairingCode");
      return "ABCD-EFGH";
    },
    configureWebhook: async () => this.call("configureWebhook"),
  };
}

function harness() {
  const kube = new RecordingKube();
  const provider = new ScriptedProvider();
  const instances = new MemoryCache<InstanceObject>();
  const secrets = new MemoryCache<SlimSecret>(slimSecret(isWebhookSecret) as (object: SlimSecret) => SlimSecret);
  const providers = new MemoryCache<KubeObject & { spec: unknown }>();
  let now = Date.parse("2026-12-01T10:00:00Z");
  const resolved = {
    key: "WhatsAppProvider/ns/waha",
    object: { metadata: { name: "waha", namespace: "ns" }, spec: {} },
    type: "waha",
    client: provider.client,
    settings: { type: "waha", url: "http://waha", rateLimit: { requestsPerSecond: 10, burst: 20 }, timeoutMs: 1000 },
    pollIntervalMs: 30_000,
    maxInstances: undefined,
    maxConcurrentStarts: 10,
    events: undefined,
  } as unknown as ResolvedProvider;
  const log = pino({ level: "silent" });
  const ctx: OperatorContext = {
    kube: kube as unknown as KubeClient,
    log,
    events: new EventRecorder({ kube: kube as unknown as KubeClient, component: "wa-operator", log }),
    config: configSchema.parse({}),
    clock: { now: () => now },
    caches: { instances, providers, clusterProviders: providers, secrets },
    secrets: new SecretReader({ kube: kube as unknown as KubeClient, cache: secrets }),
    connections: { resolve: async () => resolved, forget: () => undefined } as unknown as ProviderConnections,
    pacing: new Map(),
    lookBudget: new LookBudget(),
    startSlots: new StartSlots(),
    placements: new Placements(),
    gatewayRestarts: new GatewayRestarts(),
  };
  const apply = (spec: Record<string, unknown> = {}) => {
    const instance: InstanceObject = {
      apiVersion: "wa-operator.io/v1alpha1",
      kind: "WhatsAppInstance",
      metadata: { name: "line", namespace: "ns", uid: "uid-line", resourceVersion: "1", generation: 1 },
      spec: { providerRef: { name: "waha" }, ...spec },
    };
    kube.objects.set("ns/line", instance);
    instances.remember(instance);
  };
  /** The user edits the spec (a new generation). */
  const edit = (spec: Record<string, unknown>) => {
    const current = instances.get("ns/line") as InstanceObject;
    const next = { ...current, metadata: { ...current.metadata, generation: (current.metadata.generation ?? 1) + 1 }, spec: { ...(current.spec as object), ...spec } };
    kube.objects.set("ns/line", next);
    instances.remember(next);
  };
  // A pass, then the Events it queued: the recorder sends them in the background.
  const pass = async () => {
    const result = await reconcileInstance(ctx, "ns/line");
    await ctx.events.flush();
    return result;
  };
  const status = () => instances.get("ns/line")?.status;
  /** The user deletes it: the finalizer holds it with a deletionTimestamp. */
  const markDeleted = () => {
    const current = instances.get("ns/line") as InstanceObject;
    const deleting = { ...current, metadata: { ...current.metadata, deletionTimestamp: "2026-12-01T10:01:00Z" } };
    kube.objects.set("ns/line", deleting);
    instances.remember(deleting);
  };
  const reset = () => {
    kube.requests.length = 0;
    provider.calls.length = 0;
  };
  return { kube, provider, ctx, apply, edit, markDeleted, pass, status, reset, advance: (ms: number) => (now += ms), secrets };
}

const writesOf = (kube: RecordingKube) => kube.writes().map((request) => `${request.verb} ${request.resource} ${request.name.replace(/\.[0-9a-f]{16}$/, "")}`);
/** The writes to the instance and its Secrets, in order; Events are sent beside them, in the background. */
const objectWritesOf = (kube: RecordingKube) => writesOf(kube).filter((write) => !write.includes(" events "));
/** The Events a pass sent, in order: "POST Created" for a new one, "PATCH" for a repeat folded into its count. */
const eventsOf = (kube: RecordingKube) =>
  kube
    .writes()
    .filter((request) => request.resource === "events")
    .map((request) => `${request.verb} ${(request.body as { reason?: string } | undefined)?.reason ?? ""}`.trim());

const eventMessagesOf = (kube: RecordingKube) =>
  kube
    .writes()
    .filter((request) => request.resource === "events" && request.verb === "POST")
    .map((request) => (request.body as { message?: string } | undefined)?.message);

describe("one pass of the instance reconciler", () => {
  it("takes a new instance to ScanQR in one pass with the writes nothing can avoid and one Event that names the QR Secret", async () => {
    const h = harness();
    h.apply();
    const result = await h.pass();
    // Never had a session: no look before the create, which starts it too; its answer is the next look.
    expect(h.provider.calls).toEqual(["create+start", "fetchQr"]);
    expect(objectWritesOf(h.kube)).toEqual(["PATCH whatsappinstances line", "POST secrets line-qr", "PATCH whatsappinstances/status line"]);
    // One Event says both what was done and where the code is: four requests in all.
    expect(eventsOf(h.kube)).toEqual(["POST Created"]);
    expect(eventMessagesOf(h.kube)).toEqual(["created and started the waha session; its QR code is in Secret line-qr"]);
    expect(h.kube.writes()).toHaveLength(4);
    expect(h.kube.requests.filter((request) => request.verb === "GET")).toEqual([]);
    expect(h.status()).toMatchObject({ phase: "ScanQR", providerInstanceId: "ns__line", qr: { secretName: "line-qr" } });
    // The next look asks only whether the phone linked; the code is fresh for a while.
    expect(result.requeueAfterMs).toBe(2_000);
  });

  it("a provider that cannot start on create looks first, creates, starts, then shows the code", async () => {
    const h = harness();
    h.provider.answersStart = true;
    Object.assign(h.provider.client, { capabilities: { ...wahaCapabilities, createStarts: false, createFindsExisting: false } });
    h.apply();
    await h.pass();
    expect(h.provider.calls).toEqual(["observe", "create", "connect", "fetchQr"]);
    expect(h.status()?.phase).toBe("ScanQR");
  });

  it("a session squatting on the instance's name, without its uid, is refused after the create's answer: no start, no code, no claim", async () => {
    const h = harness();
    h.provider.session = { id: "ns__line", phase: "ScanQR", providerState: "SCAN_QR_CODE", webhookInSync: false };
    // WAHA records an owner on the session and can write ours (claim): a recorded id alone proves nothing.
    Object.assign(h.provider.client, { claim: async () => void h.provider.calls.push("claim") });
    h.apply();
    await h.pass();
    expect(h.provider.calls).toEqual(["create+start"]);
    expect(h.status()).toMatchObject({ phase: "Pending", conditions: expect.arrayContaining([expect.objectContaining({ type: "Stalled", status: "True", reason: "SessionOwnedElsewhere" })]) });
    // Not recorded as ours: a recorded id would rank this instance first for the session's claim.
    expect(h.status()?.providerInstanceId).toBeUndefined();
    // Another resource's session: its uid on record.
    h.provider.session = { ...h.provider.session, ownerUid: "uid-other" };
    h.reset();
    h.advance(60_000);
    await h.pass();
    expect(h.provider.calls.filter((call) => call !== "create+start" && call !== "observe")).toEqual([]);
    expect(h.status()?.conditions?.find((condition) => condition.type === "Stalled")?.reason).toBe("SessionOwnedElsewhere");
  });

  it("a session of ours left by a pass that could not record it is carried on by the create's answer", async () => {
    const h = harness();
    h.provider.session = { id: "ns__line", phase: "ScanQR", providerState: "SCAN_QR_CODE", ownerUid: "uid-line", webhookInSync: true };
    h.apply();
    await h.pass();
    expect(h.provider.calls).toEqual(["create+start", "fetchQr"]);
    expect(h.status()).toMatchObject({ phase: "ScanQR", providerInstanceId: "ns__line" });
  });

  it("a session still starting after the create is written once, and looked at when it is expected up, not fetched early", async () => {
    const h = harness();
    h.provider.after.createStarted = "Starting";
    h.apply();
    const result = await h.pass();
    expect(h.provider.calls).toEqual(["create+start"]);
    expect(objectWritesOf(h.kube)).toEqual(["PATCH whatsappinstances line", "PATCH whatsappinstances/status line"]);
    expect(h.status()).toMatchObject({ phase: "Starting", providerInstanceId: "ns__line" });
    expect(result).toMatchObject({ requeueAfterMs: 1_000, inFlight: true });
    h.provider.session = { ...(h.provider.session as ObservedSession), phase: "ScanQR", providerState: "SCAN_QR_CODE" };
    h.reset();
    h.advance(1_000);
    await h.pass();
    expect(h.provider.calls).toEqual(["observe", "fetchQr"]);
    expect(objectWritesOf(h.kube)).toEqual(["POST secrets line-qr", "PATCH whatsappinstances/status line"]);
  });

  it("pairing by code asks for one code in the pass that creates the session, and none while it is fresh", async () => {
    const h = harness();
    h.apply({ pairing: { method: "Code", phoneNumber: "5511999998888" } });
    await h.pass();
    h.advance(2_000);
    await h.pass();
    expect(h.provider.calls.filter((call) => call === "requestPairingCode")).toHaveLength(1);
  });

  it("a look while the code is fresh asks the provider one thing and writes nothing", async () => {
    const h = harness();
    h.apply();
    await h.pass();
    h.reset();
    h.advance(2_000);
    await h.pass();
    expect(h.provider.calls).toEqual(["observe"]);
    expect(h.kube.requests).toEqual([]);
  });

  it("fetches the code again once it is due, asking for the code alone, and writes the Secret only when the code changed", async () => {
    const h = harness();
    h.apply();
    await h.pass();
    h.reset();
    h.advance(5_000);
    await h.pass();
    // A code comes back only while the session waits for a scan: the code is the look.
    expect(h.provider.calls).toEqual(["fetchQr"]);
    expect(h.kube.requests).toEqual([]);
    h.provider.qr = "code-2";
    h.advance(5_000);
    await h.pass();
    // The first code was told by the Created Event; each later one is a QRUpdated.
    expect(objectWritesOf(h.kube)).toEqual(["PUT secrets line-qr", "PATCH whatsappinstances/status line"]);
    expect(eventsOf(h.kube)).toEqual(["POST QRUpdated"]);
    expect(eventMessagesOf(h.kube)).toEqual(["a new QR code is in Secret line-qr"]);
    h.reset();
    h.provider.qr = "code-3";
    h.advance(5_000);
    await h.pass();
    // A third code repeats the second's Event: its count goes up.
    expect(eventsOf(h.kube)).toEqual(["PATCH"]);
  });

  it("draws a code given as its payload once: a refresh that finds it again draws and writes nothing, unless the Secret changed", async () => {
    const h = harness();
    h.provider.payloadOnly = true;
    h.apply();
    const before = drawings();
    await h.pass();
    expect(drawings() - before).toBe(1);
    h.reset();
    h.advance(5_000);
    await h.pass();
    expect(h.provider.calls).toEqual(["fetchQr"]);
    expect(drawings() - before).toBe(1);
    expect(h.kube.requests).toEqual([]);
    // Someone edits the QR Secret: the same code is drawn and written again.
    const secret = h.secrets.get("ns/line-qr") as SlimSecret;
    h.secrets.remember({ ...secret, metadata: { ...secret.metadata, resourceVersion: "99" }, data: { "qr.png": "AAAA" } });
    h.advance(5_000);
    await h.pass();
    expect(drawings() - before).toBe(2);
    expect(objectWritesOf(h.kube)).toEqual(["PUT secrets line-qr", "PATCH whatsappinstances/status line"]);
    h.reset();
    h.provider.qr = "code-2";
    h.advance(5_000);
    await h.pass();
    expect(drawings() - before).toBe(3);
    expect(objectWritesOf(h.kube)).toEqual(["PUT secrets line-qr", "PATCH whatsappinstances/status line"]);
  });

  it("a look due for a code that finds none (the phone linked meanwhile) looks at the session in the same pass", async () => {
    const h = harness();
    h.apply();
    await h.pass();
    h.provider.session = { ...(h.provider.session as ObservedSession), phase: "Connected", providerState: "WORKING", phoneNumber: "5511999998888" };
    h.reset();
    h.advance(5_000);
    await h.pass();
    expect(h.provider.calls).toEqual(["fetchQr", "observe"]);
    expect(h.status()).toMatchObject({ phase: "Connected", phoneNumber: "5511999998888" });
  });

  it("trusts a session it saw for a minute at most, and never across a spec change", async () => {
    const h = harness();
    h.apply();
    await h.pass();
    const looks: string[][] = [];
    for (let at = 5_000; at <= 70_000; at += 5_000) {
      h.reset();
      h.advance(5_000);
      await h.pass();
      looks.push([...h.provider.calls]);
    }
    // Every look is due for a code; the one after the minute asks for the session too.
    expect(looks.filter((calls) => calls[0] === "observe")).toHaveLength(1);
    expect(looks.slice(0, 11).every((calls) => calls.join() === "fetchQr")).toBe(true);
    h.edit({ displayName: "Support" });
    h.reset();
    h.advance(5_000);
    await h.pass();
    expect(h.provider.calls[0]).toBe("observe");
  });

  it("spreads routine looks when the provider's instances would take more than half its rate limit, keeping codes fresh", async () => {
    const h = harness();
    h.apply();
    // The other instances of this provider (10 requests/s) already ask 40 times a second.
    h.ctx.lookBudget.record("ns/others", "WhatsAppProvider/ns/waha", 40);
    const pairing = await h.pass();
    // 2 s × (40.5 / 5) would be 16 s; a 20 s code is replaced by half its life at the latest.
    expect(pairing.requeueAfterMs).toBe(10_000);
    h.provider.session = { ...(h.provider.session as ObservedSession), phase: "Connected", providerState: "WORKING" };
    h.advance(1_000);
    await h.pass();
    const atRest = await h.pass();
    expect(atRest.requeueAfterMs).toBeCloseTo(30_000 * ((40 + 1 / 30) / 5), 0);
    h.ctx.lookBudget.forget("ns/others");
    expect((await h.pass()).requeueAfterMs).toBe(30_000);
  });

  it("a linked instance at rest costs one provider call and no API request", async () => {
    const h = harness();
    h.apply();
    await h.pass();
    h.provider.session = { ...(h.provider.session as ObservedSession), phase: "Connected", providerState: "WORKING", phoneNumber: "5511999998888" };
    await h.pass();
    expect(h.status()).toMatchObject({ phase: "Connected", phoneNumber: "5511999998888" });
    h.reset();
    const result = await h.pass();
    expect(h.provider.calls).toEqual(["observe"]);
    expect(h.kube.requests).toEqual([]);
    expect(result.requeueAfterMs).toBe(30_000);
  });

  it("tells the metrics how long the create waited for its start slot: 0 when one was free, else since it got in line", async () => {
    const waits: number[] = [];
    const free = harness();
    Object.assign(free.ctx, { observers: { startSlotWait: (_provider: unknown, seconds: number) => waits.push(seconds) } });
    free.apply();
    await free.pass();
    const queued = harness();
    Object.assign(queued.ctx, { observers: { startSlotWait: (_provider: unknown, seconds: number) => waits.push(seconds) } });
    queued.apply();
    // In line since a gateway restart lined it up, seven seconds before its pass.
    queued.ctx.startSlots.enqueue("WhatsAppProvider/ns/waha", [{ key: "ns/line", createdAt: "", linked: false }], queued.ctx.clock.now());
    queued.advance(7_000);
    await queued.pass();
    expect(queued.provider.calls).toContain("create+start");
    expect(waits).toEqual([0, 7]);
  });

  /** h with one start slot and `ns/next` waiting in line behind it; the keys each wake asked for. */
  async function oneSlotWithWaiter() {
    const h = harness();
    const woken: string[][] = [];
    Object.assign(h.ctx, { wakeInstances: (keys: readonly string[]) => woken.push([...keys]) });
    const provider = await h.ctx.connections.resolve({ name: "waha" } as never, "ns");
    Object.assign(provider, { maxConcurrentStarts: 1 });
    const next = { key: "ns/next", createdAt: "2026-12-01T09:00:00Z", linked: false };
    h.ctx.startSlots.wait(h.ctx.startSlots.view(provider.key, next, { max: 1, stuckTimeoutMs: h.ctx.config.stuckTimeout, now: h.ctx.clock.now() }), provider.key);
    return { h, woken, holds: () => h.ctx.startSlots.holds(provider.key, "ns/line", h.ctx.clock.now(), h.ctx.config.stuckTimeout) };
  }

  it("a session seen out of its start frees its slot and wakes the next in line at once", async () => {
    const { h, woken, holds } = await oneSlotWithWaiter();
    h.provider.after.createStarted = "Starting";
    h.apply();
    await h.pass();
    expect(holds()).toBe(true);
    expect(woken).toEqual([]);
    h.provider.session = { ...(h.provider.session as ObservedSession), phase: "ScanQR", providerState: "SCAN_QR_CODE" };
    await h.pass();
    expect(holds()).toBe(false);
    expect(woken).toEqual([["ns/next"]]);
  });

  it("a start the provider refused with a pause (429) started nothing: the slot goes to the next in line, and the instance says RateLimited", async () => {
    const { h, woken, holds } = await oneSlotWithWaiter();
    h.provider.failures.set("create+start", new ProviderError("RateLimited", "waha answered 429", { retryAfterMs: 86_400_000 }));
    h.apply();
    await h.pass();
    expect(holds()).toBe(false);
    expect(woken).toEqual([["ns/next"]]);
    expect(h.status()?.conditions?.find((condition) => condition.type === "Ready")?.reason).toBe("RateLimited");
  });

  it("an instance deleted while its session starts gives its slot to the next in line, not at the stuck timeout", async () => {
    const { h, woken, holds } = await oneSlotWithWaiter();
    h.provider.after.createStarted = "Starting";
    h.apply();
    await h.pass();
    h.markDeleted();
    await h.pass();
    expect(h.provider.calls).toContain("remove");
    expect(holds()).toBe(false);
    expect(woken).toEqual([["ns/next"]]);
  });

  it("an instance at rest on a provider that lists its sessions waits for the list, not a timer: no look of its own until its session changes", async () => {
    const h = harness();
    const woken: string[][] = [];
    const lists = new SessionLists({ wake: (keys) => woken.push([...keys]), timers: false });
    Object.assign(h.ctx, { sessionLists: lists });
    const listed = new Map<string, string>();
    Object.assign(h.provider.client, { listSessions: async () => new Map(listed) });
    const connected = (fingerprint: string) => {
      h.provider.session = { ...(h.provider.session as ObservedSession), phase: "Connected", providerState: "WORKING", phoneNumber: "15550001", fingerprint };
      listed.set(h.provider.session.id, fingerprint);
    };
    h.apply();
    await h.pass();
    connected("working-1");
    // The pass that sees it linked empties the QR Secret (our side only) and rests.
    const settled = await h.pass();
    expect(settled).toEqual({});
    expect(lists.watching("WhatsAppProvider/ns/waha")).toBe(1);
    h.reset();
    // The list shows it as the look saw it: nobody is woken, and the instance costs no call of its own.
    await lists.pollNow("WhatsAppProvider/ns/waha");
    expect(woken).toEqual([]);
    expect(h.provider.calls).toEqual([]);
    // Logged out on the phone: the list shows it changed, the instance is woken and looks for real.
    listed.set((h.provider.session as ObservedSession).id, "logged-out");
    await lists.pollNow("WhatsAppProvider/ns/waha");
    expect(woken).toEqual([["ns/line"]]);
    expect(lists.watching("WhatsAppProvider/ns/waha")).toBe(0);
  });

  it("an instance still on its way (showing a QR) keeps its own looks, even where the provider lists its sessions", async () => {
    const h = harness();
    const lists = new SessionLists({ wake: () => undefined, timers: false });
    Object.assign(h.ctx, { sessionLists: lists });
    Object.assign(h.provider.client, { listSessions: async () => new Map() });
    h.apply();
    await h.pass();
    h.provider.session = { ...(h.provider.session as ObservedSession), fingerprint: "scan-qr" };
    const result = await h.pass();
    expect(result.requeueAfterMs).toBeGreaterThan(0);
    expect(lists.watching("WhatsAppProvider/ns/waha")).toBe(0);
  });

  it("a restart whose call fails is still owed: nothing recorded, carried out on the next pass, once", async () => {
    const h = harness();
    h.apply();
    await h.pass();
    h.provider.session = { ...(h.provider.session as ObservedSession), phase: "Connected", providerState: "WORKING" };
    await h.pass();
    h.edit({ restartRequestedAt: "2026-12-01T10:05:00Z" });
    h.provider.failures.set("restart", new ProviderError("Unavailable", "waha answered 503"));
    const failed = await h.pass();
    expect(failed.backoff).toBe(true);
    expect(h.status()?.lastRestartAt).toBeUndefined();
    expect(h.status()?.restartInFlight).toBeUndefined();
    await h.pass();
    expect(h.provider.calls.filter((call) => call === "restart")).toHaveLength(2);
    expect(h.status()?.lastRestartAt).toBe("2026-12-01T10:05:00Z");
    await h.pass();
    expect(h.provider.calls.filter((call) => call === "restart")).toHaveLength(2);
  });

  it("records a requested restart's intent before the call, and does not repeat one a crash interrupted", async () => {
    const h = harness();
    h.apply();
    await h.pass();
    h.provider.session = { ...(h.provider.session as ObservedSession), phase: "Connected", providerState: "WORKING" };
    await h.pass();
    h.edit({ restartRequestedAt: "2026-12-01T10:05:00Z" });
    h.reset();
    await h.pass();
    const intent = h.kube.requests.findIndex((request) => request.resource === "whatsappinstances/status");
    expect((h.kube.requests[intent]?.body as { status: object }).status).toEqual({ restartInFlight: "2026-12-01T10:05:00Z" });
    // A replica that crashed right after the call left only the intent behind.
    h.edit({ restartRequestedAt: "2026-12-01T10:09:00Z" });
    const crashed = h.ctx.caches.instances.get("ns/line") as InstanceObject;
    h.ctx.caches.instances.remember({ ...crashed, status: { ...crashed.status, restartInFlight: "2026-12-01T10:09:00Z" } });
    h.reset();
    await h.pass();
    expect(h.provider.calls).not.toContain("restart");
    expect(h.status()?.lastRestartAt).toBe("2026-12-01T10:09:00Z");
  });

  it("deletes no webhook Secret the cache says is absent, and writes one before wiring the provider", async () => {
    const h = harness();
    h.apply();
    await h.pass();
    expect(h.kube.requests.filter((request) => request.verb === "DELETE")).toEqual([]);
    h.edit({ webhook: { url: "https://hooks.example/wa", events: ["message"] } });
    h.provider.session = { ...(h.provider.session as ObservedSession), webhookInSync: false };
    h.reset();
    await h.pass();
    const order = writesOf(h.kube).filter((write) => write.includes("secrets"));
    expect(order).toEqual(["POST secrets line-webhook"]);
    expect(h.provider.calls.indexOf("configureWebhook")).toBeGreaterThan(-1);
    h.edit({ webhook: undefined });
    h.reset();
    await h.pass();
    expect(writesOf(h.kube)).toContain("DELETE secrets line-webhook");
  });

  it("a conflict on the status write means look again soon, not an error", async () => {
    const h = harness();
    h.apply();
    await h.pass();
    h.provider.session = { ...(h.provider.session as ObservedSession), phase: "Connected", providerState: "WORKING" };
    h.kube.failNext = new KubeError(409, "Conflict", "the object has been modified");
    const result = await h.pass();
    expect(result).toEqual({ requeueAfterMs: 500 });
  });

  it("a deletion whose finalizer removal meets a conflict removes the session once, then takes the finalizer off", async () => {
    const h = harness();
    h.apply();
    await h.pass();
    h.markDeleted();
    h.reset();
    h.kube.failNext = new KubeError(409, "Conflict", "the object has been modified");
    h.kube.failNextOn = "whatsappinstances";
    await h.pass();
    expect(h.provider.calls).toEqual(["observe", "remove"]);
    expect(h.ctx.caches.instances.get("ns/line")?.metadata.finalizers).toContain(FINALIZER);
    h.reset();
    await h.pass();
    expect(h.provider.calls).toEqual([]);
    expect(writesOf(h.kube)).toEqual(["PATCH whatsappinstances line"]);
    // The object written without our finalizer is not cached (it is going); a pass before
    // its DELETED event still sees the finalizer, and does not remove the session again.
    h.reset();
    await h.pass();
    expect(h.provider.calls).toEqual([]);
  });

  it("adds the finalizer before any provider call", async () => {
    const h = harness();
    h.apply();
    h.kube.failNext = new KubeError(409, "Conflict", "changed");
    await h.pass();
    expect(h.provider.calls).toEqual([]);
    expect(h.ctx.caches.instances.get("ns/line")?.metadata.finalizers ?? []).not.toContain(FINALIZER);
  });

  it("a referenced Secret without the credential label stalls the instance with SecretNotLabelled, naming the label, and sends nothing", async () => {
    const h = harness();
    h.secrets.remember({ metadata: { name: "my-hmac", namespace: "ns", resourceVersion: "1" }, data: { "hmac-key": Buffer.from("theirs").toString("base64") } });
    h.apply({ webhook: { url: "https://hooks.example/wa", events: ["message"], secretRef: { name: "my-hmac", key: "hmac-key" } } });
    await h.pass();
    const stalled = (h.status()?.conditions as { type: string; status: string; reason: string; message: string }[]).find((condition) => condition.type === "Stalled");
    expect(stalled).toMatchObject({ status: "True", reason: "SecretNotLabelled" });
    expect(stalled?.message).toContain("wa-operator.io/credential");
    expect(stalled?.message).toContain("ns/my-hmac");
    expect(h.provider.calls).toEqual([]);
  });

  it("a webhook Secret of the same name that the operator did not make is left alone: Stalled SecretConflict, nothing written", async () => {
    const h = harness();
    h.secrets.remember({ metadata: { name: "line-webhook", namespace: "ns", resourceVersion: "1", labels: { "wa-operator.io/credential": "true" } }, data: {} });
    h.apply({ webhook: { url: "https://hooks.example/wa", events: ["message"] } });
    await h.pass();
    expect(writesOf(h.kube).filter((write) => write.includes("secrets"))).toEqual([]);
    const stalled = (h.status()?.conditions as { type: string; status: string; reason: string; message: string }[]).find((condition) => condition.type === "Stalled");
    expect(stalled).toMatchObject({ status: "True", reason: "SecretConflict" });
    expect(stalled?.message).toContain("ns/line-webhook");
  });

  it("a user's own Secret named <instance>-webhook, referenced by webhook.secretRef, is neither written nor deleted", async () => {
    const h = harness();
    const users = { metadata: { name: "line-webhook", namespace: "ns", resourceVersion: "1", labels: { "wa-operator.io/credential": "true" } }, data: { "hmac-key": Buffer.from("users-own-key").toString("base64") } };
    h.kube.objects.set("ns/line-webhook", users);
    h.secrets.remember(users);
    h.apply({ webhook: { url: "https://hooks.example/wa", events: ["message"], secretRef: { name: "line-webhook", key: "hmac-key" } } });
    await h.pass();
    await h.pass();
    expect(writesOf(h.kube).filter((write) => write.includes("line-webhook"))).toEqual([]);
    expect(h.provider.calls).toContain("create+start");
  });
});
