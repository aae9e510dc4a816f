/**
 * Every registered provider module has the parts the rest of the operator asks it for, so a
 * provider that misses one fails here rather than at run time (README, "Adding a provider").
 */
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { instanceSpecSchema } from "../api/instance.ts";
import type { ProviderModule } from "./module.ts";
import { RateLimiter } from "./transport/rate-limiter.ts";
import { PROVIDER_MODULES, PROVIDER_TYPES } from "./registry.ts";
import { PROVIDER_OPERATIONS, type ProviderCapabilities, type ProviderClient } from "./types.ts";

const CAPABILITIES: readonly (keyof ProviderCapabilities)[] = ["qr", "pairingCode", "disconnect", "restart", "logout", "webhook", "webhookEvents", "webhookSigning", "version"];
const METHODS: readonly (keyof ProviderClient)[] = PROVIDER_OPERATIONS.required;
const SPEC_FIELDS = new Set(Object.keys(instanceSpecSchema.shape));
const folderOf = (type: string) => type.replace(/_/g, "-");

/** What a module must have; each entry names the part, so a failure says what is missing. */
function missingParts(module: ProviderModule, key: string): string[] {
  const missing: string[] = [];
  if (module.type !== key) missing.push(`type (registered as ${key}, says ${module.type})`);
  if (!module.title?.trim()) missing.push("title");
  for (const capability of CAPABILITIES) if (module.capabilities?.[capability] === undefined) missing.push(`capabilities.${capability}`);
  const client = module.createClient(
    { type: module.type, url: "http://127.0.0.1:1", rateLimit: { requestsPerSecond: 1, burst: 1 }, timeoutMs: 1000 },
    { limiter: new RateLimiter({ requestsPerSecond: 1, burst: 1 }) },
  );
  if (client.type !== module.type) missing.push("createClient (a client of this type)");
  if (client.capabilities !== module.capabilities) missing.push("createClient (a client declaring the module's capabilities)");
  for (const method of METHODS) if (typeof client[method] !== "function") missing.push(`client.${method}`);
  const events = module.capabilities?.webhookEvents;
  if (module.capabilities?.webhook && Array.isArray(events) && events.length === 0) missing.push("capabilities.webhookEvents (a webhook needs event names, or \"none\")");
  if (module.adoptId !== undefined && !module.adoptId.trim()) missing.push("adoptId (what spec.adopt.id names)");
  for (const field of module.specFields ?? []) if (!SPEC_FIELDS.has(field)) missing.push(`specFields: ${field} is no field of WhatsAppInstance's spec`);
  const auth = module.lifecycleEvents?.authentication;
  if (auth?.kind === "hmac" && auth.signatureHeaders.length === 0) missing.push("lifecycleEvents.authentication.signatureHeaders");
  if (auth?.kind === "token" && (!auth.header || auth.tokenFor("k".repeat(32)) === "k".repeat(32))) missing.push("lifecycleEvents.authentication (a header, and a token that is not the key)");
  if (!existsSync(`src/providers/${folderOf(key)}/module.ts`)) missing.push(`src/providers/${folderOf(key)}/module.ts`);
  if (!existsSync(`test/emulators/${folderOf(key)}/emulator.ts`)) missing.push(`test/emulators/${folderOf(key)}/emulator.ts`);
  if (!existsSync(`test/contract/${folderOf(key)}.contract.test.ts`)) missing.push(`test/contract/${folderOf(key)}.contract.test.ts`);
  return missing;
}

describe("the provider registry", () => {
  it.each(PROVIDER_TYPES)("%s has every part a provider module must have", (type) => {
    expect(missingParts(PROVIDER_MODULES[type], type)).toEqual([]);
  });

  it("names what a module lacks", () => {
    const broken = { ...PROVIDER_MODULES.wapiz, title: "", specFields: ["nope" as never], capabilities: { ...PROVIDER_MODULES.wapiz.capabilities, version: undefined as never } };
    expect(missingParts(broken, "wapiz")).toEqual(
      expect.arrayContaining(["title", "capabilities.version", "createClient (a client declaring the module's capabilities)", "specFields: nope is no field of WhatsAppInstance's spec"]),
    );
  });

  it("makes the CRD's provider types exactly the registered modules", () => {
    expect(PROVIDER_TYPES).toEqual(Object.keys(PROVIDER_MODULES));
    expect(PROVIDER_TYPES).toContain("evolution");
  });
});
