/**
 * The executables as a fresh clone has them: `npm run build` makes package.json's bins
 * executable and runnable through their #! line; on a Node older than package.json's
 * engines they, and `npm start`, refuse in one line instead of a stack trace.
 */
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { minimumOfRange } from "../../src/build-info.ts";
import { COMMANDS, OPTIONS } from "../../src/plugin/command-line.ts";
import { findNode20 } from "../support/old-node.ts";

const REPO = path.resolve(import.meta.dirname, "..", "..");
const packageJson = JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as {
  version: string;
  engines: { node: string };
  bin: Record<string, string>;
  scripts: Record<string, string>;
};
const NODE20 = findNode20();
const CURRENT_NODE_DIR = path.dirname(process.execPath);

/** Runs a file or command with dir's node first on PATH. */
function run(command: string, args: readonly string[], options: { nodeDir: string; cwd?: string }) {
  const result = spawnSync(command, args, {
    cwd: options.cwd ?? REPO,
    encoding: "utf8",
    env: { ...process.env, PATH: `${options.nodeDir}${path.delimiter}${process.env["PATH"]}`, npm_config_update_notifier: "false" },
    timeout: 120_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const refusal = (program: string, node: { path: string; version: string }) =>
  `${program} needs Node.js ${minimumOfRange(packageJson.engines.node)} or newer, but ${node.path} is ${node.version}; install a newer Node.js (https://nodejs.org) or put one first on PATH\n`;

// Each case starts Node processes: seconds apiece on a busy machine.
describe("npm run build", { timeout: 120_000 }, () => {
  let app: string;

  beforeAll(() => {
    app = mkdtempSync(path.join(tmpdir(), "wa-operator-build-"));
    for (const file of ["package.json", "tsconfig.json", "tsconfig.build.json", "src"]) cpSync(path.join(REPO, file), path.join(app, file), { recursive: true });
    symlinkSync(path.join(REPO, "node_modules"), path.join(app, "node_modules"), "dir");
    const build = run("npm", ["run", "build"], { nodeDir: CURRENT_NODE_DIR, cwd: app });
    expect(build.code, build.stderr).toBe(0);
  }, 180_000);

  afterAll(() => {
    if (app) rmSync(app, { recursive: true, force: true });
  });

  it("leaves every bin executable, each starting with #!/usr/bin/env node", () => {
    expect(Object.keys(packageJson.bin).sort()).toEqual(["kubectl-whatsapp", "wa-operator"]);
    for (const file of [...Object.values(packageJson.bin), "dist/cli/operator.js", "dist/cli/kubectl-whatsapp.js"]) {
      expect(statSync(path.join(app, file)).mode & 0o111, file).toBe(0o111);
      expect(readFileSync(path.join(app, file), "utf8").startsWith("#!/usr/bin/env node\n"), file).toBe(true);
    }
  });

  it("wa-operator --version and kubectl-whatsapp --version print package.json's version", () => {
    expect(run(path.join(app, packageJson.bin["wa-operator"] as string), ["--version"], { nodeDir: CURRENT_NODE_DIR })).toEqual({
      code: 0,
      stdout: `wa-operator ${packageJson.version}\n`,
      stderr: "",
    });
    expect(run(path.join(app, packageJson.bin["kubectl-whatsapp"] as string), ["--version"], { nodeDir: CURRENT_NODE_DIR })).toEqual({
      code: 0,
      stdout: `kubectl-whatsapp ${packageJson.version}\n`,
      stderr: "",
    });
  });

  it("wa-operator --help gives each setting a default", () => {
    const help = run(path.join(app, packageJson.bin["wa-operator"] as string), ["--help"], { nodeDir: CURRENT_NODE_DIR });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--poll-interval DURATION  [POLL_INTERVAL]");
    expect(help.stdout.match(/ Default: /g)?.length).toBe(22);
  });

  it("kubectl-whatsapp --help names every command and flag that the parser takes and completion offers", () => {
    const help = run(path.join(app, packageJson.bin["kubectl-whatsapp"] as string), ["--help"], { nodeDir: CURRENT_NODE_DIR });
    expect(help.code).toBe(0);
    for (const command of Object.keys(COMMANDS)) expect(help.stdout, command).toMatch(new RegExp(`^  ${command} `, "m"));
    for (const [name, option] of Object.entries(OPTIONS)) {
      expect(help.stdout, name).toMatch(new RegExp(`^  ${"short" in option ? `-${option.short}, ` : "    "}--${name}\\b`, "m"));
    }
  });

  it.skipIf(!NODE20)(`on ${NODE20 ? `Node ${NODE20.version} (${NODE20.path})` : "Node 20 (skipped: none on this machine)"}, both bins refuse in one line, exit 1`, () => {
    const node = NODE20 as NonNullable<typeof NODE20>;
    for (const name of ["wa-operator", "kubectl-whatsapp"]) {
      expect(run(path.join(app, packageJson.bin[name] as string), ["--help"], { nodeDir: node.dir }), name).toEqual({ code: 1, stdout: "", stderr: refusal(name, node) });
    }
  });
});

describe("npm start", { timeout: 120_000 }, () => {
  it("runs scripts/start.cjs, which starts the operator from its sources on this Node", () => {
    expect(packageJson.scripts["start"]).toBe("node scripts/start.cjs");
    expect(run(process.execPath, ["scripts/start.cjs", "--version"], { nodeDir: CURRENT_NODE_DIR })).toEqual({ code: 0, stdout: `wa-operator ${packageJson.version}\n`, stderr: "" });
  });

  it.skipIf(!NODE20)(`on ${NODE20 ? `Node ${NODE20.version}` : "Node 20 (skipped: none on this machine)"}, refuses in one line, no stack trace`, () => {
    const node = NODE20 as NonNullable<typeof NODE20>;
    const started = run("npm", ["start", "--", "--version"], { nodeDir: node.dir });
    expect(started.code).not.toBe(0);
    expect(started.stdout).not.toContain("wa-operator 0");
    const ours = started.stderr.split("\n").filter((line) => line.startsWith("wa-operator "));
    expect(ours).toEqual([
      `wa-operator needs Node.js ${packageJson.engines.node} (package.json engines), but ${node.path} is ${node.version}, which cannot run TypeScript; install a newer Node.js (https://nodejs.org) or run PATH=$(hack/node.sh):$PATH npm start`,
    ]);
    expect(started.stderr).not.toMatch(/^\s+at /m);
  });
});
