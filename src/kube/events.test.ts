import { afterEach, describe, expect, it, vi } from "vitest";
import { createLogger } from "../logger.ts";
import { Redactor } from "../redaction.ts";
import type { KubeClient } from "./client.ts";
import {
  EventRecorder,
  eventMessage,
  EVENTS_PER_SENDER,
  MAX_EVENT_HOLD_MS,
  MAX_EVENT_MESSAGE_BYTES,
  MAX_EVENT_SENDERS,
  MAX_QUEUED_EVENTS,
  MIN_EVENT_SENDERS,
} from "./events.ts";

const KEY = "echoed-api-key-0123456789";

/** Only what EventRecorder calls: create and patch, remembering the bodies. */
function fakeKube(): { kube: KubeClient; created: { message: string }[] } {
  const created: { message: string }[] = [];
  const kube = {
    create: async (_type: unknown, _namespace: unknown, body: { message: string }) => {
      created.push(body);
      return body;
    },
    patch: async () => ({}),
  } as unknown as KubeClient;
  return { kube, created };
}

const object = { apiVersion: "wa-operator.io/v1alpha1", kind: "WhatsAppInstance", metadata: { name: "one", namespace: "ns", uid: "u1" } };

describe("EventRecorder", () => {
  it("never records a credential the redactor knows", async () => {
    const { kube, created } = fakeKube();
    const redactor = new Redactor();
    redactor.remember(KEY);
    const recorder = new EventRecorder({ kube, component: "test", log: createLogger("silent"), redactor });
    recorder.record(object, "Warning", "ProviderError", `waha answered 400: invalid request for key ${KEY}`);
    await recorder.flush();
    expect(created.map((event) => event.message)).toEqual(["waha answered 400: invalid request for key [redacted]"]);
  });

  it("cuts a 2 MB message to what the API server accepts", async () => {
    const { kube, created } = fakeKube();
    const recorder = new EventRecorder({ kube, component: "test", log: createLogger("silent") });
    recorder.record(object, "Warning", "ProviderError", "x".repeat(2 * 1024 * 1024));
    await recorder.flush();
    expect(Buffer.byteLength(created[0]?.message ?? "", "utf8")).toBeLessThanOrEqual(MAX_EVENT_MESSAGE_BYTES);
    expect(created[0]?.message.endsWith("…")).toBe(true);
  });
});

/** A kube whose Event requests answer only when the test lets them: what is in flight, and in what order it was sent. */
function gatedKube() {
  const sent: { verb: string; object: string; reason: string; firstTimestamp?: string; count?: number }[] = [];
  const gates: (() => void)[] = [];
  let inFlight = 0;
  let mostInFlight = 0;
  const request = async (entry: (typeof sent)[number]) => {
    sent.push(entry);
    inFlight += 1;
    mostInFlight = Math.max(mostInFlight, inFlight);
    await new Promise<void>((resolve) => gates.push(resolve));
    inFlight -= 1;
  };
  const kube = {
    create: async (_type: unknown, _namespace: unknown, body: { reason: string; firstTimestamp: string; involvedObject: { name: string } }) => {
      await request({ verb: "POST", object: body.involvedObject.name, reason: body.reason, firstTimestamp: body.firstTimestamp });
      return body;
    },
    patch: async (_type: unknown, _namespace: unknown, name: string, body: { count: number }) => {
      await request({ verb: "PATCH", object: name.split(".")[0] as string, reason: "", count: body.count });
      return body;
    },
  } as unknown as KubeClient;
  /** Answers every request in flight, then lets the senders take the next ones. */
  const answerAll = async () => {
    for (const resolve of gates.splice(0)) resolve();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { kube, sent, answerAll, mostInFlight: () => mostInFlight, inFlight: () => inFlight };
}

const objectNamed = (name: string) => ({ ...object, metadata: { ...object.metadata, name, uid: `uid-${name}` } });

describe("EventRecorder sends in the background", () => {
  it("returns before the API server answers, and flush waits for it", async () => {
    const { kube, sent, answerAll } = gatedKube();
    const recorder = new EventRecorder({ kube, component: "test", log: createLogger("silent") });
    recorder.record(object, "Normal", "Created", "creating the waha session");
    expect(recorder.pending).toBe(1);
    let flushed = false;
    const flushing = recorder.flush().then(() => (flushed = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(flushed).toBe(false);
    await answerAll();
    await flushing;
    expect(sent.map((entry) => entry.reason)).toEqual(["Created"]);
    expect(recorder.pending).toBe(0);
  });

  it("sends one object's Events one at a time, in the order they happened, each stamped when it happened", async () => {
    const { kube, sent, answerAll } = gatedKube();
    const recorder = new EventRecorder({ kube, component: "test", log: createLogger("silent") });
    for (const reason of ["Created", "Starting", "QRUpdated"]) {
      recorder.record(object, "Normal", reason, reason);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const recordedBy = Date.now();
    expect(sent.map((entry) => entry.reason)).toEqual(["Created"]);
    await answerAll();
    expect(sent.map((entry) => entry.reason)).toEqual(["Created", "Starting"]);
    await answerAll();
    await answerAll();
    expect(sent.map((entry) => entry.reason)).toEqual(["Created", "Starting", "QRUpdated"]);
    const stamps = sent.map((entry) => Date.parse(entry.firstTimestamp ?? ""));
    expect(stamps.every((stamp) => stamp <= recordedBy)).toBe(true);
    expect([...stamps].sort((a, b) => a - b)).toEqual(stamps);
  });

  it(`keeps ${MIN_EVENT_SENDERS} requests in flight for a few Events waiting`, async () => {
    const { kube, sent, answerAll, mostInFlight } = gatedKube();
    const recorder = new EventRecorder({ kube, component: "test", log: createLogger("silent") });
    for (let i = 0; i < 20; i++) recorder.record(objectNamed(`line-${i}`), "Normal", "Created", "creating");
    expect(sent).toHaveLength(MIN_EVENT_SENDERS);
    const flushing = recorder.flush();
    while (recorder.pending > 0) await answerAll();
    await flushing;
    expect(sent).toHaveLength(20);
    expect(mostInFlight()).toBe(MIN_EVENT_SENDERS);
  });

  it(`adds a request in flight per ${EVENTS_PER_SENDER} Events waiting, up to ${MAX_EVENT_SENDERS}, and drops back as they go`, async () => {
    const { kube, sent, answerAll, inFlight } = gatedKube();
    const recorder = new EventRecorder({ kube, component: "test", log: createLogger("silent") });
    for (let i = 0; i < 6 * EVENTS_PER_SENDER; i++) recorder.record(objectNamed(`line-${i}`), "Normal", "Created", "creating");
    expect(inFlight()).toBe(Math.min(MAX_EVENT_SENDERS, 6));
    for (let i = 0; i < 100 * EVENTS_PER_SENDER; i++) recorder.record(objectNamed(`more-${i}`), "Normal", "Created", "creating");
    expect(inFlight()).toBe(Math.min(MAX_EVENT_SENDERS, Math.ceil(MAX_QUEUED_EVENTS / EVENTS_PER_SENDER)));
    const flushing = recorder.flush();
    while (recorder.pending > 2 * EVENTS_PER_SENDER) await answerAll();
    await answerAll();
    expect(inFlight()).toBeLessThanOrEqual(MIN_EVENT_SENDERS);
    while (recorder.pending > 0) await answerAll();
    await flushing;
    expect(sent).toHaveLength(MAX_QUEUED_EVENTS);
  });

  it("still folds a repeat into the first Event's count", async () => {
    const { kube, sent, answerAll } = gatedKube();
    const recorder = new EventRecorder({ kube, component: "test", log: createLogger("silent") });
    recorder.record(object, "Normal", "QRUpdated", "a new QR code is in Secret one-qr");
    recorder.record(object, "Normal", "QRUpdated", "a new QR code is in Secret one-qr");
    const flushing = recorder.flush();
    while (recorder.pending > 0) await answerAll();
    await flushing;
    expect(sent.map((entry) => `${entry.verb}${entry.count ? ` ${entry.count}` : ""}`)).toEqual(["POST", "PATCH 2"]);
  });

  it("a request that fails is logged and the next Event is still sent", async () => {
    let calls = 0;
    const kube = {
      create: async (_type: unknown, _namespace: unknown, body: unknown) => {
        if (calls++ === 0) throw new Error("connection reset");
        return body;
      },
    } as unknown as KubeClient;
    const recorder = new EventRecorder({ kube, component: "test", log: createLogger("silent") });
    recorder.record(object, "Normal", "Created", "creating");
    recorder.record(object, "Normal", "Starting", "starting");
    await recorder.flush();
    expect(calls).toBe(2);
  });

  it(`drops Events beyond ${MAX_QUEUED_EVENTS} waiting, and says so`, async () => {
    const { kube, sent, answerAll } = gatedKube();
    let dropped = 0;
    const recorder = new EventRecorder({ kube, component: "test", log: createLogger("silent"), onDrop: () => dropped++ });
    for (let i = 0; i < MAX_QUEUED_EVENTS + 3; i++) recorder.record(objectNamed(`line-${i}`), "Normal", "Created", "creating");
    expect(recorder.pending).toBe(MAX_QUEUED_EVENTS);
    expect(dropped).toBe(3);
    const flushing = recorder.flush();
    while (recorder.pending > 0) await answerAll();
    await flushing;
    expect(sent).toHaveLength(MAX_QUEUED_EVENTS);
  });
});

describe("EventRecorder while the operator is saturated", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("holds Events back while the operator is saturated and sends them once it is not", async () => {
    vi.useFakeTimers();
    const { kube, created } = fakeKube();
    let saturated = true;
    const recorder = new EventRecorder({ kube, component: "test", log: createLogger("silent"), saturated: () => saturated });
    recorder.record(object, "Normal", "Created", "created and started the waha session");
    await vi.advanceTimersByTimeAsync(5_000);
    expect(created).toHaveLength(0);
    saturated = false;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(created.map((event) => event.message)).toEqual(["created and started the waha session"]);
  });

  it(`sends an Event held for ${MAX_EVENT_HOLD_MS / 1000} s even while the operator stays saturated`, async () => {
    vi.useFakeTimers();
    const { kube, created } = fakeKube();
    const recorder = new EventRecorder({ kube, component: "test", log: createLogger("silent"), saturated: () => true, now: () => Date.now() });
    recorder.record(object, "Normal", "Created", "created");
    await vi.advanceTimersByTimeAsync(MAX_EVENT_HOLD_MS - 1_000);
    expect(created).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(created).toHaveLength(1);
  });

  it("sends every held Event at once when flushed (shutdown)", async () => {
    const { kube, created } = fakeKube();
    const recorder = new EventRecorder({ kube, component: "test", log: createLogger("silent"), saturated: () => true });
    recorder.record(object, "Normal", "Created", "created");
    recorder.record(objectNamed("two"), "Normal", "Created", "created");
    await recorder.flush();
    expect(created).toHaveLength(2);
  });
});

describe("eventMessage", () => {
  it.each([
    ["a short message as it is", "linked", "linked"],
    ["exactly the limit as it is", "x".repeat(MAX_EVENT_MESSAGE_BYTES), "x".repeat(MAX_EVENT_MESSAGE_BYTES)],
  ])("keeps %s", (_sentence, text, expected) => {
    expect(eventMessage(text)).toBe(expected);
  });

  it("counts bytes, not characters, and never splits a character", () => {
    const cut = eventMessage("é".repeat(1000) + "😀".repeat(10));
    expect(Buffer.byteLength(cut, "utf8")).toBeLessThanOrEqual(MAX_EVENT_MESSAGE_BYTES);
    expect(cut).not.toContain("\uFFFD");
    expect(cut.endsWith(" …")).toBe(true);
  });
});
