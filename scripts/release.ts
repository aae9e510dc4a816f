/**
 * What .github/workflows/release.yml runs on a `v*` tag, each step testable here:
 *
 *   node scripts/release.ts check [--tag vX.Y.Z]
 *       The version is the same everywhere it is written (versionProblems below); with
 *       --tag, the tag is v<version> and CHANGELOG.md has a section for it.
 *   node scripts/release.ts notes --tag vX.Y.Z
 *       The CHANGELOG.md section of that version, as the release's notes, on stdout.
 *   node scripts/release.ts plugin --tag vX.Y.Z --out DIR [--repo OWNER/NAME]
 *       The krew archives and the filled krew manifest (scripts/plugin-dist.ts) with the
 *       URIs of the release's assets, and checksums.txt (`sha256sum -c` reads it).
 *   node scripts/release.ts chart --out DIR [--helm PATH] [--image-digest sha256:...]
 *       `helm lint --strict` and `helm package` of charts/wa-operator (with --image-digest, its
 *       values pull the image by that digest); prints the .tgz.
 *
 * Exit status 1 with the problems on stderr when anything does not hold.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import { pluginDist } from "./plugin-dist.ts";

const REPO = path.join(import.meta.dirname, "..");
const CHART = path.join("charts", "wa-operator");
/** The repository the krew manifest's URIs point at unless --repo says otherwise. */
const DEFAULT_REPO = "wa-operator/wa-operator";
const SEMVER = /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?$/;

/** a < b: -1, a = b: 0, a > b: 1 (a pre-release sorts below its release; pre-release tags compared as text). */
export function compareVersions(a: string, b: string): number {
  const [left, right] = [SEMVER.exec(a), SEMVER.exec(b)];
  if (!left || !right) throw new Error(`not a version: ${left ? b : a}`);
  for (let index = 1; index <= 3; index++) {
    const difference = Number(left[index]) - Number(right[index]);
    if (difference !== 0) return Math.sign(difference);
  }
  const [leftPre, rightPre] = [left[4], right[4]];
  if (leftPre === rightPre) return 0;
  if (leftPre === undefined) return 1;
  if (rightPre === undefined) return -1;
  return leftPre < rightPre ? -1 : 1;
}

export interface ChangelogSection {
  /** "Unreleased" or a version. */
  readonly name: string;
  readonly date: string | undefined;
  /** The lines under the heading, up to the next `## `, trimmed. */
  readonly body: string;
}

/** The `## [name] - date` sections of a Keep a Changelog file, newest first as written. */
export function changelogSections(text: string): ChangelogSection[] {
  const sections: ChangelogSection[] = [];
  let current: { name: string; date: string | undefined; lines: string[] } | undefined;
  const close = () => {
    if (current) sections.push({ name: current.name, date: current.date, body: current.lines.join("\n").trim() });
  };
  for (const line of text.split("\n")) {
    const heading = /^## \[([^\]]+)\](?:\s+-\s+(\S+))?/.exec(line);
    if (heading) {
      close();
      current = { name: heading[1] as string, date: heading[2], lines: [] };
    } else if (/^## /.test(line) || /^\[[^\]]+\]:\s/.test(line)) {
      // Another level-2 heading, or the link references at the end: the section is over.
      close();
      current = undefined;
    } else current?.lines.push(line);
  }
  close();
  return sections;
}

/** The release notes of `version`: its CHANGELOG section's body. Throws when there is none or it is empty. */
export function releaseNotes(changelog: string, version: string): string {
  const section = changelogSections(changelog).find((each) => each.name === version);
  if (!section) throw new Error(`CHANGELOG.md has no section "## [${version}]"; rename [Unreleased] to [${version}] - <date> before tagging`);
  if (!section.body) throw new Error(`CHANGELOG.md's section [${version}] is empty`);
  return `${section.body}\n`;
}

/** A version as a release tag names it: v1.2.3 → 1.2.3. */
export function versionOfTag(tag: string): string {
  const version = tag.replace(/^refs\/tags\//, "").replace(/^v/, "");
  if (!SEMVER.test(version) || !/^(refs\/tags\/)?v/.test(tag)) throw new Error(`"${tag}" is not a release tag such as v1.2.3`);
  return version;
}

const read = (root: string, file: string): string => readFileSync(path.join(root, file), "utf8");

/**
 * Where the version is written, each with what it says (or why it is wrong). package.json's
 * is the one the others follow.
 */
export function versionProblems(root: string = REPO): { version: string; problems: string[] } {
  const problems: string[] = [];
  const version = (JSON.parse(read(root, "package.json")) as { version: string }).version;
  if (!SEMVER.test(version)) problems.push(`package.json: version "${version}" is not a semantic version`);
  const expect = (where: string, found: unknown, wanted: string = version) => {
    if (found !== wanted) problems.push(`${where}: ${JSON.stringify(found)}, expected ${JSON.stringify(wanted)} (package.json's version ${version})`);
  };

  const lock = JSON.parse(read(root, "package-lock.json")) as { version?: string; packages?: Record<string, { version?: string }> };
  expect("package-lock.json version", lock.version);
  expect('package-lock.json packages[""].version', lock.packages?.[""]?.version);

  const chart = parseYaml(read(root, path.join(CHART, "Chart.yaml"))) as { version?: unknown; appVersion?: unknown; annotations?: Record<string, string> };
  expect(`${CHART}/Chart.yaml version`, chart.version);
  expect(`${CHART}/Chart.yaml appVersion`, chart.appVersion);
  // Artifact Hub lists the image the chart installs.
  const images = parseYaml(chart.annotations?.["artifacthub.io/images"] ?? "[]") as { image: string }[];
  for (const { image } of images) expect(`${CHART}/Chart.yaml artifacthub.io/images ${image}`, image.replace(/^.*:/, ""));
  // The image the chart installs by default: image.tag, or appVersion when it is empty.
  const values = parseYaml(read(root, path.join(CHART, "values.yaml"))) as { image?: { tag?: unknown } };
  const tag = values.image?.tag;
  expect(`${CHART}/values.yaml image.tag (empty: appVersion)`, tag === "" || tag === undefined ? chart.appVersion : tag);

  const dockerfile = /^ARG VERSION=(.*)$/m.exec(read(root, "Dockerfile"))?.[1];
  expect("Dockerfile ARG VERSION", dockerfile);

  const kustomization = parseYaml(read(root, path.join("manifests", "kustomization.yaml"))) as { images?: { name: string; newTag?: unknown }[] };
  expect("manifests/kustomization.yaml images[wa-operator].newTag", kustomization.images?.find((image) => image.name === "wa-operator")?.newTag);

  // The krew manifest is a template: the version is filled in from package.json, never written.
  const krew = read(root, path.join("plugins", "whatsapp.yaml"));
  const template = parseYaml(krew) as { spec: { version: string; platforms: { uri: string }[] } };
  expect("plugins/whatsapp.yaml spec.version", template.spec.version, "v{{version}}");
  for (const platform of template.spec.platforms) {
    if (!platform.uri.includes("/v{{version}}/") || !platform.uri.includes("_v{{version}}_")) problems.push(`plugins/whatsapp.yaml: ${platform.uri} does not name the release by {{version}}`);
  }
  const literal = /\bv?\d+\.\d+\.\d+\b/.exec(krew.replace(/Node\.js \S+/g, ""));
  if (literal) problems.push(`plugins/whatsapp.yaml: a literal version "${literal[0]}"; write {{version}}`);

  // CHANGELOG: the top section is [Unreleased] (what will become this version, which is
  // newer than every released one) or this very version.
  const sections = changelogSections(read(root, "CHANGELOG.md"));
  const top = sections[0];
  const newestReleased = sections.find((section) => section.name !== "Unreleased");
  if (!top) problems.push("CHANGELOG.md: no `## [...]` section");
  else if (top.name === "Unreleased") {
    if (newestReleased && SEMVER.test(newestReleased.name) && SEMVER.test(version) && compareVersions(version, newestReleased.name) <= 0) {
      problems.push(`CHANGELOG.md: [Unreleased] sits above the released [${newestReleased.name}], but package.json's version ${version} is not newer`);
    }
  } else if (top.name !== version) problems.push(`CHANGELOG.md: the top section is [${top.name}], expected [Unreleased] or [${version}]`);
  return { version, problems };
}

/** Also, for a release: the tag is v<version> and CHANGELOG.md has the version's own section. */
export function releaseProblems(tag: string, root: string = REPO): string[] {
  const { version, problems } = versionProblems(root);
  try {
    const tagged = versionOfTag(tag);
    if (tagged !== version) problems.push(`tag ${tag} names ${tagged}, but package.json's version is ${version}`);
    releaseNotes(read(root, "CHANGELOG.md"), version);
  } catch (error) {
    problems.push((error as Error).message);
  }
  return problems;
}

const sha256 = (file: string): string => createHash("sha256").update(readFileSync(file)).digest("hex");

/**
 * The plugin's release assets in `out`: the archives and the krew manifest pointing at
 * https://github.com/<repo>/releases/download/<tag>/, and checksums.txt over the archives.
 */
export async function pluginAssets(options: { tag: string; out: string; repo?: string; root?: string }): Promise<{ manifest: string; archives: string[]; checksums: string }> {
  const version = versionOfTag(options.tag);
  const { version: packaged } = versionProblems(options.root ?? REPO);
  if (version !== packaged) throw new Error(`tag ${options.tag} names ${version}, but package.json's version is ${packaged}`);
  const baseUrl = `https://github.com/${options.repo ?? DEFAULT_REPO}/releases/download/${options.tag}`;
  const dist = await pluginDist({ out: options.out, baseUrl });
  const manifest = parseYaml(readFileSync(dist.manifest, "utf8")) as { spec: { platforms: { uri: string; sha256: string }[] } };
  const lines: string[] = [];
  for (const archive of dist.archives) {
    const sum = sha256(archive);
    const name = path.basename(archive);
    // The manifest must name each asset by the URI it will have and the bytes it has.
    const entry = manifest.spec.platforms.find((platform) => platform.uri === `${baseUrl}/${name}`);
    if (!entry || entry.sha256 !== sum) throw new Error(`the krew manifest does not name ${name} with sha256 ${sum}`);
    lines.push(`${sum}  ${name}`);
  }
  const checksums = path.join(options.out, "checksums.txt");
  writeFileSync(checksums, `${lines.join("\n")}\n`);
  return { manifest: dist.manifest, archives: [...dist.archives], checksums };
}

const IMAGE_DIGEST = /^sha256:[0-9a-f]{64}$/;

/**
 * `helm lint --strict` and `helm package` of the chart into `out`; the .tgz's path. With
 * `imageDigest` (the digest the image job pushed), the packaged values pull the image by
 * that digest: a tag can be moved to other bytes after the release, a digest cannot.
 */
export function packageChart(options: { out: string; helm?: string; root?: string; imageDigest?: string }): string {
  const root = options.root ?? REPO;
  const helm = options.helm ?? "helm";
  const { version, problems } = versionProblems(root);
  if (problems.length > 0) throw new Error(problems.join("\n"));
  if (options.imageDigest !== undefined && !IMAGE_DIGEST.test(options.imageDigest)) {
    throw new Error(`--image-digest must be sha256:<64 hex digits>, not ${JSON.stringify(options.imageDigest)}`);
  }
  mkdirSync(options.out, { recursive: true });
  const staging = options.imageDigest ? mkdtempSync(path.join(tmpdir(), "wa-operator-chart-")) : undefined;
  try {
    const chartDir = staging ? pinnedChart(path.join(root, CHART), staging, options.imageDigest as string) : path.join(root, CHART);
    execFileSync(helm, ["lint", "--strict", chartDir], { stdio: ["ignore", "ignore", "inherit"] });
    execFileSync(helm, ["package", chartDir, "--destination", options.out], { stdio: ["ignore", "ignore", "inherit"] });
  } finally {
    if (staging) rmSync(staging, { recursive: true, force: true });
  }
  const file = path.join(options.out, `wa-operator-${version}.tgz`);
  if (!existsSync(file)) throw new Error(`helm package wrote no ${file}`);
  return file;
}

/** A copy of the chart in `into` whose values.yaml sets image.digest; its path. */
function pinnedChart(chartDir: string, into: string, digest: string): string {
  const copy = path.join(into, "wa-operator");
  cpSync(chartDir, copy, { recursive: true });
  const valuesFile = path.join(copy, "values.yaml");
  const values = readFileSync(valuesFile, "utf8");
  // image.digest is the only `digest:` key at two spaces under `image:`; the rest of the file stays as written.
  const pinned = values.replace(/^(image:\n(?:(?: {2}.*)?\n)*? {2}digest: )""$/m, `$1"${digest}"`);
  if (pinned === values) throw new Error(`${valuesFile} has no image.digest: "" to set`);
  writeFileSync(valuesFile, pinned);
  return copy;
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { tag: { type: "string" }, out: { type: "string" }, repo: { type: "string" }, helm: { type: "string" }, "image-digest": { type: "string" } },
  });
  const command = positionals[0];
  const need = (name: "tag" | "out"): string => {
    const value = values[name];
    if (!value) throw new Error(`${command} needs --${name}`);
    return value;
  };
  switch (command) {
    case "check": {
      const problems = values.tag ? releaseProblems(values.tag) : versionProblems().problems;
      if (problems.length > 0) throw new Error(problems.join("\n"));
      console.log(`version ${versionProblems().version}: consistent${values.tag ? `, ready to release as ${values.tag}` : ""}`);
      return;
    }
    case "notes":
      process.stdout.write(releaseNotes(read(REPO, "CHANGELOG.md"), versionOfTag(need("tag"))));
      return;
    case "plugin": {
      const result = await pluginAssets({ tag: need("tag"), out: path.resolve(need("out")), ...(values.repo ? { repo: values.repo } : {}) });
      for (const file of [...result.archives, result.manifest, result.checksums]) console.log(file);
      return;
    }
    case "chart":
      console.log(
        packageChart({
          out: path.resolve(need("out")),
          ...(values.helm ? { helm: values.helm } : {}),
          ...(values["image-digest"] ? { imageDigest: values["image-digest"] } : {}),
        }),
      );
      return;
    default:
      throw new Error("usage: node scripts/release.ts check|notes|plugin|chart [--tag vX.Y.Z] [--out DIR] [--repo OWNER/NAME] [--helm PATH] [--image-digest sha256:...]");
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    console.error(`release: ${(error as Error).message}`);
    process.exitCode = 1;
  }
}
