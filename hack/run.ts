/**
 * `make run`. With KUBECONFIG set: installs the CRDs there and runs the operator
 * against that cluster. Without: starts the local control plane (.local/), a WAHA
 * emulator labelled as a demo, the operator, applies an example instance and shows
 * its QR code in the terminal and on a page at 127.0.0.1 (as kubectl whatsapp qr and
 * qr --web do); press Enter to play the phone that scans it.
 */
import { execFileSync, spawn } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import { configSchema } from "../src/config.ts";
import { createLogger } from "../src/logger.ts";
import { Operator } from "../src/operator.ts";
import { KubeClient } from "../src/kube/client.ts";
import { loadKubeConfig } from "../src/kube/config.ts";
import type { InstanceObject } from "../src/controllers/context.ts";
import { INSTANCES } from "../src/kube/resources.ts";
import type { QrView } from "../src/plugin/qr.ts";
import { showQr, type Hints } from "../src/plugin/qr-terminal.ts";
import { followOnPage, QrPageServer } from "../src/plugin/qr-web.ts";
import { requestRestart } from "../src/plugin/spec-patch.ts";
import { wahaSessionName } from "../src/providers/waha/client.ts";
import { WahaEmulator } from "../test/emulators/waha/emulator.ts";

const repo = path.resolve(import.meta.dirname, "..");
const kubectl = (args: string[], input?: string) =>
  execFileSync("kubectl", args, { cwd: repo, encoding: "utf8", ...(input !== undefined ? { input } : {}), stdio: ["pipe", "pipe", "inherit"] });

async function againstExistingCluster(): Promise<void> {
  console.log(`KUBECONFIG=${process.env.KUBECONFIG}: installing crds/ and running the operator there (Ctrl-C stops it)`);
  kubectl(["apply", "--server-side", "-f", "crds/"]);
  const child = spawn(process.execPath, [path.join(repo, "src/cli/operator.ts"), ...process.argv.slice(2)], { stdio: "inherit" });
  child.on("exit", (code) => process.exit(code ?? 0));
}

async function demo(): Promise<void> {
  const kubeconfig = path.join(repo, ".local", "kubeconfig");
  execFileSync(process.execPath, [path.join(repo, "hack/control-plane/cluster.ts"), "up", "--dir", ".local"], { cwd: repo, stdio: "inherit" });
  process.env.KUBECONFIG = kubeconfig;
  kubectl(["apply", "--server-side", "-f", "crds/"]);
  kubectl(["wait", "--for=condition=Established", "-f", "crds/"]);

  const waha = new WahaEmulator({ apiKey: "demo-key" });
  const wahaUrl = await waha.start();
  console.log(`\nDEMO: a WAHA emulator (not a real WhatsApp server) listens at ${wahaUrl}`);
  kubectl(["apply", "-f", "-"], "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n");
  kubectl(["apply", "-n", "demo", "-f", "-"], `apiVersion: v1
kind: Secret
metadata: {name: waha-api-key, labels: {wa-operator.io/demo: "true", wa-operator.io/credential: "true"}}
stringData: {api-key: demo-key}
---
apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: waha, labels: {wa-operator.io/demo: "true"}}
spec: {type: waha, url: "${wahaUrl}", credentialsSecretRef: {name: waha-api-key, key: api-key}}
---
apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: support-line, labels: {wa-operator.io/demo: "true"}}
spec: {providerRef: {name: waha}, displayName: Support Line}
`);

  const config = configSchema.parse({ namespaces: "demo", logLevel: "warn", pairingPollInterval: "1s" });
  const kube = new KubeClient(await loadKubeConfig({ file: kubeconfig }));
  const operator = new Operator({ kube, config, log: createLogger(config.logLevel) });
  await operator.start();
  console.log("the operator runs; the instance demo/support-line was applied. In another terminal:");
  console.log(`  export KUBECONFIG=${kubeconfig}; kubectl get wai -n demo\n`);

  const page = await QrPageServer.start({ port: 0, banner: "DEMO: a WAHA emulator plays the WhatsApp server, and Enter in the terminal plays the phone" });
  const pageDone = followOnPage(page, { kube, namespace: "demo", name: "support-line", out: discard, err: discard }).catch((error: unknown) =>
    console.log(`the page stopped: ${error instanceof Error ? error.message : String(error)}`),
  );
  console.log(`The QR code in a browser on this machine (refreshed as it rotates): ${page.url}`);
  const demo = new DemoPhone({ waha, kube, namespace: "demo", name: "support-line", pageUrl: page.url });
  console.log("Press Enter to play the phone: it scans the code shown. Ctrl-C stops the demo.\n");

  const stop = async () => {
    keys.close();
    await page.close();
    await operator.stop();
    await waha.stop();
    process.exit(0);
  };
  const keys = listenForKeys({
    enter: () => void demo.press().catch((error: unknown) => console.log(`DEMO: ${error instanceof Error ? error.message : String(error)}`)),
    stop: () => void stop(),
  });
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());

  // The plugin's own view, in this process: on a terminal it is fitted and redrawn in
  // place, with the demo's hints under the code.
  const code = await showQr({
    kube,
    namespace: "demo",
    name: "support-line",
    once: false,
    out: process.stdout,
    err: process.stderr,
    terminal: process.stdout.isTTY ? process.stdout : undefined,
    hints: demo,
  }).catch((error: unknown) => {
    console.log(`kubectl whatsapp qr stopped: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  });
  demo.viewEnded = true;
  await pageDone;
  if (code === 0) console.log("\nkubectl get wai -n demo:\n" + kubectl(["get", "wai", "-n", "demo"]));
  console.log("Ctrl-C stops the demo (the local control plane keeps running: make cluster-down).");
}

const discard = new Writable({ write: (_chunk, _encoding, done) => done() });

interface DemoPhoneOptions {
  readonly waha: WahaEmulator;
  readonly kube: KubeClient;
  readonly namespace: string;
  readonly name: string;
  readonly pageUrl: string;
}

/**
 * Enter in the demo's terminal: the phone. It scans the code while there is one; once the
 * codes ran out unscanned and the session failed, it asks for a restart (as kubectl
 * whatsapp restart does) instead of waiting for the operator's backoff. What it did
 * shows under the code (Hints), or as a line once the code view has ended.
 */
class DemoPhone implements Hints {
  viewEnded = false;
  private readonly options: DemoPhoneOptions;
  private readonly listeners = new Set<() => void>();
  /** The last thing Enter did, shown while the view is of the kind it was done for. */
  private said: { readonly kind: QrView["kind"]; readonly message: string } | undefined;
  private lastKind: QrView["kind"] | undefined;

  constructor(options: DemoPhoneOptions) {
    this.options = options;
  }

  lines(view: QrView): readonly string[] {
    this.lastKind = view.kind;
    const hint =
      view.kind === "qrText"
        ? `DEMO: press Enter to play the phone scanning this code (also on ${this.options.pageUrl}).`
        : view.kind === "failed"
          ? "DEMO: no phone scanned the codes before they ran out, so the session failed. Press Enter to restart it now, or wait for the operator."
          : undefined;
    const said = this.said?.kind === view.kind ? this.said.message : undefined;
    return [hint, said].filter((line): line is string => line !== undefined);
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async press(): Promise<void> {
    const { waha, kube, namespace, name } = this.options;
    const session = wahaSessionName(namespace, name);
    const status = waha.session(session)?.status;
    const phase = (await kube.find<InstanceObject>(INSTANCES, namespace, name))?.status?.phase;
    let message: string;
    if (status === "SCAN_QR_CODE") {
      waha.scan(session, "5511999998888");
      message = "DEMO: the phone scanned the code; the operator sees it link within a second.";
    } else if (phase === "Failed") {
      await requestRestart(kube, namespace, name, Date.now());
      message = `DEMO: asked for a restart now (as kubectl whatsapp restart ${name} -n ${namespace} does); a new code follows.`;
    } else if (phase === "Connected") {
      message = "DEMO: already linked; Ctrl-C stops the demo.";
    } else {
      message = `DEMO: nothing to scan yet (${namespace}/${name} is ${phase ?? "Pending"}); the code appears in a moment.`;
    }
    if (this.viewEnded || this.lastKind === undefined) {
      console.log(message);
      return;
    }
    this.said = { kind: this.lastKind, message };
    for (const listener of this.listeners) listener();
  }
}

/**
 * Enter and Ctrl-C. On a terminal, keys are read raw, so Enter does not echo a newline
 * into the view being redrawn in place; elsewhere, each line of input is an Enter.
 */
function listenForKeys(actions: { readonly enter: () => void; readonly stop: () => void }): { close(): void } {
  if (!process.stdin.isTTY) {
    const lines = createInterface({ input: process.stdin });
    lines.on("line", actions.enter);
    return { close: () => lines.close() };
  }
  process.stdin.setRawMode(true);
  process.stdin.resume();
  const onData = (data: Buffer) => {
    const text = data.toString("utf8");
    if (text.includes("\x03") || text.includes("\x04")) actions.stop();
    else if (text.includes("\r") || text.includes("\n")) actions.enter();
  };
  process.stdin.on("data", onData);
  return {
    close: () => {
      process.stdin.off("data", onData);
      process.stdin.setRawMode(false);
      process.stdin.pause();
    },
  };
}

if (process.env.KUBECONFIG) await againstExistingCluster();
else await demo();
