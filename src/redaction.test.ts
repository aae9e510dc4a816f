import { describe, expect, it } from "vitest";
import { Redactor, redactSecrets } from "./redaction.ts";

const KEY = "sk_live_0123456789abcdef";
const PIN = "246810";

function withSecrets(): Redactor {
  const redactor = new Redactor();
  redactor.remember(KEY, PIN, "p@ss \"word\"/x+y=z");
  return redactor;
}

describe("Redactor", () => {
  it.each([
    ["a key inside a sentence", `invalid request for key ${KEY}; try again`, "invalid request for key [redacted]; try again"],
    ["a key glued to other text", `key=${KEY}&x=1`, "key=[redacted]&x=1"],
    ["a key twice", `${KEY} ${KEY}`, "[redacted] [redacted]"],
    ["a key's base64 (Secret data)", `data: ${Buffer.from(KEY).toString("base64")}`, "data: [redacted]"],
    ["a key's base64url", `token ${Buffer.from(KEY).toString("base64url")}.`, "token [redacted]."],
    ["a short PIN where it stands alone", `pin ${PIN} refused`, "pin [redacted] refused"],
    ["not a short PIN inside a longer number", "number 1065402468101 unknown", "number 1065402468101 unknown"],
    ["a value with quotes as JSON escapes it", JSON.stringify({ msg: 'echo p@ss "word"/x+y=z' }), '{"msg":"echo [redacted]"}'],
    ["a value URL-encoded in a query", `GET /x?key=${encodeURIComponent('p@ss "word"/x+y=z')}`, "GET /x?key=[redacted]"],
    ["nothing in text without secrets", "all is well", "all is well"],
  ])("hides %s", (_sentence, text, expected) => {
    expect(withSecrets().redact(text)).toBe(expected);
  });

  it("ignores values too short to be credentials, and empty ones", () => {
    const redactor = new Redactor();
    redactor.remember("abc", "", undefined);
    expect(redactor.redact("abc def")).toBe("abc def");
  });

  it("hides the whole of a long value even when a shorter one shares its start", () => {
    const redactor = new Redactor();
    redactor.remember("abcdef", "abcdefghijklmnopqrstuvwxyz");
    expect(redactor.redact("x abcdefghijklmnopqrstuvwxyz y abcdef")).toBe("x [redacted] y [redacted]");
  });

  it("redacts every string in an object, leaving other values", () => {
    const status = { phase: "ScanQR", conditions: [{ type: "Ready", message: `bad key ${KEY}` }], count: 2, ok: true };
    expect(withSecrets().redactDeep(status)).toEqual({ phase: "ScanQR", conditions: [{ type: "Ready", message: "bad key [redacted]" }], count: 2, ok: true });
  });

  it("forgets the least recently seen short-lived values beyond its capacity, never the lasting ones", () => {
    const redactor = new Redactor({ briefCapacity: 2 });
    redactor.remember(KEY);
    redactor.rememberBriefly("qr-one-payload", "qr-two-payload");
    redactor.rememberBriefly("qr-one-payload");
    redactor.rememberBriefly("qr-three-payload");
    expect(redactor.redact(`qr-one-payload qr-two-payload qr-three-payload ${KEY}`)).toBe("[redacted] qr-two-payload [redacted] [redacted]");
  });

  it("keeps a form two values share until both are forgotten", () => {
    const redactor = new Redactor({ capacity: 1, briefCapacity: 1 });
    redactor.remember("shared-secret");
    redactor.rememberBriefly("shared-secret");
    redactor.rememberBriefly("other-secret");
    expect(redactor.redact("shared-secret")).toBe("[redacted]");
  });
});

describe("redactSecrets", () => {
  it("hides exactly the values given, however short", () => {
    expect(redactSecrets("user abc logged in with abc", ["abc"])).toBe("user [redacted] logged in with [redacted]");
  });
});
