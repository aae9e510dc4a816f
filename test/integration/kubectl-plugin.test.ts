/**
 * `kubectl whatsapp` as a user runs it: a separate process with KUBECONFIG, against the
 * real API server, the operator in this process and the WAHA emulator on loopback.
 * The QR code it draws is read back from the terminal text into a module matrix, which
 * must be the emulator's current code (QRCode.create of the payload) and scan as it.
 */
import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PNG } from "pngjs";
import QRCode from "qrcode";
import { parse as parseYaml } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Operator } from "../../src/operator.ts";
import { halfBlockLines, TERMINAL_QR_LEVEL } from "../../src/plugin/qr-terminal.ts";
import { qrModules } from "../../src/providers/qr.ts";
import { wahaSessionName } from "../../src/providers/waha/client.ts";
import { SECRETS } from "../../src/kube/resources.ts";
import type { SecretObject } from "../../src/kube/secrets.ts";
import { pluginDist } from "../../scripts/plugin-dist.ts";
import { FakeClock } from "../emulators/shared/clock.ts";
import { decodeQrPng } from "../emulators/shared/qr-png.ts";
import { WahaEmulator } from "../emulators/waha/emulator.ts";
import { createNamespace, eventually, installCrds, instanceWhere, kubeClient, kubeconfigPath, kubectl, kubectlOk, REPO } from "../support/kube.ts";
import { findNode20 } from "../support/old-node.ts";
import { startOperator } from "../support/operator.ts";
import { followPlugin, followPluginOnTerminal, killPlugins, PLUGIN, pluginEnv } from "../support/plugin.ts";

const API_KEY = "plugin-test-key";
const PHONE = "5511966665555";
const kube = kubeClient();
const clock = new FakeClock();
const waha = new WahaEmulator({ apiKey: API_KEY, clock, startDelayMs: 0, crashRestartDelayMs: null });
let namespace: string;
let operator: Operator;
let scratch: string;

beforeAll(async () => {
  await installCrds();
  namespace = await createNamespace("plugin");
  scratch = mkdtempSync(path.join(tmpdir(), "kubectl-whatsapp-"));
  const url = await waha.start();
  await kubectlOk(["create", "secret", "generic", "waha-key", "-n", namespace, `--from-literal=api-key=${API_KEY}`]);
  await kubectlOk(["label", "secret", "waha-key", "-n", namespace, "wa-operator.io/credential=true"]);
  await apply(`apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: waha}
spec: {type: waha, url: "${url}", credentialsSecretRef: {name: waha-key, key: api-key}}`);
  operator = await startOperator(namespace);
});

afterAll(async () => {
  killPlugins();
  await operator?.stop();
  await waha.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

function apply(manifest: string, ns = namespace): Promise<string> {
  return kubectlOk(["apply", "-n", ns, "-f", "-"], manifest);
}

function applyInstance(name: string, spec = "", ns = namespace): Promise<string> {
  return apply(
    `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: ${name}}
spec:
  providerRef: {name: waha}
${spec}`,
    ns,
  );
}

const session = (name: string) => wahaSessionName(namespace, name);

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `kubectl-whatsapp ARGS` to its end: by default from the sources, on this Node. */
function plugin(args: readonly string[], env: NodeJS.ProcessEnv = pluginEnv(), program: readonly [string, string] = [process.execPath, PLUGIN]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(program[0], [program[1], ...args], { env, cwd: scratch, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === "number" ? ((error as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const follow = (args: readonly string[]) => followPlugin(args, scratch);

// --- Reading a QR code back from the terminal -------------------------------------

const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * The module matrix of a QR code drawn in half-blocks: each text line holds two module
 * rows (▀ top dark, ▄ bottom dark, █ both, space neither). The code is cut out of its
 * light surroundings, which must be a quiet zone of at least 4 modules on every side
 * (a phone cannot find the code without it).
 */
function terminalQrToMatrix(drawing: string): boolean[][] {
  const lines = drawing
    .replace(ANSI, "")
    .split("\n")
    .filter((line) => line.length > 0);
  const width = lines[0]?.length ?? 0;
  for (const line of lines) {
    if (line.length !== width || !/^[ ▀▄█]+$/.test(line)) throw new Error(`not a QR drawing line: ${JSON.stringify(line)}`);
  }
  const rows = lines.flatMap((line) => [[...line].map((cell) => "▀█".includes(cell)), [...line].map((cell) => "▄█".includes(cell))]);
  const darkRows = rows.flatMap((row, y) => (row.includes(true) ? [y] : []));
  const darkColumns = Array.from({ length: width }, (_, x) => x).filter((x) => rows.some((row) => row[x]));
  const [top, bottom, left, right] = [darkRows[0] ?? 0, darkRows.at(-1) ?? 0, darkColumns[0] ?? 0, darkColumns.at(-1) ?? 0];
  const quietZone = Math.min(top, rows.length - 1 - bottom, left, width - 1 - right);
  if (quietZone < 4) throw new Error(`the drawing has a quiet zone of ${quietZone} modules, not 4`);
  return rows.slice(top, bottom + 1).map((row) => row.slice(left, right + 1));
}

/** The matrix QRCode builds for a payload, with the settings the terminal view uses. */
function expectedMatrix(payload: string): boolean[][] {
  const { modules } = QRCode.create(payload, { errorCorrectionLevel: TERMINAL_QR_LEVEL });
  return Array.from({ length: modules.size }, (_, y) => Array.from({ length: modules.size }, (_, x) => Boolean(modules.get(y, x))));
}

/** Scans a matrix as a camera would: draw it as a PNG and decode that with jsQR. */
function scanMatrix(matrix: boolean[][]): string | undefined {
  const scale = 6;
  const margin = 4;
  const side = (matrix.length + 2 * margin) * scale;
  const png = new PNG({ width: side, height: side });
  for (let py = 0; py < side; py++) {
    for (let px = 0; px < side; px++) {
      const dark = matrix[Math.floor(py / scale) - margin]?.[Math.floor(px / scale) - margin] ?? false;
      const offset = (py * side + px) * 4;
      png.data[offset] = png.data[offset + 1] = png.data[offset + 2] = dark ? 0 : 255;
      png.data[offset + 3] = 255;
    }
  }
  return decodeQrPng(PNG.sync.write(png));
}

const QR_HEADER = "Scan with WhatsApp on the phone";

/** The QR drawings printed so far, oldest first. */
function drawings(output: string): string[] {
  return output
    .split(QR_HEADER)
    .slice(1)
    .map((frame) => frame.slice(frame.indexOf("\n") + 1))
    .map((frame) => frame.split("\n").filter((line) => /^[ ▀▄█]+$/.test(line.replace(ANSI, ""))).join("\n"));
}

describe("the terminal QR reader (test helper)", () => {
  it("reads back what the terminal view draws, for several sizes", () => {
    for (const payload of ["x", "2@abc,def,ghi==", "2@" + "A".repeat(200)]) {
      const matrix = terminalQrToMatrix(halfBlockLines(qrModules(payload, TERMINAL_QR_LEVEL)).join("\n"));
      expect(matrix).toEqual(expectedMatrix(payload));
      expect(scanMatrix(matrix)).toBe(payload);
    }
  });

  it("refuses a drawing without its 4-module quiet zone", () => {
    const cropped = halfBlockLines(qrModules("x", TERMINAL_QR_LEVEL))
      .map((line) => line.replace(ANSI, ""))
      .slice(1, -1)
      .map((line) => line.slice(2, -2));
    expect(() => terminalQrToMatrix(cropped.join("\n"))).toThrow(/quiet zone of 2 modules/);
  });
});

describe("kubectl whatsapp qr", () => {
  it("draws the emulator's current code, follows a rotation, and exits 0 with Connected as +<phone> once scanned", async () => {
    await applyInstance("line", "  displayName: Plugin Line");
    const run = follow(["qr", "line", "-n", namespace]);

    const first = await eventually("the first code drawn", async () => {
      const current = waha.currentQr(session("line"));
      const last = drawings(run.output()).at(-1);
      if (!current || !last) return undefined;
      return scanMatrix(terminalQrToMatrix(last)) === current ? { current, last } : undefined;
    });
    expect(terminalQrToMatrix(first.last)).toEqual(expectedMatrix(first.current));

    clock.advance(60_001);
    const second = waha.currentQr(session("line"));
    expect(second).not.toBe(first.current);
    await eventually("the rotated code drawn", async () => {
      const last = drawings(run.output()).at(-1);
      return last && second && JSON.stringify(terminalQrToMatrix(last)) === JSON.stringify(expectedMatrix(second)) ? true : undefined;
    });
    expect(drawings(run.output()).length).toBeGreaterThanOrEqual(2);

    waha.scan(session("line"), PHONE);
    expect(await run.exited).toBe(0);
    expect(run.output().trimEnd().split("\n").at(-1)).toBe(`Connected as +${PHONE}`);
    // Output that is not a terminal is never cleared or moved over between codes.
    expect(run.output()).not.toMatch(/\x1b\[(\d*[ABJ]|H)/);
  });

  it("on a terminal: says the size it needs when the code does not fit, else draws it and redraws each new code in place", async () => {
    await applyInstance("tty");
    await instanceWhere(kube, namespace, "tty", "ScanQR", (object) => object.status?.phase === "ScanQR");
    const small = followPluginOnTerminal(["qr", "tty", "-n", namespace, "--once"], { columns: 80, rows: 24 }, scratch);
    expect(await small.exited).toBe(3);
    expect(small.output().replace(/\n/g, " ")).toMatch(/needs a terminal of 57 columns × 31 rows; this one is 80 × 24\./);
    expect(drawings(small.output())).toEqual([]);

    const run = followPluginOnTerminal(["qr", "tty", "-n", namespace], { columns: 80, rows: 40 }, scratch);
    /** The frame on screen: what was written since the last move back up over the previous one. */
    const screen = () => run.output().split(/\r\x1b\[\d+A\x1b\[J/).at(-1) ?? "";
    const first = await eventually("the current code on the screen", async () => {
      const current = waha.currentQr(session("tty"));
      const drawn = drawings(screen())[0];
      return current && drawn && scanMatrix(terminalQrToMatrix(drawn)) === current ? current : undefined;
    });
    clock.advance(60_001);
    const second = waha.currentQr(session("tty"));
    expect(second).not.toBe(first);
    await eventually("the rotated code drawn over the first", async () => {
      const drawn = drawings(screen());
      return drawn.length === 1 && scanMatrix(terminalQrToMatrix(drawn[0] as string)) === second ? true : undefined;
    });
    // Every frame fits 80×40 with a row to spare, so moving up over it never scrolls.
    for (const frame of run.output().split(/\r\x1b\[\d+A\x1b\[J/)) expect(frame.split("\n").length - 1).toBeLessThanOrEqual(39);
    waha.scan(session("tty"), PHONE);
    expect(await run.exited).toBe(0);
    expect(screen()).toBe(`Connected as +${PHONE}\n`);
  });

  it("--once prints the current code and exits 0; --png FILE writes the Secret's image", async () => {
    await applyInstance("once");
    await instanceWhere(kube, namespace, "once", "ScanQR", (object) => object.status?.phase === "ScanQR");
    const file = path.join(scratch, "once.png");
    const result = await eventually("a code to show", async () => {
      const attempt = await plugin(["qr", "once", "-n", namespace, "--once", "--png", file]);
      return attempt.code === 0 ? attempt : undefined;
    });
    const current = waha.currentQr(session("once"));
    const drawn = drawings(result.stdout);
    expect(drawn).toHaveLength(1);
    expect(scanMatrix(terminalQrToMatrix(drawn[0] as string))).toBe(current);
    expect(decodeQrPng(readFileSync(file))).toBe(current);
    expect(result.stderr).toContain(`wrote the QR code image to ${file}`);
  });

  it("prints the pairing code when the instance pairs by code, and Connected once it is entered", async () => {
    await applyInstance("paired", `  pairing: {method: Code, phoneNumber: "${PHONE}"}`);
    const code = await eventually("the pairing code in the Secret", async () => {
      const secret = await kube.find<SecretObject>(SECRETS, namespace, "paired-qr");
      const value = secret?.data?.["pairing-code"];
      return value ? Buffer.from(value, "base64").toString("utf8") : undefined;
    });
    const run = follow(["qr", "paired", "--namespace", namespace]);
    await eventually("the pairing code printed", async () => (run.output().includes(`Pairing code for ${namespace}/paired: ${code}`) ? true : undefined));
    expect(drawings(run.output())).toEqual([]);
    waha.enterPairingCode(session("paired"));
    expect(await run.exited).toBe(0);
    expect(run.output()).toMatch(/Connected as \+\d+\n$/);
  });

  it("exits 1 for an instance that does not exist", async () => {
    const result = await plugin(["qr", "nope", "-n", namespace]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`error: whatsappinstance "nope" not found in namespace "${namespace}"\n`);
  });

  it("exits 3 when there is no code yet (--once) or --timeout runs out", async () => {
    // No operator watches this namespace: the instance stays Pending.
    const idle = await createNamespace("plugin-idle");
    await applyInstance("waiting", "", idle);
    const once = await plugin(["qr", "waiting", "-n", idle, "--once"]);
    expect(once.code).toBe(3);
    expect(once.stderr).toBe(`error: no QR code yet: ${idle}/waiting is Pending\n`);
    const timed = await plugin(["qr", "waiting", "-n", idle, "--timeout", "1s"]);
    expect(timed.code).toBe(3);
    expect(timed.stderr).toContain(`waiting for a QR code: ${idle}/waiting is Pending`);
    expect(timed.stderr).toContain(`error: timed out before ${idle}/waiting was Connected`);
  });

  it("exits 4 when the instance cannot link: Stalled, or spec.state is not Connected", async () => {
    await apply(`apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: orphan}
spec: {providerRef: {name: missing}}`);
    await instanceWhere(kube, namespace, "orphan", "Stalled", (object) => object.status?.conditions?.some((entry) => entry.type === "Stalled" && entry.status === "True") ?? false);
    const stalled = await plugin(["qr", "orphan", "-n", namespace]);
    expect(stalled.code).toBe(4);
    expect(stalled.stderr).toMatch(new RegExp(`^error: ${namespace}/orphan cannot link: it is Stalled \\(ProviderNotFound\\): `));

    await applyInstance("parked", "  state: Disconnected");
    const parked = await plugin(["qr", "parked", "-n", namespace]);
    expect(parked.code).toBe(4);
    expect(parked.stderr).toContain("spec.state is Disconnected, so there is nothing to scan; run kubectl whatsapp connect parked first");
  });
});

/** A kubectl table as rows of cells, cut at the columns where the header's titles start. */
function table(text: string): string[][] {
  const [header = "", ...lines] = text.trimEnd().split("\n");
  const starts = [...header.matchAll(/\S+/g)].map((match) => match.index ?? 0);
  return [header, ...lines].map((line) => starts.map((start, column) => line.slice(start, starts[column + 1]).trim()));
}

describe("kubectl whatsapp status", () => {
  it("shows what kubectl get wai shows, plus the Ready message", async () => {
    await instanceWhere(kube, namespace, "line", "Connected", (object) => object.status?.phase === "Connected");
    const ours = await plugin(["status", "-n", namespace]);
    expect(ours.code).toBe(0);
    const theirs = table(await kubectlOk(["get", "wai", "-n", namespace]));
    const rows = table(ours.stdout);
    expect(rows[0]).toEqual(["NAME", "PROVIDER", "DESIRED", "PHASE", "PHONE", "READY", "AGE", "MESSAGE"]);
    // Same instances, same cells, in the same order (AGE may tick between the two calls).
    const cells = (rowsOf: string[][]) => rowsOf.map((row) => row.slice(0, 6).join("|"));
    expect(cells(rows)).toEqual(cells(theirs));
    expect(theirs[0]).toEqual(["NAME", "PROVIDER", "DESIRED", "PHASE", "PHONE", "READY", "AGE"]);
    expect(rows.find((row) => row[0] === "line")).toEqual(["line", "waha", "Connected", "Connected", PHONE, "True", expect.stringMatching(/^\d+[smh]/), expect.any(String)]);
    const ready = (await kube.find<{ metadata: { name: string }; status?: { conditions?: { type: string; message: string }[] } }>(
      { group: "wa-operator.io", version: "v1alpha1", plural: "whatsappinstances", kind: "WhatsAppInstance", namespaced: true },
      namespace,
      "line",
    ))?.status?.conditions?.find((entry) => entry.type === "Ready")?.message;
    expect(rows.find((row) => row[0] === "line")?.[7]).toBe(ready);
  });

  it("status NAME shows one; -A adds NAMESPACE; an unknown NAME exits 1; an empty namespace says so", async () => {
    const one = table((await plugin(["status", "line", "-n", namespace])).stdout);
    expect(one.map((row) => row[0])).toEqual(["NAME", "line"]);
    const all = table((await plugin(["status", "-A"])).stdout);
    expect(all[0]?.slice(0, 2)).toEqual(["NAMESPACE", "NAME"]);
    expect(all.some((row) => row[0] === namespace && row[1] === "line")).toBe(true);
    const missing = await plugin(["status", "ghost", "-n", namespace]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`error: whatsappinstance "ghost" not found in namespace "${namespace}"\n`);
    const empty = await createNamespace("plugin-empty");
    const none = await plugin(["status", "-n", empty]);
    expect(none).toEqual({ code: 0, stdout: "", stderr: `No WhatsAppInstances found in ${empty} namespace.\n` });
  });

  it("takes the namespace from the kubeconfig context when -n is absent", async () => {
    const kubeconfig = path.join(scratch, "kubeconfig-with-namespace");
    writeFileSync(kubeconfig, readFileSync(kubeconfigPath()));
    const env = { ...process.env, KUBECONFIG: kubeconfig };
    await new Promise<void>((resolve, reject) =>
      execFile("kubectl", ["config", "set-context", "--current", `--namespace=${namespace}`], { env }, (error) => (error ? reject(error) : resolve())),
    );
    const rows = table((await plugin(["status"], env)).stdout);
    expect(rows.map((row) => row[0])).toContain("line");
  });

  it("runs as a kubectl plugin: kubectl whatsapp status finds kubectl-whatsapp on PATH", async () => {
    const bin = path.join(scratch, "bin");
    rmSync(bin, { recursive: true, force: true });
    mkdirSync(bin);
    const shim = path.join(bin, "kubectl-whatsapp");
    writeFileSync(shim, `#!/bin/sh\nexec "${process.execPath}" "${PLUGIN}" "$@"\n`);
    chmodSync(shim, 0o755);
    const savedPath = process.env.PATH;
    process.env.PATH = `${bin}${path.delimiter}${savedPath}`;
    try {
      const listed = await kubectl(["plugin", "list"]);
      expect(listed.stdout).toContain(shim);
      const rows = table(await kubectlOk(["whatsapp", "status", "-n", namespace]));
      expect(rows.map((row) => row[0])).toContain("line");
    } finally {
      process.env.PATH = savedPath;
    }
  });
});

describe("kubectl whatsapp status -o json|yaml", () => {
  it("prints the same facts as the table, as {items: [...]}, in JSON and in YAML", async () => {
    const json = await plugin(["status", "-n", namespace, "-o", "json"]);
    expect(json.code).toBe(0);
    const document = JSON.parse(json.stdout) as { items: { namespace: string; name: string; provider: string; phase?: string; phoneNumber?: string; ready?: string; message?: string }[] };
    const rows = table((await plugin(["status", "-n", namespace])).stdout);
    expect(document.items.map((item) => item.name)).toEqual(rows.slice(1).map((row) => row[0]));
    expect(document.items.find((item) => item.name === "line")).toMatchObject({ namespace, provider: "waha", phase: "Connected", phoneNumber: PHONE, ready: "True" });
    const yaml = await plugin(["status", "line", "-n", namespace, "--output=yaml"]);
    expect(yaml.code).toBe(0);
    expect(parseYaml(yaml.stdout)).toEqual({ items: document.items.filter((item) => item.name === "line") });
  });

  it("prints an empty list, not a message, for a namespace without instances; refuses other formats", async () => {
    const empty = await createNamespace("plugin-json-empty");
    expect(await plugin(["status", "-n", empty, "-o", "json"])).toEqual({ code: 0, stdout: '{\n    "items": []\n}\n', stderr: "" });
    const wide = await plugin(["status", "-n", namespace, "-o", "wide"]);
    expect(wide.code).toBe(2);
    expect(wide.stderr).toBe('error: -o/--output must be one of table, json, yaml, not "wide"\n');
  });
});

describe("kubectl whatsapp providers | events | version", () => {
  it("providers lists the namespace's WhatsAppProviders and the ClusterWhatsAppProviders, with Ready, version, use and rate limit as the objects say", async () => {
    const cluster = `plugin-pool-${namespace}`;
    await kubectlOk(
      ["apply", "-f", "-"],
      `apiVersion: wa-operator.io/v1alpha1
kind: ClusterWhatsAppProvider
metadata: {name: ${cluster}}
spec: {type: waha, url: "http://127.0.0.1:9", credentialsSecretRef: {name: waha-key, namespace: ${namespace}, key: api-key}, maxInstances: 4, rateLimit: {requestsPerSecond: 3, burst: 6}}`,
    );
    try {
      const waha = await eventually("the provider Ready and counted", async () => {
        const object = JSON.parse(await kubectlOk(["get", "wap", "waha", "-n", namespace, "-o", "json"])) as { status?: { instances?: number; conditions?: { type: string; status: string }[] } };
        return object.status?.conditions?.some((entry) => entry.type === "Ready" && entry.status === "True") && object.status.instances !== undefined ? object : undefined;
      });
      const result = await plugin(["providers", "-n", namespace]);
      expect(result.code).toBe(0);
      const rows = table(result.stdout);
      expect(rows[0]).toEqual(["KIND", "NAMESPACE", "NAME", "TYPE", "READY", "VERSION", "USED", "LINKED", "STARTING", "RATE", "AGE", "MESSAGE"]);
      expect(rows.find((row) => row[2] === "waha")?.slice(0, 10)).toEqual(["WhatsAppProvider", namespace, "waha", "waha", "True", expect.any(String), String(waha.status?.instances), "", "", "10/s burst 20"]);
      expect(rows.find((row) => row[2] === cluster)?.slice(0, 4)).toEqual(["ClusterWhatsAppProvider", "-", cluster, "waha"]);
      expect(rows.find((row) => row[2] === cluster)?.[6]).toMatch(/^(\d+|\?)\/4$/);
      expect(rows.find((row) => row[2] === cluster)?.[9]).toBe("3/s burst 6");
      const json = JSON.parse((await plugin(["providers", "-n", namespace, "-o", "json"])).stdout) as { items: { kind: string; name: string; ready?: string }[] };
      expect(json.items.find((item) => item.name === "waha")).toMatchObject({ kind: "WhatsAppProvider", ready: "True" });
    } finally {
      await kubectlOk(["delete", "clusterwhatsappprovider", cluster, "--wait=false"]);
    }
  });

  it("events NAME shows the instance's Events as kubectl has them, newest on the last line; an unknown NAME exits 1", async () => {
    const listed = JSON.parse(await kubectlOk(["get", "events", "-n", namespace, "--field-selector", "involvedObject.kind=WhatsAppInstance,involvedObject.name=line", "-o", "json"])) as {
      items: { reason: string; lastTimestamp?: string; eventTime?: string; count?: number }[];
    };
    expect(listed.items.length).toBeGreaterThan(0);
    const result = await plugin(["events", "line", "-n", namespace]);
    expect(result.code).toBe(0);
    const [header, ...lines] = result.stdout.trimEnd().split("\n");
    expect(header?.split(/\s{2,}/)).toEqual(["LAST SEEN", "TYPE", "REASON", "COUNT", "MESSAGE"]);
    const reasons = lines.map((line) => line.split(/\s+/)[2]);
    expect([...reasons].sort()).toEqual(listed.items.map((item) => item.reason).sort());
    expect(reasons).toContain("Connected");
    // Oldest first: the JSON's lastSeen times never go back.
    const json = JSON.parse((await plugin(["events", "line", "-n", namespace, "-o", "json"])).stdout) as { items: { lastSeen: string; reason: string }[] };
    const times = json.items.map((item) => Date.parse(item.lastSeen));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(json.items.map((item) => item.reason)).toEqual(reasons);
    const missing = await plugin(["events", "ghost", "-n", namespace]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`error: whatsappinstance "ghost" not found in namespace "${namespace}"\n`);
  });

  it("version prints the plugin's version and the operator's, from its Deployment (no Pod needs to run)", async () => {
    await apply(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: wa-operator
  labels: {app.kubernetes.io/name: wa-operator, app.kubernetes.io/version: "9.8.7"}
spec:
  replicas: 0
  selector: {matchLabels: {app.kubernetes.io/name: wa-operator}}
  template:
    metadata: {labels: {app.kubernetes.io/name: wa-operator}}
    spec: {containers: [{name: operator, image: "ghcr.io/wa-operator/wa-operator:9.8.7"}]}`);
    const result = await plugin(["version", "-n", namespace]);
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe(`kubectl-whatsapp ${JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")).version}`);
    expect(lines).toContain(`wa-operator 9.8.7 (deployment ${namespace}/wa-operator, image ghcr.io/wa-operator/wa-operator:9.8.7)`);
  });
});

describe("kubectl whatsapp <TAB>", () => {
  it("kubectl completes instance names through kubectl_complete-whatsapp, in the namespace typed", async () => {
    const bin = path.join(scratch, "completion-bin");
    rmSync(bin, { recursive: true, force: true });
    mkdirSync(bin);
    writeFileSync(path.join(bin, "kubectl-whatsapp"), `#!/bin/sh\nexec "${process.execPath}" "${PLUGIN}" "$@"\n`);
    // What the release archive ships (scripts/plugin-dist.ts).
    writeFileSync(path.join(bin, "kubectl_complete-whatsapp"), '#!/bin/sh\nexec kubectl-whatsapp __complete "$@"\n');
    for (const file of ["kubectl-whatsapp", "kubectl_complete-whatsapp"]) chmodSync(path.join(bin, file), 0o755);
    const savedPath = process.env.PATH;
    process.env.PATH = `${bin}${path.delimiter}${savedPath}`;
    try {
      // kubectl's own completion entry point, as its bash and zsh scripts call it.
      const names = await kubectlOk(["__complete", "whatsapp", "qr", "-n", namespace, ""]);
      const lines = names.trimEnd().split("\n");
      expect(lines).toContain("line");
      expect(lines).toContain("once");
      expect(lines.at(-1)).toBe(":4");
      const commands = await kubectlOk(["__complete", "whatsapp", "dis"]);
      expect(commands.split("\n")[0]).toMatch(/^disconnect\t/);
    } finally {
      process.env.PATH = savedPath;
    }
  });
});

describe("kubectl whatsapp disconnect | connect | logout | restart", () => {
  const spec = async (name: string, field: string) => (await kubectlOk(["get", "wai", name, "-n", namespace, "-o", `jsonpath={.spec.${field}}`])).trim();
  const phase = (name: string, wanted: string) => instanceWhere(kube, namespace, name, wanted, (object) => object.status?.phase === wanted);

  it("disconnect sets spec.state to Disconnected, and the operator stops the session", async () => {
    const result = await plugin(["disconnect", "line", "-n", namespace]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^whatsappinstance\.wa-operator\.io\/line patched \(spec\.state: Connected → Disconnected\)/);
    expect(await spec("line", "state")).toBe("Disconnected");
    await phase("line", "Disconnected");
    const again = await plugin(["disconnect", "line", "-n", namespace]);
    expect(again.stdout).toContain("no change");
  });

  it("connect sets it back to Connected, and the kept link reconnects", async () => {
    const result = await plugin(["connect", "line", "-n", namespace]);
    expect(result.code).toBe(0);
    expect(await spec("line", "state")).toBe("Connected");
    await phase("line", "Connected");
  });

  it("restart sets spec.restartRequestedAt to now (RFC 3339, seconds), and the operator carries it out once", async () => {
    const before = Date.now();
    const result = await plugin(["restart", "line", "-n", namespace]);
    expect(result.code).toBe(0);
    const requested = await spec("line", "restartRequestedAt");
    expect(requested).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    expect(Date.parse(requested)).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(Date.parse(requested)).toBeLessThanOrEqual(Date.now());
    expect(result.stdout).toContain(`spec.restartRequestedAt: ${requested}`);
    await instanceWhere(kube, namespace, "line", "lastRestartAt recorded", (object) => object.status?.lastRestartAt === requested);
    // A second restart in the same second still asks for a new one.
    const next = await plugin(["restart", "line", "-n", namespace]);
    expect(next.code).toBe(0);
    expect(Date.parse(await spec("line", "restartRequestedAt"))).toBeGreaterThan(Date.parse(requested));
  });

  it("logout sets spec.state to LoggedOut, and the link is removed", async () => {
    const result = await plugin(["logout", "line", "-n", namespace]);
    expect(result.code).toBe(0);
    expect(await spec("line", "state")).toBe("LoggedOut");
    const loggedOut = await phase("line", "LoggedOut");
    expect(loggedOut.status?.phoneNumber).toBeUndefined();
  });

  it("refuses a missing NAME, extra names and unknown commands or flags with exit code 2", async () => {
    for (const args of [
      ["restart"],
      ["logout", "a", "b"],
      ["frobnicate"],
      ["status", "--bogus"],
      ["qr", "x", "--timeout", "soon"],
      ["qr", "x", "--port", "8080"],
      ["qr", "x", "--web", "--once"],
      ["qr", "x", "--web", "--port", "http"],
      ["qr", "x", "--web", "--port", "70000"],
    ]) {
      const result = await plugin(args);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stderr, args.join(" ")).toMatch(/^error: /);
    }
    const missing = await plugin(["logout", "ghost", "-n", namespace]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`error: whatsappinstance "ghost" not found in namespace "${namespace}"\n`);
  });
});

const NODE20 = findNode20();

// What a krew user on the machine's Node 20 runs: the bundle of npm run plugin:dist.
describe.skipIf(!NODE20)(`the krew bundle on ${NODE20 ? `Node ${NODE20.version} (${NODE20.path})` : "Node 20 (skipped: no Node 20 on this machine)"}`, () => {
  let bundle: string;
  const run = (args: readonly string[]) => plugin(args, pluginEnv(), [(NODE20 as NonNullable<typeof NODE20>).path, bundle]);

  beforeAll(async () => {
    bundle = (await pluginDist({ out: path.join(scratch, "plugin-dist") })).bundle;
  }, 180_000);

  it("--help and --version", async () => {
    const help = await run(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: kubectl whatsapp COMMAND/);
    expect(await run(["--version"])).toEqual({ code: 0, stdout: `kubectl-whatsapp ${JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")).version}\n`, stderr: "" });
  });

  it("qr --once draws the emulator's current code; status -o json reads the instance", async () => {
    await applyInstance("node20");
    await instanceWhere(kube, namespace, "node20", "ScanQR", (object) => object.status?.phase === "ScanQR");
    const result = await eventually("a code to show", async () => {
      const attempt = await run(["qr", "node20", "-n", namespace, "--once"]);
      return attempt.code === 0 ? attempt : undefined;
    });
    const drawn = drawings(result.stdout);
    expect(drawn).toHaveLength(1);
    expect(scanMatrix(terminalQrToMatrix(drawn[0] as string))).toBe(waha.currentQr(session("node20")));
    const status = await run(["status", "node20", "-n", namespace, "-o", "json"]);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ items: [{ name: "node20", phase: "ScanQR", ready: "False" }] });
  });

  it("completes instance names (__complete, as kubectl_complete-whatsapp calls it)", async () => {
    const answer = await run(["__complete", "restart", "-n", namespace, "node"]);
    expect(answer).toEqual({ code: 0, stdout: "node20\n:4\n", stderr: "" });
  });
});
