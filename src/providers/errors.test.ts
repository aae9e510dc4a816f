import { describe, expect, it } from "vitest";
import { parseRetryAfter, redactSecrets, shortenMessage } from "./errors.ts";

describe("redactSecrets", () => {
  it.each([
    ["a long key anywhere", "bad key abcdefghijklmnop0123 given", ["abcdefghijklmnop0123"], "bad key [redacted] given"],
    ["a short PIN where it stands alone", "pin 246810 refused", ["246810"], "pin [redacted] refused"],
    ["not a short PIN inside an id", "number 1065402468101 unknown", ["246810"], "number 1065402468101 unknown"],
    ["nothing for an absent secret", "plain text", [undefined, ""], "plain text"],
  ])("hides %s", (_sentence, text, secrets, expected) => {
    expect(redactSecrets(text, secrets)).toBe(expected);
  });
});

describe("shortenMessage", () => {
  it("keeps 200 characters and says it cut", () => {
    expect(shortenMessage("x".repeat(300))).toBe(`${"x".repeat(200)}…`);
    expect(shortenMessage("short")).toBe("short");
  });
});

describe("parseRetryAfter", () => {
  it.each([
    ["seconds", "2", 2000],
    ["an HTTP date", "Sat, 21 Nov 2026 10:00:05 GMT", 5000],
    ["nothing", undefined, undefined],
    ["garbage", "soon", undefined],
  ])("reads %s", (_sentence, value, ms) => {
    expect(parseRetryAfter(value, Date.parse("2026-11-21T10:00:00Z"))).toBe(ms);
  });
});
