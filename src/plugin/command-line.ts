/**
 * The commands and flags of kubectl-whatsapp: what the parser accepts and what shell
 * completion offers, from one table so the two cannot disagree.
 */
import type { ParseArgsConfig } from "node:util";

/** Each command, with the one-line summary completion shows beside it. */
export const COMMANDS = {
  qr: "Show the code that links NAME and follow it until Connected",
  status: "Show instances: phase, phone, Ready and its message",
  connect: "Set spec.state to Connected",
  disconnect: "Set spec.state to Disconnected (keep the link)",
  logout: "Set spec.state to LoggedOut (remove the link)",
  restart: "Restart the session once",
  providers: "Show providers of both kinds: Ready, version, use, rate limit",
  events: "Show the Events of instance NAME, newest last",
  version: "Show the plugin's version and the operator's",
  completion: "Print a bash, zsh or fish completion script",
} as const;

export type Command = keyof typeof COMMANDS;

/** Commands that take exactly one WhatsAppInstance NAME. */
export const SINGLE_NAME_COMMANDS: readonly Command[] = ["qr", "connect", "disconnect", "logout", "restart", "events"];

export const OPTIONS = {
  namespace: { type: "string", short: "n" },
  "all-namespaces": { type: "boolean", short: "A" },
  kubeconfig: { type: "string" },
  context: { type: "string" },
  output: { type: "string", short: "o" },
  png: { type: "string" },
  once: { type: "boolean" },
  timeout: { type: "string" },
  web: { type: "boolean" },
  port: { type: "string" },
  version: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

export type OptionName = keyof typeof OPTIONS;

/** The options that take a value. */
export type ValueOptionName = { [K in OptionName]: (typeof OPTIONS)[K]["type"] extends "string" ? K : never }[OptionName];

/** status -o: the table, or the same rows as a JSON or YAML document. */
export const OUTPUT_FORMATS = ["table", "json", "yaml"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export const SHELLS = ["bash", "zsh", "fish"] as const;
export type Shell = (typeof SHELLS)[number];

export function isCommand(word: string): word is Command {
  return Object.hasOwn(COMMANDS, word);
}
