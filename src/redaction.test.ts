import { describe, expect, it } from "vitest";
import { looksSecret, Redactor, redactSecrets } from "./redaction.ts";

const KEY = "sk_live_0123456789abcdef";
const PIN = "246810";

function withSecrets(): Redactor {
  const redactor = new Redactor();
  redactor.remember(KEY, "p@ss \"word\"/x+y=z");
  redactor.in(undefined).rememberExact(PIN);
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
    redactor.remember("abc123de", "abc123defghijklmnopqrstuvwxyz");
    expect(redactor.redact("x abc123defghijklmnopqrstuvwxyz y abc123de")).toBe("x [redacted] y [redacted]");
  });

  it("keeps a namespace's values out of another namespace's texts, and hides them in log lines", () => {
    const redactor = new Redactor();
    redactor.in("team-a").remember(KEY);
    expect(redactor.redact(`key ${KEY}`, "team-a")).toBe("key [redacted]");
    expect(redactor.redact(`key ${KEY}`, "team-b")).toBe(`key ${KEY}`);
    expect(redactor.redact(`key ${KEY}`)).toBe("key [redacted]");
  });

  it("hides the operator's own values in every namespace's texts", () => {
    const redactor = new Redactor();
    redactor.remember(KEY);
    expect(redactor.redact(`key ${KEY}`, "team-b")).toBe("key [redacted]");
  });

  it("does not remember a tenant's value that reads as an ordinary word, so it cannot erase that word anywhere", () => {
    const redactor = new Redactor();
    redactor.in("team-a").remember("Connected", "ScanQR", "5511999998888");
    expect(redactor.redact("phase Connected, ScanQR before, +5511999998888", "team-a")).toBe("phase Connected, ScanQR before, +5511999998888");
    expect(redactor.redact("phase Connected")).toBe("phase Connected");
  });

  it("matches a value added since the expression was compiled, and compiles at most once per interval", () => {
    let now = 0;
    const redactor = new Redactor({ rebuildEveryMs: 1000, now: () => now });
    redactor.remember("first-secret-1");
    expect(redactor.redact("a first-secret-1")).toBe("a [redacted]");
    redactor.remember("second-secret-2");
    // Not compiled again yet, still hidden.
    expect(redactor.redact("b second-secret-2 first-secret-1")).toBe("b [redacted] [redacted]");
    now = 2000;
    expect(redactor.redact("c second-secret-2")).toBe("c [redacted]");
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

describe("looksSecret", () => {
  it.each([
    ["a random API key", "sk_live_0123456789abcdef", true],
    ["a hex HMAC key", "9f86d081884c7d659a2feaa0c55ad015", true],
    ["a password with digits", "hunter22x", true],
    ["a long letters-only token", "AbCdEfGhIjKlMnOpQrStUv", true],
    ["a phase", "Connected", false],
    ["a short word", "ScanQR", false],
    ["a phone number (few distinct digits)", "5511999998888", false],
    ["a repeated character", "aaaaaaaaaaaaaaaaaaaaaaaa", false],
  ])("%s: %s", (_name, value, expected) => {
    expect(looksSecret(value)).toBe(expected);
  });
});
