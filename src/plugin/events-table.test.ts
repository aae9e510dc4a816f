import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { eventsDocument, eventsTable, lastSeen, type EventObject } from "./events-table.ts";

const now = Date.parse("2026-11-21T10:00:00Z");
const event = (name: string, fields: Partial<EventObject>): EventObject => ({ metadata: { name, namespace: "support", creationTimestamp: "2026-11-21T09:00:00Z" }, ...fields });

const events = [
  event("b", { type: "Normal", reason: "QRUpdated", message: "a new QR code", count: 3, firstTimestamp: "2026-11-21T09:50:00Z", lastTimestamp: "2026-11-21T09:58:00Z" }),
  event("a", { type: "Normal", reason: "Created", message: "session created", count: 1, lastTimestamp: "2026-11-21T09:45:00Z" }),
  event("c", { type: "Warning", reason: "ProviderError", message: "waha did not answer", eventTime: "2026-11-21T09:59:30.000000Z", series: { count: 4, lastObservedTime: "2026-11-21T09:59:50.000000Z" } }),
];

describe("events", () => {
  it("lists an instance's Events oldest first, so the newest is the last line, with kubectl's LAST SEEN and the count", () => {
    expect(eventsTable(events, { now }).split("\n")).toEqual([
      "LAST SEEN   TYPE      REASON          COUNT   MESSAGE",
      "15m         Normal    Created         1       session created",
      "2m          Normal    QRUpdated       3       a new QR code",
      "10s         Warning   ProviderError   4       waha did not answer",
    ]);
  });

  it("prints a provider's message without its escape sequences or control characters", () => {
    const hostile = event("h", { type: "Warning", reason: "ProviderError", message: "gone\x1b[2J\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07 now\r\nfake line\x9b1A", count: 1, lastTimestamp: "2026-11-21T09:59:00Z" });
    const table = eventsTable([hostile], { now });
    expect(table).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
    expect(table.split("\n")).toHaveLength(2);
    expect(table).toContain("gone now  fake line");
  });

  it("takes when an Event was last seen from its series, lastTimestamp, eventTime, firstTimestamp, else its creation", () => {
    expect(lastSeen(event("x", { series: { lastObservedTime: "S" }, lastTimestamp: "L" }))).toBe("S");
    expect(lastSeen(event("x", { lastTimestamp: "L", eventTime: "E" }))).toBe("L");
    expect(lastSeen(event("x", { lastTimestamp: null, eventTime: "E" }))).toBe("E");
    expect(lastSeen(event("x", { firstTimestamp: "F" }))).toBe("F");
    expect(lastSeen(event("x", {}))).toBe("2026-11-21T09:00:00Z");
  });

  it("-o yaml prints the same rows as {items: [...]}, oldest first", () => {
    const document = parse(eventsDocument(events, "yaml")) as { items: { reason: string; count: number }[] };
    expect(document.items.map((item) => [item.reason, item.count])).toEqual([
      ["Created", 1],
      ["QRUpdated", 3],
      ["ProviderError", 4],
    ]);
  });
});
