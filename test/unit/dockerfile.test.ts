/**
 * The image cannot be built here (no container engine), so this checks what makes it
 * right: its Dockerfile's invariants, the build context, and that the build it runs
 * (npm run bundle) makes an entrypoint that starts with nothing beside it, in the
 * image's layout. Also what `npm run build` (tsc) makes for the package's bins.
 */
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { builtinModules } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleOperator, OPERATOR_BUNDLE } from "../../scripts/bundle-operator.ts";

const run = promisify(execFile);
const REPO = path.resolve(import.meta.dirname, "..", "..");
const packageJson = JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as {
  license: string;
  bin: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  scripts: Record<string, string>;
  type: string;
};

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** Dockerfile instructions by stage: comments dropped, continuation lines joined. */
function parseDockerfile(text: string): { args: Instruction[]; stages: Stage[] } {
  const logical: string[] = [];
  let pending = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("#") || (line === "" && pending === "")) continue;
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push((pending + line).trim());
    pending = "";
  }
  const args: Instruction[] = [];
  const stages: Stage[] = [];
  for (const line of logical) {
    const match = /^(\S+)\s+(.*)$/s.exec(line);
    if (!match) continue;
    const instruction = { keyword: (match[1] as string).toUpperCase(), args: (match[2] as string).replace(/\s+/g, " ") };
    if (instruction.keyword === "FROM") {
      const from = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      stages.push({ from: from?.[1] ?? "", name: from?.[2], instructions: [] });
    } else if (stages.length === 0) {
      args.push(instruction);
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return { args, stages };
}

/** Every module specifier a JavaScript file loads: import/export ... from, import(), a bare import, require(). */
function loadedSpecifiers(text: string): string[] {
  const pattern = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)|(?:^|\n)\s*import\s*["']([^"']+)["']|\brequire\(\s*["']([^"']+)["']\s*\)/g;
  return [...text.matchAll(pattern)].map((match) => (match[1] ?? match[2] ?? match[3] ?? match[4]) as string);
}

const dockerfile = parseDockerfile(readFileSync(path.join(REPO, "Dockerfile"), "utf8"));
const build = dockerfile.stages[0] as Stage;
const final = dockerfile.stages.at(-1) as Stage;
const of = (stage: Stage, keyword: string) => stage.instructions.filter((instruction) => instruction.keyword === keyword);
const runCommands = (stage: Stage) => of(stage, "RUN").map((instruction) => instruction.args.replace(/^(--\S+\s+)*/, ""));

describe("Dockerfile", () => {
  it("is multi-stage: a build stage and a separate final stage", () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2);
    expect(build.name).toBe("build");
    expect(final.name).toBeUndefined();
  });

  it("builds and runs on the Node version the tests run on (hack/node.sh), Debian slim", () => {
    const pinned = /version="\$\{WA_NODE_VERSION:-([0-9.]+)\}"/.exec(readFileSync(path.join(REPO, "hack", "node.sh"), "utf8"))?.[1];
    expect(pinned).toMatch(/^24\./);
    expect(dockerfile.args).toContainEqual({ keyword: "ARG", args: `NODE_VERSION=${pinned}` });
    expect(dockerfile.args).toContainEqual({ keyword: "ARG", args: "NODE_IMAGE=node:${NODE_VERSION}-bookworm-slim" });
    // The release passes NODE_IMAGE pinned by digest (release.yml); both stages take it.
    for (const stage of dockerfile.stages) expect(stage.from).toBe("${NODE_IMAGE}");
  });

  it("build stage: npm ci, then npm run bundle", () => {
    const commands = runCommands(build).join(" && ");
    const ci = commands.indexOf("npm ci");
    const bundle = commands.indexOf("npm run bundle");
    expect(ci).toBeGreaterThanOrEqual(0);
    expect(bundle).toBeGreaterThan(ci);
    expect(packageJson.scripts["bundle"]).toBe("node scripts/bundle-operator.ts");
  });

  it("final stage copies only the bundle (dist/operator) from the build stage: no node_modules, no package.json", () => {
    const copies = of(final, "COPY").map((instruction) => instruction.args);
    expect(copies).toEqual(["--from=build /app/dist/operator ./dist/operator"]);
    expect(of(final, "ADD")).toEqual([]);
    expect(runCommands(final).join(" ")).not.toMatch(/\b(npm|npx|yarn|pnpm|corepack)\s+(ci|i|install|add|run)\b/);
  });

  it("final stage runs as uid/gid 65532, not root", () => {
    const users = of(final, "USER");
    expect(users.at(-1)?.args).toBe("65532:65532");
    // Nothing after USER switches back or needs root.
    const afterUser = final.instructions.slice(final.instructions.findIndex((instruction) => instruction.keyword === "USER"));
    expect(afterUser.filter((instruction) => instruction.keyword === "RUN")).toEqual([]);
  });

  it("exposes 8080 and starts node dist/operator/wa-operator.cjs (exec form) with a bounded young generation", () => {
    expect(of(final, "EXPOSE").map((instruction) => instruction.args)).toEqual(["8080"]);
    expect(of(final, "ENTRYPOINT").map((instruction) => JSON.parse(instruction.args) as unknown)).toEqual([["node", "--max-semi-space-size=8", `dist/operator/${OPERATOR_BUNDLE}`]]);
    expect(of(final, "CMD")).toEqual([]);
    // The bin checks the Node version, then loads the code the bundle holds; the image's Node is pinned.
    expect(packageJson.bin["wa-operator"]).toBe("dist/bin/wa-operator.js");
    expect(readFileSync(path.join(REPO, "src", "bin", "wa-operator.ts"), "utf8")).toContain('import("../cli/operator.ts")');
  });

  it("labels the final image with OCI labels, its version package.json's (the ARG default, and what `make image` passes)", () => {
    const packageVersion = (JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as { version: string }).version;
    expect(dockerfile.args).toContainEqual({ keyword: "ARG", args: `VERSION=${packageVersion}` });
    // A global ARG reaches a stage only where the stage declares it again.
    expect(of(final, "ARG").map((instruction) => instruction.args)).toEqual(expect.arrayContaining(["VERSION", "REVISION"]));
    const labels = Object.fromEntries(
      of(final, "LABEL").flatMap((instruction) => [...instruction.args.matchAll(/([\w.-]+)="([^"]*)"/g)].map((match) => [match[1] as string, match[2] as string])),
    );
    expect(labels).toMatchObject({
      "org.opencontainers.image.title": "wa-operator",
      "org.opencontainers.image.version": "${VERSION}",
      "org.opencontainers.image.revision": "${REVISION}",
      "org.opencontainers.image.licenses": packageJson.license,
    });
    const makefile = readFileSync(path.join(REPO, "Makefile"), "utf8");
    expect(makefile).toMatch(/^VERSION := \$\(shell node -p 'require\("\.\/package\.json"\)\.version'\)$/m);
    expect(makefile).toContain("--build-arg VERSION=$(VERSION)");
  });

  it("declares no VOLUME: the only writable path, /tmp, is the Deployment's emptyDir", () => {
    for (const stage of dockerfile.stages) expect(of(stage, "VOLUME")).toEqual([]);
  });
});

describe(".dockerignore", () => {
  const lines = readFileSync(path.join(REPO, ".dockerignore"), "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith("#"));

  it("is an allowlist: everything is ignored first (.local/ holds a cluster's admin credentials)", () => {
    expect(lines[0]).toBe("*");
  });

  it("lets in exactly what the build stage copies from the context", () => {
    const fromContext = of(build, "COPY")
      .filter((instruction) => !instruction.args.startsWith("--from"))
      .flatMap((instruction) => instruction.args.split(" ").slice(0, -1));
    const allowed = lines.filter((line) => line.startsWith("!")).map((line) => line.slice(1).replace(/\/$/, ""));
    expect(allowed.sort()).toEqual(fromContext.sort());
  });
});

describe("npm run build (tsc -p tsconfig.build.json)", () => {
  // The image's layout: /app/package.json, /app/node_modules, /app/dist.
  let app: string;
  let dist: string;

  beforeAll(async () => {
    app = mkdtempSync(path.join(tmpdir(), "wa-operator-image-"));
    dist = path.join(app, "dist");
    await run(path.join(REPO, "node_modules", ".bin", "tsc"), ["-p", path.join(REPO, "tsconfig.build.json"), "--outDir", dist], { cwd: REPO });
    cpSync(path.join(REPO, "package.json"), path.join(app, "package.json"));
    symlinkSync(path.join(REPO, "node_modules"), path.join(app, "node_modules"), "dir");
  }, 120_000);

  afterAll(() => {
    if (app) rmSync(app, { recursive: true, force: true });
  });

  const emitted = (): string[] => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir)) {
        const full = path.join(dir, entry);
        if (statSync(full).isDirectory()) walk(full);
        else files.push(path.relative(dist, full));
      }
    };
    walk(dist);
    return files;
  };

  it("emits every bin of package.json from src/bin, with its #! line", () => {
    for (const [name, file] of Object.entries(packageJson.bin)) {
      const emittedFile = path.join(app, file);
      expect(existsSync(emittedFile), `${name} → ${file}`).toBe(true);
      expect(readFileSync(emittedFile, "utf8").startsWith("#!/usr/bin/env node\n"), file).toBe(true);
      expect(existsSync(path.join(REPO, "src", path.relative("dist", file).replace(/\.js$/, ".ts")))).toBe(true);
    }
  });

  it("emits no tests and only .js files with their source maps", () => {
    const files = emitted();
    expect(files.filter((file) => file.includes(".test."))).toEqual([]);
    expect(files.filter((file) => !file.endsWith(".js") && !file.endsWith(".js.map"))).toEqual([]);
  });

  it("rewrites relative .ts imports to .js", () => {
    const offenders = emitted()
      .filter((file) => file.endsWith(".js"))
      .filter((file) => /(?:from\s+|import\()\s*["']\.{1,2}\/[^"']*\.ts["']/.test(readFileSync(path.join(dist, file), "utf8")));
    expect(offenders).toEqual([]);
  });

  it("imports at run time only Node built-ins and production dependencies (what npm install --omit=dev keeps)", () => {
    const builtins = new Set(builtinModules);
    const unexpected = new Set<string>();
    for (const file of emitted().filter((name) => name.endsWith(".js"))) {
      const text = readFileSync(path.join(dist, file), "utf8");
      for (const specifier of loadedSpecifiers(text)) {
        if (specifier.startsWith(".") || specifier.startsWith("node:") || builtins.has(specifier)) continue;
        const packageName = specifier.startsWith("@") ? specifier.split("/").slice(0, 2).join("/") : (specifier.split("/")[0] as string);
        if (!(packageName in packageJson.dependencies)) unexpected.add(`${file}: ${specifier}`);
      }
    }
    expect([...unexpected]).toEqual([]);
  });

  it("package.json says type: module, so Node loads dist/ as ES modules", () => {
    expect(packageJson.type).toBe("module");
  });

  it.each(Object.values(packageJson.bin))("`node %s --help` runs from the image layout and exits 0", async (file) => {
    // From the image's working directory, like ENTRYPOINT; no KUBECONFIG is needed for --help.
    const { stdout } = await run(process.execPath, [file, "--help"], { cwd: app, env: { PATH: process.env.PATH ?? "", HOME: app } });
    expect(stdout).toMatch(/^Usage: /m);
    // A whole Node process loading the operator: seconds on a busy machine, past the 5 s unit default.
  }, 30_000);
});

describe("npm run bundle (the image's operator)", () => {
  // The image's layout: /app/dist/operator, and nothing else of ours.
  let app: string;
  let entry: string;
  const version = (JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as { version: string }).version;
  const runIn = (args: string[], env: Record<string, string> = {}) =>
    run(process.execPath, [...args], { cwd: app, env: { PATH: process.env.PATH ?? "", HOME: app, ...env } });

  beforeAll(async () => {
    app = mkdtempSync(path.join(tmpdir(), "wa-operator-bundle-"));
    entry = await bundleOperator(path.join(app, "dist", "operator"));
  }, 120_000);

  afterAll(() => {
    if (app) rmSync(app, { recursive: true, force: true });
  });

  const modules = () => readdirSync(path.dirname(entry)).filter((file) => file.endsWith(".cjs"));

  it("requires nothing but Node built-ins and its own chunks", () => {
    const builtins = new Set(builtinModules);
    const outside = new Set<string>();
    const required = new Set<string>();
    for (const file of modules()) {
      const text = readFileSync(path.join(path.dirname(entry), file), "utf8");
      for (const specifier of loadedSpecifiers(text)) {
        required.add(specifier);
        if (specifier.startsWith("./") || specifier.startsWith("node:") || builtins.has(specifier)) continue;
        outside.add(`${file}: ${specifier}`);
      }
    }
    expect(required).toContain("node:https");
    expect([...outside]).toEqual([]);
    expect(modules()).toContain(OPERATOR_BUNDLE);
    expect(existsSync(`${entry}.map`)).toBe(true);
  });

  it("leaves out what the operator does not use: zod's other locales", () => {
    // de.js's message for an invalid input; the English one is the default and stays.
    expect(readFileSync(path.join(REPO, "node_modules", "zod", "v4", "locales", "de.js"), "utf8")).toContain("Ungültige Eingabe");
    for (const file of modules()) expect(readFileSync(path.join(path.dirname(entry), file), "utf8")).not.toContain("Ungültige Eingabe");
  });

  it("runs with no node_modules or package.json beside it: --help, and --version says package.json's", async () => {
    expect(existsSync(path.join(app, "node_modules")) || existsSync(path.join(app, "package.json"))).toBe(false);
    expect((await runIn([`dist/operator/${OPERATOR_BUNDLE}`, "--help"])).stdout).toMatch(/^Usage: /m);
    expect((await runIn([`dist/operator/${OPERATOR_BUNDLE}`, "--version"])).stdout.trim()).toBe(`wa-operator ${version}`);
  }, 30_000);

  it("loads the tracing SDK from its chunks when an endpoint is set, before it reads the kubeconfig", async () => {
    // Port 9 on loopback: nothing is exported before the process ends on the missing kubeconfig.
    const failure = await runIn([`dist/operator/${OPERATOR_BUNDLE}`], {
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9",
      KUBECONFIG: path.join(app, "no-such-kubeconfig"),
      WATCH_NAMESPACES: "default",
    }).then(
      () => undefined,
      (error: { stdout: string; stderr: string }) => error,
    );
    expect(failure?.stdout).toContain('"msg":"exporting traces"');
    expect(failure?.stderr).not.toMatch(/ERR_MODULE_NOT_FOUND|Cannot find (module|package)/);
    expect(failure?.stderr).toContain("no-such-kubeconfig");
  }, 30_000);
});

describe("the Dockerfile parser", () => {
  it("reads stages, continuation lines and exec-form entrypoints", () => {
    const parsed = parseDockerfile(
      ['ARG V=1', 'FROM node:${V} AS build', 'RUN a \\', '  && b', '# comment', 'FROM scratch', 'USER root', 'ENTRYPOINT ["x"]', ""].join("\n"),
    );
    expect(parsed.args).toEqual([{ keyword: "ARG", args: "V=1" }]);
    expect(parsed.stages.map((stage) => [stage.from, stage.name])).toEqual([
      ["node:${V}", "build"],
      ["scratch", undefined],
    ]);
    expect(parsed.stages[0]?.instructions).toEqual([{ keyword: "RUN", args: "a && b" }]);
    expect(parsed.stages[1]?.instructions.map((instruction) => instruction.keyword)).toEqual(["USER", "ENTRYPOINT"]);
  });
});
