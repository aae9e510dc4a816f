import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { EXIT, PluginError } from "./errors.ts";
import { completionSources, loadKubeContext } from "./kube-context.ts";

const dir = mkdtempSync(path.join(tmpdir(), "kube-context-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const kubeconfig = path.join(dir, "config");
writeFileSync(
  kubeconfig,
  stringify({
    clusters: [{ name: "c", cluster: { server: "https://c.example:6443" } }],
    users: [{ name: "u", user: { token: "t" } }],
    contexts: [
      { name: "dev", context: { cluster: "c", user: "u", namespace: "team-dev" } },
      { name: "bare", context: { cluster: "c", user: "u" } },
    ],
    "current-context": "dev",
  }),
);

describe("loadKubeContext", () => {
  it("the namespace: -n, else the context's, else default", async () => {
    expect(await loadKubeContext({ kubeconfig })).toMatchObject({ namespace: "team-dev", server: "https://c.example:6443" });
    expect((await loadKubeContext({ kubeconfig, namespace: "other" })).namespace).toBe("other");
    expect((await loadKubeContext({ kubeconfig, context: "bare" })).namespace).toBe("default");
  });

  it("a kubeconfig that cannot be used is a usage error (exit 2) saying what is wrong", async () => {
    const missing = loadKubeContext({ kubeconfig: path.join(dir, "missing") });
    await expect(missing).rejects.toBeInstanceOf(PluginError);
    await expect(missing).rejects.toMatchObject({ exitCode: EXIT.usage, message: `the kubeconfig ${path.join(dir, "missing")} does not exist` });
    await expect(loadKubeContext({ kubeconfig, context: "prod" })).rejects.toMatchObject({ exitCode: EXIT.usage, message: `the kubeconfig ${kubeconfig} has no context "prod"` });
  });

  it("completes the kubeconfig's contexts", async () => {
    expect(await completionSources().contexts({ kubeconfig })).toEqual(["dev", "bare"]);
  });
});
