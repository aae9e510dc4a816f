/**
 * maxInstances on a ClusterWhatsAppProvider shared by two namespaces: one tenant that asked
 * first, and for more, does not take every slot. The instances exist before the operator
 * starts, so no one holds a session yet and the order of creation alone would decide.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Operator } from "../../src/operator.ts";
import { FakeClock } from "../emulators/shared/clock.ts";
import { WahaEmulator } from "../emulators/waha/emulator.ts";
import { condition, createNamespace, installCrds, instanceWhere, kubeClient, kubectl } from "../support/kube.ts";
import { startOperator } from "../support/operator.ts";
import { apply, applyClusterProvider, instanceManifest, phaseOf, severalPasses } from "./providers/support.ts";

const API_KEY = "waha-fairness-key-0123456";
const kube = kubeClient();
const waha = new WahaEmulator({ apiKey: API_KEY, clock: new FakeClock(), startDelayMs: 0, crashRestartDelayMs: null });
let greedy: string;
let late: string;
let provider: string;
let operator: Operator;

beforeAll(async () => {
  await installCrds();
  const keys = await createNamespace("fair-keys");
  greedy = await createNamespace("fair-greedy");
  late = await createNamespace("fair-late");
  provider = `fair-${late}`;
  await applyClusterProvider({ name: provider, type: "waha", url: await waha.start(), keysNamespace: keys, apiKey: API_KEY, spec: "  allowedNamespaces: {from: All}\n  maxInstances: 2" });
  const ref = { kind: "ClusterWhatsAppProvider", name: provider };
  await apply(greedy, ["one", "two", "three"].map((name) => instanceManifest(name, ref)).join("---\n"));
  // creationTimestamp has whole seconds: the late tenant's instance is strictly younger than all three.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await apply(late, instanceManifest("only", ref));
  operator = await startOperator(`${greedy},${late}`);
});

afterAll(async () => {
  // Cluster-scoped: other test files share this API server.
  await kubectl(["delete", "cwap", provider, "--ignore-not-found", "--wait=false"]);
  await operator?.stop();
  await waha.stop();
});

const onQuota = (object: Parameters<typeof condition>[0]): boolean => condition(object, "Stalled")?.status === "True" && condition(object, "Stalled")?.reason === "QuotaExceeded";

describe("maxInstances shared between namespaces", () => {
  it("gives each namespace's oldest waiting instance a turn: the late tenant's one instance gets a slot before the first tenant's second", async () => {
    await phaseOf(kube, late, "only", "ScanQR");
    await phaseOf(kube, greedy, "one", "ScanQR");
    for (const name of ["two", "three"]) await instanceWhere(kube, greedy, name, "Stalled QuotaExceeded", onQuota);
    await severalPasses();
    expect(waha.sessions()).toHaveLength(2);
  });
});
