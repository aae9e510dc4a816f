/**
 * The release pipeline's parts that need the Go-built tools: actionlint (hack/go-tools/build.sh
 * actionlint) over .github/workflows/, and `scripts/release.ts chart` with the real helm, whose
 * package is what the workflow pushes. Nothing here talks to the API server.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { packageChart } from "../../scripts/release.ts";
import { goTool, runGoTool } from "../support/go-tools.ts";
import { REPO } from "../support/kube.ts";

const run = promisify(execFile);
const WORKFLOWS = path.join(REPO, ".github", "workflows");
const { version } = JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as { version: string };

let scratch: string;
beforeAll(async () => {
  scratch = mkdtempSync(path.join(tmpdir(), "release-"));
  await Promise.all([goTool("actionlint"), goTool("helm")]);
}, 600_000);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** actionlint without its shellcheck and pyflakes hooks, which it would run only where they happen to be installed. */
const actionlint = (args: readonly string[], cwd = REPO) => runGoTool("actionlint", ["-shellcheck=", "-pyflakes=", "-no-color", ...args], { cwd });

describe("actionlint", () => {
  it("finds nothing wrong in .github/workflows/*", async () => {
    const files = readdirSync(WORKFLOWS).filter((file) => /\.ya?ml$/.test(file));
    expect(files).toContain("release.yml");
    const result = await actionlint(files.map((file) => path.join(WORKFLOWS, file)));
    expect(result.stdout + result.stderr).toBe("");
    expect(result.code).toBe(0);
  });

  it("would catch a broken workflow (an unknown job output, a bad expression)", async () => {
    const broken = path.join(scratch, "repo", ".github", "workflows");
    mkdirSync(broken, { recursive: true });
    const workflow = readFileSync(path.join(WORKFLOWS, "release.yml"), "utf8").replace("needs.check.outputs.version", "needs.check.outputs.versoin");
    writeFileSync(path.join(broken, "release.yml"), workflow);
    const result = await actionlint([path.join(broken, "release.yml")], path.join(scratch, "repo"));
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("versoin");
  });
});

describe("scripts/release.ts chart (helm lint --strict, helm package)", () => {
  let tgz: string;
  let helmBin: string;
  const helmEnv = () => ({ HELM_CACHE_HOME: path.join(scratch, "cache"), HELM_CONFIG_HOME: path.join(scratch, "config"), HELM_DATA_HOME: path.join(scratch, "data") });
  beforeAll(async () => {
    helmBin = path.join(await goTool("helm"), "helm");
    const { stdout } = await run(process.execPath, [path.join(REPO, "scripts", "release.ts"), "chart", "--out", path.join(scratch, "chart"), "--helm", helmBin], { env: { ...process.env, ...helmEnv() } });
    tgz = stdout.trim().split("\n").at(-1) as string;
  }, 120_000);

  it("writes wa-operator-<version>.tgz whose Chart.yaml has package.json's version", async () => {
    expect(path.basename(tgz)).toBe(`wa-operator-${version}.tgz`);
    const { stdout } = await runGoTool("helm", ["show", "chart", tgz], { env: helmEnv() });
    expect(parse(stdout)).toMatchObject({ name: "wa-operator", version, appVersion: version });
  });

  it("has the generated README, shown by `helm show readme`", async () => {
    const { stdout, code } = await runGoTool("helm", ["show", "readme", tgz], { env: helmEnv() });
    expect(code).toBe(0);
    expect(stdout.trim()).toBe(readFileSync(path.join(REPO, "charts", "wa-operator", "README.md"), "utf8").trim());
  });

  it("carries the CRDs as templates and no crds/ directory, and the test pod's script", async () => {
    const { stdout } = await run("tar", ["-tzf", tgz]);
    const entries = stdout.trim().split("\n");
    expect(entries.filter((entry) => entry.startsWith("wa-operator/crds/"))).toEqual([]);
    expect(entries.filter((entry) => /^wa-operator\/templates\/crd-.*\.yaml$/.test(entry))).toHaveLength(readdirSync(path.join(REPO, "crds")).length);
    expect(entries).toContain("wa-operator/files/health-check.mjs");
    expect(entries).toContain("wa-operator/values.schema.json");
  });

  it("with --image-digest, the packaged chart pulls the image by that digest; a malformed digest is refused", async () => {
    const digest = `sha256:${"0123456789abcdef".repeat(4)}`;
    const { stdout } = await run(
      process.execPath,
      [path.join(REPO, "scripts", "release.ts"), "chart", "--out", path.join(scratch, "pinned"), "--helm", helmBin, "--image-digest", digest],
      { env: { ...process.env, ...helmEnv() } },
    );
    const pinned = stdout.trim().split("\n").at(-1) as string;
    const rendered = await runGoTool("helm", ["template", "wa-operator", pinned, "--skip-tests"], { env: helmEnv() });
    expect(rendered.code).toBe(0);
    const images = [...rendered.stdout.matchAll(/^\s+image: (.+)$/gm)].map((match) => match[1]?.replace(/"/g, ""));
    expect(images.length).toBeGreaterThan(0);
    expect(new Set(images)).toEqual(new Set([`ghcr.io/wa-operator/wa-operator@${digest}`]));
    // The chart in the repository is left as it was.
    expect(readFileSync(path.join(REPO, "charts", "wa-operator", "values.yaml"), "utf8")).toContain('  digest: ""\n');
    expect(() => packageChart({ out: path.join(scratch, "never"), helm: helmBin, imageDigest: "latest" })).toThrow("--image-digest");
  });

  it("refuses to package when the version differs somewhere", async () => {
    const copy = path.join(scratch, "inconsistent");
    mkdirSync(copy, { recursive: true });
    const versioned = ["charts", "manifests", "plugins", "package.json", "package-lock.json", "Dockerfile", "CHANGELOG.md"];
    await run("cp", ["-r", ...versioned.map((file) => path.join(REPO, file)), copy]);
    const chart = path.join(copy, "charts", "wa-operator", "Chart.yaml");
    writeFileSync(chart, readFileSync(chart, "utf8").replace(/^version: .*$/m, "version: 9.9.9"));
    expect(() => packageChart({ out: path.join(scratch, "never"), helm: helmBin, root: copy })).toThrow("Chart.yaml version");
  });
});
