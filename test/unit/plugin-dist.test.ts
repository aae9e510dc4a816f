/**
 * npm run plugin:dist (scripts/plugin-dist.ts): the krew manifest it fills, and the
 * archives it names, read with the system's tar as krew would unpack them.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { CODE_FLOOR, lowestAdmitted, nodeFloor, pluginDist, type DistResult } from "../../scripts/plugin-dist.ts";

const REPO = path.resolve(import.meta.dirname, "..", "..");
const packageJson = JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as { version: string };
const TEMPLATE = readFileSync(path.join(REPO, "plugins", "whatsapp.yaml"), "utf8");

interface Platform {
  selector: { matchLabels: { os: string; arch: string } };
  uri: string;
  sha256: string;
  bin: string;
  files: { from: string; to: string }[];
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: { version: string; homepage: string; shortDescription: string; description: string; caveats: string; platforms: Platform[] };
}

let out: string;
let result: DistResult;
let manifest: Manifest;

beforeAll(async () => {
  out = mkdtempSync(path.join(tmpdir(), "plugin-dist-"));
  result = await pluginDist({ out });
  manifest = parse(readFileSync(result.manifest, "utf8")) as Manifest;
}, 180_000);

afterAll(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

const archiveOf = (platform: Platform) => path.join(out, path.posix.basename(new URL(platform.uri).pathname));

describe("the krew manifest", () => {
  it("in git, leaves version, Node floor and sha256 to the dist script", () => {
    const template = parse(TEMPLATE) as Manifest;
    expect(template.spec.version).toBe("v{{version}}");
    expect(template.spec.caveats).toContain("{{minimumNode}}");
    for (const platform of template.spec.platforms) expect(platform.sha256).toBe("{{sha256}}");
  });

  it("from the dist script, is the one in git with those filled, every sha256 that of its archive", () => {
    const text = readFileSync(result.manifest, "utf8");
    expect(text).not.toContain("{{");
    const expected = parse(TEMPLATE.replaceAll("{{version}}", packageJson.version).replaceAll("{{minimumNode}}", result.floor)) as Manifest;
    expected.spec.platforms.forEach((platform, index) => (platform.sha256 = manifest.spec.platforms[index]?.sha256 ?? ""));
    expect(manifest).toEqual(expected);
    expect(result.archives).toHaveLength(manifest.spec.platforms.length);
    for (const platform of manifest.spec.platforms) {
      expect(platform.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(createHash("sha256").update(readFileSync(archiveOf(platform))).digest("hex")).toBe(platform.sha256);
    }
  });

  it("is a krew Plugin named as its file, version v<package.json's>, for linux and darwin on amd64 and arm64", () => {
    expect(manifest.apiVersion).toBe("krew.googlecontainertools.github.com/v1alpha2");
    expect(manifest.kind).toBe("Plugin");
    expect(`${manifest.metadata.name}.yaml`).toBe(path.basename(result.manifest));
    expect(manifest.metadata.name).toMatch(/^[a-z0-9-]+$/);
    expect(manifest.spec.version).toBe(`v${packageJson.version}`);
    expect(manifest.spec.version).toMatch(/^v\d+\.\d+\.\d+/);
    expect(manifest.spec.shortDescription.length).toBeGreaterThan(0);
    expect(manifest.spec.description.length).toBeGreaterThan(0);
    expect(manifest.spec.platforms.map((platform) => `${platform.selector.matchLabels.os}/${platform.selector.matchLabels.arch}`).sort()).toEqual([
      "darwin/amd64",
      "darwin/arm64",
      "linux/amd64",
      "linux/arm64",
    ]);
    for (const platform of manifest.spec.platforms) {
      expect(platform.uri).toMatch(new RegExp(`^https://.+/v${packageJson.version}/kubectl-whatsapp_v${packageJson.version}_${platform.selector.matchLabels.os}_${platform.selector.matchLabels.arch}\\.tar\\.gz$`));
    }
  });

  it("tells the Node floor the bundle checks: its own code's (no bundled package declares a higher one but p-retry, whose claim is set aside)", () => {
    expect(result.floor).toBe(CODE_FLOOR);
    expect(manifest.spec.caveats).toContain(`Node.js ${result.floor} or newer`);
    expect(readFileSync(path.join(REPO, "README.md"), "utf8")).toContain(`Node.js ${result.floor}`);
  });

  it("takes --base-url as the directory of every uri", async () => {
    const other = mkdtempSync(path.join(tmpdir(), "plugin-dist-base-"));
    try {
      const rebased = await pluginDist({ out: other, baseUrl: "http://127.0.0.1:9/releases/" });
      const platforms = (parse(readFileSync(rebased.manifest, "utf8")) as Manifest).spec.platforms;
      expect(platforms.map((platform) => platform.uri)).toEqual(manifest.spec.platforms.map((platform) => `http://127.0.0.1:9/releases/${path.posix.basename(platform.uri)}`));
      // The same inputs give the same bytes.
      expect(platforms.map((platform) => platform.sha256)).toEqual(manifest.spec.platforms.map((platform) => platform.sha256));
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  }, 180_000);
});

/** `tar -tvzf` of an archive: each entry's type+mode string and name. */
function listArchive(file: string): { mode: string; name: string }[] {
  return execFileSync("tar", ["-tvzf", file], { encoding: "utf8" })
    .trimEnd()
    .split("\n")
    .map((line) => {
      const fields = line.trim().split(/\s+/);
      return { mode: fields[0] as string, name: fields.slice(5).join(" ") };
    });
}

/** What krew leaves in the plugin's directory: each `files` entry's matches, moved to its `to`. */
function install(archive: string, files: readonly { from: string; to: string }[], into: string): void {
  const unpacked = mkdtempSync(path.join(tmpdir(), "plugin-unpacked-"));
  try {
    execFileSync("tar", ["-xzf", archive, "-C", unpacked]);
    for (const { from, to } of files) {
      const matches = readdirSync(unpacked, { recursive: true, encoding: "utf8" }).filter((entry) => path.matchesGlob(entry, from));
      expect(matches, `files.from ${from} matches nothing in ${path.basename(archive)}`).not.toEqual([]);
      for (const match of matches) {
        const target = path.join(into, to, match);
        mkdirSync(path.dirname(target), { recursive: true });
        cpSync(path.join(unpacked, match), target, { recursive: true });
      }
    }
  } finally {
    rmSync(unpacked, { recursive: true, force: true });
  }
}

describe("the archives", () => {
  it("hold the bundle and the completion helper, executable, and LICENSE when the repository has one; flat, no path escapes", () => {
    for (const platform of manifest.spec.platforms) {
      const entries = listArchive(archiveOf(platform));
      const expected = ["kubectl-whatsapp.cjs", "kubectl_complete-whatsapp", ...(existsSync(path.join(REPO, "LICENSE")) ? ["LICENSE"] : [])];
      expect(entries.map((entry) => entry.name)).toEqual(expected);
      expect(entries.find((entry) => entry.name === "kubectl-whatsapp.cjs")?.mode).toBe("-rwxr-xr-x");
      expect(entries.find((entry) => entry.name === "kubectl_complete-whatsapp")?.mode).toBe("-rwxr-xr-x");
    }
  });

  it("install as each platform's files say, with bin there, executable, answering --version", () => {
    for (const platform of manifest.spec.platforms) {
      const dir = mkdtempSync(path.join(tmpdir(), "plugin-installed-"));
      try {
        install(archiveOf(platform), platform.files, dir);
        const bin = path.join(dir, platform.bin);
        expect(existsSync(bin), platform.bin).toBe(true);
        expect(statSync(bin).mode & 0o111).toBe(0o111);
        // Run as krew's link runs it: through its #! line, with the node first on PATH.
        expect(execFileSync(bin, ["--version"], { encoding: "utf8" })).toBe(`kubectl-whatsapp ${packageJson.version}\n`);
        expect(readFileSync(path.join(dir, "kubectl_complete-whatsapp"), "utf8")).toMatch(/^#!\/bin\/sh\n[\s\S]*exec kubectl-whatsapp __complete "\$@"\n$/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});

describe("lowestAdmitted (an engines.node range's floor)", () => {
  it.each([
    [">=20.18.1", "20.18.1"],
    [">= 14.6", "14.6.0"],
    [">=22", "22.0.0"],
    ["^20.19.0 || >=22.12.0", "20.19.0"],
    [">=18 || ^16.14", "16.14.0"],
    ["20.x", "20.0.0"],
  ])("%s → %s", (range, floor) => {
    expect(lowestAdmitted(range)).toBe(floor);
  });
});

describe("nodeFloor", () => {
  const manifests: Record<string, { engines?: { node?: string } }> = {
    "/r/node_modules/a/package.json": { engines: { node: ">=14" } },
    "/r/node_modules/@s/b/package.json": { engines: { node: ">=20.18.1" } },
    "/r/node_modules/a/node_modules/c/package.json": { engines: { node: ">=18" } },
    "/r/node_modules/p-retry/package.json": { engines: { node: ">=22" } },
    "/r/node_modules/d/package.json": {},
  };
  const read = (file: string) => manifests[file] ?? {};

  it("is the highest floor of the packages the modules belong to, nested ones included", () => {
    expect(nodeFloor(["/r/src/x.ts", "/r/node_modules/a/index.js", "/r/node_modules/a/node_modules/c/lib/c.js", "/r/node_modules/d/d.js"], read, "0.0.0")).toEqual({ floor: "18.0.0", setAside: [] });
    expect(nodeFloor(["/r/node_modules/@s/b/dist/b.js", "/r/node_modules/a/index.js"], read, "0.0.0")).toEqual({ floor: "20.18.1", setAside: [] });
  });

  it("is never below the code's own floor", () => {
    expect(nodeFloor(["/r/node_modules/a/index.js", "/r/node_modules/a/node_modules/c/lib/c.js"], read)).toEqual({ floor: CODE_FLOOR, setAside: [] });
  });

  it("sets aside p-retry's claim and says so", () => {
    expect(nodeFloor(["/r/node_modules/p-retry/index.js", "/r/node_modules/@s/b/dist/b.js"], read, "0.0.0")).toEqual({ floor: "20.18.1", setAside: ["p-retry"] });
  });
});
