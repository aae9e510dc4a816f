/**
 * Test helpers against the real local API server: a client, kubectl, the CRDs,
 * a namespace per test file, and bounded waits on what a user would see.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { promisify } from "node:util";
import { inject } from "vitest";
import type { KubeClient } from "../../src/kube/client.ts";
import { INSTANCES, type KubeObject, type ResourceType } from "../../src/kube/resources.ts";
import type { InstanceObject } from "../../src/controllers/context.ts";
import { kubeClientOf } from "./kube-config.ts";
import { eventually } from "./wait.ts";

const run = promisify(execFile);
export const REPO = path.resolve(import.meta.dirname, "..", "..");

export function kubeconfigPath(): string {
  return inject("kubeconfig");
}

export function kubeClient(): KubeClient {
  return kubeClientOf(kubeconfigPath());
}

export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the built kubectl against the test cluster; never throws on a non-zero exit. */
export async function kubectl(args: readonly string[], input?: string): Promise<KubectlResult> {
  const env = { ...process.env, KUBECONFIG: kubeconfigPath(), PATH: `${inject("controlPlaneBinDir")}${path.delimiter}${process.env.PATH}` };
  try {
    const child = run("kubectl", [...args], { env, cwd: REPO, maxBuffer: 16 * 1024 * 1024 });
    if (input !== undefined) {
      child.child.stdin?.end(input);
    }
    const { stdout, stderr } = await child;
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === "number" ? failed.code : 1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

/** kubectl that must succeed. */
export async function kubectlOk(args: readonly string[], input?: string): Promise<string> {
  const result = await kubectl(args, input);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${result.code}): ${result.stderr}`);
  return result.stdout;
}

let crdsInstalled: Promise<void> | undefined;

/** Applies crds/ once per test file's process and waits until they are served. */
export function installCrds(): Promise<void> {
  crdsInstalled ??= (async () => {
    // Client-side, as `kubectl apply -k manifests/` does, so the two never trade warnings over field ownership.
    await kubectlOk(["apply", "-f", path.join(REPO, "crds")]);
    await kubectlOk(["wait", "--for=condition=Established", "--timeout=60s", "-f", path.join(REPO, "crds")]);
  })();
  return crdsInstalled;
}

/** A fresh namespace for one test file. */
export async function createNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString("hex")}`;
  await kubectlOk(["create", "namespace", name]);
  return name;
}

export { eventually } from "./wait.ts";

export async function getInstance(kube: KubeClient, namespace: string, name: string): Promise<InstanceObject | undefined> {
  return kube.find<InstanceObject>(INSTANCES, namespace, name);
}

/** Waits until the instance's status satisfies `test`, returning it. */
export function instanceWhere(
  kube: KubeClient,
  namespace: string,
  name: string,
  what: string,
  test: (instance: InstanceObject) => boolean,
  timeoutMs?: number,
): Promise<InstanceObject> {
  let last: InstanceObject | undefined;
  return eventually(
    `${namespace}/${name}: ${what}`,
    async () => {
      const instance = await getInstance(kube, namespace, name);
      last = instance;
      return instance && test(instance) ? instance : undefined;
    },
    timeoutMs,
  ).catch((error: Error) => {
    // Name what was there instead, so a timeout says which state the instance stayed in.
    const seen = last ? `phase ${last.status?.phase ?? "-"}; ${(last.status?.conditions ?? []).map((entry) => `${entry.type}=${entry.status} ${entry.reason}`).join(", ")}` : "absent";
    throw new Error(`${error.message}; last seen: ${seen}`);
  });
}

export function condition(object: KubeObject & { status?: { conditions?: { type: string; status: string; reason: string; message: string }[] } }, type: string) {
  return object.status?.conditions?.find((entry) => entry.type === type);
}

/** Events recorded for an object, as `kubectl describe` lists them. */
export async function eventsFor(kube: KubeClient, namespace: string, name: string): Promise<{ type: string; reason: string; message: string; count: number }[]> {
  const list = await kube.list<KubeObject & { involvedObject: { name: string }; type: string; reason: string; message: string; count: number }>(
    { group: "", version: "v1", plural: "events", kind: "Event", namespaced: true },
    namespace,
  );
  return list.items.filter((event) => event.involvedObject.name === name).map(({ type, reason, message, count }) => ({ type, reason, message, count }));
}

/**
 * The reasons of an object's Events once all of `expected` are among them: the operator
 * sends Events in the background, so they may trail the status they explain.
 */
export async function eventReasonsWith(kube: KubeClient, namespace: string, name: string, expected: readonly string[]): Promise<string[]> {
  return eventually(`Events ${expected.join(", ")} for ${name}`, async () => {
    const reasons = (await eventsFor(kube, namespace, name)).map((event) => event.reason);
    return expected.every((reason) => reasons.includes(reason)) ? reasons : undefined;
  });
}

export type { ResourceType };
