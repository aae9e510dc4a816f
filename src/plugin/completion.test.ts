import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COMMANDS, OPTIONS } from "./command-line.ts";
import { complete, completionTarget, DIRECTIVE, type CompletionScope, type CompletionSources } from "./completion.ts";

describe("completionTarget: what the word under the cursor completes to", () => {
  it.each([
    { words: [""], kind: "commands" },
    { words: ["st"], kind: "commands" },
    { words: ["-n", "demo", ""], kind: "commands" },
    { words: ["qr", ""], kind: "instances" },
    { words: ["qr", "-n", "demo", ""], kind: "instances" },
    { words: ["qr", "line", ""], kind: "nothing" },
    { words: ["restart", "--once", ""], kind: "instances" },
    { words: ["status", "a", ""], kind: "instances" },
    { words: ["status", "-"], kind: "flags" },
    { words: ["--na"], kind: "flags" },
    { words: ["status", "-n", ""], kind: "namespaces" },
    { words: ["status", "--namespace", "de"], kind: "namespaces" },
    { words: ["status", "--context", ""], kind: "contexts" },
    { words: ["--kubeconfig", ""], kind: "files" },
    { words: ["qr", "x", "--png", ""], kind: "files" },
    { words: ["qr", "x", "--timeout", ""], kind: "nothing" },
    { words: ["status", "-o", ""], kind: "words" },
    { words: ["status", "--output=j"], kind: "words" },
    { words: ["completion", ""], kind: "words" },
    { words: ["completion", "bash", ""], kind: "nothing" },
    { words: ["frobnicate", ""], kind: "nothing" },
    { words: ["events", ""], kind: "instances" },
    { words: ["events", "line", ""], kind: "nothing" },
    { words: ["providers", ""], kind: "nothing" },
    { words: ["version", ""], kind: "nothing" },
  ])("$words → $kind", ({ words, kind }) => {
    expect(completionTarget(words).target.kind).toBe(kind);
  });

  it("reads the scope from -n, --namespace=, --context and --kubeconfig before the cursor", () => {
    expect(completionTarget(["qr", "-n", "demo", "--context", "dev", "--kubeconfig=/k", ""]).scope).toEqual({ namespace: "demo", context: "dev", kubeconfig: "/k" });
  });

  it("does not take a flag's value for a command or a NAME", () => {
    expect(completionTarget(["-n", "qr", ""]).target).toEqual({ kind: "commands" });
    expect(completionTarget(["status", "--context", "line", ""]).target).toEqual({ kind: "instances", exclude: [] });
  });

  it("status does not offer the NAMEs already typed", () => {
    expect(completionTarget(["status", "a", "b", ""]).target).toEqual({ kind: "instances", exclude: ["a", "b"] });
  });
});

/** Sources that answer from fixed lists, remembering the scope each lookup used. */
function sources(lists: { instances?: string[]; namespaces?: string[]; contexts?: string[]; fail?: boolean }): CompletionSources & { scopes: CompletionScope[] } {
  const scopes: CompletionScope[] = [];
  const answer = async (scope: CompletionScope, list: string[] | undefined) => {
    scopes.push(scope);
    if (lists.fail) throw new Error("connection refused");
    return list ?? [];
  };
  return {
    scopes,
    instances: (scope) => answer(scope, lists.instances),
    namespaces: (scope) => answer(scope, lists.namespaces),
    contexts: async () => lists.contexts ?? [],
  };
}

/** Cobra's answer as candidates and directive. */
function read(answer: string): { candidates: string[]; directive: number } {
  const lines = answer.trimEnd().split("\n");
  const last = lines.pop() ?? "";
  expect(last).toMatch(/^:\d+$/);
  return { candidates: lines, directive: Number(last.slice(1)) };
}

describe("complete: Cobra's __complete answer", () => {
  it("offers every command with its summary, and no file names", async () => {
    const { candidates, directive } = read(await complete([""], sources({})));
    expect(candidates).toEqual(Object.entries(COMMANDS).map(([name, summary]) => `${name}\t${summary}`));
    expect(directive).toBe(DIRECTIVE.noFileComp);
  });

  it("keeps only the candidates that start with the typed word", async () => {
    expect(read(await complete(["dis"], sources({}))).candidates).toEqual([`disconnect\t${COMMANDS.disconnect}`]);
    expect(read(await complete(["qr", "sa"], sources({ instances: ["support-line", "sales-line", "sales-2"] }))).candidates).toEqual(["sales-2", "sales-line"]);
  });

  it("lists instances in the namespace the words name", async () => {
    const from = sources({ instances: ["b", "a"] });
    expect(read(await complete(["status", "-n", "demo", "b", ""], from))).toEqual({ candidates: ["a"], directive: DIRECTIVE.noFileComp });
    expect(from.scopes).toEqual([{ namespace: "demo" }]);
  });

  it("offers nothing, not an error, when the cluster cannot be asked", async () => {
    expect(read(await complete(["qr", ""], sources({ fail: true })))).toEqual({ candidates: [], directive: DIRECTIVE.noFileComp });
  });

  it("lets the shell complete file names for --kubeconfig and --png", async () => {
    expect(read(await complete(["--kubeconfig", ""], sources({})))).toEqual({ candidates: [], directive: DIRECTIVE.default });
  });

  it("offers every long flag after a dash", async () => {
    expect(read(await complete(["status", "--"], sources({}))).candidates).toEqual(Object.keys(OPTIONS).map((name) => `--${name}`));
  });

  it("completes -o and --output= to the output formats, namespaces and contexts from their sources", async () => {
    expect(read(await complete(["status", "-o", ""], sources({}))).candidates).toEqual(["table", "json", "yaml"]);
    expect(read(await complete(["status", "--output=y"], sources({}))).candidates).toEqual(["yaml"]);
    expect(read(await complete(["-n", "k"], sources({ namespaces: ["kube-system", "default"] }))).candidates).toEqual(["kube-system"]);
    expect(read(await complete(["--context", ""], sources({ contexts: ["dev", "prod"] }))).candidates).toEqual(["dev", "prod"]);
  });
});

/** A shell on this machine, or undefined. */
function shell(name: string): string | undefined {
  const found = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

// Each completion starts kubectl-whatsapp from its sources: seconds apiece on a busy machine.
describe("the completion scripts, run by their shells", () => {
  // kubectl-whatsapp on PATH as a user has it, here from the sources.
  let bin: string;
  beforeAll(() => {
    bin = mkdtempSync(path.join(tmpdir(), "kubectl-whatsapp-completion-"));
    const entry = path.join(import.meta.dirname, "..", "bin", "kubectl-whatsapp.ts");
    writeFileSync(path.join(bin, "kubectl-whatsapp"), `#!/bin/sh\nexec "${process.execPath}" "${entry}" "$@"\n`);
    chmodSync(path.join(bin, "kubectl-whatsapp"), 0o755);
  });
  afterAll(() => rmSync(bin, { recursive: true, force: true }));
  const env = () => ({ ...process.env, PATH: `${bin}${path.delimiter}${process.env["PATH"]}`, KUBECONFIG: path.join(bin, "none") });

  /** COMPREPLY after bash's completion function ran on the command line typed so far. */
  const bashComplete = (line: string): string[] =>
    execFileSync("bash", ["-c", 'source <(kubectl-whatsapp completion bash); COMP_LINE="$1"; COMP_POINT=${#1}; _kubectl_whatsapp; printf "%s\\n" "${COMPREPLY[@]}"', "bash", line], {
      env: env(),
      encoding: "utf8",
    })
      .split("\n")
      .filter(Boolean);

  it("bash: commands without their descriptions, values after a blank and after =", () => {
    expect(bashComplete("kubectl-whatsapp ")).toEqual(Object.keys(COMMANDS));
    expect(bashComplete("kubectl-whatsapp status -o ")).toEqual(["table", "json", "yaml"]);
    // bash's word under the cursor starts after "=": the candidate is the bare value.
    expect(bashComplete("kubectl-whatsapp status --output=y")).toEqual(["yaml"]);
  }, 120_000);

  const zsh = shell("zsh");
  // zsh's completion system needs a terminal; its _describe and _files are replaced by
  // functions that print what they were given, which is what the script decides.
  it.skipIf(!zsh)(`zsh: candidates with their descriptions, the --flag= prefix, files${zsh ? "" : " (skipped: no zsh on this machine)"}`, () => {
    const run = (words: string[]) =>
      execFileSync(
        "zsh",
        [
          "-f",
          "-c",
          'compdef() { :; }; _describe() { print -rl -- "prefix=${@[6]}" "${(@P)4}"; }; _files() { print files; }; source <(kubectl-whatsapp completion zsh); words=("$@"); CURRENT=$#; _kubectl_whatsapp',
          "zsh",
          ...words,
        ],
        { env: env(), encoding: "utf8" },
      ).trimEnd();
    expect(run(["kubectl-whatsapp", ""]).split("\n")).toEqual(["prefix=", ...Object.entries(COMMANDS).map(([name, summary]) => `${name}:${summary}`)]);
    expect(run(["kubectl-whatsapp", "status", "--output=y"])).toBe("prefix=--output=\nyaml");
    expect(run(["kubectl-whatsapp", "--kubeconfig", ""])).toBe("files");
  }, 120_000);

  const fish = shell("fish");
  // `complete -C LINE` prints what fish would offer for LINE: candidate<TAB>description.
  it.skipIf(!fish)(`fish: candidates with their descriptions, the --flag= prefix kept, file names where no candidate${fish ? "" : " (skipped: no fish on this machine)"}`, () => {
    const run = (line: string) =>
      execFileSync("fish", ["--no-config", "-c", 'kubectl-whatsapp completion fish | source; complete -C "$argv[1]"', line], { env: env(), encoding: "utf8", cwd: bin })
        .split("\n")
        .filter(Boolean);
    expect(run("kubectl-whatsapp ")).toEqual(Object.entries(COMMANDS).map(([name, summary]) => `${name}\t${summary}`));
    expect(run("kubectl-whatsapp status -o ")).toEqual(["table", "json", "yaml"]);
    expect(run("kubectl-whatsapp status --output=y")).toEqual(["--output=yaml"]);
    expect(run("kubectl-whatsapp completion f")).toEqual(["fish"]);
    // --kubeconfig takes a file: fish offers the files here (the shim kubectl-whatsapp).
    expect(run("kubectl-whatsapp --kubeconfig kub")).toEqual(["kubectl-whatsapp"]);
  }, 120_000);
});
