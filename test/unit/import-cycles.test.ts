import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The layers (api → providers → controllers → operator) hold only while no file imports,
 * through any chain, a file that imports it back. Type-only imports count: they tie the
 * files' meanings together just the same.
 */

/** Every relative import of a TypeScript file: import/export … from, and import("…") in types. */
export function importsOf(source: string): string[] {
  const found: string[] = [];
  for (const match of source.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s+"(\.[^"]+)"|import\(\s*"(\.[^"]+)"\s*\)/g)) {
    found.push((match[1] ?? match[2]) as string);
  }
  return found;
}

/** The groups of files that reach each other (Tarjan's strongly connected components of more than one file, or a file importing itself). */
export function cyclesOf(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  let next = 0;
  const visit = (file: string): void => {
    index.set(file, next);
    low.set(file, next);
    next += 1;
    stack.push(file);
    onStack.add(file);
    for (const target of graph.get(file) ?? []) {
      if (!graph.has(target)) continue;
      if (!index.has(target)) {
        visit(target);
        low.set(file, Math.min(low.get(file) as number, low.get(target) as number));
      } else if (onStack.has(target)) {
        low.set(file, Math.min(low.get(file) as number, index.get(target) as number));
      }
    }
    if (low.get(file) !== index.get(file)) return;
    const group: string[] = [];
    for (;;) {
      const member = stack.pop() as string;
      onStack.delete(member);
      group.push(member);
      if (member === file) break;
    }
    if (group.length > 1 || (graph.get(file) ?? []).includes(file)) cycles.push(group.sort());
  };
  for (const file of graph.keys()) if (!index.has(file)) visit(file);
  return cycles;
}

function sourceGraph(root: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts")) {
        const targets = importsOf(readFileSync(full, "utf8")).map((specifier) => path.normalize(path.join(dir, specifier)));
        graph.set(path.normalize(full), targets);
      }
    }
  };
  walk(root);
  return graph;
}

describe("the source's import graph", () => {
  it("finds a cycle where there is one, type-only and import() included", () => {
    const sources = {
      "a.ts": 'import { b } from "./b.ts";',
      "b.ts": 'export type { C } from "./c.ts";\nconst x: import("./a.ts").A = 1;',
      "c.ts": 'import type { D } from "./d.ts";',
      "d.ts": "",
    };
    const files = new Map(Object.entries(sources).map(([file, source]) => [file, importsOf(source).map((specifier) => path.normalize(specifier))]));
    expect(cyclesOf(files)).toEqual([["a.ts", "b.ts"]]);
  });

  it("has no cycle in src/", () => {
    const graph = sourceGraph("src");
    expect(graph.size).toBeGreaterThan(50);
    expect(cyclesOf(graph)).toEqual([]);
  });
});
