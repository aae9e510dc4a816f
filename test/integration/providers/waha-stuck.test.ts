/**
 * A WAHA session that never leaves STARTING, end to end. Real gateways do this (WAHA issue
 * #1043: sessions stuck on STARTING after an update or a restart, where a restart does not
 * help; #2243: NOWEB stuck indefinitely in STARTING without a QR). The operator restarts
 * such a session once after STUCK_TIMEOUT (2 s here), and if it is still STARTING a
 * STUCK_TIMEOUT later reports it Failed with the reason and recovers it like a FAILED
 * session, with the FAILED backoff (1 s doubling to 4 s in tests).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Operator } from "../../../src/operator.ts";
import { wahaSessionName } from "../../../src/providers/waha/client.ts";
import { FakeClock } from "../../emulators/shared/clock.ts";
import { WahaEmulator } from "../../emulators/waha/emulator.ts";
import { condition, eventually, instanceWhere, kubeClient } from "../../support/kube.ts";
import { apply, eventNamed, instanceManifest, phaseOf, stageProvider } from "./support.ts";

const API_KEY = "waha-stuck-key";
const kube = kubeClient();
// The emulator's clock never moves on its own: a start that is not hung shows its QR at once.
const waha = new WahaEmulator({ apiKey: API_KEY, clock: new FakeClock(), startDelayMs: 0, crashRestartDelayMs: null });
let namespace: string;
let operator: Operator;

beforeAll(async () => {
  const url = await waha.start();
  ({ namespace, operator } = await stageProvider({
    type: "waha",
    name: "waha",
    prefix: "waha-stuck",
    url,
    credentials: { secret: "waha-key", value: API_KEY },
    settings: { stuckTimeout: "2s" },
  }));
});

afterAll(async () => {
  await operator?.stop();
  await waha.stop();
});

const session = (name: string) => wahaSessionName(namespace, name);
const restarts = (name: string) => waha.callsTo("POST", new RegExp(`/api/sessions/${session(name)}/restart$`)).length;

describe("a session stuck in STARTING", () => {
  it("is restarted once after STUCK_TIMEOUT, with an Event, and goes on to the QR when the restart helps", async () => {
    waha.hangStarts(session("once"), 1);
    await apply(namespace, instanceManifest("once", "waha"));
    const stuck = await phaseOf(kube, namespace, "once", "Starting");
    expect(condition(stuck, "Ready")?.reason).toBe("Starting");
    expect(stuck.status?.providerState?.state).toBe("STARTING");
    await phaseOf(kube, namespace, "once", "ScanQR");
    expect(restarts("once")).toBe(1);
    expect(waha.session(session("once"))?.boots).toBe(2);
    expect(await eventNamed(kube, namespace, "once", "Normal", "Restarted")).toContain("stuck in STARTING for more than 2s");
  });

  it("still STARTING a STUCK_TIMEOUT after that restart: Failed with the reason, then restarted again after the FAILED backoff", async () => {
    waha.hangStarts(session("forever"));
    await apply(namespace, instanceManifest("forever", "waha"));
    const failed = await phaseOf(kube, namespace, "forever", "Failed", 60_000);
    expect(restarts("forever")).toBe(1);
    expect(waha.session(session("forever"))?.status).toBe("STARTING");
    expect(condition(failed, "Ready")?.message).toMatch(/stuck in STARTING for more than 2s.*restarting (in|at)/);
    expect(condition(failed, "Stalled")?.status).toBe("False");
    expect(failed.status?.recovery?.notBefore).toBeDefined();
    expect(await eventNamed(kube, namespace, "forever", "Warning", "ProviderError")).toContain("failed (STARTING)");
    // The FAILED backoff (1 s in tests) runs out: one more restart, and the clock starts again.
    await eventually("a second restart", async () => (restarts("forever") >= 2 ? true : undefined));
    await instanceWhere(kube, namespace, "forever", "recovery attempt counted", (object) => (object.status?.recovery?.attempts ?? 0) >= 1);
  });
});
