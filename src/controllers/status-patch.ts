/** JSON merge patches that turn one status into another, with nulls for removed fields. */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The merge patch from `before` to `after`; undefined when they are equal. */
export function mergePatch(before: unknown, after: unknown): Json | undefined {
  if (isPlainObject(before) && isPlainObject(after)) {
    const patch: { [key: string]: Json } = {};
    for (const [key, value] of Object.entries(after)) {
      if (value === undefined) continue;
      const child = mergePatch(before[key], value);
      if (child !== undefined) patch[key] = child;
    }
    for (const key of Object.keys(before)) {
      if (before[key] !== undefined && after[key] === undefined) patch[key] = null;
    }
    return Object.keys(patch).length > 0 ? patch : undefined;
  }
  return deepEqual(before, after) ? undefined : (structuredClone(after) as Json);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, index) => deepEqual(item, b[index]));
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = Object.keys(a).filter((key) => a[key] !== undefined);
    const otherKeys = Object.keys(b).filter((key) => b[key] !== undefined);
    return keys.length === otherKeys.length && keys.every((key) => deepEqual(a[key], b[key]));
  }
  return false;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
