/**
 * Shell completion for kubectl-whatsapp.
 *
 * kubectl completes `kubectl whatsapp ...` by running kubectl_complete-whatsapp from PATH
 * with the words typed after "whatsapp", the last one being the word under the cursor
 * ("" for a new word), and reading Cobra's answer: one candidate a line (optionally
 * "candidate<TAB>description"), then ":<directive>" (k8s.io/kubectl
 * pkg/cmd/plugin/plugin_completion.go, getPluginCompletions). `kubectl whatsapp __complete
 * WORDS...` prints that answer; the bash and zsh scripts of `completion` ask it too, for
 * kubectl-whatsapp typed on its own.
 *
 * What to complete is decided by a pure function of the words (completionTarget); only
 * instance and namespace names need the API server.
 */
import { COMMANDS, isCommand, OPTIONS, OUTPUT_FORMATS, SHELLS, SINGLE_NAME_COMMANDS, type OptionName, type Shell, type ValueOptionName } from "./command-line.ts";

/** Cobra's ShellCompDirective values that we use. */
export const DIRECTIVE = {
  /** Let the shell fall back to file names when there is no candidate. */
  default: 0,
  /** No file names: the candidates are all there is. */
  noFileComp: 4,
} as const;

/** Which cluster, user and namespace the words so far name (-n, --context, --kubeconfig). */
export interface CompletionScope {
  readonly namespace?: string | undefined;
  readonly context?: string | undefined;
  readonly kubeconfig?: string | undefined;
}

export type CompletionTarget =
  | { readonly kind: "commands" }
  | { readonly kind: "flags" }
  | { readonly kind: "words"; readonly words: readonly string[] }
  | { readonly kind: "instances"; readonly exclude: readonly string[] }
  | { readonly kind: "namespaces" }
  | { readonly kind: "contexts" }
  | { readonly kind: "files" }
  | { readonly kind: "nothing" };

/** What the value of each flag completes to. */
const FLAG_VALUES: Record<ValueOptionName, CompletionTarget> = {
  namespace: { kind: "namespaces" },
  context: { kind: "contexts" },
  kubeconfig: { kind: "files" },
  png: { kind: "files" },
  output: { kind: "words", words: OUTPUT_FORMATS },
  timeout: { kind: "nothing" },
  port: { kind: "nothing" },
};

function optionOf(word: string): OptionName | undefined {
  if (word.startsWith("--")) {
    const name = word.slice(2).split("=", 1)[0] as string;
    return Object.hasOwn(OPTIONS, name) ? (name as OptionName) : undefined;
  }
  if (/^-[a-zA-Z]$/.test(word)) {
    return (Object.keys(OPTIONS) as OptionName[]).find((name) => (OPTIONS[name] as { short?: string }).short === word.slice(1));
  }
  return undefined;
}

function takesValue(name: OptionName): name is ValueOptionName {
  return OPTIONS[name].type === "string";
}

/** The words split into flags with their values and positionals, as parseArgs would. */
function readWords(words: readonly string[]): { positionals: string[]; scope: CompletionScope } {
  const positionals: string[] = [];
  const scope: { namespace?: string; context?: string; kubeconfig?: string } = {};
  for (let index = 0; index < words.length; index++) {
    const word = words[index] as string;
    const option = word.startsWith("-") && word !== "-" ? optionOf(word) : undefined;
    if (!word.startsWith("-") || word === "-") {
      positionals.push(word);
      continue;
    }
    if (!option || !takesValue(option)) continue;
    const value = word.includes("=") ? word.slice(word.indexOf("=") + 1) : words[++index];
    if (option === "namespace" || option === "context" || option === "kubeconfig") scope[option] = value;
  }
  return { positionals, scope };
}

/**
 * What the word under the cursor (the last of words) should complete to, and the scope
 * the earlier words set. Pure.
 */
export function completionTarget(words: readonly string[]): { target: CompletionTarget; scope: CompletionScope; prefix: string } {
  const before = words.slice(0, -1);
  const current = words.at(-1) ?? "";
  const { positionals, scope } = readWords(before);
  const previous = before.at(-1);
  const previousOption = previous !== undefined && !previous.includes("=") ? optionOf(previous) : undefined;
  if (previousOption && takesValue(previousOption)) return { target: FLAG_VALUES[previousOption], scope, prefix: current };
  if (current.startsWith("--") && current.includes("=")) {
    const option = optionOf(current);
    const prefix = current.slice(current.indexOf("=") + 1);
    return { target: option && takesValue(option) ? FLAG_VALUES[option] : { kind: "nothing" }, scope, prefix };
  }
  if (current.startsWith("-")) return { target: { kind: "flags" }, scope, prefix: current };
  const [command, ...names] = positionals;
  if (command === undefined) return { target: { kind: "commands" }, scope, prefix: current };
  if (!isCommand(command)) return { target: { kind: "nothing" }, scope, prefix: current };
  if (command === "completion") return { target: names.length === 0 ? { kind: "words", words: SHELLS } : { kind: "nothing" }, scope, prefix: current };
  if (command === "status") return { target: { kind: "instances", exclude: names }, scope, prefix: current };
  if (SINGLE_NAME_COMMANDS.includes(command) && names.length === 0) return { target: { kind: "instances", exclude: [] }, scope, prefix: current };
  return { target: { kind: "nothing" }, scope, prefix: current };
}

/** Where names come from; each may fail or be slow, and then offers nothing. */
export interface CompletionSources {
  instances(scope: CompletionScope): Promise<string[]>;
  namespaces(scope: CompletionScope): Promise<string[]>;
  contexts(scope: CompletionScope): Promise<string[]>;
}

/** Cobra's __complete answer for words (the last is the word under the cursor). */
export async function complete(words: readonly string[], sources: CompletionSources): Promise<string> {
  const { target, scope, prefix } = completionTarget(words);
  const lines = (candidates: readonly string[], directive: number) =>
    [...candidates.filter((candidate) => candidate.startsWith(prefix)), `:${directive}`].join("\n") + "\n";
  const names = async (list: () => Promise<string[]>) => {
    try {
      return await list();
    } catch {
      return [];
    }
  };
  switch (target.kind) {
    case "commands":
      return lines(
        Object.entries(COMMANDS).map(([name, summary]) => `${name}\t${summary}`),
        DIRECTIVE.noFileComp,
      );
    case "flags":
      return lines(
        (Object.keys(OPTIONS) as OptionName[]).map((name) => `--${name}`),
        DIRECTIVE.noFileComp,
      );
    case "words":
      return lines(target.words, DIRECTIVE.noFileComp);
    case "instances": {
      const exclude = new Set(target.exclude);
      return lines((await names(() => sources.instances(scope))).filter((name) => !exclude.has(name)).sort(), DIRECTIVE.noFileComp);
    }
    case "namespaces":
      return lines((await names(() => sources.namespaces(scope))).sort(), DIRECTIVE.noFileComp);
    case "contexts":
      return lines(await names(() => sources.contexts(scope)), DIRECTIVE.noFileComp);
    case "files":
      return lines([], DIRECTIVE.default);
    case "nothing":
      return lines([], DIRECTIVE.noFileComp);
  }
}

/**
 * The script that completes kubectl-whatsapp typed on its own in shell; it asks
 * `kubectl-whatsapp __complete` as kubectl asks kubectl_complete-whatsapp.
 */
export function completionScript(shell: Shell): string {
  return { bash: BASH, zsh: ZSH, fish: FISH }[shell];
}

const HOW_TO = `# For \`kubectl whatsapp <TAB>\` as well, put an executable kubectl_complete-whatsapp on PATH
# that runs \`kubectl whatsapp __complete "$@"\` (kubectl asks it; the release archive has one).`;

const BASH = `# bash completion for kubectl-whatsapp. Load it with
#   source <(kubectl-whatsapp completion bash)
${HOW_TO}
_kubectl_whatsapp() {
  # The words up to the cursor, split at blanks only (COMP_WORDS also splits at = and :).
  local line=\${COMP_LINE:0:COMP_POINT} out entry directive=0
  local -a words=() candidates=()
  read -ra words <<<"$line"
  [[ $line =~ [[:space:]]$ ]] && words+=("")
  out=$("\${words[0]}" __complete "\${words[@]:1}" 2>/dev/null) || return 0
  while IFS= read -r entry; do
    case "$entry" in
      :[0-9]*) directive=\${entry#:} ;;
      ?*) candidates+=("\${entry%%$'\\t'*}") ;;
    esac
  done <<<"$out"
  # bash replaces only what follows a = or :, so the candidates are bare values.
  COMPREPLY=("\${candidates[@]}")
  # Directive 4 (no file completion): the candidates are all there is.
  if (( \${#candidates[@]} == 0 && (directive & 4) == 0 )); then compopt -o default 2>/dev/null; fi
  return 0
}
complete -F _kubectl_whatsapp kubectl-whatsapp
`;

const ZSH = `#compdef kubectl-whatsapp
# zsh completion for kubectl-whatsapp. Load it, after compinit, with
#   source <(kubectl-whatsapp completion zsh)
${HOW_TO}
_kubectl_whatsapp() {
  local out line name prefix directive=0
  local -a candidates
  out=$("\${words[1]}" __complete "\${(@)words[2,CURRENT-1]}" "\${words[CURRENT]}" 2>/dev/null) || return 1
  for line in "\${(@f)out}"; do
    case "$line" in
      :[0-9]*) directive=\${line#:} ;;
      ?*)
        # _describe reads "name:description"; a colon in a name is escaped.
        name=\${\${line%%$'\\t'*}//:/\\\\:}
        if [[ $line == *$'\\t'* ]]; then candidates+=("$name:\${line#*$'\\t'}"); else candidates+=("$name"); fi
        ;;
    esac
  done
  # After --flag=, the candidates are values: keep the --flag= before them.
  [[ \${words[CURRENT]} == -*=* ]] && prefix=\${words[CURRENT]%%=*}=
  if (( \${#candidates} )); then
    _describe -t values kubectl-whatsapp candidates -P "$prefix"
  elif (( (directive & 4) == 0 )); then
    _files
  fi
}
compdef _kubectl_whatsapp kubectl-whatsapp
`;

const FISH = `# fish completion for kubectl-whatsapp. Load it with
#   kubectl-whatsapp completion fish | source
# or save it as ~/.config/fish/completions/kubectl-whatsapp.fish.
${HOW_TO}
function __kubectl_whatsapp_complete
    set -l words (commandline -opc)
    set -l current (commandline -ct)
    set -l directive 0
    set -l candidates
    for line in ($words[1] __complete $words[2..-1] "$current" 2>/dev/null)
        if string match -qr '^:[0-9]+$' -- $line
            set directive (string sub -s 2 -- $line)
        else if test -n "$line"
            set -a candidates $line
        end
    end
    # fish replaces the whole token: after --flag=, keep the --flag= before each value.
    # One empty element, not an empty list: $prefix$candidates is their product.
    set -l prefix ""
    if string match -qr -- '^-.*=' $current
        set prefix (string replace -r -- '=.*' '=' $current)
    end
    if test (count $candidates) -gt 0
        # fish reads "candidate<TAB>description" as Cobra writes it; -k below keeps our order.
        printf '%s\\n' $prefix$candidates
    else if test (math "bitand($directive, 4)") -eq 0
        __fish_complete_path "$current"
    end
end
complete -c kubectl-whatsapp -k -f -a '(__kubectl_whatsapp_complete)'
`;
