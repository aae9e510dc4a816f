import { describe, expect, it } from "vitest";
import { LookBudget, lookStretch } from "./look-budget.ts";

describe("spreading routine looks over a provider's rate limit", () => {
  it.each<[string, number, number, number]>([
    ["within half the limit, looks keep their intervals", 20, 50, 1],
    ["at exactly half, still", 25, 50, 1],
    ["200 pairing instances asked every 2 s against 50/s are spread 4×", 100, 50, 4],
    ["2,000 numbers polled every 30 s against the default 10/s", 2000 / 30, 10, 2000 / 30 / 5],
    ["a provider without a limit", 100, 0, 1],
  ])("%s", (_name, demand, rate, expected) => {
    expect(lookStretch(demand, rate)).toBeCloseTo(expected, 9);
  });

  it("sums what each instance of a provider costs, and forgets an instance's share when it changes or goes", () => {
    const budget = new LookBudget();
    budget.record("ns/a", "waha", 0.5);
    budget.record("ns/b", "waha", 0.5);
    budget.record("ns/c", "other", 1 / 30);
    expect(budget.demand("waha")).toBeCloseTo(1, 9);
    budget.record("ns/a", "waha", 1 / 30);
    expect(budget.demand("waha")).toBeCloseTo(0.5 + 1 / 30, 9);
    budget.record("ns/b", "waha", 0);
    budget.forget("ns/a");
    expect(budget.demand("waha")).toBe(0);
    expect(budget.demand("other")).toBeCloseTo(1 / 30, 9);
  });
});
