/**
 * src/kube/config.ts's in-cluster config against the real kube-apiserver, as a Pod has it:
 * KUBERNETES_SERVICE_HOST/PORT, and a bound ServiceAccount token, the cluster's CA and the
 * namespace in a service-account directory.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { KubeClient } from "../../src/kube/client.ts";
import { loadKubeConfig } from "../../src/kube/config.ts";
import type { KubeObject, ResourceType } from "../../src/kube/resources.ts";
import { createNamespace, kubeconfigPath, kubectlOk } from "../support/kube.ts";

const SELF_SUBJECT_REVIEWS: ResourceType = { group: "authentication.k8s.io", version: "v1", plural: "selfsubjectreviews", kind: "SelfSubjectReview", namespaced: false };

const dir = mkdtempSync(path.join(tmpdir(), "wa-operator-in-cluster-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the in-cluster config", () => {
  it("reaches the API server as the Pod's ServiceAccount, verifying it with the service account's ca.crt", async () => {
    const admin = await loadKubeConfig({ file: kubeconfigPath() });
    const serviceAccountDir = path.join(dir, "serviceaccount");
    mkdirSync(serviceAccountDir);
    // The test cluster runs no serviceaccount controller to make a namespace's "default".
    const namespace = await createNamespace("in-cluster");
    await kubectlOk(["create", "serviceaccount", "pod", "-n", namespace]);
    writeFileSync(path.join(serviceAccountDir, "token"), await kubectlOk(["create", "token", "pod", "-n", namespace, "--duration=10m"]));
    writeFileSync(path.join(serviceAccountDir, "ca.crt"), admin.cluster.ca ?? "");
    writeFileSync(path.join(serviceAccountDir, "namespace"), `${namespace}\n`);
    const server = new URL(admin.cluster.server);
    const config = await loadKubeConfig({
      env: { KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port },
      home: path.join(dir, "home-without-kubeconfig"),
      serviceAccountDir,
    });
    expect(config.source).toBe("the in-cluster config");
    expect(config.namespace).toBe(namespace);
    const review = await new KubeClient(config).create<KubeObject & { status: { userInfo: { username: string } } }>(SELF_SUBJECT_REVIEWS, undefined, {
      apiVersion: "authentication.k8s.io/v1",
      kind: "SelfSubjectReview",
    });
    expect(review.status.userInfo.username).toBe(`system:serviceaccount:${namespace}:pod`);
  });
});
