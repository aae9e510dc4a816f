/**
 * Credentials that can change while the process runs, as client-go keeps them fresh:
 *
 * - TokenFile: a bearer token read from a file (a kubeconfig's tokenFile, or a Pod's
 *   service-account token, which the kubelet rotates). Re-read at most once a minute, as
 *   client-go does; a failed re-read keeps the last token.
 * - ExecPlugin: a client.authentication.k8s.io exec credential plugin (kubelogin,
 *   aws eks get-token, gke-gcloud-auth-plugin, ...), run as kubectl runs it, its answer
 *   kept until its expirationTimestamp passes.
 *
 * Both forget what they hold when the API server answers 401 (rejected()), so the next
 * request reads or runs afresh; the request that got the 401 is not retried.
 *
 * No token, key or plugin output ever goes into an error message.
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { z } from "zod";

/** An error in the kubeconfig or in getting its credentials; the message is meant for the user. */
export class KubeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KubeConfigError";
  }
}

/** How long a token read from a file is used before the file is read again (client-go: one minute). */
export const TOKEN_FILE_REFRESH_MS = 60_000;

export class TokenFile {
  readonly file: string;
  private readonly fallback: string | undefined;
  private readonly now: () => number;
  private token: string | undefined;
  private readAt = Number.NEGATIVE_INFINITY;
  private reading: Promise<string> | undefined;

  /** fallback: a token to use while the file cannot be read (a kubeconfig's token beside its tokenFile). */
  constructor(file: string, options: { fallback?: string | undefined; now?: () => number } = {}) {
    this.file = file;
    this.fallback = options.fallback;
    this.now = options.now ?? Date.now;
  }

  get(): Promise<string> {
    if (this.token !== undefined && this.now() - this.readAt < TOKEN_FILE_REFRESH_MS) return Promise.resolve(this.token);
    this.reading ??= this.read().finally(() => (this.reading = undefined));
    return this.reading;
  }

  rejected(): void {
    this.readAt = Number.NEGATIVE_INFINITY;
  }

  private async read(): Promise<string> {
    let problem: string;
    try {
      const token = (await readFile(this.file, "utf8")).trim();
      if (token) {
        this.token = token;
        this.readAt = this.now();
        return token;
      }
      problem = "it is empty";
    } catch (error) {
      problem = (error as NodeJS.ErrnoException).code ?? "unreadable";
    }
    const kept = this.token ?? this.fallback;
    if (kept !== undefined) return kept;
    throw new KubeConfigError(`cannot read the token file ${this.file}: ${problem}`);
  }
}

/** An exec plugin that has not answered in this long is killed: a hung plugin must not hang every request behind it. */
export const EXEC_TIMEOUT_MS = 60_000;
/** More output than this is not an ExecCredential (a token is kilobytes): the plugin is killed. */
export const EXEC_MAX_OUTPUT_BYTES = 1024 * 1024;

export const EXEC_API_VERSIONS = ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"] as const;

export interface ExecConfig {
  readonly apiVersion: (typeof EXEC_API_VERSIONS)[number];
  /** A name looked up on PATH, or a path (a relative one already resolved against the kubeconfig's directory). */
  readonly command: string;
  readonly args: readonly string[];
  readonly env: readonly { readonly name: string; readonly value: string }[];
  readonly installHint: string | undefined;
  readonly interactiveMode: "Never" | "IfAvailable" | "Always" | undefined;
  /** spec.cluster of KUBERNETES_EXEC_INFO, when the kubeconfig sets provideClusterInfo. */
  readonly cluster: Record<string, unknown> | undefined;
}

export interface ExecResult {
  readonly token: string | undefined;
  /** PEM. */
  readonly cert: string | undefined;
  readonly key: string | undefined;
  /** When the plugin must be run again (epoch ms); undefined: not before a 401. */
  readonly expiresAt: number | undefined;
}

const execCredentialSchema = z.object({
  apiVersion: z.string(),
  kind: z.literal("ExecCredential"),
  status: z.object(
    {
      token: z.string().optional(),
      clientCertificateData: z.string().optional(),
      clientKeyData: z.string().optional(),
      expirationTimestamp: z.iso.datetime({ offset: true }).optional(),
    },
    { error: "the ExecCredential has no status" },
  ),
});

export class ExecPlugin {
  private readonly config: ExecConfig;
  /** Who it is for, in messages: `user "NAME"`. */
  private readonly owner: string;
  private readonly now: () => number;
  private readonly timeoutMs: number;
  private readonly maxOutputBytes: number;
  private cached: ExecResult | undefined;
  private running: Promise<ExecResult> | undefined;

  constructor(config: ExecConfig, owner: string, options: { now?: () => number; timeoutMs?: number; maxOutputBytes?: number } = {}) {
    this.config = config;
    this.owner = owner;
    this.now = options.now ?? Date.now;
    this.timeoutMs = options.timeoutMs ?? EXEC_TIMEOUT_MS;
    this.maxOutputBytes = options.maxOutputBytes ?? EXEC_MAX_OUTPUT_BYTES;
  }

  /** The plugin's credential: the cached one until it expires, else the plugin's new answer (one run for concurrent callers). */
  get(): Promise<ExecResult> {
    const cached = this.cached;
    if (cached && (cached.expiresAt === undefined || this.now() < cached.expiresAt)) return Promise.resolve(cached);
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  rejected(): void {
    this.cached = undefined;
  }

  private describe(): string {
    return `the exec plugin "${this.config.command}" of ${this.owner}`;
  }

  private async run(): Promise<ExecResult> {
    const { config } = this;
    if (config.interactiveMode === "Always") {
      throw new KubeConfigError(`${this.describe()} asks for interactiveMode Always, but wa-operator runs it without a terminal`);
    }
    const info = { apiVersion: config.apiVersion, kind: "ExecCredential", spec: { interactive: false, ...(config.cluster ? { cluster: config.cluster } : {}) } };
    const env: Record<string, string | undefined> = { ...process.env };
    for (const { name, value } of config.env) env[name] = value;
    env["KUBERNETES_EXEC_INFO"] = JSON.stringify(info);
    const output = await new Promise<string>((resolve, reject) => {
      // stdin: none (not interactive); stderr: ours, where the plugin's own messages belong, as with kubectl.
      const child = spawn(config.command, [...config.args], { env, stdio: ["ignore", "pipe", "inherit"] });
      const chunks: Buffer[] = [];
      let size = 0;
      /** Why we killed it, if we did: that, not the signal, is the message. */
      let killedFor: string | undefined;
      const kill = (why: string) => {
        killedFor ??= why;
        child.kill("SIGKILL");
      };
      const timer = setTimeout(() => kill(`did not answer within ${this.timeoutMs / 1000} s`), this.timeoutMs);
      child.stdout.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > this.maxOutputBytes) kill(`printed more than ${this.maxOutputBytes} bytes`);
        else chunks.push(chunk);
      });
      child.on("error", (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const hint = error.code === "ENOENT" && config.installHint ? `\n${config.installHint.trim()}` : "";
        reject(new KubeConfigError(`cannot run ${this.describe()}: ${error.code ?? "failed"}${hint}`));
      });
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        if (killedFor) reject(new KubeConfigError(`${this.describe()} ${killedFor}; it was stopped`));
        else if (code === 0) resolve(Buffer.concat(chunks).toString("utf8"));
        else reject(new KubeConfigError(`${this.describe()} failed (${signal ? `killed by ${signal}` : `exit code ${code}`})`));
      });
    });
    const result = this.parse(output);
    this.cached = result;
    return result;
  }

  private parse(output: string): ExecResult {
    let document: unknown;
    try {
      document = JSON.parse(output);
    } catch {
      // The parser's message would quote the output, which may hold a token.
      throw new KubeConfigError(`${this.describe()} printed something other than a JSON ExecCredential`);
    }
    const parsed = execCredentialSchema.safeParse(document);
    if (!parsed.success) throw new KubeConfigError(`${this.describe()} printed an invalid ExecCredential: ${issues(parsed.error)}`);
    const { apiVersion, status } = parsed.data;
    if (apiVersion !== this.config.apiVersion) {
      throw new KubeConfigError(`${this.describe()} answered with ${apiVersion}, but the kubeconfig asks for ${this.config.apiVersion}`);
    }
    const cert = status.clientCertificateData || undefined;
    const key = status.clientKeyData || undefined;
    if (Boolean(cert) !== Boolean(key)) throw new KubeConfigError(`${this.describe()} returned a client certificate or key, but not both`);
    const token = status.token || undefined;
    if (!token && !cert) throw new KubeConfigError(`${this.describe()} returned neither a token nor a client certificate and key`);
    const expiresAt = status.expirationTimestamp === undefined ? undefined : Date.parse(status.expirationTimestamp);
    return { token, cert, key, expiresAt };
  }
}

/** A zod error as "path: message; path: message" (zod's messages name types, never the values). */
export function issues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => {
      const path = issue.path.map((part, index) => (typeof part === "number" ? `[${part}]` : index === 0 ? String(part) : `.${String(part)}`)).join("");
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join("; ");
}
