/**
 * Talking to a provider politely, end to end: a provider's 429 with Retry-After stops every
 * request to it until the time has passed (the instance says RateLimited meanwhile), and a
 * provider's rateLimit holds for 200 instances reconciling at once, measured from the
 * times the emulator received each request.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Operator } from "../../../src/operator.ts";
import { INSTANCES, PROVIDERS } from "../../../src/kube/resources.ts";
import type { InstanceObject, ProviderObject } from "../../../src/controllers/context.ts";
import { condition, createNamespace, eventually, installCrds, instanceWhere, kubeClient } from "../../support/kube.ts";
import { startOperator } from "../../support/operator.ts";
import { WahaEmulator } from "../../emulators/waha/emulator.ts";
import { faultyWaha } from "../../emulators/waha/faults.ts";
import type { FaultInjector } from "../../emulators/shared/fault-injector.ts";
import { apply, busiestWindow, createSecret, eventNamed, instanceManifest, phaseOf, readyIn, TimedWappfyEmulator } from "./support.ts";

const kube = kubeClient();
/** How much loopback delivery may bunch requests up between the operator's send and the emulator's clock. */
const ARRIVAL_JITTER_S = 0.04;

beforeAll(async () => {
  await installCrds();
});

describe("a 429 with Retry-After", () => {
  const wappfy = new TimedWappfyEmulator({ apiKeys: ["wappfy-key"], startDelayMs: 0, requestsPerMinute: 1_000_000 });
  let namespace: string;
  let operator: Operator;

  beforeAll(async () => {
    namespace = await createNamespace("retry-after");
    const url = await wappfy.start();
    await createSecret(namespace, "wappfy-key", { "api-key": "wappfy-key" });
    await apply(
      namespace,
      `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: wappfy}
spec: {type: wappfy, url: "${url}", credentialsSecretRef: {name: wappfy-key, key: api-key}}`,
    );
    // The provider's health is checked once: the instance is then the only one talking to Wappfy.
    operator = await startOperator(namespace, { providerCheckInterval: "1h" });
  });

  afterAll(async () => {
    await operator?.stop();
    await wappfy.stop();
  });

  it("pauses every request to the provider until Retry-After has passed, shows Ready False RateLimited with a Warning Event, then carries on", async () => {
    await apply(namespace, instanceManifest("steady", "wappfy"));
    const id = (await phaseOf(kube, namespace, "steady", "ScanQR")).status?.providerInstanceId as string;
    wappfy.scan(id, "5511999998888");
    await readyIn(kube, namespace, "steady", "Connected");
    // The provider recounts its instances a second after one appears (with its health check): wait for
    // that, so that the instance is then the only one talking to Wappfy.
    await eventually("the provider counts the instance", async () => {
      const provider = await kube.get<ProviderObject>(PROVIDERS, namespace, "wappfy");
      return provider.status?.instances === 1 ? true : undefined;
    });

    // The next request (the instance's 1 s poll) gets Wappfy's 429 with Retry-After: 2.
    wappfy.throttleNext(2);
    const limited = await instanceWhere(kube, namespace, "steady", "Ready False RateLimited", (object) => condition(object, "Ready")?.reason === "RateLimited");
    expect(condition(limited, "Ready")).toMatchObject({ status: "False", message: expect.stringContaining("429") });
    // Waiting out a rate limit needs nobody: not Stalled, still Reconciling.
    expect(condition(limited, "Stalled")?.status).toBe("False");
    expect(condition(limited, "Reconciling")?.status).toBe("True");
    expect(await eventNamed(kube, namespace, "steady", "Warning", "RateLimited")).toContain("wappfy is rate limiting");

    await readyIn(kube, namespace, "steady", "Connected");
    const refused = wappfy.arrivals.findIndex((call) => call.status === 429);
    expect(refused).toBeGreaterThanOrEqual(0);
    const at = wappfy.arrivals[refused]?.at as number;
    const after = wappfy.arrivals.slice(refused + 1);
    expect(after.length).toBeGreaterThan(0);
    // Nothing reached Wappfy before Retry-After had passed; the first request after it came soon after.
    expect(after.filter((call) => call.at < at + 2000)).toEqual([]);
    expect((after[0]?.at as number) - at).toBeLessThan(2000 + 3000);
  });
});

describe("a provider that pauses for a day, and one for ever", () => {
  /** Requests arriving this soon after the first 429 was written were already on the wire. */
  const GRACE_MS = 1000;
  const PER_PROVIDER = 6;
  const healthy = new WahaEmulator({ apiKey: "waha-open-key" });
  const paused = (["86400", "1e10"] as const).map((retryAfter) => ({ retryAfter, waha: new WahaEmulator({ apiKey: `waha-paused-${retryAfter}` }), front: undefined as FaultInjector | undefined }));
  let namespace: string;
  let operator: Operator;

  const provider = (name: string, url: string, secret: string) => `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: ${name}}
spec: {type: waha, url: "${url}", credentialsSecretRef: {name: ${secret}, key: api-key}}`;

  beforeAll(async () => {
    namespace = await createNamespace("paused");
    await createSecret(namespace, "open-key", { "api-key": "waha-open-key" });
    await apply(namespace, provider("open", await healthy.start(), "open-key"));
    for (const [index, entry] of paused.entries()) {
      await entry.waha.start();
      entry.front = faultyWaha(entry.waha, { paused: { retryAfter: entry.retryAfter } });
      await createSecret(namespace, `paused-${index}-key`, { "api-key": `waha-paused-${entry.retryAfter}` });
      await apply(namespace, provider(`paused-${index}`, await entry.front.start(), `paused-${index}-key`));
    }
    // Few workers: a provider that held them through its pause would leave none for the open one.
    operator = await startOperator(namespace, { concurrency: "4" });
  });

  afterAll(async () => {
    await operator?.stop();
    for (const entry of paused) {
      await entry.front?.stop();
      await entry.waha.stop();
    }
    await healthy.stop();
  });

  it("shows the paused providers' instances RateLimited, sends them nothing inside the window, and the open provider's instances still reach ScanQR", async () => {
    const names = (prefix: string) => Array.from({ length: PER_PROVIDER }, (_, index) => `${prefix}-${index}`);
    const manifests = [
      ...paused.flatMap((_, index) => names(`paused-${index}`).map((name) => instanceManifest(name, `paused-${index}`))),
      ...names("open").map((name) => instanceManifest(name, "open")),
    ];
    await apply(namespace, manifests.join("---\n"));

    for (const name of names("open")) await phaseOf(kube, namespace, name, "ScanQR");
    for (const [index, entry] of paused.entries()) {
      for (const name of names(`paused-${index}`)) {
        const limited = await instanceWhere(kube, namespace, name, "Ready False RateLimited", (object) => condition(object, "Ready")?.reason === "RateLimited");
        expect(condition(limited, "Stalled")?.status, name).toBe("False");
      }
      const calls = entry.front?.records ?? [];
      const first = calls.find((call) => call.status === 429);
      expect(first, `a 429 with Retry-After: ${entry.retryAfter}`).toBeDefined();
      const windowOpensAt = (first?.doneAt ?? 0) + GRACE_MS;
      expect(calls.filter((call) => call.at > windowOpensAt).map((call) => `${call.method} ${call.path}`), `requests inside Retry-After: ${entry.retryAfter}`).toEqual([]);
      // At most one request per in-flight slot was on the wire when the first 429 came back.
      expect(calls.length).toBeLessThanOrEqual(16);
      // The provider behind the pause saw nothing at all.
      expect(entry.waha.sessions()).toEqual([]);
    }
  }, 90_000);
});

describe("rateLimit with 200 instances", () => {
  const R = 50;
  const B = 10;
  const COUNT = 200;
  const API_KEY = "waha-crowd-key";
  let waha: ChildProcess;
  let url: string;
  let namespace: string;
  let operator: Operator;

  beforeAll(async () => {
    // The emulator runs in its own process, so the times it records are when requests arrived.
    waha = spawn(process.execPath, [fileURLToPath(new URL("./waha-process.ts", import.meta.url))], {
      env: { ...process.env, WAHA_API_KEY: API_KEY },
      stdio: ["ignore", "pipe", "inherit"],
    });
    url = await firstLine(waha);
    namespace = await createNamespace("crowd");
    await createSecret(namespace, "waha-key", { "api-key": API_KEY });
    await apply(
      namespace,
      `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: crowded}
spec:
  type: waha
  url: "${url}"
  credentialsSecretRef: {name: waha-key, key: api-key}
  rateLimit: {requestsPerSecond: ${R}, burst: ${B}}`,
    );
    // 32 workers compete for the provider's tokens; slow re-polls keep the count to the way up to ScanQR.
    operator = await startOperator(namespace, { concurrency: "32", pairingPollInterval: "10m", pollInterval: "10m", providerCheckInterval: "1h" });
  });

  afterAll(async () => {
    await operator?.stop();
    if (waha && waha.exitCode === null) {
      const exited = new Promise((resolve) => waha.once("exit", resolve));
      waha.kill("SIGTERM");
      await exited;
    }
  });

  /** What the emulator process recorded, through its unauthenticated test hooks. */
  async function emulatorState(): Promise<{ calls: { method: string; path: string; at: number }[]; sessions: { name: string; status: string }[] }> {
    const [calls, sessions] = await Promise.all(["calls", "sessions"].map(async (what) => (await fetch(`${url}/__emulator/${what}`)).json()));
    return { calls, sessions } as { calls: { method: string; path: string; at: number }[]; sessions: { name: string; status: string }[] };
  }

  it(`no sliding 1 s window ever sees more than burst + requestsPerSecond (${B} + ${R}) requests, and all ${COUNT} instances reach ScanQR`, async () => {
    const names = Array.from({ length: COUNT }, (_, index) => `line-${String(index).padStart(3, "0")}`);
    const started = Date.now();
    await apply(namespace, names.map((name) => instanceManifest(name, "crowded")).join("---\n"));
    await eventually(
      `all ${COUNT} instances in ScanQR`,
      async () => {
        const list = await kube.list<InstanceObject>(INSTANCES, namespace);
        return list.items.filter((item) => item.status?.phase === "ScanQR").length === COUNT ? true : undefined;
      },
      100_000,
      1000,
    );
    const elapsed = Date.now() - started;
    const { calls, sessions } = await emulatorState();
    expect(sessions.filter((session) => session.status === "SCAN_QR_CODE")).toHaveLength(COUNT);

    const times = calls.map((call) => call.at);
    const busiest = busiestWindow(times, 1000);
    // The bucket allows B + R·t sends in any t seconds. Times are taken on arrival, and loopback
    // delivery can bunch sends up by a few tens of ms, so 1 s of arrivals may hold up to
    // 1.04 s of sends: B + R·1.04. Without the limiter the emulator would see hundreds.
    expect(busiest.count, `busiest 1 s window from ${new Date(busiest.from).toISOString()}`).toBeLessThanOrEqual(Math.floor(B + R * (1 + ARRIVAL_JITTER_S)));
    // The limit was what set the pace: the operator kept the provider busy right up to it.
    expect(busiest.count).toBeGreaterThanOrEqual(R * 0.7);
    // Each instance needs at least its create (which starts it) and its code: the limiter held over all of them.
    expect(times.length).toBeGreaterThanOrEqual(COUNT * 2);
    expect(elapsed).toBeGreaterThanOrEqual(((times.length - B) / R) * 1000 - 1000);
  }, 150_000);
});

/** The first line a child process prints (the emulator's URL). */
function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = "";
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      buffered += chunk;
      const end = buffered.indexOf("\n");
      if (end >= 0) resolve(buffered.slice(0, end).trim());
    });
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`the emulator process exited (${code}) before printing its URL`)));
  });
}
