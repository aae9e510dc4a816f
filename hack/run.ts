/**
 * `make run`. With KUBECONFIG set: installs the CRDs there and runs the operator
 * against that cluster. Without: starts the local control plane (.local/), a WAHA
 * emulator labelled as a demo, the operator, applies an example instance and shows
 * its QR code in the terminal; press Enter to play the phone that scans it.
 */
import { execFileSync, spawn } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { configSchema } from "../src/config.ts";
import { createLogger } from "../src/logger.ts";
import { Operator } from "../src/operator.ts";
import { KubeClient } from "../src/kube/client.ts";
import { KubeConfig } from "@kubernetes/client-node";
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
metadata: {name: waha-api-key, labels: {wa-operator.io/demo: "true"}}
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
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfig);
  const operator = new Operator({ kube: new KubeClient(kubeConfig), config, log: createLogger(config.logLevel) });
  await operator.start();
  console.log("the operator runs; the instance demo/support-line was applied. In another terminal:");
  console.log(`  export KUBECONFIG=${kubeconfig}; kubectl get wai -n demo\n`);

  const stdin = createInterface({ input: process.stdin });
  stdin.on("line", () => {
    const session = wahaSessionName("demo", "support-line");
    if (waha.session(session)?.status !== "SCAN_QR_CODE") return;
    console.log("DEMO: a phone scans the code...");
    waha.scan(session, "5511999998888");
  });
  console.log("Press Enter to simulate a phone scanning the QR code.\n");
  // Piped rather than inherited: the plugin then prints each code below the last instead of
  // clearing the screen, so the hint above stays visible.
  const plugin = spawn(process.execPath, [path.join(repo, "src/cli/kubectl-whatsapp.ts"), "qr", "support-line", "-n", "demo"], {
    stdio: ["ignore", "pipe", "inherit"],
    env: process.env,
  });
  createInterface({ input: plugin.stdout }).on("line", (line) => {
    console.log(line);
    if (line.startsWith("▀▀▀")) console.log("(press Enter to simulate a phone scanning this code)");
  });
  plugin.on("exit", () => {
    console.log("\nkubectl get wai -n demo:\n" + kubectl(["get", "wai", "-n", "demo"]));
    console.log("Ctrl-C stops the demo (the local control plane keeps running: make cluster-down).");
  });
  const stop = async () => {
    stdin.close();
    await operator.stop();
    await waha.stop();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());
}

if (process.env.KUBECONFIG) await againstExistingCluster();
else await demo();
