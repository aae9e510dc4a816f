/**
 * The yardstick: a loop that takes each new WhatsAppInstance to ScanQR doing only the work
 * nothing can avoid, with the operator's concurrency. Per instance: the finalizer (one
 * PATCH), the WAHA session created and started (one POST /api/sessions with start:true),
 * the QR fetched (one GET) and drawn as the operator draws it, the `<name>-qr` Secret (one
 * POST) and the status (one PATCH). It learns about instances from its own watch, opened
 * before the clock starts, as an operator's informer would be. No Events, no re-reads.
 *
 * Run as its own process (like the operator, so neither shares an event loop with the
 * benchmark's driver and emulator):
 *
 *   node bench/e2e/bare-loop.ts '{"kubeconfig":…,"namespace":…,"wahaUrl":…,"apiKey":…,"concurrency":8}'
 *
 * It prints `{"ready":true,"sent":{…}}` once its watch has listed, and on SIGTERM the
 * requests it sent (as kube-apiserver counts them) and its failures as one JSON line, then exits.
 */
import { renderQrPng } from "../../src/providers/qr.ts";
import { BenchKube, type KubeItem } from "./kube.ts";
import { INSTANCES_PATH, SECRETS_PATH } from "./view.ts";

export interface BareLoopOptions {
  readonly kube: BenchKube;
  readonly namespace: string;
  readonly waha: { readonly url: string; readonly apiKey: string };
  readonly concurrency: number;
}

export interface BareLoop {
  /** Resolves once the watch has listed. */
  readonly synced: Promise<void>;
  /** Instances that failed a step (the phase then times out); the first few are kept. */
  readonly failures: string[];
  stop(): void;
}

/** The operator's finalizer, the same bytes on the object. */
const FINALIZER = "wa-operator.io/finalizer";
/** WAHA's documented lifetime of the first QR code of a series (/work/shared/providers/waha.md). */
const FIRST_QR_VALID_MS = 60_000;

export function startBareLoop(options: BareLoopOptions): BareLoop {
  const queue: KubeItem[] = [];
  const seen = new Set<string>();
  const failures: string[] = [];
  let stopped = false;
  const idle: (() => void)[] = [];
  const informer = options.kube.informer(
    INSTANCES_PATH(options.namespace),
    (event) => {
      if (event.type !== "ADDED" || seen.has(event.object.metadata.name)) return;
      seen.add(event.object.metadata.name);
      queue.push(event.object);
      for (const wake of idle.splice(0)) wake();
    },
    (error) => failures.push(`watch: ${String(error)}`),
  );

  const worker = async (): Promise<void> => {
    while (!stopped) {
      const item = queue.shift();
      if (!item) {
        await new Promise<void>((resolve) => idle.push(resolve));
        continue;
      }
      try {
        await takeToScanQr(options, item);
      } catch (error) {
        if (failures.length < 5) failures.push(`${item.metadata.name}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  };
  for (let i = 0; i < options.concurrency; i++) void worker();
  return {
    synced: informer.synced,
    failures,
    stop: () => {
      stopped = true;
      informer.stop();
      for (const wake of idle.splice(0)) wake();
    },
  };
}

async function takeToScanQr(options: BareLoopOptions, instance: KubeItem): Promise<void> {
  const { kube, waha, namespace } = options;
  const { name, uid, resourceVersion, generation } = instance.metadata;
  const instancePath = `${INSTANCES_PATH(namespace)}/${name}`;
  await kube.request("PATCH", instancePath, { metadata: { finalizers: [FINALIZER], resourceVersion } }, "application/merge-patch+json");

  const session = `${namespace}__${name}`;
  const headers = { "X-Api-Key": waha.apiKey, "Content-Type": "application/json", Accept: "application/json" };
  const created = await fetch(`${waha.url}/api/sessions`, {
    method: "POST",
    headers,
    body: JSON.stringify({ name: session, start: true, config: { metadata: { "wa-operator.io/uid": uid, "wa-operator.io/instance": `${namespace}/${name}` } } }),
  });
  if (created.status !== 201) throw new Error(`POST /api/sessions: ${created.status} ${await created.text()}`);
  await created.arrayBuffer();
  const qrAnswer = await fetch(`${waha.url}/api/${encodeURIComponent(session)}/auth/qr?format=raw`, { headers });
  if (qrAnswer.status !== 200) throw new Error(`GET qr: ${qrAnswer.status} ${await qrAnswer.text()}`);
  const { value } = (await qrAnswer.json()) as { value: string };
  // Drawn by the operator's own renderer (a bilevel PNG), so both pay the same CPU for it: the
  // library's RGBA toBuffer this loop used before cost several times more and made the yardstick slow.
  const png = await renderQrPng("waha", value);

  await kube.request("POST", SECRETS_PATH(namespace), {
    apiVersion: "v1",
    kind: "Secret",
    type: "Opaque",
    metadata: {
      name: `${name}-qr`,
      labels: { "app.kubernetes.io/managed-by": "wa-operator" },
      ownerReferences: [{ apiVersion: "wa-operator.io/v1alpha1", kind: "WhatsAppInstance", name, uid, controller: true, blockOwnerDeletion: true }],
    },
    data: { "qr.png": png.toString("base64"), "qr.txt": Buffer.from(value).toString("base64") },
  });

  const now = new Date();
  const condition = (type: string, status: string) => ({
    type,
    status,
    reason: "ScanQR",
    message: "waiting for the phone to scan the QR code",
    lastTransitionTime: now.toISOString().replace(/\.\d+Z$/, "Z"),
    observedGeneration: generation,
  });
  await kube.request(
    "PATCH",
    `${instancePath}/status`,
    {
      status: {
        phase: "ScanQR",
        observedGeneration: generation,
        providerInstanceId: session,
        qr: { secretName: `${name}-qr`, updatedAt: now.toISOString(), expiresAt: new Date(now.getTime() + FIRST_QR_VALID_MS).toISOString() },
        conditions: [condition("Ready", "False"), condition("Reconciling", "True"), condition("Stalled", "False")],
      },
    },
    "application/merge-patch+json",
  );
}

if (import.meta.main) {
  const settings = JSON.parse(process.argv[2] ?? "{}") as { kubeconfig: string; namespace: string; wahaUrl: string; apiKey: string; concurrency: number };
  const kube = new BenchKube(settings.kubeconfig, { maxSockets: settings.concurrency * 2 });
  const loop = startBareLoop({ kube, namespace: settings.namespace, waha: { url: settings.wahaUrl, apiKey: settings.apiKey }, concurrency: settings.concurrency });
  process.on("SIGTERM", () => {
    loop.stop();
    console.log(JSON.stringify({ sent: Object.fromEntries(kube.sent), failures: loop.failures }));
    kube.close();
    process.exit(0);
  });
  await loop.synced;
  console.log(JSON.stringify({ ready: true, sent: Object.fromEntries(kube.sent) }));
}
