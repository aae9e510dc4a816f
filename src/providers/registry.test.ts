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
import type { SessionField, SessionSettings } from "./session-settings.ts";

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
  missing.push(...missingSessionParts(module, client));
  if (!existsSync(`src/providers/${folderOf(key)}/module.ts`)) missing.push(`src/providers/${folderOf(key)}/module.ts`);
  if (!existsSync(`test/emulators/${folderOf(key)}/emulator.ts`)) missing.push(`test/emulators/${folderOf(key)}/emulator.ts`);
  if (!existsSync(`test/contract/${folderOf(key)}.contract.test.ts`)) missing.push(`test/contract/${folderOf(key)}.contract.test.ts`);
  return missing;
}

/** Two different values of each spec.session field, to prove a module maps what it declares. */
const SAMPLES: Record<SessionField, readonly [SessionSettings, SessionSettings]> = {
  deviceName: [{ deviceName: "Support" }, { deviceName: "Sales" }],
  browserName: [{ browserName: "Firefox" }, { browserName: "Chrome" }],
  proxy: [{ proxy: { url: "http://proxy.example:3128", username: "u", password: "p" } }, { proxy: { url: "http://other.example:3128" } }],
  "ignore.groups": [{ ignore: { groups: true } }, { ignore: { groups: false } }],
  "ignore.status": [{ ignore: { status: true } }, { ignore: { status: false } }],
  "ignore.channels": [{ ignore: { channels: true } }, { ignore: { channels: false } }],
  rejectCalls: [{ rejectCalls: { enabled: true, message: "no calls" } }, { rejectCalls: { enabled: false } }],
  alwaysOnline: [{ alwaysOnline: true }, { alwaysOnline: false }],
  readReceipts: [{ readReceipts: true }, { readReceipts: false }],
  businessProfile: [{ businessProfile: { about: "Open 9-5" } }, { businessProfile: { about: "Closed" } }],
};

/**
 * A module that declares a spec.session field must map it (desired yields something other
 * than for no settings) and find it drifted (drift between two values names it), and its
 * client must apply (and, for observedWith "read", read) the settings.
 */
function missingSessionParts(module: ProviderModule, client: ProviderClient): string[] {
  const hook = module.session;
  if (!hook) return [];
  const missing: string[] = [];
  const none = JSON.stringify(hook.desired({}));
  for (const field of hook.supports) {
    const [one, other] = SAMPLES[field].map((settings) => hook.desired(settings)) as [unknown, unknown];
    if (JSON.stringify(one) === none) missing.push(`session.desired (no mapping for ${field})`);
    else if (!hook.drift(other, one).includes(field) || hook.drift(one, one).length > 0) missing.push(`session.drift (does not find ${field} drifted)`);
  }
  if (typeof client.applySessionConfig !== "function") missing.push("client.applySessionConfig");
  if (hook.observedWith === "read" && typeof client.readSessionConfig !== "function") missing.push("client.readSessionConfig");
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

  it("fails a module that declares a session field without mapping it", () => {
    const session = { ...PROVIDER_MODULES.waha.session!, supports: [...PROVIDER_MODULES.waha.session!.supports, "readReceipts" as const] };
    expect(missingParts({ ...PROVIDER_MODULES.waha, session }, "waha")).toEqual(["session.desired (no mapping for readReceipts)"]);
  });

  it("fails a module with a session hook whose client cannot apply it", () => {
    const createClient: ProviderModule["createClient"] = (settings, deps) => {
      const { applySessionConfig: _gone, ...client } = PROVIDER_MODULES.cloud_api.createClient(settings, deps);
      return client as ProviderClient;
    };
    expect(missingParts({ ...PROVIDER_MODULES.cloud_api, createClient }, "cloud_api")).toContain("client.applySessionConfig");
  });

  it("makes the CRD's provider types exactly the registered modules", () => {
    expect(PROVIDER_TYPES).toEqual(Object.keys(PROVIDER_MODULES));
    expect(PROVIDER_TYPES).toContain("evolution");
  });
});
