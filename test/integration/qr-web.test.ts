/**
 * `kubectl whatsapp qr NAME --web` in a real browser: the plugin as a separate process
 * with KUBECONFIG, the operator in this process, the WAHA emulator on loopback, and
 * Debian's headless Chromium showing the page. The QR code is read from a screenshot
 * with zbarimg, as a phone camera would, and must be the emulator's current code —
 * before and after a rotation, on the same page, which is never reloaded.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Operator } from "../../src/operator.ts";
import { wahaSessionName } from "../../src/providers/waha/client.ts";
import { FakeClock } from "../emulators/shared/clock.ts";
import { WahaEmulator } from "../emulators/waha/emulator.ts";
import { Chromium, zbarDecode, type BrowserPage } from "../support/browser.ts";
import { eventually, kubeClient } from "../support/kube.ts";
import { followPlugin, killPlugins, type FollowedPlugin } from "../support/plugin.ts";
import { apply, instanceManifest, secretData, stageProvider } from "./providers/support.ts";

const PHONE = "5511955554444";
const kube = kubeClient();
const clock = new FakeClock();
const waha = new WahaEmulator({ apiKey: "qr-web-test-key", clock, startDelayMs: 0, crashRestartDelayMs: null });
let namespace: string;
let operator: Operator | undefined;
let browser: Chromium | undefined;

beforeAll(async () => {
  browser = await Chromium.launch();
  const url = await waha.start();
  ({ namespace, operator } = await stageProvider({ type: "waha", name: "waha", prefix: "qr-web", url, credentials: { secret: "waha-key", value: "qr-web-test-key" } }));
});

afterAll(async () => {
  killPlugins();
  await browser?.close();
  await operator?.stop();
  await waha.stop();
});

const applyInstance = (name: string, spec = "") => apply(namespace, instanceManifest(name, "waha", spec));

const session = (name: string) => wahaSessionName(namespace, name);

/** The URL the plugin prints, once it does. */
function pageUrl(run: FollowedPlugin): Promise<string> {
  return eventually("the page's URL on stdout", async () => /^Open (http:\/\/127\.0\.0\.1:\d+\/[A-Za-z0-9_-]+\/) in a browser/m.exec(run.output())?.[1]);
}

/** What a camera reads from the page now. */
async function scan(page: BrowserPage): Promise<string | undefined> {
  return zbarDecode(await page.screenshot());
}

describe("kubectl whatsapp qr --web", () => {
  it("shows the emulator's current code, follows a rotation on the same page, shows Connected as +<phone> once scanned, then exits 0", async () => {
    await applyInstance("web");
    const run = followPlugin(["qr", "web", "-n", namespace, "--web"]);
    const page = await (browser as Chromium).open(await pageUrl(run));

    const first = await eventually("the emulator's code read from a screenshot", async () => {
      const current = waha.currentQr(session("web"));
      return current && (await scan(page)) === current ? current : undefined;
    });

    clock.advance(60_001);
    const second = waha.currentQr(session("web"));
    expect(second).toBeTruthy();
    expect(second).not.toBe(first);
    await eventually("the rotated code read from a screenshot of the same page", async () => ((await scan(page)) === second ? true : undefined));

    waha.scan(session("web"), PHONE);
    await eventually("Connected on the page", async () => ((await page.text()).includes(`Connected as +${PHONE}`) ? true : undefined));
    expect(await run.exited).toBe(0);
    expect(run.output().trimEnd().split("\n").at(-1)).toBe(`Connected as +${PHONE}`);
    expect(await page.text()).toContain(`${namespace}/web is linked`);
    // The terminal got the URL and what happened, never a code.
    expect(run.errors()).toContain(`the page shows a new QR code for ${namespace}/web`);
    for (const code of [first, second as string]) {
      for (const part of code.split(",")) {
        if (part.length > 8) expect(`${run.output()}${run.errors()}`).not.toContain(part);
      }
    }
  });

  it("shows a pairing code when the instance pairs by code", async () => {
    await applyInstance("paired", `  pairing: {method: Code, phoneNumber: "${PHONE}"}`);
    const code = await eventually("the pairing code in the Secret", async () => (await secretData(kube, namespace, "paired-qr"))["pairing-code"]?.toString("utf8"));
    const run = followPlugin(["qr", "paired", "-n", namespace, "--web"]);
    const page = await (browser as Chromium).open(await pageUrl(run));
    await eventually("the pairing code on the page", async () => ((await page.text()).includes(code) ? true : undefined));
    expect(await page.text()).toContain("Link with phone number instead");
    expect(`${run.output()}${run.errors()}`).not.toContain(code);
    waha.enterPairingCode(session("paired"));
    await eventually("Connected on the page", async () => (/Connected as \+\d+/.test(await page.text()) ? true : undefined));
    expect(await run.exited).toBe(0);
  });
});
