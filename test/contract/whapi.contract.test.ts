/** whapi's client against the whapi device-service emulator keeps the provider contract. */
import { createWhapiClient } from "../../src/providers/whapi/client.ts";
import type { ProviderSettings } from "../../src/providers/types.ts";
import { FakeClock } from "../emulators/shared/clock.ts";
import { WhapiEmulator } from "../emulators/whapi/emulator.ts";
import { contractLimiter, describeProviderContract } from "./provider-contract.ts";

/** One key per device: the instance carries its own; the provider's key (a second device) serves the health check. */
const DEVICE_KEY = "whapi-contract-device-key";
const PROVIDER_KEY = "whapi-contract-provider-key";

describeProviderContract("whapi", async () => {
  const clock = new FakeClock();
  const whapi = new WhapiEmulator({ apiKeys: [DEVICE_KEY, PROVIDER_KEY], clock, pairingMs: 1000 });
  const url = await whapi.start();
  const settings: ProviderSettings = { type: "whapi", url, apiKey: PROVIDER_KEY, rateLimit: { requestsPerSecond: 10_000, burst: 10_000 }, timeoutMs: 5000 };
  const clientWith = (overrides: { url?: string; apiKey?: string }) => createWhapiClient({ ...settings, ...overrides }, { limiter: contractLimiter() });
  return {
    client: clientWith({}),
    clientWith,
    ref: { namespace: "contract", name: "support-line", uid: "uid-contract-1", apiKey: DEVICE_KEY },
    // The device exists with its key, turned off, before anything is created.
    preexisting: { phase: "Disconnected" },
    // SERVICE_OFF is "off, stopped or logged out": the emulator starts the next service with a new code.
    disconnectKeepsLink: false,
    hooks: {
      settle: () => clock.advance(1000),
      link: () => whapi.scan(DEVICE_KEY),
      currentQr: () => whapi.currentQr(DEVICE_KEY),
      setAvailable: (available) => whapi.setAvailable(available),
      requestCount: () => whapi.calls.length,
    },
    stop: () => whapi.stop(),
  };
});
