/** Wappfy's client against the Wappfy emulator keeps the provider contract. */
import { createWappfyClient } from "../../src/providers/wappfy/client.ts";
import type { ProviderSettings } from "../../src/providers/types.ts";
import { FakeClock } from "../emulators/shared/clock.ts";
import { WappfyEmulator } from "../emulators/wappfy/emulator.ts";
import { contractLimiter, describeProviderContract } from "./provider-contract.ts";

const API_KEY = "wappfy-contract-key";
const PHONE = "5511999998888";

describeProviderContract("wappfy", async () => {
  const clock = new FakeClock();
  // A generous account limit: the contract is about the API, not Wappfy's 100 requests a minute.
  const wappfy = new WappfyEmulator({ apiKeys: [API_KEY], clock, startDelayMs: 1000, requestsPerMinute: 100_000 });
  const url = await wappfy.start();
  const settings: ProviderSettings = { type: "wappfy", url, apiKey: API_KEY, rateLimit: { requestsPerSecond: 10_000, burst: 10_000 }, timeoutMs: 5000 };
  const clientWith = (overrides: { url?: string; apiKey?: string }) => createWappfyClient({ ...settings, ...overrides }, { limiter: contractLimiter() });
  return {
    client: clientWith({}),
    clientWith,
    ref: { namespace: "contract", name: "support-line", uid: "uid-contract-1", displayName: "Support Line" },
    phoneNumber: PHONE,
    hooks: {
      settle: () => clock.advance(1000),
      link: (id) => wappfy.scan(id, PHONE),
      currentQr: (id) => wappfy.currentQr(id),
      webhookKey: (id) => wappfy.webhooks().find((webhook) => webhook.instanceId === id)?.secret,
      setAvailable: (available) => wappfy.setAvailable(available),
      requestCount: () => wappfy.calls.length,
    },
    stop: () => wappfy.stop(),
  };
});
