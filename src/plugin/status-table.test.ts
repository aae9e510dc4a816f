import { describe, expect, it } from "vitest";
import type { InstanceObject } from "../api/objects.ts";
import { parse } from "yaml";
import { formatTable, humanAge, statusDocument, statusTable } from "./status-table.ts";
import { terminalSafe } from "./terminal-text.ts";

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe("humanAge (kubectl's AGE)", () => {
  it.each([
    [0, "0s"],
    [-500, "0s"],
    [-5 * S, "<invalid>"],
    [45 * S, "45s"],
    [119 * S, "119s"],
    [2 * M, "2m"],
    [3 * M + 20 * S, "3m20s"],
    [10 * M + 59 * S, "10m"],
    [179 * M, "179m"],
    [3 * H, "3h"],
    [5 * H + 30 * M, "5h30m"],
    [8 * H + 30 * M, "8h"],
    [47 * H, "47h"],
    [2 * D, "2d"],
    [2 * D + 3 * H, "2d3h"],
    [8 * D + 3 * H, "8d"],
    [729 * D, "729d"],
    [730 * D + 20 * D, "2y20d"],
    [9 * 365 * D, "9y"],
  ])("%d ms reads %s", (ms, text) => {
    expect(humanAge(ms)).toBe(text);
  });
});

describe("formatTable", () => {
  it("pads every column but the last to its widest cell plus three spaces", () => {
    expect(formatTable([["NAME", "PHASE", "MESSAGE"], ["a-long-name", "ScanQR", "waiting"], ["b", "", ""]])).toBe(
      ["NAME          PHASE    MESSAGE", "a-long-name   ScanQR   waiting", "b"].join("\n"),
    );
  });
});

describe("statusTable", () => {
  const now = Date.parse("2026-11-21T10:00:00Z");
  const instance = (namespace: string, name: string, extra: Partial<InstanceObject> = {}): InstanceObject => ({
    metadata: { name, namespace, creationTimestamp: "2026-11-21T09:57:00Z" },
    spec: { providerRef: { name: "waha" }, state: "Connected" },
    ...extra,
  });

  it("shows kubectl get wai's columns plus the Ready message, sorted by namespace and name", () => {
    const rows = statusTable(
      [
        instance("support", "sales", { status: { phase: "ScanQR", conditions: [{ type: "Ready", status: "False", reason: "WaitingForScan", message: "scan the QR code", lastTransitionTime: "2026-11-21T09:59:00Z" }] } }),
        instance("support", "line", { status: { phase: "Connected", phoneNumber: "5511999998888", conditions: [{ type: "Ready", status: "True", reason: "Connected", message: "linked", lastTransitionTime: "2026-11-21T09:59:00Z" }] } }),
      ],
      { now, allNamespaces: false },
    ).split("\n");
    expect(rows).toEqual([
      "NAME    PROVIDER   DESIRED     PHASE       PHONE           READY   AGE   MESSAGE",
      "line    waha       Connected   Connected   5511999998888   True    3m    linked",
      "sales   waha       Connected   ScanQR                      False   3m    scan the QR code",
    ]);
  });

  it("adds NAMESPACE first with allNamespaces, and leaves unknown cells empty", () => {
    const rows = statusTable([instance("b", "x"), instance("a", "y", { metadata: { name: "y", namespace: "a" } })], { now, allNamespaces: true }).split("\n");
    expect(rows[0]).toMatch(/^NAMESPACE   NAME   PROVIDER/);
    expect(rows.slice(1).map((row) => row.split(/\s+/).slice(0, 2))).toEqual([
      ["a", "y"],
      ["b", "x"],
    ]);
    expect(rows[1]).toMatch(/^a           y      waha       Connected$/);
  });
});

describe("statusDocument (status -o json|yaml)", () => {
  const line: InstanceObject = {
    metadata: { name: "line", namespace: "support", creationTimestamp: "2026-11-21T09:57:00Z" },
    spec: { providerRef: { name: "waha" } },
    status: {
      phase: "Connected",
      phoneNumber: "5511999998888",
      conditions: [{ type: "Ready", status: "True", reason: "Connected", message: "linked", lastTransitionTime: "2026-11-21T09:59:00Z" }],
    },
  };
  const fresh: InstanceObject = { metadata: { name: "fresh", namespace: "support" }, spec: { providerRef: { name: "waha" }, state: "Disconnected" } };

  it("holds the table's facts per instance, by name, with the Ready reason and the creation time instead of AGE", () => {
    expect(JSON.parse(statusDocument([line, fresh], "json"))).toEqual({
      items: [
        { namespace: "support", name: "fresh", provider: "waha", desired: "Disconnected" },
        {
          namespace: "support",
          name: "line",
          provider: "waha",
          desired: "Connected",
          phase: "Connected",
          phoneNumber: "5511999998888",
          ready: "True",
          reason: "Connected",
          message: "linked",
          creationTimestamp: "2026-11-21T09:57:00Z",
        },
      ],
    });
  });

  it("is the same document in YAML, and a list also when empty", () => {
    expect(parse(statusDocument([line, fresh], "yaml"))).toEqual(JSON.parse(statusDocument([line, fresh], "json")));
    expect(JSON.parse(statusDocument([], "json"))).toEqual({ items: [] });
    expect(statusDocument([], "yaml")).toBe("items: []\n");
  });

  it("indents JSON with four spaces, as kubectl -o json does", () => {
    expect(statusDocument([fresh], "json").split("\n")[1]).toBe('    "items": [');
  });
});

describe("provider text on a terminal", () => {
  it("a phone number or message with escape sequences is printed as plain text in one cell", () => {
    const table = formatTable([
      ["NAME", "PHONE", "MESSAGE"],
      ["line", "31612\x1b[8m345678", "scan\x1b]8;;http://127.0.0.1:9/\x1b\\ the code\nREADY True\u202e"],
    ]);
    expect(table).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]/);
    expect(table.split("\n")[1]).toBe("line   31612345678   scan the code READY True");
  });

  it("terminalSafe keeps ordinary text, unicode included, as it is", () => {
    expect(terminalSafe("Connected as +31 6 1234 5678 — José")).toBe("Connected as +31 6 1234 5678 — José");
  });
});
