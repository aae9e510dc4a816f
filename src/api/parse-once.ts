/**
 * A schema's parse, remembered per input object. Objects from the informer caches are
 * never changed in place (an update replaces the object), so the same spec object always
 * parses to the same result: a pass over an instance at rest need not run zod again, and
 * the several readers of one spec in one pass share one parse.
 *
 * The result is shared: callers must not change it (nothing here does).
 */
import type { z } from "zod";
import { instanceSpecSchema } from "./instance.ts";
import { clusterProviderSpecSchema, providerSpecSchema } from "./provider.ts";

export type ParseOnce<T> = (value: unknown) => z.ZodSafeParseResult<T>;

export function parseOnce<S extends z.ZodType>(schema: S): ParseOnce<z.output<S>> {
  type T = z.output<S>;
  // Weak: an object dropped from the cache takes its parse with it.
  const parsed = new WeakMap<object, z.ZodSafeParseResult<T>>();
  return (value) => {
    if (typeof value !== "object" || value === null) return schema.safeParse(value);
    let result = parsed.get(value);
    if (!result) {
      result = schema.safeParse(value);
      parsed.set(value, result);
    }
    return result;
  };
}

/** instanceSpecSchema.safeParse, once per spec object. */
export const parseInstanceSpec = parseOnce(instanceSpecSchema);
/** providerSpecSchema.safeParse, once per spec object. */
export const parseProviderSpec = parseOnce(providerSpecSchema);
/** clusterProviderSpecSchema.safeParse, once per spec object. */
export const parseClusterProviderSpec = parseOnce(clusterProviderSpecSchema);
