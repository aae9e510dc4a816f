/**
 * Gateway restart recovery end to end: one WAHA emulator holding 12 sessions (9 linked,
 * 3 showing a QR) restarts and shows them all STOPPED (emulator restartServer); the
 * operator brings them back at most maxConcurrentStarts (3) at a time, linked ones first,
 * with an Event per wave on the provider and no stuck-session restart, both when a session
 * boots in a fraction of a second and when it boots in 1.5 s. The stuck timeout (4 s) is
 * shorter than the whole recovery: a timer that ran while a session waited its turn would
 * restart the last waves. `npm run bench:restart` runs the figures: 40 linked
 * sessions (and 3 unlinked) with 5 starts at once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Operator } from "../../src/operator.ts";
import { INSTANCES } from "../../src/kube/resources.ts";
import type { InstanceObject } from "../../src/controllers/context.ts";
import { WahaEmulator, type WahaSessionSnapshot } from "../emulators/waha/emulator.ts";
import { createNamespace, eventually, eventsFor, installCrds, kubeClient, kubectlOk } from "../support/kube.ts";
import { startOperator } from "../support/operator.ts";
import { mostStartingAtOnce } from "../support/fleet.ts";

const API_KEY = "restart-test-key";
// WA_RESTART_BENCH=1 (npm run bench:restart): 40 linked sessions, 5 starts at once.
const BENCH = process.env.WA_RESTART_BENCH === "1";
const SESSIONS = BENCH ? 43 : 12;
const STARTS = BENCH ? 5 : 3;
/** line-00 to line-02 stay unlinked: the oldest, so creation order alone would start them first. */
const UNLINKED = 3;
const kube = kubeClient();
const emulator = new WahaEmulator({ apiKey: API_KEY, startDelayMs: 200, crashRestartDelayMs: null });
let namespace: string;
let operator: Operator;

const names = Array.from({ length: SESSIONS }, (_, index) => `line-${String(index).padStart(2, "0")}`);
const linkedNames = names.slice(UNLINKED);

function manifests(url: string): string {
  const provider = `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: gateway}
spec: {type: waha, url: "${url}", credentialsSecretRef: {name: waha-key}, capacity: {maxSessions: ${SESSIONS + 8}}, maxConcurrentStarts: ${STARTS}}`;
  const instances = names.map(
    (name) => `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: ${name}}
spec: {providerRef: {name: gateway}}`,
  );
  return [provider, ...instances].join("\n---\n");
}

async function instances(): Promise<InstanceObject[]> {
  return (await kube.list<InstanceObject>(INSTANCES, namespace)).items;
}

/** Every linked one Connected and every other one showing a QR. */
async function allBack(): Promise<InstanceObject[] | undefined> {
  const all = await instances();
  const back = all.length === SESSIONS && all.every((instance) => instance.status?.phase === (linkedNames.includes(instance.metadata.name) ? "Connected" : "ScanQR"));
  return back ? all : undefined;
}

/** When each session's first start after `since` began (its STARTING in the emulator's history). */
function firstStartAfter(sessions: readonly WahaSessionSnapshot[], since: number): Map<string, number> {
  const starts = new Map<string, number>();
  for (const session of sessions) {
    const start = session.statuses.find((point) => point.status === "STARTING" && point.timestamp >= since);
    if (start) starts.set(session.name, start.timestamp);
  }
  return starts;
}

beforeAll(async () => {
  await installCrds();
  namespace = await createNamespace("restart");
  const url = await emulator.start();
  await kubectlOk(["create", "secret", "generic", "waha-key", "-n", namespace, `--from-literal=api-key=${API_KEY}`]);
  await kubectlOk(["label", "secret", "waha-key", "-n", namespace, "wa-operator.io/credential=true"]);
  operator = await startOperator(namespace, { stuckTimeout: "4s" });
  await kubectlOk(["apply", "-n", namespace, "-f", "-"], manifests(url));
}, 60_000);

afterAll(async () => {
  await operator?.stop();
  await emulator.stop();
});

describe("a gateway that restarted and shows every session STOPPED", () => {
  it("gets them back at most maxConcurrentStarts at a time, linked ones first, with an Event per wave and no stuck-session restart, for a fast and a slow boot", async () => {
    const ready = await eventually(
      "every session showing a QR",
      async () => {
        const all = await instances();
        return all.length === SESSIONS && all.every((instance) => instance.status?.phase === "ScanQR" && instance.status.providerInstanceId) ? all : undefined;
      },
      60_000,
      300,
    );
    const sessionOf = new Map(ready.map((instance) => [instance.metadata.name, instance.status?.providerInstanceId as string]));
    linkedNames.forEach((name, index) => emulator.scan(sessionOf.get(name) as string, `1555000${String(index).padStart(4, "0")}`));
    await eventually("the linked ones Connected", allBack, 30_000, 300);
    const unlinkedSessions = new Set(names.slice(0, UNLINKED).map((name) => sessionOf.get(name) as string));

    for (const [round, startDelayMs] of [[1, 200], [2, 1500]] as const) {
      const restarts = () => emulator.callsTo("POST", "/api/sessions/{session}/restart").length;
      const restartsBefore = restarts();
      const restartedAt = Date.now();
      emulator.restartServer({ startDelayMs });
      // Back means started again at the gateway since the restart, and reported so.
      await eventually(
        `round ${round}: every session started again and back`,
        async () => (firstStartAfter(emulator.sessions(), restartedAt).size === SESSIONS ? await allBack() : undefined),
        90_000,
        300,
      );
      const tookMs = Date.now() - restartedAt;

      // Counted at the gateway: never more than maxConcurrentStarts booting at once.
      const sessions = emulator.sessions();
      expect(mostStartingAtOnce(sessions)).toBeLessThanOrEqual(STARTS);
      // Linked first: no linked session started after an unlinked one, except beside it in the last wave.
      const starts = firstStartAfter(sessions, restartedAt);
      expect(starts.size).toBe(SESSIONS);
      const firstUnlinked = Math.min(...[...starts].filter(([name]) => unlinkedSessions.has(name)).map(([, at]) => at));
      const linkedAfter = [...starts].filter(([name, at]) => !unlinkedSessions.has(name) && at > firstUnlinked).length;
      expect(linkedAfter).toBeLessThan(STARTS);
      // No stuck-session restart although the recovery outlasts the stuck timeout.
      expect(restarts()).toBe(restartsBefore);

      // The provider tells the story: noticed, one Event per wave, done.
      const events = await eventually(
        `round ${round}: the recovery's Events on the provider`,
        async () => {
          const all = (await eventsFor(kube, namespace, "gateway")).filter((event) => ["GatewayRestarted", "RecoveryWave", "Recovered"].includes(event.reason));
          const count = (reason: string) => all.filter((event) => event.reason === reason).reduce((sum, event) => sum + event.count, 0);
          return count("Recovered") === round ? all : undefined;
        },
        30_000,
        300,
      );
      const waves = events.filter((event) => event.reason === "RecoveryWave");
      const count = (reason: string) => events.filter((event) => event.reason === reason).reduce((sum, event) => sum + event.count, 0);
      expect(count("GatewayRestarted")).toBe(round);
      // At least SESSIONS / STARTS waves per restart, each of at most STARTS sessions.
      expect(count("RecoveryWave")).toBeGreaterThanOrEqual(round * Math.ceil(SESSIONS / STARTS));
      for (const wave of waves) expect(Number(/started (\d+) session/.exec(wave.message)?.[1])).toBeLessThanOrEqual(STARTS);
      // The provider's own count agrees once it is over: all placed, the linked ones linked, none starting.
      const counted = () => kubectlOk(["get", "wap", "gateway", "-n", namespace, "-o", "jsonpath={.status.sessions}"]);
      const sessionsNow = await eventually(
        `round ${round}: status.sessions back to every session placed, the linked ones linked, none starting`,
        async () => {
          const now = JSON.parse((await counted()) || "{}") as { placed?: number; linked?: number; starting?: number };
          if (now.placed === SESSIONS && now.linked === SESSIONS - UNLINKED && now.starting === 0) return now;
          throw new Error(`status.sessions ${JSON.stringify(now)}`);
        },
        30_000,
        300,
      );
      expect(sessionsNow).toEqual({ placed: SESSIONS, linked: SESSIONS - UNLINKED, starting: 0 });
      console.log(`gateway restart, boot ${startDelayMs} ms: ${SESSIONS} sessions back in ${tookMs} ms; ${events.filter((event) => event.reason === "Recovered").at(-1)?.message ?? ""}`);
    }
  }, BENCH ? 600_000 : 240_000);
});
