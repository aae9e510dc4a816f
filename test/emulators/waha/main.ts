/**
 * Runs the WAHA emulator on a real clock for manual poking:
 *
 *   WAHA_API_KEY=secret PORT=3000 node test/emulators/waha/main.ts
 *   curl -H 'X-Api-Key: secret' -H 'Content-Type: application/json' \
 *        -d '{"name":"default","start":true}' localhost:3000/api/sessions
 *   curl -d '{"phoneNumber":"15551234567"}' localhost:3000/__emulator/sessions/default/scan
 *
 * Env: WAHA_API_KEY (default "secret"), PORT (default 3000), WHATSAPP_DEFAULT_ENGINE.
 */
import { WahaEmulator, type WahaEngine } from "./emulator.ts";

const engines: readonly WahaEngine[] = ["WEBJS", "NOWEB", "GOWS", "WPP"];
const engineEnv = process.env["WHATSAPP_DEFAULT_ENGINE"];
const engine = engines.find((e) => e === engineEnv);

const emulator = new WahaEmulator({ apiKey: process.env["WAHA_API_KEY"] || "secret", ...(engine ? { engine } : {}) });
const url = await emulator.start(Number(process.env["PORT"] ?? 3000));
console.log(`WAHA emulator (${emulator.engine}, ${emulator.version}) listening on ${url}`);

const shutdown = () => void emulator.stop().then(() => process.exit(0));
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
