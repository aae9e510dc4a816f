/** WAPIZ's client against the WAPIZ emulator keeps the provider contract. */
import { createWapizClient } from "../../src/providers/wapiz/client.ts";
import type { ProviderSettings } from "../../src/providers/types.ts";
import { FakeClock } from "../emulators/shared/clock.ts";
import { WapizEmulator } from "../emulators/wapiz/emulator.ts";
import { contractLimiter, describeProviderContract } from "./provider-contract.ts";

const TOKEN = "wapiz-contract-token";

describeProviderContract("wapiz", async () => {
  const clock = new FakeClock();
  const wapiz = new WapizEmulator({ accounts: { [TOKEN]: "regular" }, clock });
  const url = await wapiz.start();
  const settings: ProviderSettings = { type: "wapiz", url, apiKey: TOKEN, rateLimit: { requestsPerSecond: 10_000, burst: 10_000 }, timeoutMs: 5000 };
  const clientWith = (overrides: { url?: string; apiKey?: string }) => createWapizClient({ ...settings, ...overrides }, { limiter: contractLimiter() });
  return {
    client: clientWith({}),
    clientWith,
    ref: { namespace: "contract", name: "support-line", uid: "uid-contract-1", displayName: "Support Line" },
    hooks: {
      settle: () => clock.advance(1000),
      link: (id) => wapiz.scan(id),
      currentQr: (id) => wapiz.currentQr(id),
      setAvailable: (available) => wapiz.setAvailable(available),
      requestCount: () => wapiz.calls.length,
    },
    stop: () => wapiz.stop(),
  };
});
