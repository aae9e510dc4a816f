/**
 * `npm run plugin:dist`: kubectl-whatsapp as krew installs it, into dist/plugin/:
 *
 *   kubectl-whatsapp.cjs   one JavaScript file (rolldown) that runs on the node on PATH,
 *                          from Node.js <floor> on: CODE_FLOOR, or the highest floor its
 *                          bundled packages declare if that is higher.
 *   kubectl-whatsapp_v<version>_<os>_<arch>.tar.gz
 *                          one per platform of plugins/whatsapp.yaml, named as its uri
 *                          says: the bundle, kubectl_complete-whatsapp, LICENSE.
 *   whatsapp.yaml          plugins/whatsapp.yaml with version, floor, uri and sha256 filled.
 *
 *   node scripts/plugin-dist.ts [--out DIR] [--base-url URL]
 *
 * --base-url replaces the directory of every uri (a fork's release page, a test server).
 * The archives are byte-for-byte reproducible: fixed modes, owners and mtime
 * (SOURCE_DATE_EPOCH, else 0), entries in a fixed order.
 */
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import { build } from "rolldown";
import { parse, stringify } from "yaml";
import { isAtLeast } from "../src/build-info.ts";

const REPO = path.join(import.meta.dirname, "..");
const BUNDLE = "kubectl-whatsapp.cjs";
const COMPLETION_HELPER = "kubectl_complete-whatsapp";

/**
 * Packages whose engines.node claims more than they use, and why we bundle them below it.
 * Any other package that raises the floor raises it.
 */
const ENGINE_CLAIMS_SET_ASIDE: Record<string, string> = {
  "p-retry": "declares >=22 as its support policy; test/integration/kubectl-plugin-node20.test.ts runs it on Node 20",
};

/**
 * The oldest Node the plugin's own code is written for. Its packages admit older ones
 * (yaml says 14.6, is-network-error 16), but the code uses node:util parseArgs,
 * URL.canParse and structuredClone, and test/integration/kubectl-plugin.test.ts runs the
 * bundle on Node 20.
 */
export const CODE_FLOOR = "20.0.0";

/** The lowest version a package.json engines.node range admits ("^20.19.0 || >=22.12.0" → 20.19.0). */
export function lowestAdmitted(range: string): string {
  const lows = range.split("||").map((alternative) => {
    const match = /^\s*(?:>=|\^|~|=)?\s*v?(\d+)(?:\.(\d+|x))?(?:\.(\d+|x))?/.exec(alternative);
    if (!match) throw new Error(`cannot read the engines range "${range}"`);
    const part = (text: string | undefined) => (text === undefined || text === "x" ? "0" : text);
    return `${match[1]}.${part(match[2])}.${part(match[3])}`;
  });
  return lows.reduce((lowest, version) => (isAtLeast(version, lowest) ? lowest : version));
}

/** The package a bundled module belongs to, and its package.json, from the module's path. */
function packageOf(moduleId: string): { name: string; manifest: string } | undefined {
  const marker = `${path.sep}node_modules${path.sep}`;
  const at = moduleId.lastIndexOf(marker);
  if (at < 0) return undefined;
  const rest = moduleId.slice(at + marker.length).split(path.sep);
  const name = rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] as string);
  return { name, manifest: path.join(moduleId.slice(0, at + marker.length), name, "package.json") };
}

/** The Node floor of a bundle: codeFloor, or the highest floor its packages declare (minus the set-asides) if higher. */
export function nodeFloor(
  moduleIds: readonly string[],
  readManifest: (file: string) => { engines?: { node?: string } },
  codeFloor = CODE_FLOOR,
): { floor: string; setAside: string[] } {
  let floor = codeFloor;
  const setAside = new Set<string>();
  const seen = new Set<string>();
  for (const id of moduleIds) {
    const owner = packageOf(id);
    if (!owner || seen.has(owner.manifest)) continue;
    seen.add(owner.manifest);
    const range = readManifest(owner.manifest).engines?.node;
    if (!range) continue;
    const low = lowestAdmitted(range);
    if (isAtLeast(floor, low)) continue;
    if (Object.hasOwn(ENGINE_CLAIMS_SET_ASIDE, owner.name)) setAside.add(owner.name);
    else floor = low;
  }
  return { floor, setAside: [...setAside].sort() };
}

/** A ustar header and the content, padded to 512-byte blocks. */
function tarEntry(name: string, mode: number, content: Buffer, mtime: number): Buffer {
  const header = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string) => header.write(value, offset, length, "ascii");
  const octal = (offset: number, length: number, value: number) => field(offset, length, `${value.toString(8).padStart(length - 1, "0")}\0`);
  field(0, 100, name);
  octal(100, 8, mode);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, content.length);
  octal(136, 12, mtime);
  field(148, 8, " ".repeat(8));
  field(156, 1, "0");
  field(257, 8, "ustar\u000000");
  const checksum = header.reduce((sum, byte) => sum + byte, 0);
  field(148, 8, `${checksum.toString(8).padStart(6, "0")}\0 `);
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, padding]);
}

/** A .tar.gz of files, in the order given, ending with tar's two empty blocks. */
function tarGz(files: readonly { name: string; mode: number; content: Buffer }[], mtime: number): Buffer {
  const tar = Buffer.concat([...files.map((file) => tarEntry(file.name, file.mode, file.content, mtime)), Buffer.alloc(1024)]);
  return gzipSync(tar, { level: 9 });
}

interface ManifestPlatform {
  selector: { matchLabels: { os: string; arch: string } };
  uri: string;
  sha256: string;
  bin: string;
  files?: { from: string; to: string }[];
}

interface Manifest {
  metadata: { name: string };
  spec: { version: string; platforms: ManifestPlatform[] };
}

async function bundle(out: string, version: string): Promise<{ file: string; floor: string; setAside: string[] }> {
  const file = path.join(out, BUNDLE);
  // First pass: which packages end up inside, to know the floor to write in.
  const options = {
    input: path.join(REPO, "src", "bin", "kubectl-whatsapp.ts"),
    platform: "node" as const,
    logLevel: "warn" as const,
  };
  const probe = await build({ ...options, write: false, output: { format: "cjs", codeSplitting: false } });
  const moduleIds = probe.output.flatMap((chunk) => ("moduleIds" in chunk ? chunk.moduleIds : []));
  const { floor, setAside } = nodeFloor(moduleIds, (manifest) => JSON.parse(readFileSync(manifest, "utf8")) as { engines?: { node?: string } });
  await build({
    ...options,
    transform: {
      target: `node${floor}`,
      define: { WA_BUNDLE_VERSION: JSON.stringify(version), WA_BUNDLE_MINIMUM_NODE: JSON.stringify(floor) },
    },
    write: true,
    output: { file, format: "cjs", codeSplitting: false, minify: true, comments: { legal: true, annotation: false, jsdoc: false } },
  });
  chmodSync(file, 0o755);
  return { file, floor, setAside };
}

const COMPLETION_HELPER_TEXT = `#!/bin/sh
# kubectl runs this to complete \`kubectl whatsapp ...\` (it must be on PATH, like kubectl-whatsapp).
exec kubectl-whatsapp __complete "$@"
`;

export interface DistResult {
  readonly manifest: string;
  readonly archives: readonly string[];
  readonly bundle: string;
  readonly floor: string;
}

export async function pluginDist(options: { out: string; baseUrl?: string | undefined }): Promise<DistResult> {
  const { version } = JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as { version: string };
  rmSync(options.out, { recursive: true, force: true });
  mkdirSync(options.out, { recursive: true });
  const built = await bundle(options.out, version);
  const template = readFileSync(path.join(REPO, "plugins", "whatsapp.yaml"), "utf8");
  const manifest = parse(template.replaceAll("{{version}}", version).replaceAll("{{minimumNode}}", built.floor)) as Manifest;
  const license = path.join(REPO, "LICENSE");
  const files = [
    { name: BUNDLE, mode: 0o755, content: readFileSync(built.file) },
    { name: COMPLETION_HELPER, mode: 0o755, content: Buffer.from(COMPLETION_HELPER_TEXT) },
    ...(existsSync(license) ? [{ name: "LICENSE", mode: 0o644, content: readFileSync(license) }] : []),
  ];
  const mtime = Number.parseInt(process.env["SOURCE_DATE_EPOCH"] ?? "0", 10) || 0;
  const archives: string[] = [];
  for (const platform of manifest.spec.platforms) {
    if (options.baseUrl) platform.uri = `${options.baseUrl.replace(/\/+$/, "")}/${path.posix.basename(platform.uri)}`;
    const archive = path.join(options.out, path.posix.basename(new URL(platform.uri).pathname));
    const bytes = tarGz(files, mtime);
    writeFileSync(archive, bytes);
    platform.sha256 = createHash("sha256").update(bytes).digest("hex");
    archives.push(archive);
  }
  const manifestFile = path.join(options.out, `${manifest.metadata.name}.yaml`);
  writeFileSync(manifestFile, `# Generated by npm run plugin:dist from plugins/whatsapp.yaml.\n${stringify(manifest, { lineWidth: 0 })}`);
  if (built.setAside.length > 0) console.error(`plugin:dist: bundled below the declared engines of ${built.setAside.join(", ")} (see ENGINE_CLAIMS_SET_ASIDE)`);
  return { manifest: manifestFile, archives, bundle: built.file, floor: built.floor };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { out: { type: "string" }, "base-url": { type: "string" } }, strict: true });
  const result = await pluginDist({ out: path.resolve(values.out ?? path.join(REPO, "dist", "plugin")), baseUrl: values["base-url"] });
  console.log(`kubectl-whatsapp bundle (Node.js ${result.floor} or newer): ${path.relative(process.cwd(), result.bundle)}`);
  for (const archive of result.archives) console.log(`archive: ${path.relative(process.cwd(), archive)}`);
  console.log(`krew manifest: ${path.relative(process.cwd(), result.manifest)}`);
}
