import { describe, expect, it } from "vitest";
import { z } from "zod";
import { parseInstanceSpec, parseOnce } from "./parse-once.ts";

describe("a schema parsed once per object", () => {
  it("runs the schema once for the same object and gives back the same result", () => {
    let runs = 0;
    const schema = z.object({ name: z.string() }).transform((value) => (runs++, value));
    const parse = parseOnce(schema);
    const spec = { name: "line" };
    const first = parse(spec);
    expect(parse(spec)).toBe(first);
    expect(runs).toBe(1);
  });

  it("parses a new object anew, as an informer update brings one (the cached parse never outlives its object)", () => {
    let runs = 0;
    const parse = parseOnce(z.object({ state: z.string() }).transform((value) => (runs++, value)));
    expect(parse({ state: "Connected" }).data).toEqual({ state: "Connected" });
    expect(parse({ state: "Disconnected" }).data).toEqual({ state: "Disconnected" });
    expect(runs).toBe(2);
  });

  it("answers a value that is not an object without remembering it, invalid specs included", () => {
    expect(parseInstanceSpec(undefined).success).toBe(false);
    const invalid = { providerRef: { name: 7 } };
    const result = parseInstanceSpec(invalid);
    expect(result.success).toBe(false);
    expect(parseInstanceSpec(invalid)).toBe(result);
  });
});
