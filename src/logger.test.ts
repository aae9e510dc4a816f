import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, lazyChild, MAX_LOG_FIELD } from "./logger.ts";
import { Redactor } from "./redaction.ts";

function capture(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  return { lines, stream: new Writable({ write: (chunk, _encoding, done) => (lines.push(String(chunk)), done()) }) };
}

describe("log redaction", () => {
  it.each([
    ["a provider API key", { apiKey: "k-123456789" }],
    ["an instance ref's per-device key", { ref: { apiKey: "k-123456789" } }],
    ["a webhook HMAC key", { webhook: { hmacKey: "k-123456789" } }],
    ["an event receiver's HMAC key", { ref: { providerEvents: { hmacKey: "k-123456789" } } }],
    ["a cloud_api PIN", { cloudApi: { pin: "k-123456789" } }],
    ["a QR payload", { qr: { text: "k-123456789" } }],
    ["a pairing code", { pairingCode: "k-123456789" }],
    ["request headers", { headers: { "x-api-key": "k-123456789", authorization: "Bearer k-123456789" } }],
    ["Secret data", { secret: { data: { "api-key": "k-123456789" } } }],
  ])("hides %s", (_sentence, object) => {
    const { lines, stream } = capture();
    createLogger("info", stream).info(object, "something happened");
    expect(lines.join("")).not.toContain("k-123456789");
    expect(lines.join("")).toContain("[redacted]");
  });
});

describe("credentials the redactor knows", () => {
  const KEY = "echoed-api-key-0123456789";
  const redactor = new Redactor();
  redactor.remember(KEY);

  it.each([
    ["in the message", [{}, `waha answered 400: invalid request for key ${KEY}`]],
    ["in an error's text", [{ err: `invalid request for key ${KEY}` }, "reconcile failed"]],
    ["deep in a field nobody listed", [{ outcome: { verdict: { message: `key ${KEY}` } } }, "done"]],
    ["as an Error object", [{ err: new Error(`key ${KEY}`) }, "failed"]],
  ] as const)("are hidden %s", (_sentence, [object, message]) => {
    const { lines, stream } = capture();
    createLogger("info", stream, redactor).info(object, message);
    expect(lines.join("")).not.toContain(KEY);
    expect(lines.join("")).toContain("[redacted]");
    expect(() => JSON.parse(lines.join(""))).not.toThrow();
  });
});

describe("long fields", () => {
  it("a 2 MB field or message is cut to a short line that still parses", () => {
    const { lines, stream } = capture();
    const huge = "x".repeat(2 * 1024 * 1024);
    createLogger("info", stream).info({ body: huge, nested: { body: huge }, err: new Error(huge) }, huge);
    const line = lines.join("");
    expect(line.length).toBeLessThan(8 * MAX_LOG_FIELD);
    const parsed = JSON.parse(line) as { body: string; msg: string };
    expect(parsed.body).toContain("2097152 characters");
    expect(parsed.msg).toContain("2097152 characters");
  });
});

describe("a pass's child logger", () => {
  it("is built only when something is logged at an enabled level, and then carries its bindings", () => {
    const { lines, stream } = capture();
    const parent = createLogger("info", stream);
    let built = 0;
    const child = parent.child;
    // Counts builds; `this` kept, since pino's children inherit this method from the parent.
    parent.child = function (this: typeof parent, ...args: Parameters<typeof child>) {
      built++;
      return child.apply(this, args);
    } as typeof parent.child;
    const log = lazyChild(parent, { reconcileID: "r-1" });
    log.debug({ key: "ns/a" }, "reconciled");
    expect(built).toBe(0);
    log.info({ key: "ns/a" }, "could not finish");
    log.warn("twice");
    expect(built).toBe(1);
    expect(lines.map((line) => JSON.parse(line) as { reconcileID?: string; msg: string })).toEqual([
      expect.objectContaining({ reconcileID: "r-1", msg: "could not finish" }),
      expect.objectContaining({ reconcileID: "r-1", msg: "twice" }),
    ]);
    // Its own children nest as pino's do.
    log.child({ name: "a" }).info("nested");
    expect(JSON.parse(lines.at(-1) as string)).toMatchObject({ reconcileID: "r-1", name: "a", msg: "nested" });
  });
});
