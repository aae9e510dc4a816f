/**
 * Which API server to talk to, and as whom, found as kubectl (client-go) finds it:
 *
 *   1. the file given (--kubeconfig), which must exist;
 *   2. else KUBECONFIG: a list of files (':'-separated, ';' on Windows), merged: for
 *      clusters, users and contexts the first file that defines a name wins, and
 *      current-context comes from the first file that sets one; missing files are skipped;
 *   3. else ~/.kube/config;
 *   4. else, when no file of 2 or 3 exists, a Pod's in-cluster config: the API server at
 *      KUBERNETES_SERVICE_HOST:KUBERNETES_SERVICE_PORT, the service account's token
 *      (re-read as the kubelet rotates it), ca.crt and namespace.
 *
 * Then the context (--context, else current-context) names the cluster (server,
 * certificate-authority[-data], insecure-skip-tls-verify, tls-server-name, proxy-url), the
 * user (token, tokenFile, client-certificate[-data] and client-key[-data], username and
 * password, or an exec credential plugin; impersonation: as, as-uid, as-groups,
 * as-user-extra) and the namespace. Relative paths in a file are relative to that file's
 * directory; a -data field wins over its file twin.
 *
 * As client-go, a CA together with insecure-skip-tls-verify is refused (transport's
 * TLSConfigFor: "specifying a root certificates file with the insecure flag is not
 * allowed"), and so is asking for groups, a uid or extras without a user to impersonate
 * (clientcmd's validateAuthInfo).
 *
 * Not supported, and refused with a message saying so rather than ignored: auth-provider
 * (client-go removed the gcp and azure ones; oidc users can switch to kubelogin's exec
 * plugin) and a socks5 proxy-url.
 *
 * The YAML parser is loaded only when there is a file to read: in a Pod it is not.
 * No token, password or key ever goes into an error message.
 */
import { readFileSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { EXEC_API_VERSIONS, ExecPlugin, issues, KubeConfigError, TokenFile, type ExecConfig } from "./credentials.ts";

export { KubeConfigError } from "./credentials.ts";

/** Where a Pod's service-account credentials are mounted. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export interface LoadOptions {
  /** An explicit kubeconfig (--kubeconfig): it must exist, and KUBECONFIG and ~/.kube/config are not read. */
  readonly file?: string | undefined;
  /** The context to use instead of current-context (--context). */
  readonly context?: string | undefined;
  /** Where KUBECONFIG and the in-cluster variables are read; process.env by default. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The directory holding .kube/config; the user's home by default. */
  readonly home?: string;
  /** Where the in-cluster token, ca.crt and namespace are; SERVICE_ACCOUNT_DIR by default. */
  readonly serviceAccountDir?: string;
  /** The clock for token re-reads and exec credential expiry. */
  readonly now?: () => number;
}

export interface KubeCluster {
  readonly name: string;
  /** The API server's URL, e.g. https://10.0.0.1:6443 (it may carry a path prefix). */
  readonly server: string;
  /** The CA bundle that signs the server's certificate; undefined: the system's roots. */
  readonly ca: Buffer | undefined;
  readonly insecureSkipTlsVerify: boolean;
  /** The name to check the server's certificate against (and send as SNI) instead of the URL's host. */
  readonly tlsServerName: string | undefined;
  /** An http:// or https:// proxy every connection to the server is tunnelled through (HTTP CONNECT). */
  readonly proxyUrl?: string | undefined;
}

export interface ContextEntry {
  readonly name: string;
  readonly cluster: string;
  readonly user: string | undefined;
  readonly namespace: string | undefined;
}

/** What an https request to the API server needs, as https.request options plus the Authorization header. */
export interface RequestAuth {
  readonly ca: Buffer | undefined;
  readonly cert: Buffer | string | undefined;
  readonly key: Buffer | string | undefined;
  readonly servername: string | undefined;
  readonly rejectUnauthorized: boolean;
  readonly authorization: string | undefined;
  /** Impersonate-* headers, when the user impersonates someone (a list: one header line each). */
  readonly impersonation?: Readonly<Record<string, string | readonly string[]>> | undefined;
}

/** The kubeconfig files (or the in-cluster config) as found, before a context is chosen. */
export interface Kubeconfig {
  /** Where it came from, for messages: the file(s) read, or "the in-cluster config". */
  readonly source: string;
  readonly contexts: readonly ContextEntry[];
  readonly currentContext: string | undefined;
  /** The config of a context (default: current-context); throws KubeConfigError when it is unusable. */
  select(context?: string): KubeConfig;
}

interface Credentials {
  readonly cert?: Buffer | undefined;
  readonly key?: Buffer | undefined;
  readonly token?: string | undefined;
  readonly tokenFile?: TokenFile | undefined;
  /** base64 of username:password. */
  readonly basic?: string | undefined;
  readonly exec?: ExecPlugin | undefined;
  readonly impersonation?: Readonly<Record<string, string | readonly string[]>> | undefined;
}

/** One cluster, user and namespace: what KubeClient talks to, and how. */
export class KubeConfig {
  readonly source: string;
  readonly contexts: readonly ContextEntry[];
  /** The context in use; undefined for the in-cluster config. */
  readonly currentContext: string | undefined;
  readonly cluster: KubeCluster;
  /** The user's name in the kubeconfig, if any. */
  readonly user: string | undefined;
  /** The context's namespace (in a Pod: POD_NAMESPACE, else the service account's). */
  readonly namespace: string | undefined;
  // A #private field, so that logging or inspecting a KubeConfig never shows a credential.
  readonly #credentials: Credentials;

  constructor(init: {
    source: string;
    contexts: readonly ContextEntry[];
    currentContext: string | undefined;
    cluster: KubeCluster;
    user: string | undefined;
    namespace: string | undefined;
    credentials: Credentials;
  }) {
    this.source = init.source;
    this.contexts = init.contexts;
    this.currentContext = init.currentContext;
    this.cluster = init.cluster;
    this.user = init.user;
    this.namespace = init.namespace;
    this.#credentials = init.credentials;
  }

  /** TLS options and the Authorization header for one request; may read a token file or run an exec plugin. */
  async auth(): Promise<RequestAuth> {
    const credentials = this.#credentials;
    let cert: Buffer | string | undefined = credentials.cert;
    let key: Buffer | string | undefined = credentials.key;
    let authorization: string | undefined;
    if (credentials.basic) authorization = `Basic ${credentials.basic}`;
    else if (credentials.tokenFile) authorization = `Bearer ${await credentials.tokenFile.get()}`;
    else if (credentials.token) authorization = `Bearer ${credentials.token}`;
    else if (credentials.exec) {
      const result = await credentials.exec.get();
      if (result.token) authorization = `Bearer ${result.token}`;
      if (result.cert) {
        cert = result.cert;
        key = result.key;
      }
    }
    const insecure = this.cluster.insecureSkipTlsVerify;
    return {
      ca: insecure ? undefined : this.cluster.ca,
      cert,
      key,
      servername: this.cluster.tlsServerName,
      rejectUnauthorized: !insecure,
      authorization,
      ...(credentials.impersonation ? { impersonation: credentials.impersonation } : {}),
    };
  }

  /**
   * The API server answered 401: the next request reads the token file or runs the exec
   * plugin afresh (client-go does the same for exec plugins) instead of waiting for a refresh.
   */
  rejected(): void {
    this.#credentials.tokenFile?.rejected();
    this.#credentials.exec?.rejected();
  }
}

/** The config to use: readKubeconfig, then its context (options.context, else current-context). */
export async function loadKubeConfig(options: LoadOptions = {}): Promise<KubeConfig> {
  return (await readKubeconfig(options)).select(options.context);
}

/** Finds and reads the kubeconfig files (or the in-cluster config) in kubectl's order, without choosing a context. */
export async function readKubeconfig(options: LoadOptions = {}): Promise<Kubeconfig> {
  const env = options.env ?? process.env;
  const explicit = Boolean(options.file);
  const list = env["KUBECONFIG"] ? env["KUBECONFIG"].split(path.delimiter).filter(Boolean) : [];
  const files = options.file ? [options.file] : list.length > 0 ? list : [path.join(options.home ?? os.homedir(), ".kube", "config")];
  const found: { file: string; text: string }[] = [];
  for (const file of new Set(files.map((entry) => path.resolve(entry)))) {
    try {
      found.push({ file, text: await readFile(file, "utf8") });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT" && !explicit) continue;
      throw new KubeConfigError(code === "ENOENT" ? `the kubeconfig ${file} does not exist` : `cannot read the kubeconfig ${file}: ${code ?? "unreadable"}`);
    }
  }
  if (found.length === 0) {
    const inCluster = readInCluster(env, options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR, options.now);
    if (typeof inCluster === "string") {
      const looked = list.length > 0 ? `none of the files in KUBECONFIG (${list.join(path.delimiter)}) exists` : `${files[0]} does not exist`;
      throw new KubeConfigError(`no kubeconfig: ${looked}, and this is not a Pod with a service account (${inCluster})`);
    }
    return inCluster;
  }
  const { parse } = await import("yaml");
  const documents = found.map(({ file, text }) => {
    let document: unknown;
    try {
      document = parse(text);
    } catch (error) {
      // Only the first line: the rest quotes the file, which may hold a token.
      throw new KubeConfigError(`the kubeconfig ${file} is not valid YAML: ${(error as Error).message.split("\n")[0]?.replace(/:$/, "")}`);
    }
    return { file, document };
  });
  return mergeKubeconfigs(documents, { now: options.now });
}

/**
 * Kubeconfig documents (parsed YAML or JSON) merged in order, as KUBECONFIG's files are:
 * the first to define a cluster, user or context name wins; current-context comes from the
 * first that sets one. Each file's relative paths are relative to its directory.
 */
export function mergeKubeconfigs(documents: readonly { file: string; document: unknown }[], options: { now?: (() => number) | undefined } = {}): Kubeconfig {
  const clusters = new Map<string, ClusterEntry>();
  const users = new Map<string, UserEntry>();
  const contexts = new Map<string, ContextEntry>();
  let currentContext: string | undefined;
  for (const { file, document } of documents) {
    const parsed = fileSchema.safeParse(withoutNulls(document ?? {}));
    if (!parsed.success) throw new KubeConfigError(`the kubeconfig ${file} is malformed: ${issues(parsed.error)}`);
    const dir = path.dirname(path.resolve(file));
    for (const { name, cluster } of parsed.data.clusters ?? []) if (!clusters.has(name)) clusters.set(name, { ...(cluster ?? {}), dir });
    for (const { name, user } of parsed.data.users ?? []) if (!users.has(name)) users.set(name, { ...(user ?? {}), dir });
    for (const { name, context } of parsed.data.contexts ?? []) {
      if (!contexts.has(name)) contexts.set(name, { name, cluster: context?.cluster ?? "", user: context?.user || undefined, namespace: context?.namespace || undefined });
    }
    currentContext ||= parsed.data["current-context"] || undefined;
  }
  const source = documents.map(({ file }) => file).join(path.delimiter);
  const entries = [...contexts.values()];
  return {
    source,
    contexts: entries,
    currentContext,
    select(name = currentContext) {
      if (!name) throw new KubeConfigError(`the kubeconfig ${source} sets no current-context (kubectl config use-context NAME sets one)`);
      const context = contexts.get(name);
      if (!context) throw new KubeConfigError(`the kubeconfig ${source} has no context "${name}"`);
      const where = `context "${name}" of ${source}`;
      if (!context.cluster) throw new KubeConfigError(`the ${where} names no cluster`);
      const clusterEntry = clusters.get(context.cluster);
      if (!clusterEntry) throw new KubeConfigError(`the ${where} names the cluster "${context.cluster}", which it does not define`);
      const userEntry = context.user === undefined ? undefined : users.get(context.user);
      if (context.user !== undefined && !userEntry) throw new KubeConfigError(`the ${where} names the user "${context.user}", which it does not define`);
      const cluster = toCluster(context.cluster, clusterEntry);
      const user = userEntry ? toCredentials(context.user as string, userEntry, clusterEntry, cluster, options.now) : {};
      return new KubeConfig({ source, contexts: entries, currentContext: name, cluster, user: context.user, namespace: context.namespace, credentials: user });
    },
  };
}

// ---- the file's shape ------------------------------------------------------------------

/** A string field; a bare number or boolean (namespace: 2024) is taken as written, as kubectl takes it. */
const text = z.preprocess((value) => (typeof value === "number" || typeof value === "boolean" ? String(value) : value), z.string());
/** A boolean field, also in YAML 1.1's words (yes/no/on/off), which kubectl's YAML parser reads as booleans. */
const flag = z.preprocess((value) => (typeof value === "string" && Object.hasOwn(YAML11_BOOLEANS, value) ? YAML11_BOOLEANS[value] : value), z.boolean());
const YAML11_BOOLEANS: Record<string, boolean> = Object.fromEntries([
  ...["y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"].map((word) => [word, true]),
  ...["n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"].map((word) => [word, false]),
]);

const clusterSchema = z.object({
  server: text.optional(),
  "certificate-authority": text.optional(),
  "certificate-authority-data": text.optional(),
  "insecure-skip-tls-verify": flag.optional(),
  "tls-server-name": text.optional(),
  "proxy-url": text.optional(),
  extensions: z.array(z.object({ name: text, extension: z.unknown() })).optional(),
});

const execSchema = z.object({
  apiVersion: z.enum(EXEC_API_VERSIONS),
  command: text.refine((command) => command.length > 0, "is empty"),
  args: z.array(text).optional(),
  env: z.array(z.object({ name: text, value: text.optional() })).optional(),
  installHint: text.optional(),
  provideClusterInfo: flag.optional(),
  interactiveMode: z.enum(["Never", "IfAvailable", "Always"]).optional(),
});

const userSchema = z.object({
  token: text.optional(),
  tokenFile: text.optional(),
  "client-certificate": text.optional(),
  "client-certificate-data": text.optional(),
  "client-key": text.optional(),
  "client-key-data": text.optional(),
  username: text.optional(),
  password: text.optional(),
  exec: execSchema.optional(),
  "auth-provider": z.object({ name: text }).optional(),
  as: text.optional(),
  "as-uid": text.optional(),
  "as-groups": z.array(text).optional(),
  "as-user-extra": z.record(z.string(), z.array(text)).optional(),
});

const contextSchema = z.object({ cluster: text.optional(), user: text.optional(), namespace: text.optional() });

const fileSchema = z.object(
  {
    clusters: z.array(z.object({ name: text, cluster: clusterSchema.optional() })).optional(),
    users: z.array(z.object({ name: text, user: userSchema.optional() })).optional(),
    contexts: z.array(z.object({ name: text, context: contextSchema.optional() })).optional(),
    "current-context": text.optional(),
  },
  { error: "expected a mapping (apiVersion: v1, kind: Config, clusters, users, contexts)" },
);

type ClusterEntry = z.infer<typeof clusterSchema> & { readonly dir: string };
type UserEntry = z.infer<typeof userSchema> & { readonly dir: string };

/** A key set to null (or left empty: `namespace:`) means unset, as in kubectl. */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).flatMap(([key, entry]) => (entry === null ? [] : [[key, withoutNulls(entry)]])));
}

// ---- from entries to what a request needs ------------------------------------------------

function toCluster(name: string, entry: ClusterEntry): KubeCluster {
  const what = `cluster "${name}"`;
  if (!entry.server) throw new KubeConfigError(`${what} has no server`);
  if (!URL.canParse(entry.server)) throw new KubeConfigError(`${what}: server "${entry.server}" is not a URL`);
  const proxyUrl = entry["proxy-url"] ? proxyOf(entry["proxy-url"], what) : undefined;
  const ca = entry["certificate-authority-data"]
    ? base64(entry["certificate-authority-data"], `${what}: certificate-authority-data`)
    : entry["certificate-authority"]
      ? readPem(path.resolve(entry.dir, entry["certificate-authority"]), `the certificate-authority of ${what}`)
      : undefined;
  const insecureSkipTlsVerify = entry["insecure-skip-tls-verify"] ?? false;
  if (insecureSkipTlsVerify && ca) {
    // client-go's transport.TLSConfigFor refuses the pair; kubectl stops with the same words.
    throw new KubeConfigError(`${what}: specifying a root certificates file with the insecure flag is not allowed (remove certificate-authority or insecure-skip-tls-verify)`);
  }
  return { name, server: entry.server, ca, insecureSkipTlsVerify, tlsServerName: entry["tls-server-name"] || undefined, ...(proxyUrl ? { proxyUrl } : {}) };
}

/** proxy-url as client-go reads it: http and https proxies (socks5 is refused here); no credentials in messages. */
function proxyOf(value: string, what: string): string {
  if (!URL.canParse(value)) throw new KubeConfigError(`${what}: proxy-url is not a URL`);
  const url = new URL(value);
  if (url.protocol === "socks5:") throw new KubeConfigError(`${what} sets a socks5 proxy-url, which wa-operator does not support (http and https proxies are)`);
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new KubeConfigError(`${what}: proxy-url must be http://, https:// or socks5://, not ${url.protocol}//`);
  return value;
}

/**
 * The Impersonate-* headers of a user, as client-go's impersonating round tripper sends them;
 * refuses groups, a uid or extras without a user, as clientcmd's validation does.
 */
function impersonationOf(entry: UserEntry, what: string): Record<string, string | string[]> | undefined {
  const user = entry.as || undefined;
  const uid = entry["as-uid"] || undefined;
  const groups = entry["as-groups"] ?? [];
  const extra = Object.entries(entry["as-user-extra"] ?? {});
  if (!user) {
    const asked = [uid ? "a uid" : "", groups.length ? "groups" : "", extra.length ? "user-extra" : ""].filter(Boolean);
    if (asked.length > 0) throw new KubeConfigError(`${what} requests ${asked.join(", ")} without impersonating a user (as)`);
    return undefined;
  }
  const headers: Record<string, string | string[]> = { "Impersonate-User": user };
  if (uid) headers["Impersonate-Uid"] = uid;
  if (groups.length > 0) headers["Impersonate-Group"] = [...groups];
  for (const [key, values] of extra) if (values.length > 0) headers[`Impersonate-Extra-${escapeHeaderKey(key)}`] = [...values];
  return headers;
}

/** An extra's key in a header name: characters a header name cannot hold are percent-encoded (client-go's headerKeyEscape). */
function escapeHeaderKey(key: string): string {
  return [...Buffer.from(key, "utf8")].map((byte) => (/[A-Za-z0-9!#$&'*+\-.^_`|~]/.test(String.fromCharCode(byte)) && byte < 0x80 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`)).join("");
}

function toCredentials(name: string, entry: UserEntry, clusterEntry: ClusterEntry, cluster: KubeCluster, now: (() => number) | undefined): Credentials {
  const what = `user "${name}"`;
  if (entry["auth-provider"]) {
    throw new KubeConfigError(`${what} uses the auth-provider "${entry["auth-provider"].name}", which wa-operator does not support; use an exec credential plugin instead (e.g. kubelogin)`);
  }
  const impersonation = impersonationOf(entry, what);
  const hasToken = Boolean(entry.token || entry.tokenFile);
  const hasBasic = Boolean(entry.username || entry.password);
  if (hasToken && hasBasic) throw new KubeConfigError(`${what} has both a token and a username/password; only one may be set`);
  const cert = entry["client-certificate-data"]
    ? base64(entry["client-certificate-data"], `${what}: client-certificate-data`)
    : entry["client-certificate"]
      ? readPem(path.resolve(entry.dir, entry["client-certificate"]), `the client-certificate of ${what}`)
      : undefined;
  const key = entry["client-key-data"]
    ? base64(entry["client-key-data"], `${what}: client-key-data`)
    : entry["client-key"]
      ? readPem(path.resolve(entry.dir, entry["client-key"]), `the client-key of ${what}`)
      : undefined;
  if (Boolean(cert) !== Boolean(key)) throw new KubeConfigError(`${what} has a client ${cert ? "certificate but no key" : "key but no certificate"}`);
  const token = entry.token || undefined;
  const tokenFile = entry.tokenFile ? new TokenFile(path.resolve(entry.dir, entry.tokenFile), { fallback: token, now }) : undefined;
  const basic = hasBasic ? Buffer.from(`${entry.username ?? ""}:${entry.password ?? ""}`).toString("base64") : undefined;
  // As in client-go, a token, password or client certificate of the kubeconfig's own is used instead of the plugin.
  const exec = entry.exec && !hasToken && !hasBasic && !cert ? new ExecPlugin(execConfig(entry.exec, entry.dir, clusterEntry, cluster), what, { now }) : undefined;
  return { cert, key, token, tokenFile, basic, exec, ...(impersonation ? { impersonation } : {}) };
}

function execConfig(exec: z.infer<typeof execSchema>, dir: string, clusterEntry: ClusterEntry, cluster: KubeCluster): ExecConfig {
  // A command with a path separator is a path, relative to the kubeconfig; a bare name is looked up on PATH.
  const command = exec.command.includes("/") || exec.command.includes(path.sep) ? path.resolve(dir, exec.command) : exec.command;
  const extension = clusterEntry.extensions?.find((entry) => entry.name === "client.authentication.k8s.io/exec")?.extension;
  const info = exec.provideClusterInfo
    ? {
        server: cluster.server,
        ...(cluster.tlsServerName ? { "tls-server-name": cluster.tlsServerName } : {}),
        ...(cluster.insecureSkipTlsVerify ? { "insecure-skip-tls-verify": true } : {}),
        ...(cluster.ca ? { "certificate-authority-data": cluster.ca.toString("base64") } : {}),
        ...(extension === undefined ? {} : { config: extension }),
      }
    : undefined;
  return {
    apiVersion: exec.apiVersion,
    command,
    args: exec.args ?? [],
    env: (exec.env ?? []).map(({ name, value }) => ({ name, value: value ?? "" })),
    installHint: exec.installHint,
    interactiveMode: exec.interactiveMode,
    cluster: info,
  };
}

function base64(value: string, what: string): Buffer {
  const compact = value.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) throw new KubeConfigError(`${what} is not base64`);
  return Buffer.from(compact, "base64");
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new KubeConfigError(`cannot read ${what}, ${file}: ${(error as NodeJS.ErrnoException).code ?? "unreadable"}`);
  }
}

// ---- in a Pod ----------------------------------------------------------------------------

/** The in-cluster config, or why there is none. */
function readInCluster(env: Readonly<Record<string, string | undefined>>, dir: string, now: (() => number) | undefined): Kubeconfig | string {
  const host = env["KUBERNETES_SERVICE_HOST"];
  const port = env["KUBERNETES_SERVICE_PORT"];
  if (!host || !port) return "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set";
  const tokenPath = path.join(dir, "token");
  try {
    if (!statSync(tokenPath).isFile()) return `${tokenPath} is not a file`;
  } catch {
    return `there is no ${tokenPath}`;
  }
  const optional = (file: string) => {
    try {
      return readFileSync(path.join(dir, file));
    } catch {
      return undefined;
    }
  };
  // As client-go: without a readable ca.crt, the system's roots.
  const ca = optional("ca.crt");
  const namespace = env["POD_NAMESPACE"] || optional("namespace")?.toString("utf8").trim() || undefined;
  const server = `https://${host.includes(":") ? `[${host}]` : host}:${port}`;
  const source = "the in-cluster config";
  const cluster: KubeCluster = { name: "in-cluster", server, ca, insecureSkipTlsVerify: false, tlsServerName: undefined };
  return {
    source,
    contexts: [],
    currentContext: undefined,
    select(context) {
      if (context) throw new KubeConfigError(`${source} has no contexts, so not "${context}"`);
      const tokenFile = new TokenFile(tokenPath, { now });
      return new KubeConfig({ source, contexts: [], currentContext: undefined, cluster, user: undefined, namespace, credentials: { tokenFile } });
    },
  };
}
