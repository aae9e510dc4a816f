/** The Cloud API client against the Graph emulator keeps the provider contract. */
import { createCloudApiClient } from "../../src/providers/cloud-api/client.ts";
import type { ProviderSettings } from "../../src/providers/types.ts";
import { CloudApiEmulator } from "../emulators/cloud-api/emulator.ts";
import { contractLimiter, describeProviderContract } from "./provider-contract.ts";

const TOKEN = "EAAGcontracttoken0123456789abcdef";
const NUMBER = "106540352242922";
const WABA = "102290129340398";
const PIN = "246810";

describeProviderContract("cloud_api", async () => {
  const graph = new CloudApiEmulator({
    token: TOKEN,
    numbers: [{ id: NUMBER, wabaId: WABA, displayPhoneNumber: "+1 555-555-0123", pin: PIN }],
  });
  const url = await graph.start();
  const settings: ProviderSettings = { type: "cloud_api", url, apiKey: TOKEN, rateLimit: { requestsPerSecond: 10_000, burst: 10_000 }, timeoutMs: 5000 };
  const clientWith = (overrides: { url?: string; apiKey?: string }) => createCloudApiClient({ ...settings, ...overrides }, { limiter: contractLimiter() });
  return {
    client: clientWith({}),
    clientWith,
    ref: { namespace: "contract", name: "support-line", uid: "uid-contract-1", cloudApi: { phoneNumberId: NUMBER, wabaId: WABA, pin: PIN } },
    // The number is added in WhatsApp Manager and waits, PENDING, for its first register.
    preexisting: { phase: "Pending" },
    phoneNumber: "15555550123",
    hooks: {
      // Graph changes nothing on its own and registering is the link: there is nothing to wait for or scan.
      settle: () => undefined,
      link: () => undefined,
      setAvailable: (available) => graph.setAvailable(available),
      requestCount: () => graph.calls.length,
    },
    stop: () => graph.stop(),
  };
});
