// Proves the local control plane started by test/support/global-setup.ts is a working
// cluster: the apiserver is ready and the pinned version, the built kubectl is on PATH,
// and kube-controller-manager runs the garbage collector and the namespace controller.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { delimiter } from "node:path";
import { promisify } from "node:util";
import { describe, expect, inject, it } from "vitest";
import { isNotFound, type KubeClient } from "../../src/kube/client.ts";
import type { KubeObject, ResourceType } from "../../src/kube/resources.ts";
import { kubeClientOf } from "../support/kube-config.ts";

const run = promisify(execFile);
const kubeconfig = inject("kubeconfig");

async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run("kubectl", args, { env: { ...process.env, KUBECONFIG: kubeconfig } });
  return stdout;
}

/** The Kubernetes version pinned in hack/control-plane/go.mod, e.g. v1.36.3. */
function pinnedKubernetesVersion(): string {
  const gomod = readFileSync(new URL("../../hack/control-plane/go.mod", import.meta.url), "utf8");
  const m = /^\s*k8s\.io\/kubernetes (v\S+)/m.exec(gomod);
  if (!m?.[1]) throw new Error("k8s.io/kubernetes not found in hack/control-plane/go.mod");
  return m[1];
}

async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const suffix = () => randomBytes(4).toString("hex");
const CONFIG_MAPS: ResourceType = { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true };
const NAMESPACES: ResourceType = { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false };

describe("local control plane", () => {
  const kube: KubeClient = kubeClientOf(kubeconfig);

  it("exposes the kubeconfig and the built kubectl to tests", () => {
    expect(process.env.KUBECONFIG).toBe(kubeconfig);
    expect(process.env.PATH?.split(delimiter)[0]).toBe(inject("controlPlaneBinDir"));
  });

  it("is ready", async () => {
    expect((await kubectl("get", "--raw", "/readyz")).trim()).toBe("ok");
  });

  it("runs the pinned Kubernetes version, server and kubectl", async () => {
    const want = pinnedKubernetesVersion();
    const v = JSON.parse(await kubectl("version", "-o", "json")) as {
      clientVersion: { gitVersion: string };
      serverVersion: { gitVersion: string };
    };
    expect(v.serverVersion.gitVersion).toBe(want);
    expect(v.clientVersion.gitVersion).toBe(want);
    expect(inject("kubeApiserverVersion")).toBe(want);
  });

  it("garbage-collects dependents of a deleted owner (kube-controller-manager GC)", async () => {
    const namespace = "default";
    const ownerName = `gc-owner-${suffix()}`;
    const dependentName = `gc-dependent-${suffix()}`;
    const owner = await kube.create<KubeObject>(CONFIG_MAPS, namespace, { metadata: { name: ownerName }, data: { role: "owner" } });
    await kube.create(CONFIG_MAPS, namespace, {
      metadata: {
        name: dependentName,
        ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: ownerName, uid: owner.metadata.uid }],
      },
      data: { role: "dependent" },
    });

    await kube.delete(CONFIG_MAPS, namespace, ownerName);

    await eventually("the dependent ConfigMap to be garbage-collected", async () => ((await kube.find(CONFIG_MAPS, namespace, dependentName)) ? undefined : true));
  });

  it("finishes deleting a namespace with content in it (namespace controller)", async () => {
    const name = `ns-delete-${suffix()}`;
    await kubectl("create", "namespace", name);
    await kube.create(CONFIG_MAPS, name, { metadata: { name: "content" } });

    // kubectl waits until the namespace is really gone (the controller empties it and
    // removes the `kubernetes` finalizer).
    await kubectl("delete", "namespace", name, "--wait=true", "--timeout=60s");

    await expect(kube.get(NAMESPACES, undefined, name)).rejects.toSatisfy(isNotFound);
  });
});
