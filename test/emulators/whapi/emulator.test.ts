import http from "node:http";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeClock } from "../shared/clock.ts";
import { decodeQrPng } from "./decode-qr.ts";
import { WHAPI_PAIRING_MS, WHAPI_QR_ROTATION_MS, WhapiEmulator } from "./emulator.ts";

const KEY = "be670d0018987231588ff183a0e8d509";
const OTHER_KEY = "0123456789abcdef0123456789abcdef";

interface Answer {
  readonly status: number;
  readonly text: string;
  readonly json: { code: number; results: Record<string, unknown> };
}

/** A GET with a form body, the way the page documents every call (fetch cannot send one). */
function call(base: string, name: string, form: string | undefined, method = "GET"): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (form !== undefined) {
      headers["Content-Type"] = "application/x-www-form-urlencoded";
      headers["Content-Length"] = String(Buffer.byteLength(form));
    }
    const req = http.request(`${base}/api/${name}`, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: Answer["json"];
        try {
          json = JSON.parse(text) as Answer["json"];
        } catch {
          json = { code: -1, results: {} };
        }
        resolve({ status: res.statusCode ?? 0, text, json });
      });
    });
    req.on("error", reject);
    req.end(form);
  });
}

const withKey = (key: string): string => new URLSearchParams({ apiKey: key }).toString();

describe("whapi emulator", () => {
  let clock: FakeClock;
  let emulator: WhapiEmulator;
  let base: string;

  beforeEach(async () => {
    clock = new FakeClock();
    emulator = new WhapiEmulator({ apiKeys: [KEY, OTHER_KEY], clock });
    base = await emulator.start();
  });

  afterEach(async () => {
    await emulator.stop();
  });

  it("reports a fresh device as SERVICE_OFF in the documented envelope", async () => {
    const answer = await call(base, "getState", withKey(KEY));
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({ code: 200, results: { state: "SERVICE_OFF" } });
  });

  it("goes through PAIRING to SERVICE_SCAN after serviceStart", async () => {
    const started = await call(base, "serviceStart", withKey(KEY));
    expect(started.json.code).toBe(200);
    expect(started.json.results["message"]).toMatch(/scan the qr code/);
    expect((await call(base, "getState", withKey(KEY))).json.results).toEqual({ state: "PAIRING" });
    clock.advance(WHAPI_PAIRING_MS);
    expect((await call(base, "getState", withKey(KEY))).json.results).toEqual({ state: "SERVICE_SCAN" });
  });

  it("serves the current QR as a PNG data URL that decodes to the device's payload", async () => {
    await call(base, "serviceStart", withKey(KEY));
    clock.advance(WHAPI_PAIRING_MS);
    const answer = await call(base, "getQR", withKey(KEY));
    const results = answer.json.results;
    expect(results["state"]).toBe("SERVICE_SCAN");
    expect(results["apiKey"]).toBe(KEY);
    const qrString = String(results["qrString"]);
    expect(qrString).toMatch(/^data:image\/png;base64,/);
    const payload = decodeQrPng(Buffer.from(qrString.split(",")[1] ?? "", "base64"));
    expect(payload).toBe(emulator.currentQr(KEY));
    expect(payload).toMatch(/^2@/);
  });

  it("rotates the QR every 20 s and keeps it in between", async () => {
    await call(base, "serviceStart", withKey(KEY));
    clock.advance(WHAPI_PAIRING_MS);
    const first = emulator.currentQr(KEY);
    expect(first).toBeDefined();
    clock.advance(WHAPI_QR_ROTATION_MS - 1);
    expect(emulator.currentQr(KEY)).toBe(first);
    clock.advance(1);
    expect(emulator.currentQr(KEY)).not.toBe(first);
  });

  it("answers getQR without a qrString when the device shows no QR", async () => {
    const answer = await call(base, "getQR", withKey(KEY));
    expect(answer.json.code).toBe(200);
    expect(answer.json.results).toEqual({ message: expect.any(String), state: "SERVICE_OFF" });
  });

  it("connects on scan, stays connected on serviceStart and turns off on serviceDestroy", async () => {
    await call(base, "serviceStart", withKey(KEY));
    clock.advance(WHAPI_PAIRING_MS);
    emulator.scan(KEY);
    expect((await call(base, "getState", withKey(KEY))).json.results).toEqual({ state: "CONNECTED" });
    await call(base, "serviceStart", withKey(KEY));
    expect(emulator.state(KEY)).toBe("CONNECTED");
    const destroyed = await call(base, "serviceDestroy", withKey(KEY));
    expect(destroyed.json).toEqual({ code: 200, results: { message: "Whatsapp API service successfully turned off." } });
    expect(emulator.state(KEY)).toBe("SERVICE_OFF");
  });

  it("keeps devices apart: one key's actions do not touch another's device", async () => {
    await call(base, "serviceStart", withKey(KEY));
    expect(emulator.state(OTHER_KEY)).toBe("SERVICE_OFF");
  });

  it("turns a device off when the phone unlinks it", async () => {
    await call(base, "serviceStart", withKey(KEY));
    clock.advance(WHAPI_PAIRING_MS);
    emulator.scan(KEY);
    emulator.unlink(KEY);
    expect((await call(base, "getState", withKey(KEY))).json.results).toEqual({ state: "SERVICE_OFF" });
  });

  it("refuses a scan while no QR is shown", () => {
    expect(() => emulator.scan(KEY)).toThrow(/shows no QR/);
  });

  it("stops a pending PAIRING when the service is destroyed", async () => {
    await call(base, "serviceStart", withKey(KEY));
    await call(base, "serviceDestroy", withKey(KEY));
    clock.advance(WHAPI_PAIRING_MS);
    expect(emulator.state(KEY)).toBe("SERVICE_OFF");
  });

  it("can report PAIRING while its QR waits for the scan, as the page allows", async () => {
    await emulator.stop();
    emulator = new WhapiEmulator({ apiKeys: [KEY], clock, scanState: "PAIRING" });
    base = await emulator.start();
    await call(base, "serviceStart", withKey(KEY));
    expect((await call(base, "getQR", withKey(KEY))).json.results["qrString"]).toBeUndefined();
    clock.advance(WHAPI_PAIRING_MS);
    expect((await call(base, "getState", withKey(KEY))).json.results).toEqual({ state: "PAIRING" });
    const qr = (await call(base, "getQR", withKey(KEY))).json.results;
    expect(qr).toMatchObject({ state: "PAIRING", qrString: expect.stringMatching(/^data:image\/png;base64,/) });
    emulator.scan(KEY);
    expect(emulator.state(KEY)).toBe("CONNECTED");
  });

  it("can take the key from the query when the body has none, behind a proxy that drops GET bodies", async () => {
    await emulator.stop();
    emulator = new WhapiEmulator({ apiKeys: [KEY], clock, acceptsQueryKey: true });
    base = await emulator.start();
    expect((await call(base, `getState?${withKey(KEY)}`, undefined)).json).toEqual({ code: 200, results: { state: "SERVICE_OFF" } });
    await emulator.stop();
    emulator = new WhapiEmulator({ apiKeys: [KEY], clock, acceptsQueryKey: true, dropGetBodies: true });
    base = await emulator.start();
    expect((await call(base, "getState", withKey(KEY))).json.code).toBe(401);
    expect((await call(base, `getState?${withKey(KEY)}`, withKey(KEY))).json.code).toBe(200);
    expect(JSON.stringify(emulator.calls)).not.toContain(KEY);
  });

  it("reports the WhatsApp Web version as a list of numbers", async () => {
    const answer = await call(base, "getWWebVersion", withKey(KEY));
    expect(answer.json).toEqual({ code: 200, results: { version: [2, 2243, 7] } });
  });

  it.each([
    ["an unknown key", withKey("not-a-device")],
    ["no key at all", undefined],
    ["the key in the query string instead of the body", ""],
  ])("answers %s with code 401 inside an HTTP 200 envelope", async (_case, form) => {
    const name = form === "" ? `getState?apiKey=${KEY}` : "getState";
    const answer = await call(base, name, form);
    expect(answer.status).toBe(200);
    expect(answer.json.code).toBe(401);
    expect(answer.json.results["message"]).toMatch(/API key/);
  });

  it("answers an unknown call with 404 and another method with 405", async () => {
    expect((await call(base, "sendMessage", withKey(KEY))).json.code).toBe(404);
    expect((await call(base, "getState", withKey(KEY), "POST")).status).toBe(405);
  });

  it("answers 503 while unavailable, then recovers", async () => {
    emulator.setAvailable(false);
    expect((await call(base, "getState", withKey(KEY))).status).toBe(503);
    emulator.setAvailable(true);
    expect((await call(base, "getState", withKey(KEY))).status).toBe(200);
  });

  it("breaks exactly the next answer when asked, without carrying out the call", async () => {
    emulator.corruptNext("not-json");
    const broken = await call(base, "serviceStart", withKey(KEY));
    expect(broken.status).toBe(200);
    expect(() => JSON.parse(broken.text) as unknown).toThrow();
    expect(emulator.state(KEY)).toBe("SERVICE_OFF");
    emulator.corruptNext("wrong-shape");
    expect((await call(base, "getState", withKey(KEY))).json).not.toHaveProperty("code");
    expect((await call(base, "getState", withKey(KEY))).json.code).toBe(200);
  });

  it("logs every call by method, path and status, never the key", async () => {
    await call(base, "getState", withKey(KEY));
    await call(base, "nope", withKey(KEY));
    expect(emulator.calls).toEqual([
      { method: "GET", path: "/api/getState", status: 200 },
      { method: "GET", path: "/api/nope", status: 404 },
    ]);
    expect(JSON.stringify(emulator.calls)).not.toContain(KEY);
  });
});
