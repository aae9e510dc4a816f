import { describe, expect, it } from "vitest";
import { createLogger } from "../logger.ts";
import { Redactor } from "../redaction.ts";
import type { KubeClient } from "./client.ts";
import { EventRecorder, eventMessage, MAX_EVENT_MESSAGE_BYTES } from "./events.ts";

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
    await recorder.record(object, "Warning", "ProviderError", `waha answered 400: invalid request for key ${KEY}`);
    expect(created.map((event) => event.message)).toEqual(["waha answered 400: invalid request for key [redacted]"]);
  });

  it("cuts a 2 MB message to what the API server accepts", async () => {
    const { kube, created } = fakeKube();
    const recorder = new EventRecorder({ kube, component: "test", log: createLogger("silent") });
    await recorder.record(object, "Warning", "ProviderError", "x".repeat(2 * 1024 * 1024));
    expect(Buffer.byteLength(created[0]?.message ?? "", "utf8")).toBeLessThanOrEqual(MAX_EVENT_MESSAGE_BYTES);
    expect(created[0]?.message.endsWith("…")).toBe(true);
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
