#!/usr/bin/env node
/**
 * `kubectl whatsapp`: the kubectl plugin for WhatsAppInstances. kubectl finds it on PATH
 * as kubectl-whatsapp (krew's link, or npm's bin), so `kubectl whatsapp qr support-line`
 * runs it. It uses the user's kubeconfig and credentials, never the operator's.
 * src/bin/kubectl-whatsapp.ts checks the Node version before loading this.
 */
import { parseArgs } from "node:util";
import { buildInfo } from "../build-info.ts";
import { parseDuration } from "../config.ts";
import type { InstanceObject, ProviderObject } from "../api/objects.ts";
import type { KubeClient } from "../kube/client.ts";
import { CLUSTER_PROVIDERS, EVENTS, INSTANCES, PROVIDERS } from "../kube/resources.ts";
import { isCommand, OPTIONS, OUTPUT_FORMATS, SHELLS, type Command, type OutputFormat } from "../plugin/command-line.ts";
import { complete, completionScript } from "../plugin/completion.ts";
import { describeError, EXIT, PluginError, type ExitCode } from "../plugin/errors.ts";
import { completionSources, loadKubeContext, type KubeContext } from "../plugin/kube-context.ts";
import { showQr } from "../plugin/qr-terminal.ts";
import { serveQrPage } from "../plugin/qr-web.ts";
import { requestRestart, setState } from "../plugin/spec-patch.ts";
import { statusDocument, statusTable } from "../plugin/status-table.ts";
import { eventsDocument, eventsTable, type EventObject } from "../plugin/events-table.ts";
import { findOperators, versionText } from "../plugin/operator-version.ts";
import { providersDocument, providersTable } from "../plugin/providers-table.ts";

const USAGE = `Usage: kubectl whatsapp COMMAND [NAME] [flags]

Link, inspect and drive WhatsApp numbers run by wa-operator (WhatsAppInstances).

Commands:
  qr NAME            Show the code that links NAME: the QR code in the terminal (from the
                     Secret NAME-qr), or the pairing code. Follows new codes until the
                     instance is Connected, then prints "Connected as +<phone>".
                     With --web, shows it on a page at http://127.0.0.1 instead.
  status [NAME...]   NAME, PROVIDER, DESIRED, PHASE, PHONE, READY, AGE and the Ready message;
                     -o json|yaml prints {"items": [...]} with the same facts per instance.
  connect NAME       Set spec.state to Connected.
  disconnect NAME    Set spec.state to Disconnected (stop the session, keep the link).
  logout NAME        Set spec.state to LoggedOut (remove the link; a new QR is needed).
  restart NAME       Set spec.restartRequestedAt to now: restart the session once.
  providers          WhatsAppProviders (this namespace, or -A) and ClusterWhatsAppProviders:
                     TYPE, READY, VERSION, USED (placed sessions/capacity, else
                     instances/maxInstances), RATE; -o json|yaml as status.
  events NAME        The Events of instance NAME, newest last; -o json|yaml as status.
  version            This plugin's version and the operator's (from its Deployment's
                     app.kubernetes.io/version label, else its image tag).
  completion bash|zsh|fish
                     Print a script that completes kubectl-whatsapp in that shell. For
                     \`kubectl whatsapp <TAB>\`, kubectl runs kubectl_complete-whatsapp from
                     PATH, which runs \`kubectl whatsapp __complete "$@"\`.

Flags:
  -n, --namespace NS     Namespace (default: the kubeconfig context's, else "default").
  -A, --all-namespaces   status, providers: every namespace.
  -o, --output FORMAT    status, providers, events: table (default), json or yaml.
      --kubeconfig FILE  Kubeconfig to use (default: KUBECONFIG, then ~/.kube/config).
      --context NAME     Kubeconfig context to use.
      --png FILE         qr: also write the QR code image (qr.png) to FILE; the only way to
                         get a code from providers that give just an image.
      --once             qr: show the current code and exit instead of following.
      --timeout DURATION qr: give up after this long (e.g. 5m).
      --version          Print the version and exit.
      --web              qr: serve a page on 127.0.0.1 with the live code (prints its URL);
                         exits once the page has shown "Connected as +<phone>", or on Ctrl-C.
      --port N           qr --web: the port to listen on (default: a free one).
  -h, --help             This help.

Exit codes:
  0  done (qr: Connected)
  1  the API server refused or could not be reached, or the instance does not exist
  2  usage error
  3  qr: no code yet or the terminal is too small for it (--once), or --timeout ran out
  4  qr: the instance cannot link as it stands (Stalled, or spec.state is not Connected)`;

async function main(argv: readonly string[]): Promise<ExitCode> {
  // Completion reads half-typed words, which the strict parser below would refuse.
  if (argv[0] === "__complete") {
    process.stdout.write(await complete(argv.slice(1), completionSources()));
    return EXIT.ok;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: OPTIONS,
    });
  } catch (error) {
    throw new PluginError(EXIT.usage, `${(error as Error).message}\n\n${USAGE}`);
  }
  const { values, positionals } = parsed;
  const [command, ...names] = positionals;
  if (values.help || command === "help") {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (values.version) {
    process.stdout.write(`kubectl-whatsapp ${buildInfo().version}\n`);
    return EXIT.ok;
  }
  if (!command) throw new PluginError(EXIT.usage, `a command is required\n\n${USAGE}`);
  if (!isCommand(command)) throw new PluginError(EXIT.usage, `unknown command "${command}"\n\n${USAGE}`);
  if (command === "completion") {
    const [shell, ...extra] = names;
    if (!shell || extra.length > 0 || !(SHELLS as readonly string[]).includes(shell)) {
      throw new PluginError(EXIT.usage, `completion takes one shell: ${SHELLS.join(" or ")} (kubectl whatsapp completion bash)`);
    }
    process.stdout.write(completionScript(shell as (typeof SHELLS)[number]));
    return EXIT.ok;
  }
  const output = outputFlag(values.output);
  const timeoutMs = values.timeout === undefined ? undefined : durationFlag(values.timeout);
  const web = qrWebFlags(values);
  const context = await loadKubeContext({ kubeconfig: values.kubeconfig, context: values.context, namespace: values.namespace });
  server = context.server;
  return run(command, names, context, { allNamespaces: values["all-namespaces"] ?? false, png: values.png, once: values.once ?? false, timeoutMs, output, web });
}

async function run(
  command: Exclude<Command, "completion">,
  names: string[],
  context: KubeContext,
  flags: { allNamespaces: boolean; png: string | undefined; once: boolean; timeoutMs: number | undefined; output: OutputFormat; web: { port: number } | undefined },
): Promise<ExitCode> {
  const { kube, namespace } = context;
  if (command === "status") {
    let instances: InstanceObject[];
    if (names.length > 0) {
      instances = [];
      for (const name of names) {
        const instance = await kube.find<InstanceObject>(INSTANCES, namespace, name);
        if (!instance) throw new PluginError(EXIT.error, `whatsappinstance "${name}" not found in namespace "${namespace}"`);
        instances.push(instance);
      }
    } else {
      instances = (await kube.list<InstanceObject>(INSTANCES, flags.allNamespaces ? undefined : namespace)).items;
    }
    if (flags.output !== "table") {
      process.stdout.write(statusDocument(instances, flags.output));
      return EXIT.ok;
    }
    if (instances.length === 0) {
      process.stderr.write(flags.allNamespaces ? "No WhatsAppInstances found.\n" : `No WhatsAppInstances found in ${namespace} namespace.\n`);
      return EXIT.ok;
    }
    process.stdout.write(`${statusTable(instances, { now: Date.now(), allNamespaces: flags.allNamespaces })}\n`);
    return EXIT.ok;
  }
  if (command === "providers") return showProviders(kube, flags.allNamespaces ? undefined : namespace, flags.output);
  if (command === "version") {
    if (names.length > 0) throw new PluginError(EXIT.usage, "version takes no NAME");
    process.stdout.write(versionText(buildInfo().version, await findOperators(kube, namespace)));
    return EXIT.ok;
  }
  const name = exactlyOneName(command, names);
  switch (command) {
    case "events":
      return showEvents(kube, namespace, name, flags.output);
    case "qr": {
      const common = { kube, namespace, name, pngFile: flags.png, timeoutMs: flags.timeoutMs, out: process.stdout, err: process.stderr };
      if (flags.web) return serveQrPage({ ...common, port: flags.web.port });
      // A terminal that reports no size (some IDE consoles) gets the plain, appending view.
      const terminal = process.stdout.isTTY && process.stdout.columns > 0 && process.stdout.rows > 0 ? process.stdout : undefined;
      return showQr({ ...common, once: flags.once, terminal });
    }
    case "connect":
      process.stdout.write(`${await setState(kube, namespace, name, "Connected")}\n`);
      return EXIT.ok;
    case "disconnect":
      process.stdout.write(`${await setState(kube, namespace, name, "Disconnected")}\n`);
      return EXIT.ok;
    case "logout":
      process.stdout.write(`${await setState(kube, namespace, name, "LoggedOut")}\n`);
      return EXIT.ok;
    case "restart":
      process.stdout.write(`${await requestRestart(kube, namespace, name, Date.now())}\n`);
      return EXIT.ok;
  }
}

async function showProviders(kube: KubeClient, namespace: string | undefined, output: OutputFormat): Promise<ExitCode> {
  const [namespaced, cluster] = await Promise.all([kube.list<ProviderObject>(PROVIDERS, namespace), kube.list<ProviderObject>(CLUSTER_PROVIDERS)]);
  const providers = [
    ...namespaced.items.map((object) => ({ kind: PROVIDERS.kind, object })),
    ...cluster.items.map((object) => ({ kind: CLUSTER_PROVIDERS.kind, object })),
  ];
  if (output !== "table") {
    process.stdout.write(providersDocument(providers, output));
    return EXIT.ok;
  }
  if (providers.length === 0) {
    process.stderr.write(namespace ? `No WhatsAppProviders in ${namespace} namespace and no ClusterWhatsAppProviders found.\n` : "No providers found.\n");
    return EXIT.ok;
  }
  process.stdout.write(`${providersTable(providers, { now: Date.now() })}\n`);
  return EXIT.ok;
}

/** The instance's Events, by the involved object's kind and name, as `kubectl events --for` selects them. */
async function showEvents(kube: KubeClient, namespace: string, name: string, output: OutputFormat): Promise<ExitCode> {
  const selector = `involvedObject.kind=${INSTANCES.kind},involvedObject.name=${name}`;
  const events = (await kube.list<EventObject>(EVENTS, namespace, undefined, selector)).items;
  if (events.length === 0 && !(await kube.find(INSTANCES, namespace, name))) {
    throw new PluginError(EXIT.error, `whatsappinstance "${name}" not found in namespace "${namespace}"`);
  }
  if (output !== "table") {
    process.stdout.write(eventsDocument(events, output));
    return EXIT.ok;
  }
  if (events.length === 0) {
    process.stderr.write(`No events found for whatsappinstance ${name} in ${namespace} namespace.\n`);
    return EXIT.ok;
  }
  process.stdout.write(`${eventsTable(events, { now: Date.now() })}\n`);
  return EXIT.ok;
}

function exactlyOneName(command: string, names: readonly string[]): string {
  if (names.length !== 1 || !names[0]) throw new PluginError(EXIT.usage, `${command} takes exactly one NAME (kubectl whatsapp ${command} NAME [-n NAMESPACE])`);
  return names[0];
}

function outputFlag(text: string | undefined): OutputFormat {
  if (text === undefined) return "table";
  if (!(OUTPUT_FORMATS as readonly string[]).includes(text)) throw new PluginError(EXIT.usage, `-o/--output must be one of ${OUTPUT_FORMATS.join(", ")}, not "${text}"`);
  return text as OutputFormat;
}

function durationFlag(text: string): number {
  try {
    return parseDuration(text);
  } catch (error) {
    throw new PluginError(EXIT.usage, `--timeout: ${(error as Error).message}`);
  }
}

/** --web and --port: undefined without --web; --port only with it, and not with --once. */
function qrWebFlags(values: { web?: boolean | undefined; port?: string | undefined; once?: boolean | undefined }): { port: number } | undefined {
  if (!values.web) {
    if (values.port !== undefined) throw new PluginError(EXIT.usage, "--port is for qr --web");
    return undefined;
  }
  if (values.once) throw new PluginError(EXIT.usage, "--web follows the code until linked; it does not take --once");
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!/^\d+$/.test(values.port ?? "0") || port > 65535) throw new PluginError(EXIT.usage, `--port: ${values.port} is not a port number (0-65535)`);
  return { port };
}

/** The API server's URL once known, for error messages. */
let server: string | undefined;

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const { message, exitCode } = describeError(error, server);
    process.stderr.write(`error: ${message}\n`);
    process.exit(exitCode);
  },
);
