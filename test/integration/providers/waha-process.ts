/**
 * The WAHA emulator in a process of its own, on the real clock, for measurements the test
 * process would skew: there, the operator's work (watches, status writes) delays the
 * emulator's handling of requests and squeezes their recorded times together. A
 * separate process handles each request as it arrives, like a real gateway.
 *
 *   WAHA_API_KEY=secret node test/integration/providers/waha-process.ts
 *
 * Prints its base URL as the first line of stdout; GET /__emulator/calls lists every
 * request with its time (`at`, epoch ms). SIGTERM stops it.
 */
import { WahaEmulator } from "../../emulators/waha/emulator.ts";

const emulator = new WahaEmulator({ apiKey: process.env["WAHA_API_KEY"] ?? "secret", startDelayMs: 0, crashRestartDelayMs: null });
console.log(await emulator.start(0));
process.on("SIGTERM", () => void emulator.stop().then(() => process.exit(0)));
