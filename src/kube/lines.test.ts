import { describe, expect, it } from "vitest";
import { LineSplitter } from "./lines.ts";

/** Every line of text pushed in chunks of size bytes, then the end. */
function split(text: string, size: number): string[] {
  const bytes = Buffer.from(text);
  const splitter = new LineSplitter();
  const lines: string[] = [];
  for (let at = 0; at < bytes.length; at += size) lines.push(...splitter.push(bytes.subarray(at, at + size)));
  return [...lines, ...splitter.end()];
}

describe("LineSplitter", () => {
  const text = '{"a":"é日本"}\n\n{"b":2}\r\n  \n{"c":"last, no newline"}';

  it.each([1, 2, 3, 5, 7, 64])("gives the same lines whatever the chunk size (%i bytes), multi-byte characters split or not", (size) => {
    expect(split(text, size)).toEqual(['{"a":"é日本"}', '{"b":2}\r', '{"c":"last, no newline"}']);
  });

  it("a stream ending with a newline has no extra line; an empty one has none", () => {
    expect(split("x\ny\n", 1)).toEqual(["x", "y"]);
    expect(split("", 1)).toEqual([]);
  });
});
