import { describe, expect, it } from "vitest";
import { matchesSelector } from "./label-selector.ts";

describe("matchesSelector", () => {
  it.each([
    ["an empty selector matches any namespace", {}, { team: "a" }, true],
    ["matchLabels needs every label with its value", { matchLabels: { team: "a", tier: "x" } }, { team: "a" }, false],
    ["matchLabels matches equal labels", { matchLabels: { team: "a" } }, { team: "a", other: "y" }, true],
    ["In needs the key with one of the values", { matchExpressions: [{ key: "team", operator: "In", values: ["a", "b"] }] }, { team: "c" }, false],
    ["In matches one of the values", { matchExpressions: [{ key: "team", operator: "In", values: ["a", "b"] }] }, { team: "b" }, true],
    ["NotIn matches an absent key", { matchExpressions: [{ key: "team", operator: "NotIn", values: ["a"] }] }, {}, true],
    ["NotIn refuses a listed value", { matchExpressions: [{ key: "team", operator: "NotIn", values: ["a"] }] }, { team: "a" }, false],
    ["Exists needs the key", { matchExpressions: [{ key: "team", operator: "Exists" }] }, {}, false],
    ["DoesNotExist refuses the key", { matchExpressions: [{ key: "team", operator: "DoesNotExist" }] }, { team: "" }, false],
    ["an unknown operator matches nothing", { matchExpressions: [{ key: "team", operator: "Gt", values: ["1"] }] }, { team: "2" }, false],
  ])("%s", (_name, selector, labels, expected) => {
    expect(matchesSelector(selector, labels)).toBe(expected);
  });
});
