import { describe, expect, it } from "vitest";
import { describeDeployment, imageTag, versionText, type DeploymentObject } from "./operator-version.ts";

const deployment = (labels: Record<string, string>, image: string): DeploymentObject => ({
  metadata: { name: "wa-operator", namespace: "wa-operator-system", labels },
  spec: { template: { spec: { containers: [{ name: "sidecar", image: "busybox:1" }, { name: "operator", image }] } } },
});

describe("the operator's version, from its Deployment", () => {
  it.each([
    ["ghcr.io/wa-operator/wa-operator:0.2.0", "0.2.0"],
    ["localhost:5000/wa-operator:dev", "dev"],
    ["localhost:5000/wa-operator", undefined],
    ["ghcr.io/wa-operator/wa-operator:0.2.0@sha256:abcd", "0.2.0"],
    ["ghcr.io/wa-operator/wa-operator@sha256:abcd", undefined],
  ])("the tag of %s is %s", (image, tag) => {
    expect(imageTag(image)).toBe(tag);
  });

  it("reads app.kubernetes.io/version first, else the operator container's image tag", () => {
    expect(describeDeployment(deployment({ "app.kubernetes.io/version": "0.2.0" }, "ghcr.io/wa-operator/wa-operator:dev")).version).toBe("0.2.0");
    expect(describeDeployment(deployment({}, "ghcr.io/wa-operator/wa-operator:0.1.9"))).toEqual({
      namespace: "wa-operator-system",
      name: "wa-operator",
      version: "0.1.9",
      image: "ghcr.io/wa-operator/wa-operator:0.1.9",
    });
  });

  it("prints the plugin's version, then each operator found, or that none was", () => {
    expect(versionText("0.2.0", [])).toBe("kubectl-whatsapp 0.2.0\nwa-operator: no Deployment labelled app.kubernetes.io/name=wa-operator found\n");
    expect(versionText("0.2.0", [{ namespace: "ops", name: "wa-operator", version: "0.1.0", image: "wa-operator:0.1.0" }])).toBe(
      "kubectl-whatsapp 0.2.0\nwa-operator 0.1.0 (deployment ops/wa-operator, image wa-operator:0.1.0)\n",
    );
  });
});
