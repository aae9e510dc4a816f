/**
 * scripts/release.ts, the steps .github/workflows/release.yml runs on a tag: the version
 * written the same everywhere, the CHANGELOG section as release notes, and the krew assets
 * with their checksums. (The chart's package with the real helm is in
 * test/integration/release.test.ts; here a stand-in helm shows what packageChart hands it.)
 */
import { createHash } from "node:crypto";
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { execFileSync } from "node:child_process";
import { changelogSections, compareVersions, packageChart, pluginAssets, releaseNotes, releaseProblems, versionOfTag, versionProblems } from "../../scripts/release.ts";

const REPO = path.resolve(import.meta.dirname, "..", "..");
const { version } = JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as { version: string };
/** Every file versionProblems reads. */
const VERSIONED = ["package.json", "package-lock.json", "charts/wa-operator/Chart.yaml", "charts/wa-operator/values.yaml", "Dockerfile", "manifests/kustomization.yaml", "plugins/whatsapp.yaml", "CHANGELOG.md"];

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(path.join(tmpdir(), "release-"));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A copy of the versioned files with one of them edited. */
function copyWith(file: string, edit: (text: string) => string): string {
  const root = mkdtempSync(path.join(scratch, "copy-"));
  for (const each of VERSIONED) cpSync(path.join(REPO, each), path.join(root, each), { recursive: true });
  writeFileSync(path.join(root, file), edit(readFileSync(path.join(root, file), "utf8")));
  return root;
}

describe("the version", () => {
  it("is the same in package.json, its lock, Chart.yaml (version, appVersion), the default image tag, the Dockerfile, the kustomize image and the CHANGELOG", () => {
    expect(versionProblems(REPO)).toEqual({ version, problems: [] });
  });

  it("is newer than every release the CHANGELOG lists, while [Unreleased] is on top", () => {
    const sections = changelogSections(readFileSync(path.join(REPO, "CHANGELOG.md"), "utf8"));
    expect(sections[0]?.name).toBe("Unreleased");
    for (const released of sections.slice(1)) expect(compareVersions(version, released.name), released.name).toBe(1);
  });

  it.each([
    ["package-lock.json", (text: string) => text.replace(`"version": "${version}"`, '"version": "9.9.9"'), "package-lock.json version"],
    ["charts/wa-operator/Chart.yaml", (text: string) => text.replace(/^version: .*$/m, "version: 9.9.9"), "Chart.yaml version"],
    ["charts/wa-operator/Chart.yaml", (text: string) => text.replace(/^appVersion: .*$/m, 'appVersion: "9.9.9"'), "Chart.yaml appVersion"],
    ["charts/wa-operator/Chart.yaml", (text: string) => text.replace(`wa-operator:${version}`, "wa-operator:9.9.9"), "artifacthub.io/images"],
    ["charts/wa-operator/values.yaml", (text: string) => text.replace(/^ {2}tag: .*$/m, '  tag: "9.9.9"'), "values.yaml image.tag"],
    ["Dockerfile", (text: string) => text.replace(/^ARG VERSION=.*$/m, "ARG VERSION=9.9.9"), "Dockerfile ARG VERSION"],
    ["manifests/kustomization.yaml", (text: string) => text.replace(/newTag: .*/, "newTag: 9.9.9"), "kustomization.yaml"],
    ["plugins/whatsapp.yaml", (text: string) => text.replace("download/v{{version}}/kubectl-whatsapp_v{{version}}_linux_amd64", "download/v9.9.9/kubectl-whatsapp_v9.9.9_linux_amd64"), "plugins/whatsapp.yaml"],
    ["CHANGELOG.md", (text: string) => text.replace("## [Unreleased]", "## [9.9.9] - 2026-12-01"), "the top section is [9.9.9]"],
    ["CHANGELOG.md", (text: string) => text.replace("## [Unreleased]", `## [Unreleased]\n\n## [${version}] - 2026-12-01`), "is not newer"],
  ])("a different version in %s is caught (%s)", (file, edit, message) => {
    expect(versionProblems(copyWith(file, edit)).problems.join("\n")).toContain(message);
  });

  it("a CHANGELOG whose top section is this version (the release commit) is consistent too", () => {
    expect(versionProblems(copyWith("CHANGELOG.md", (text) => text.replace("## [Unreleased]", `## [${version}] - 2026-12-24`))).problems).toEqual([]);
  });

  it("a release needs the tag v<version> and the version's own CHANGELOG section", () => {
    expect(releaseProblems(`v${version}`, REPO).join("\n")).toContain(`no section "## [${version}]"`);
    const released = copyWith("CHANGELOG.md", (text) => text.replace("## [Unreleased]", `## [${version}] - 2026-12-24`));
    expect(releaseProblems(`v${version}`, released)).toEqual([]);
    expect(releaseProblems(`refs/tags/v${version}`, released)).toEqual([]);
    expect(releaseProblems("v9.9.9", released).join("\n")).toContain(`tag v9.9.9 names 9.9.9, but package.json's version is ${version}`);
    expect(() => versionOfTag(version)).toThrow("is not a release tag");
  });

  it("orders versions as semver does", () => {
    expect(["0.10.0", "0.2.0", "0.2.0-rc.1", "1.0.0", "0.2.1"].sort(compareVersions)).toEqual(["0.2.0-rc.1", "0.2.0", "0.2.1", "0.10.0", "1.0.0"]);
  });
});

describe("release notes", () => {
  const changelog = [
    "# Changelog",
    "",
    "Intro.",
    "",
    "## [Unreleased]",
    "",
    "## [1.1.0] - 2027-01-02",
    "",
    "### Added",
    "- one",
    "",
    "## [1.0.0] - 2026-12-01",
    "",
    "- first",
    "",
    "[1.1.0]: https://example.invalid/compare/v1.0.0...v1.1.0",
  ].join("\n");

  it("are the version's CHANGELOG section, without its heading, the next section or the link references", () => {
    expect(releaseNotes(changelog, "1.1.0")).toBe("### Added\n- one\n");
    expect(releaseNotes(changelog, "1.0.0")).toBe("- first\n");
  });

  it("refuse a version with no section, or an empty one", () => {
    expect(() => releaseNotes(changelog, "2.0.0")).toThrow('no section "## [2.0.0]"');
    expect(() => releaseNotes(changelog, "Unreleased")).toThrow("is empty");
  });

  it("read this repository's CHANGELOG: the 0.1.0 section", () => {
    expect(releaseNotes(readFileSync(path.join(REPO, "CHANGELOG.md"), "utf8"), "0.1.0")).toMatch(/^First version \(not tagged\)\.\n\n### Added\n/);
  });
});

describe("the krew assets of a release", () => {
  it("are the archives, a manifest naming each by its release URL and sha256, and checksums.txt as sha256sum writes it", async () => {
    const out = path.join(scratch, "plugin");
    const result = await pluginAssets({ tag: `v${version}`, out, repo: "example/fork" });
    const manifest = parse(readFileSync(result.manifest, "utf8")) as { spec: { version: string; platforms: { uri: string; sha256: string }[] } };
    expect(manifest.spec.version).toBe(`v${version}`);
    const lines = readFileSync(result.checksums, "utf8").trimEnd().split("\n");
    expect(lines).toHaveLength(result.archives.length);
    for (const archive of result.archives) {
      const sum = createHash("sha256").update(readFileSync(archive)).digest("hex");
      const name = path.basename(archive);
      expect(lines).toContain(`${sum}  ${name}`);
      expect(manifest.spec.platforms).toContainEqual(expect.objectContaining({ uri: `https://github.com/example/fork/releases/download/v${version}/${name}`, sha256: sum }));
    }
    await expect(pluginAssets({ tag: "v9.9.9", out })).rejects.toThrow("tag v9.9.9 names 9.9.9");
  }, 120_000);
});

describe("the chart package pinned to the image digest (packageChart with imageDigest)", () => {
  const values = (text: string) => parse(text) as { image: Record<string, unknown> } & Record<string, unknown>;
  /**
   * A stand-in helm: `lint` notes that it ran, `package DIR --destination OUT` tars DIR as
   * wa-operator-<version>.tgz, as helm lays a package out.
   */
  function fakeHelm(): { bin: string; ran: string } {
    const dir = mkdtempSync(path.join(scratch, "helm-"));
    const bin = path.join(dir, "helm");
    const ran = path.join(dir, "ran");
    writeFileSync(
      bin,
      `#!/bin/sh\necho "$1" >> "${ran}"\ncase "$1" in\n  lint) exit 0 ;;\n  package) v=$(sed -n 's/^version: //p' "$2/Chart.yaml"); tar -czf "$4/wa-operator-$v.tgz" -C "$(dirname "$2")" "$(basename "$2")" ;;\nesac\n`,
    );
    chmodSync(bin, 0o755);
    return { bin, ran };
  }

  it("carries the digest in the packaged values.yaml, changes nothing else, and leaves the repository's chart as it was", () => {
    const digest = `sha256:${"0123456789abcdef".repeat(4)}`;
    const original = readFileSync(path.join(REPO, "charts", "wa-operator", "values.yaml"), "utf8");
    const helm = fakeHelm();
    const tgz = packageChart({ out: path.join(scratch, "pinned"), helm: helm.bin, imageDigest: digest });
    expect(path.basename(tgz)).toBe(`wa-operator-${version}.tgz`);
    const packaged = values(execFileSync("tar", ["-xzOf", tgz, "wa-operator/values.yaml"], { encoding: "utf8" }));
    const expected = values(original);
    expect(packaged.image["digest"]).toBe(digest);
    expect(packaged).toEqual({ ...expected, image: { ...expected.image, digest } });
    expect(readFileSync(helm.ran, "utf8")).toBe("lint\npackage\n");
    expect(readFileSync(path.join(REPO, "charts", "wa-operator", "values.yaml"), "utf8")).toBe(original);
  });

  it("without a digest, packages the chart's values as they are", () => {
    const tgz = packageChart({ out: path.join(scratch, "unpinned"), helm: fakeHelm().bin });
    expect(values(execFileSync("tar", ["-xzOf", tgz, "wa-operator/values.yaml"], { encoding: "utf8" })).image["digest"]).toBe("");
  });

  it.each([
    ["a tag", "latest"],
    ["no algorithm", "0123456789abcdef".repeat(4)],
    ["upper-case hex", `sha256:${"0123456789ABCDEF".repeat(4)}`],
    ["63 hex digits", `sha256:${"0123456789abcdef".repeat(4).slice(1)}`],
    ["another algorithm", `sha512:${"0123456789abcdef".repeat(4)}`],
    ["a second line", `sha256:${"0123456789abcdef".repeat(4)}\nreplicas: 9`],
  ])("refuses a malformed digest (%s) before helm runs", (_name, digest) => {
    const helm = fakeHelm();
    expect(() => packageChart({ out: path.join(scratch, "refused"), helm: helm.bin, imageDigest: digest })).toThrow("--image-digest must be sha256:<64 hex digits>");
    expect(existsSync(helm.ran)).toBe(false);
  });
});

describe(".github/workflows/release.yml", () => {
  interface Step {
    id?: string;
    uses?: string;
    run?: string;
    with?: Record<string, unknown>;
    env?: Record<string, string>;
  }
  const workflow = parse(readFileSync(path.join(REPO, ".github", "workflows", "release.yml"), "utf8")) as {
    on: { push: { tags: string[] } };
    jobs: Record<string, { steps: Step[]; needs?: string | string[]; permissions?: Record<string, string>; outputs?: Record<string, string> }>;
  };
  const steps = Object.values(workflow.jobs).flatMap((job) => job.steps);
  const runs = steps.flatMap((step) => (step.run ? [step.run] : []));

  it("runs on version tags only", () => {
    expect(workflow.on).toEqual({ push: { tags: ["v*"] } });
  });

  it("calls only scripts of this repository that exist, and only subcommands scripts/release.ts has", () => {
    const scripts = runs.flatMap((run) => [...run.matchAll(/\b((?:scripts|hack)\/[\w./-]+)/g)].map((match) => match[1] as string));
    expect(scripts.length).toBeGreaterThan(4);
    for (const script of scripts) expect(() => readFileSync(path.join(REPO, script)), script).not.toThrow();
    const subcommands = runs.flatMap((run) => [...run.matchAll(/scripts\/release\.ts (\w+)/g)].map((match) => match[1] as string));
    expect([...new Set(subcommands)].sort()).toEqual(["chart", "check", "notes", "plugin"]);
  });

  it("builds both architectures with an SBOM and provenance, and signs image and chart keyless", () => {
    const build = steps.find((step) => step.uses?.startsWith("docker/build-push-action@"));
    expect(build?.with).toMatchObject({ platforms: "linux/amd64,linux/arm64", push: true, sbom: true, provenance: "mode=max" });
    expect(runs.filter((run) => /cosign sign --yes /.test(run))).toHaveLength(2);
    for (const job of ["image", "chart"]) expect(workflow.jobs[job]?.permissions).toMatchObject({ "id-token": "write", packages: "write" });
  });

  it("packages the chart pinned to the digest the image job pushed", () => {
    const packaging = steps.find((step) => step.run?.includes("scripts/release.ts chart"));
    expect(packaging?.run).toContain('--image-digest "$IMAGE_DIGEST"');
    expect(packaging?.env).toMatchObject({ IMAGE_DIGEST: "${{ needs.image.outputs.digest }}" });
    expect(workflow.jobs.chart?.needs).toContain("image");
  });

  it("builds the image from the base image pinned by the digest it resolved for the Dockerfile's Node version", () => {
    const image = workflow.jobs["image"];
    const base = image?.steps.find((step) => step.id === "base");
    expect(base?.run).toContain("ARG NODE_VERSION=");
    expect(base?.run).toContain("docker buildx imagetools inspect");
    expect(base?.run).toMatch(/echo "image=\$ref@\$digest" >> "\$GITHUB_OUTPUT"/);
    const build = image?.steps.find((step) => step.id === "build");
    expect(image?.steps.indexOf(base as Step)).toBeLessThan(image?.steps.indexOf(build as Step) ?? -1);
    expect(String(build?.with?.["build-args"])).toContain("NODE_IMAGE=${{ steps.base.outputs.image }}");
  });

  it("the image job exposes, as outputs.digest, the digest its build-and-push step pushed", () => {
    const image = workflow.jobs["image"];
    expect(image?.outputs).toMatchObject({ digest: "${{ steps.build.outputs.digest }}" });
    const build = image?.steps.find((step) => step.id === "build");
    expect(build?.uses).toMatch(/^docker\/build-push-action@/);
    expect(build?.with).toMatchObject({ push: true });
  });

  it("pushes Artifact Hub's repository metadata from a file that exists, with the media types Artifact Hub reads", () => {
    const step = steps.find((candidate) => candidate.run?.includes("oras push")) as (Step & { "working-directory"?: string }) | undefined;
    const file = /\s(\S+\.yml):application\/vnd\.cncf\.artifacthub\.repository-metadata\.layer\.v1\.yaml/.exec(step?.run ?? "")?.[1] ?? "";
    expect(step?.run).toContain("--config /dev/null:application/vnd.cncf.artifacthub.config.v1+yaml");
    expect(step?.run).toContain(":artifacthub.io");
    expect(parse(readFileSync(path.join(REPO, step?.["working-directory"] ?? "", file), "utf8"))).toHaveProperty("owners");
  });

  it("attaches the krew archives, checksums.txt, the krew manifest and the chart, with the CHANGELOG section as notes", () => {
    const publish = runs.find((run) => run.includes("gh release create")) ?? "";
    for (const asset of ["*.tar.gz", "checksums.txt", "whatsapp.yaml", "*.tgz", "--notes-file"]) expect(publish).toContain(asset);
  });
});
