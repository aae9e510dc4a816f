/**
 * Health as GitOps tools see it, against the real API server: kstatus's own status.Compute
 * (what Flux and kpt run) and the Argo CD Lua check shipped in gitops/argocd/ (run in
 * gopher-lua as Argo CD runs it), on objects in every phase. The statuses are the ones the
 * operator writes — its planner and condition helper compute them, written through the
 * status subresource — and, at the end, ones the running operator wrote itself.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { instanceSpecSchema, type InstanceStatus } from "../../src/api/instance.ts";
import { applyVerdict, type Verdict } from "../../src/controllers/conditions.ts";
import { FINALIZER } from "../../src/controllers/context.ts";
import { planInstance } from "../../src/controllers/instance/plan.ts";
import { CLUSTER_PROVIDERS, INSTANCES, PROVIDERS, type KubeObject, type ResourceType } from "../../src/kube/resources.ts";
import { wahaSessionName, wahaCapabilities } from "../../src/providers/waha/client.ts";
import type { ObservedSession, Phase } from "../../src/providers/types.ts";
import type { Operator } from "../../src/operator.ts";
import { FakeClock } from "../emulators/shared/clock.ts";
import { WahaEmulator } from "../emulators/waha/emulator.ts";
import { judgeHealth, type GitOpsVerdict } from "../support/gitops-health.ts";
import { createNamespace, installCrds, instanceWhere, kubeClient, kubectl, kubectlOk, REPO } from "../support/kube.ts";
import { startOperator } from "../support/operator.ts";

const kube = kubeClient();
const NOW = Date.parse("2026-11-21T10:00:00Z");
const NOW_ISO = "2026-11-21T10:00:00Z";

/** The two tools' words for the same state; Argo CD shows every object being deleted as Progressing. */
const ARGO_CD_FOR_KSTATUS: Record<string, string> = { Current: "Healthy", InProgress: "Progressing", Failed: "Degraded", Terminating: "Progressing" };

/** argocd-cm as Argo CD would hold it after the README's `kubectl patch`, written to a file. */
let argocdConfigMap: string;

beforeAll(async () => {
  await installCrds();
  // A stand-in for Argo CD's own ConfigMap, with a key of its own that the patch must keep.
  if ((await kubectl(["get", "namespace", "argocd"])).code !== 0) await kubectlOk(["create", "namespace", "argocd"]);
  await kubectl(["delete", "configmap", "argocd-cm", "-n", "argocd", "--ignore-not-found"]);
  await kubectlOk(["create", "configmap", "argocd-cm", "-n", "argocd", "--from-literal=url=https://argocd.example.com"]);
  await kubectlOk(["patch", "configmap", "argocd-cm", "-n", "argocd", "--patch-file", path.join(REPO, "gitops", "argocd", "argocd-cm.yaml")]);
  argocdConfigMap = path.join(mkdtempSync(path.join(tmpdir(), "argocd-cm-")), "argocd-cm.yaml");
  writeFileSync(argocdConfigMap, await kubectlOk(["get", "configmap", "argocd-cm", "-n", "argocd", "-o", "yaml"]));
});

describe("the Argo CD check installs as the README says", () => {
  it("kubectl patch adds a check for every kind to an existing argocd-cm and keeps its other keys", async () => {
    const data = JSON.parse(await kubectlOk(["get", "configmap", "argocd-cm", "-n", "argocd", "-o", "jsonpath={.data}"])) as Record<string, string>;
    expect(Object.keys(data).sort()).toEqual([
      "resource.customizations.health.wa-operator.io_ClusterWhatsAppProvider",
      "resource.customizations.health.wa-operator.io_WhatsAppInstance",
      "resource.customizations.health.wa-operator.io_WhatsAppProvider",
      "url",
    ]);
  });
});

/** What the operator writes after planning `session` for an instance with `spec`. */
function plannedStatus(spec: Record<string, unknown>, session: ObservedSession | null, options: { status?: InstanceStatus; quotaAllowed?: boolean } = {}): InstanceStatus {
  const plan = planInstance({
    now: NOW,
    name: "x",
    uid: "uid-x",
    spec: instanceSpecSchema.parse({ providerRef: { name: "waha" }, ...spec }),
    status: options.status ?? {},
    providerType: "waha",
    capabilities: wahaCapabilities,
    session,
    quota: { allowed: options.quotaAllowed ?? true, message: "waha allows 1 instance (maxInstances); 1 older ones hold the slots" },
    adoption: "Allowed",
    ownership: { proof: "recorded", adoptable: true, canClaim: true },
    qrSecretFilled: false,
    webhookSecret: "absent",
    failureBackoff: { baseMs: 60_000, maxMs: 30 * 60_000 },
    stuckTimeoutMs: 5 * 60_000,
  });
  return { ...options.status, phase: plan.phase, observedGeneration: 1, conditions: applyVerdict(undefined, plan.verdict, 1, NOW_ISO) };
}

const session = (phase: Phase, providerState: string): ObservedSession => ({ id: "s", phase, providerState, ownerUid: "uid-x" });

/** A provider's status after its health check gave `verdict` (src/controllers/provider/reconciler.ts). */
const providerStatus = (verdict: Verdict) => ({ observedGeneration: 1, instances: 0, conditions: applyVerdict(undefined, verdict, 1, NOW_ISO) });

interface Case {
  readonly what: string;
  readonly type: ResourceType;
  readonly name: string;
  readonly spec: Record<string, unknown>;
  /** Written through /status after apply; undefined: nobody wrote one. */
  readonly status?: object;
  readonly finalizers?: readonly string[];
  /** After the status: change the spec (a new generation), or delete the object. */
  readonly then?: "changeSpec" | "delete";
  readonly kstatus: string;
  readonly argocd: string;
}

const connected = plannedStatus({}, session("Connected", "WORKING"));
const wahaProvider = { type: "waha", url: "http://waha.waha.svc:3000", credentialsSecretRef: { name: "waha-key" } };
const clusterProvider = { type: "waha", url: "http://waha.waha.svc:3000", credentialsSecretRef: { name: "waha-key", namespace: "waha" } };
const instance = (name: string, what: string, rest: Omit<Case, "what" | "type" | "name" | "spec"> & { spec?: Record<string, unknown> }): Case => ({
  what,
  type: INSTANCES,
  name,
  ...rest,
  spec: { providerRef: { name: "waha" }, ...rest.spec },
});

const suffix = Math.random().toString(16).slice(2, 8);
const CASES: readonly Case[] = [
  instance("applied", "just applied, no operator yet", { kstatus: "InProgress", argocd: "Progressing" }),
  instance("pending", "Pending (creating the session)", { status: plannedStatus({}, null), kstatus: "InProgress", argocd: "Progressing" }),
  instance("starting", "Starting", { status: plannedStatus({}, session("Starting", "STARTING")), kstatus: "InProgress", argocd: "Progressing" }),
  instance("scanqr", "ScanQR", { status: plannedStatus({}, session("ScanQR", "SCAN_QR_CODE")), kstatus: "InProgress", argocd: "Progressing" }),
  instance("connected", "Connected", { status: connected, kstatus: "Current", argocd: "Healthy" }),
  instance("disconnected", "Disconnected as wanted", {
    spec: { state: "Disconnected" },
    status: plannedStatus({ state: "Disconnected" }, session("Disconnected", "STOPPED")),
    kstatus: "Current",
    argocd: "Healthy",
  }),
  instance("loggedout", "LoggedOut as wanted", {
    spec: { state: "LoggedOut" },
    status: plannedStatus({ state: "LoggedOut" }, session("Disconnected", "STOPPED"), { status: { phase: "LoggedOut" } }),
    kstatus: "Current",
    argocd: "Healthy",
  }),
  instance("reconnecting", "Disconnected while Connected is wanted", { status: plannedStatus({}, session("Disconnected", "STOPPED")), kstatus: "InProgress", argocd: "Progressing" }),
  // FAILED sessions are restarted by the operator with a backoff, so this is still progress.
  instance("failed", "Failed (restarting after a backoff)", { status: plannedStatus({}, session("Failed", "FAILED")), kstatus: "InProgress", argocd: "Progressing" }),
  instance("quota", "Stalled: QuotaExceeded", { status: plannedStatus({}, null, { quotaAllowed: false }), kstatus: "Failed", argocd: "Degraded" }),
  instance("unlinked", "Stalled: logged out while Disconnected is wanted", {
    spec: { state: "Disconnected" },
    status: plannedStatus({ state: "Disconnected" }, session("Disconnected", "STOPPED"), { status: { phase: "LoggedOut" } }),
    kstatus: "Failed",
    argocd: "Degraded",
  }),
  instance("changed", "Connected, then the spec changed (generation ahead of observedGeneration)", {
    status: connected,
    then: "changeSpec",
    kstatus: "InProgress",
    argocd: "Progressing",
  }),
  instance("deleting", "being deleted, held by the operator's finalizer", {
    status: connected,
    finalizers: [FINALIZER],
    then: "delete",
    kstatus: "Terminating",
    argocd: "Progressing",
  }),
  { what: "just applied", type: PROVIDERS, name: "new", spec: wahaProvider, kstatus: "InProgress", argocd: "Progressing" },
  {
    what: "Ready",
    type: PROVIDERS,
    name: "ready",
    spec: wahaProvider,
    status: providerStatus({ ready: true, stalled: false, reason: "Available", message: "waha at http://waha.waha.svc:3000 answers and accepts the credentials" }),
    kstatus: "Current",
    argocd: "Healthy",
  },
  {
    what: "unreachable (retried)",
    type: PROVIDERS,
    name: "down",
    spec: wahaProvider,
    status: providerStatus({ ready: false, stalled: false, reason: "ProviderUnavailable", message: "connect ECONNREFUSED" }),
    kstatus: "InProgress",
    argocd: "Progressing",
  },
  {
    what: "Stalled: InvalidCredentials",
    type: PROVIDERS,
    name: "badkey",
    spec: wahaProvider,
    status: providerStatus({ ready: false, stalled: true, reason: "InvalidCredentials", message: "waha answered 401" }),
    kstatus: "Failed",
    argocd: "Degraded",
  },
  { what: "just applied", type: CLUSTER_PROVIDERS, name: `new-${suffix}`, spec: clusterProvider, kstatus: "InProgress", argocd: "Progressing" },
  {
    what: "Ready",
    type: CLUSTER_PROVIDERS,
    name: `ready-${suffix}`,
    spec: clusterProvider,
    status: providerStatus({ ready: true, stalled: false, reason: "Available", message: "waha answers" }),
    kstatus: "Current",
    argocd: "Healthy",
  },
];

const manifest = (entry: Case, namespace: string) =>
  JSON.stringify({
    apiVersion: "wa-operator.io/v1alpha1",
    kind: entry.type.kind,
    metadata: { name: entry.name, ...(entry.type.namespaced ? { namespace } : {}), ...(entry.finalizers ? { finalizers: entry.finalizers } : {}) },
    spec: entry.spec,
  });

const keyOf = (kind: string, name: string) => `${kind}/${name}`;

/** Both tools' verdicts on everything in `namespace` plus the cluster providers. */
async function judgeAll(namespace: string): Promise<Map<string, GitOpsVerdict>> {
  const namespaced = await kubectlOk(["get", "whatsappinstances,whatsappproviders", "-n", namespace, "-o", "json"]);
  const cluster = await kubectlOk(["get", "clusterwhatsappproviders", "-o", "json"]);
  const verdicts = [...(await judgeHealth(namespaced, argocdConfigMap)), ...(await judgeHealth(cluster, argocdConfigMap))];
  return new Map(verdicts.map((verdict) => [keyOf(verdict.kind, verdict.name), verdict]));
}

describe("every phase, as kstatus and Argo CD see it", () => {
  let namespace: string;
  let verdicts: Map<string, GitOpsVerdict>;

  beforeAll(async () => {
    namespace = await createNamespace("gitops");
    // Applied as a GitOps tool applies them; the status subresource ignores any status in there.
    await kubectlOk(["apply", "-f", "-"], CASES.map((entry) => manifest(entry, namespace)).join("\n---\n"));
    for (const entry of CASES) {
      const where = entry.type.namespaced ? namespace : undefined;
      if (entry.status) await kube.patch(entry.type, where, entry.name, { status: entry.status }, "merge", "status");
      if (entry.then === "changeSpec") await kube.patch(entry.type, where, entry.name, { spec: { displayName: "Changed" } }, "merge");
      if (entry.then === "delete") await kubectlOk(["delete", "whatsappinstance", entry.name, "-n", namespace, "--wait=false"]);
    }
    verdicts = await judgeAll(namespace);
  });

  afterAll(async () => {
    // Let the held object go, as the operator would after its cleanup.
    await kubectl(["patch", "whatsappinstance", "deleting", "-n", namespace, "--type=merge", "-p", '{"metadata":{"finalizers":null}}']);
    await kubectl(["delete", "clusterwhatsappproviders", ...CASES.filter((entry) => entry.type === CLUSTER_PROVIDERS).map((entry) => entry.name)]);
  });

  it.each(CASES.map((entry) => [`${entry.type.kind} ${entry.what}`, entry] as const))("%s", (_what, entry) => {
    const verdict = verdicts.get(keyOf(entry.type.kind, entry.name));
    expect(verdict, `${entry.type.kind}/${entry.name} was judged`).toBeDefined();
    expect({ kstatus: verdict?.kstatus.status, argocd: verdict?.argocd.status }).toEqual({ kstatus: entry.kstatus, argocd: entry.argocd });
  });

  it("Argo CD's check agrees with kstatus on every object", () => {
    const pairs = CASES.map((entry) => verdicts.get(keyOf(entry.type.kind, entry.name))!).map((verdict) => [verdict.name, verdict.kstatus.status, verdict.argocd.status]);
    expect(pairs).toEqual(pairs.map(([name, kstatus]) => [name, kstatus, ARGO_CD_FOR_KSTATUS[kstatus!]]));
  });

  it("a just-applied object of every kind reads back with status {observedGeneration: -1} from the CRD default, so no tool calls it ready", () => {
    for (const entry of CASES.filter((candidate) => !candidate.status)) {
      const verdict = verdicts.get(keyOf(entry.type.kind, entry.name))!;
      expect(verdict.kstatus, `${entry.type.kind}/${entry.name}`).toEqual({ status: "InProgress", message: `${entry.type.kind} generation is 1, but latest observed generation is -1` });
      expect(verdict.argocd.status).toBe("Progressing");
    }
  });

  it("the status the operator writes replaces the default: observedGeneration is the generation, not -1", async () => {
    const read = await kube.find<KubeObject & { status?: InstanceStatus }>(INSTANCES, namespace, "connected");
    expect(read?.status?.observedGeneration).toBe(1);
    const applied = await kube.find<KubeObject & { status?: InstanceStatus }>(INSTANCES, namespace, "applied");
    expect(applied?.status).toEqual({ observedGeneration: -1 });
  });

  it("Argo CD's messages carry the reasons: Stalled's for Degraded, Reconciling's for Progressing", () => {
    expect(verdicts.get(keyOf("WhatsAppInstance", "quota"))?.argocd.message).toMatch(/^QuotaExceeded: waha allows 1 instance/);
    expect(verdicts.get(keyOf("WhatsAppInstance", "scanqr"))?.argocd.message).toMatch(/^WaitingForScan: scan the QR code/);
    expect(verdicts.get(keyOf("WhatsAppInstance", "changed"))?.argocd.message).toBe("Waiting for wa-operator to observe generation 2 (status is for generation 1)");
  });

  it("an instance being deleted: Argo CD shows the check's deletion message naming the operator's finalizer", () => {
    const verdict = verdicts.get(keyOf("WhatsAppInstance", "deleting"))!;
    expect(verdict.argocdScript).toMatchObject({ status: "Progressing", deletionMessage: expect.stringContaining(FINALIZER) });
    expect(verdict.argocd).toEqual({ status: "Progressing", message: verdict.argocdScript.deletionMessage });
  });

  it("without the CRD default, kstatus calls an unobserved instance Current; the Lua check does not", async () => {
    const read = JSON.parse(await kubectlOk(["get", "whatsappinstance", "applied", "-n", namespace, "-o", "json"])) as Record<string, unknown>;
    delete read["status"];
    const [verdict] = await judgeHealth(JSON.stringify(read), argocdConfigMap);
    expect(verdict?.kstatus.status).toBe("Current");
    expect(verdict?.argocd).toEqual({ status: "Progressing", message: "Waiting for wa-operator to look at it" });
  });
});

describe("statuses the running operator writes", () => {
  const clock = new FakeClock();
  const waha = new WahaEmulator({ apiKey: "gitops-key", clock, startDelayMs: 0, crashRestartDelayMs: null });
  let namespace: string;
  let operator: Operator | undefined;

  beforeAll(async () => {
    namespace = await createNamespace("gitops-live");
    const url = await waha.start();
    await kubectlOk(["create", "secret", "generic", "waha-key", "-n", namespace, "--from-literal=api-key=gitops-key"]);
    await kubectlOk(["label", "secret", "waha-key", "-n", namespace, "wa-operator.io/credential=true"]);
    await kubectlOk(
      ["apply", "-n", namespace, "-f", "-"],
      `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: waha}
spec: {type: waha, url: "${url}", credentialsSecretRef: {name: waha-key}}
---
apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: live}
spec: {providerRef: {name: waha}}
---
apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: unscanned}
spec: {providerRef: {name: waha}}
---
apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: orphan}
spec: {providerRef: {name: nowhere}}`,
    );
    operator = await startOperator(namespace);
  });

  afterAll(async () => {
    await operator?.stop();
    await waha.stop();
  });

  const expectBoth = (verdict: GitOpsVerdict | undefined, kstatus: string) => {
    expect([verdict?.kstatus.status, verdict?.argocd.status], verdict?.name).toEqual([kstatus, ARGO_CD_FOR_KSTATUS[kstatus]]);
  };

  it("ScanQR is InProgress/Progressing, a missing provider Failed/Degraded, a reachable provider Current/Healthy", async () => {
    for (const name of ["live", "unscanned"]) await instanceWhere(kube, namespace, name, "ScanQR", (object) => object.status?.phase === "ScanQR");
    await instanceWhere(kube, namespace, "orphan", "Stalled", (object) => object.status?.conditions?.some((c) => c.type === "Stalled" && c.status === "True") ?? false);
    const verdicts = await judgeAll(namespace);
    expectBoth(verdicts.get("WhatsAppInstance/live"), "InProgress");
    expectBoth(verdicts.get("WhatsAppInstance/orphan"), "Failed");
    expectBoth(verdicts.get("WhatsAppProvider/waha"), "Current");
  });

  it("Connected is Current/Healthy and a FAILED session InProgress/Progressing", async () => {
    waha.scan(wahaSessionName(namespace, "live"), "5511999998888");
    await instanceWhere(kube, namespace, "live", "Connected", (object) => object.status?.phase === "Connected");
    // The unscanned session's QR series runs out (WAHA: 60 s, then five 20 s codes) and it FAILS.
    clock.advance(60_000 + 5 * 20_000 + 1);
    await instanceWhere(kube, namespace, "unscanned", "Failed", (object) => object.status?.phase === "Failed");
    const verdicts = await judgeAll(namespace);
    expectBoth(verdicts.get("WhatsAppInstance/live"), "Current");
    expectBoth(verdicts.get("WhatsAppInstance/unscanned"), "InProgress");
  });
});
