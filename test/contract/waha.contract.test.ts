/** WAHA's client against the WAHA emulator keeps the provider contract. */
import { createWahaClient } from "../../src/providers/waha/client.ts";
import type { ProviderSettings } from "../../src/providers/types.ts";
import { FakeClock } from "../emulators/shared/clock.ts";
import { WahaEmulator } from "../emulators/waha/emulator.ts";
import { contractLimiter, describeProviderContract } from "./provider-contract.ts";

const API_KEY = "waha-contract-key";
const PHONE = "5511999998888";

describeProviderContract("waha", async () => {
  const clock = new FakeClock();
  const waha = new WahaEmulator({ apiKey: API_KEY, clock, startDelayMs: 1000, crashRestartDelayMs: null });
  const url = await waha.start();
  const settings: ProviderSettings = { type: "waha", url, apiKey: API_KEY, rateLimit: { requestsPerSecond: 10_000, burst: 10_000 }, timeoutMs: 5000 };
  const clientWith = (overrides: { url?: string; apiKey?: string }) => createWahaClient({ ...settings, ...overrides }, { limiter: contractLimiter() });
  const ref = { namespace: "contract", name: "support-line", uid: "uid-contract-1", displayName: "Support Line" };
  return {
    client: clientWith({}),
    clientWith,
    ref,
    phoneNumber: PHONE,
    hooks: {
      settle: () => clock.advance(1000),
      link: (id) => waha.scan(id, PHONE),
      currentQr: (id) => waha.currentQr(id),
      webhookKey: (id) => waha.session(id)?.config?.webhooks?.[0]?.hmac?.key,
      setAvailable: (available) => waha.setAvailable(available),
      requestCount: () => waha.calls.length,
    },
    stop: async () => {
      await waha.stop();
      await waha.settle();
    },
  };
});
