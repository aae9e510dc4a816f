/** Evolution's client against the Evolution emulator keeps the provider contract. */
import { createEvolutionClient } from "../../src/providers/evolution/client.ts";
import type { ProviderSettings } from "../../src/providers/types.ts";
import { FakeClock } from "../emulators/shared/clock.ts";
import { EvolutionEmulator } from "../emulators/evolution/emulator.ts";
import { contractLimiter, describeProviderContract } from "./provider-contract.ts";

const API_KEY = "evolution-contract-key";
const PHONE = "5511999998888";

describeProviderContract("evolution", async () => {
  const clock = new FakeClock();
  // The first QR (and a pairing code) within connect's 2 s wait: connect answers with it, as it usually does.
  const evolution = new EvolutionEmulator({ globalKey: API_KEY, clock, firstQrDelayMs: 500, reconnectDelayMs: 1000 });
  const url = await evolution.start();
  const settings: ProviderSettings = { type: "evolution", url, apiKey: API_KEY, rateLimit: { requestsPerSecond: 10_000, burst: 10_000 }, timeoutMs: 5000 };
  const clientWith = (overrides: { url?: string; apiKey?: string }) => createEvolutionClient({ ...settings, ...overrides }, { limiter: contractLimiter() });
  return {
    client: clientWith({}),
    clientWith,
    ref: { namespace: "contract", name: "support-line", uid: "uid-contract-1", displayName: "Support Line" },
    phoneNumber: PHONE,
    hooks: {
      settle: () => clock.advance(1000),
      link: (id) => evolution.scan(id, PHONE),
      currentQr: (id) => evolution.currentQr(id),
      setAvailable: (available) => evolution.setAvailable(available),
      requestCount: () => evolution.calls.length,
    },
    stop: () => evolution.stop(),
  };
});
