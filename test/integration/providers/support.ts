/**
 * What the per-provider integration tests share: kubectl as a user types it, the Secrets
 * and Events a user reads, the "Stalled because unsupported" check every provider needs,
 * and a Wappfy emulator that timestamps every request it receives.
 */
import { expect } from "vitest";
import { SECRETS } from "../../../src/kube/resources.ts";
import type { SecretObject } from "../../../src/kube/secrets.ts";
import type { KubeClient } from "../../../src/kube/client.ts";
import type { InstanceObject } from "../../../src/controllers/context.ts";
import type { EmulatorRequest, Reply } from "../../emulators/shared/http.ts";
import { WappfyEmulator } from "../../emulators/wappfy/emulator.ts";
import type { Operator } from "../../../src/operator.ts";
import { condition, createNamespace, eventsFor, eventually, getInstance, installCrds, instanceWhere, kubectlOk } from "../../support/kube.ts";
import { decodeQrPng } from "../../emulators/shared/qr-png.ts";
import { startOperator } from "../../support/operator.ts";

/** kubectl apply -f - in the namespace. */
export function apply(namespace: string, manifest: string): Promise<string> {
  return kubectlOk(["apply", "-n", namespace, "-f", "-"], manifest);
}

export interface ProviderStage {
  readonly namespace: string;
  readonly operator: Operator;
}

/**
 * The stage most provider tests start from: the CRDs, a fresh namespace, the provider's
 * credentials Secret (key "api-key" unless given), a WhatsAppProvider named after its type
 * pointing at the emulator, and the operator watching that namespace.
 */
export async function stageProvider(options: {
  readonly type: string;
  /** The provider's name; also the namespace's prefix unless `prefix` is given. */
  readonly name: string;
  readonly prefix?: string;
  readonly url: string;
  readonly credentials: { readonly secret: string; readonly key?: string; readonly value: string };
  /** More Secrets the tests need, by name. */
  readonly secrets?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Operator settings other than the tests' fast defaults. */
  readonly settings?: Parameters<typeof startOperator>[1];
}): Promise<ProviderStage> {
  await installCrds();
  const namespace = await createNamespace(options.prefix ?? options.name);
  const key = options.credentials.key ?? "api-key";
  await createSecret(namespace, options.credentials.secret, { [key]: options.credentials.value });
  for (const [name, values] of Object.entries(options.secrets ?? {})) await createSecret(namespace, name, values);
  await apply(
    namespace,
    `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: ${options.name}}
spec: {type: ${options.type}, url: "${options.url}", credentialsSecretRef: {name: ${options.credentials.secret}, key: ${key}}}`,
  );
  return { namespace, operator: await startOperator(namespace, options.settings) };
}

/**
 * A WhatsAppInstance on `provider` (a WhatsAppProvider's name, or a ref naming its kind), with
 * the spec lines given (indented by two spaces).
 */
export function instanceManifest(name: string, provider: string | { readonly kind: string; readonly name: string }, spec = ""): string {
  const ref = typeof provider === "string" ? `{name: ${provider}}` : `{kind: ${provider.kind}, name: ${provider.name}}`;
  return `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: ${name}}
spec:
  providerRef: ${ref}
${spec}`;
}

/** kubectl patch wai NAME --type=merge -p PATCH. */
export function patchInstance(namespace: string, name: string, patch: unknown): Promise<string> {
  return kubectlOk(["patch", "wai", name, "-n", namespace, "--type=merge", "-p", JSON.stringify(patch)]);
}

/** kubectl create secret generic NAME --from-literal=KEY=VALUE, labelled so the operator may read it. */
export async function createSecret(namespace: string, name: string, values: Readonly<Record<string, string>>): Promise<string> {
  await kubectlOk(["create", "secret", "generic", name, "-n", namespace, ...Object.entries(values).map(([key, value]) => `--from-literal=${key}=${value}`)]);
  return kubectlOk(["label", "secret", name, "-n", namespace, "wa-operator.io/credential=true"]);
}

/**
 * Applies a ClusterWhatsAppProvider whose API key is `api-key` of a labelled Secret made in
 * `keysNamespace`; `spec` adds indented lines (allowedNamespaces, maxInstances…).
 */
export async function applyClusterProvider(options: {
  readonly name: string;
  readonly type: string;
  readonly url: string;
  readonly keysNamespace: string;
  readonly apiKey: string;
  readonly spec: string;
}): Promise<string> {
  await createSecret(options.keysNamespace, `${options.name}-key`, { "api-key": options.apiKey });
  return kubectlOk(
    ["apply", "-f", "-"],
    `apiVersion: wa-operator.io/v1alpha1
kind: ClusterWhatsAppProvider
metadata: {name: ${options.name}}
spec:
  type: ${options.type}
  url: "${options.url}"
  credentialsSecretRef: {name: ${options.name}-key, namespace: ${options.keysNamespace}, key: api-key}
${options.spec}`,
  );
}

/** A Secret's data, decoded; empty when the Secret does not exist. */
export async function secretData(kube: KubeClient, namespace: string, name: string): Promise<Record<string, Buffer>> {
  const secret = await kube.find<SecretObject>(SECRETS, namespace, name);
  return Object.fromEntries(Object.entries(secret?.data ?? {}).map(([key, value]) => [key, Buffer.from(value, "base64")]));
}

/** The `kubectl get wai NAME --no-headers` row, split into its columns (NAME PROVIDER DESIRED PHASE [PHONE] READY AGE). */
export async function row(namespace: string, name: string): Promise<string[]> {
  return (await kubectlOk(["get", "wai", name, "-n", namespace, "--no-headers"])).trim().split(/\s+/);
}

/** The reasons of the Events recorded for an object. */
export async function eventReasons(kube: KubeClient, namespace: string, name: string): Promise<string[]> {
  return (await eventsFor(kube, namespace, name)).map((event) => event.reason);
}

/** Waits for an Event of this type and reason, returning its message. */
export function eventNamed(kube: KubeClient, namespace: string, name: string, type: "Normal" | "Warning", reason: string): Promise<string> {
  return eventually(`${name}: ${type} Event ${reason}`, async () =>
    (await eventsFor(kube, namespace, name)).find((event) => event.type === type && event.reason === reason)?.message,
  );
}

/** Waits until the instance shows this phase. */
export function phaseOf(kube: KubeClient, namespace: string, name: string, phase: string, timeoutMs?: number): Promise<InstanceObject> {
  return instanceWhere(kube, namespace, name, `phase ${phase}`, (object) => object.status?.phase === phase, timeoutMs);
}

/** Waits until the instance is in its desired state: Ready True for the current generation. */
export function readyIn(kube: KubeClient, namespace: string, name: string, phase: string): Promise<InstanceObject> {
  return instanceWhere(
    kube,
    namespace,
    name,
    `${phase} and Ready`,
    (object) =>
      object.status?.phase === phase &&
      condition(object, "Ready")?.status === "True" &&
      object.status.observedGeneration === object.metadata.generation,
  );
}

/** Lets a few reconcile passes go by (the tests' poll interval is 1 s). */
export function severalPasses(ms = 2500): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface CallLog {
  readonly method: string;
  readonly path: string;
}

/**
 * Asserts what a user sees when the spec asks for something the provider cannot do:
 * Stalled/UnsupportedByProvider for the current generation, a message naming the provider
 * type and the operation, Ready False, a Warning InvalidSpec Event, and, over several
 * passes, not one request that would carry the operation out (`forbidden`, matched
 * against "METHOD /path"): the operator only keeps looking.
 */
export async function expectUnsupported(options: {
  readonly kube: KubeClient;
  readonly namespace: string;
  readonly name: string;
  readonly providerType: string;
  /** Words of the message naming the operation, e.g. "disconnecting". */
  readonly operation: string | RegExp;
  readonly calls: () => readonly CallLog[];
  /** Requests that would carry the operation out, or change anything for this instance. */
  readonly forbidden: RegExp;
  /** How many calls the log held before the spec was applied; by default, when the stall is first seen. */
  readonly since?: number;
}): Promise<InstanceObject> {
  const { kube, namespace, name } = options;
  const stalled = await instanceWhere(
    kube,
    namespace,
    name,
    "Stalled UnsupportedByProvider",
    (object) =>
      condition(object, "Stalled")?.status === "True" &&
      condition(object, "Stalled")?.reason === "UnsupportedByProvider" &&
      object.status?.observedGeneration === object.metadata.generation,
  );
  const before = options.since ?? options.calls().length;
  const message = condition(stalled, "Stalled")?.message ?? "";
  expect(message).toContain(`provider type ${options.providerType}`);
  if (typeof options.operation === "string") expect(message).toContain(options.operation);
  else expect(message).toMatch(options.operation);
  expect(condition(stalled, "Ready")).toMatchObject({ status: "False", reason: "UnsupportedByProvider" });
  expect(condition(stalled, "Reconciling")?.status).toBe("False");
  const warning = await eventNamed(kube, namespace, name, "Warning", "InvalidSpec");
  expect(warning).toContain(`provider type ${options.providerType}`);
  await severalPasses();
  const later = options.calls().slice(before).map((call) => `${call.method} ${call.path}`);
  expect(later.filter((call) => options.forbidden.test(call))).toEqual([]);
  return stalled;
}

/** One request as the emulator received it, with the wall-clock time of its arrival. */
export interface TimedCall extends CallLog {
  readonly at: number;
  readonly status: number;
}

/**
 * The Wappfy emulator, with the arrival time of every request it carries out and a way to
 * answer the next one with Wappfy's own 429 (RATE_LIMIT_EXCEEDED, Retry-After in seconds),
 * so a test can measure what the operator sends, and when.
 */
export class TimedWappfyEmulator extends WappfyEmulator {
  readonly arrivals: TimedCall[] = [];
  #throttleNext: number | undefined;

  /** Answers the next request with 429 and `Retry-After: seconds` instead of carrying it out. */
  throttleNext(seconds: number): void {
    this.#throttleNext = seconds;
  }

  protected override async handle(req: EmulatorRequest): Promise<Reply> {
    const at = Date.now();
    const throttle = this.#throttleNext;
    let reply: Reply;
    if (throttle !== undefined) {
      this.#throttleNext = undefined;
      reply = {
        status: 429,
        body: { error: { code: "RATE_LIMIT_EXCEEDED", message: "Rate limit exceeded, try again later" } },
        headers: { "Retry-After": String(throttle) },
      };
    } else {
      reply = await super.handle(req);
    }
    this.arrivals.push({ at, method: req.method, path: req.path, status: reply.status });
    return reply;
  }
}

/** The most requests that arrived within any window of `windowMs` (a sliding window over the arrival times). */
export function busiestWindow(times: readonly number[], windowMs = 1000): { count: number; from: number } {
  const sorted = [...times].sort((a, b) => a - b);
  let best = { count: 0, from: sorted[0] ?? 0 };
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    while ((sorted[end] as number) - (sorted[start] as number) >= windowMs) start++;
    if (end - start + 1 > best.count) best = { count: end - start + 1, from: sorted[start] as number };
  }
  return best;
}

/** The provider's id for an instance, from its status as a user reads it. */
export function providerIdOf(kube: KubeClient, namespace: string, name: string): Promise<string> {
  return eventually(`${name}: providerInstanceId`, async () => (await getInstance(kube, namespace, name))?.status?.providerInstanceId);
}

/** Waits until the instance's QR Secret holds a PNG that decodes to the code the emulator shows now; returns that code. */
export async function qrSecretShows(kube: KubeClient, namespace: string, name: string, currentQr: (id: string) => string | null | undefined): Promise<string> {
  const id = await providerIdOf(kube, namespace, name);
  return eventually(`${name}: QR Secret shows the current code`, async () => {
    const png = (await secretData(kube, namespace, `${name}-qr`))["qr.png"];
    const current = currentQr(id);
    return png && current && decodeQrPng(png) === current ? current : undefined;
  });
}
