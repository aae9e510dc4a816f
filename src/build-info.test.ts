import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { buildInfo, isAtLeast, minimumOfRange, unsupportedNodeLine } from "./build-info.ts";

describe("minimumOfRange (package.json engines.node)", () => {
  it.each([
    [">=24", "24.0.0"],
    [">= 20.18", "20.18.0"],
    [">=20.18.1", "20.18.1"],
    [">=v22.19.0", "22.19.0"],
  ])("%s starts at %s", (range, minimum) => {
    expect(minimumOfRange(range)).toBe(minimum);
  });

  it.each(["^24", "24", ">=20 <25", "20 || 22"])("refuses %j, which says more than a floor", (range) => {
    expect(() => minimumOfRange(range)).toThrow(/engines.node must read ">=x.y.z"/);
  });
});

describe("isAtLeast", () => {
  it.each([
    ["20.18.1", "20.18.1", true],
    ["v20.20.2", "20.18.1", true],
    ["20.18.0", "20.18.1", false],
    ["20.9.0", "20.18.1", false],
    ["24.0.0", "24.0.0", true],
    ["22.19.0", "24.0.0", false],
    ["100.0.0", "24.0.0", true],
    ["24.0.0-nightly2025", "24.0.0", true],
  ])("%s is at least %s: %s", (version, minimum, expected) => {
    expect(isAtLeast(version, minimum)).toBe(expected);
  });
});

describe("unsupportedNodeLine", () => {
  it("is one line naming the program, the floor, the node that ran and what to do", () => {
    const line = unsupportedNodeLine({ program: "kubectl-whatsapp", running: "18.19.0", minimum: "20.18.1", execPath: "/usr/bin/node" });
    expect(line).toBe(
      "kubectl-whatsapp needs Node.js 20.18.1 or newer, but /usr/bin/node is v18.19.0; install a newer Node.js (https://nodejs.org) or put one first on PATH",
    );
    expect(line).not.toContain("\n");
  });

  it("is undefined on a Node at or above the floor", () => {
    expect(unsupportedNodeLine({ program: "wa-operator", running: "24.0.0", minimum: "24.0.0", execPath: "node" })).toBeUndefined();
  });
});

describe("buildInfo outside the bundle", () => {
  it("reads the version and the engines floor from package.json", () => {
    const packageJson = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string; engines: { node: string } };
    expect(buildInfo()).toEqual({ version: packageJson.version, minimumNode: minimumOfRange(packageJson.engines.node) });
  });
});
