import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "./logger.ts";

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
