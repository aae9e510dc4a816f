// Proves the local control plane started by test/support/global-setup.ts is a working
// cluster: the apiserver is ready and the pinned version, the built kubectl is on PATH,
// and kube-controller-manager runs the garbage collector and the namespace controller.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { delimiter } from "node:path";
import { promisify } from "node:util";
import { ApiException, CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { beforeAll, describe, expect, inject, it } from "vitest";

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

const isNotFound = (err: unknown): boolean => err instanceof ApiException && err.code === 404;
const suffix = () => randomBytes(4).toString("hex");

describe("local control plane", () => {
  let core: CoreV1Api;

  beforeAll(() => {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    core = kc.makeApiClient(CoreV1Api);
  });

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
    const owner = await core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: ownerName }, data: { role: "owner" } },
    });
    await core.createNamespacedConfigMap({
      namespace,
      body: {
        metadata: {
          name: dependentName,
          ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: ownerName, uid: owner.metadata!.uid! }],
        },
        data: { role: "dependent" },
      },
    });

    await core.deleteNamespacedConfigMap({ name: ownerName, namespace });

    await eventually("the dependent ConfigMap to be garbage-collected", async () => {
      try {
        await core.readNamespacedConfigMap({ name: dependentName, namespace });
        return undefined;
      } catch (err) {
        if (isNotFound(err)) return true;
        throw err;
      }
    });
  });

  it("finishes deleting a namespace with content in it (namespace controller)", async () => {
    const name = `ns-delete-${suffix()}`;
    await kubectl("create", "namespace", name);
    await core.createNamespacedConfigMap({ namespace: name, body: { metadata: { name: "content" } } });

    // kubectl waits until the namespace is really gone (the controller empties it and
    // removes the `kubernetes` finalizer).
    await kubectl("delete", "namespace", name, "--wait=true", "--timeout=60s");

    await expect(core.readNamespace({ name })).rejects.toSatisfy(isNotFound);
  });
});
