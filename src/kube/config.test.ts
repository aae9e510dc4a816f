/**
 * Finding and reading kubeconfigs as kubectl does (files, KUBECONFIG merging, ~/.kube/config,
 * the in-cluster config), and the credentials of each kind of user. Files go to a temporary
 * directory; the environment, home and service-account directory are passed in.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { KubeConfigError, loadKubeConfig, readKubeconfig, type LoadOptions } from "./config.ts";
import { ExecPlugin, TOKEN_FILE_REFRESH_MS } from "./credentials.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "kubeconfig-test-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TOKEN = "s3cr3t-t0ken-value";
const CA = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";
const b64 = (text: string) => Buffer.from(text).toString("base64");

/** Writes text (a string as is, anything else as YAML) to dir/name, making its directories. */
function write(name: string, content: unknown): string {
  const file = path.join(dir, name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, typeof content === "string" ? content : stringify(content));
  return file;
}

function kubeconfig(options: { cluster?: Record<string, unknown>; user?: Record<string, unknown>; namespace?: string; name?: string } = {}) {
  const name = options.name ?? "main";
  return {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name, cluster: options.cluster ?? { server: `https://${name}.example:6443` } }],
    users: [{ name, user: options.user ?? { token: TOKEN } }],
    contexts: [{ name, context: { cluster: name, user: name, ...(options.namespace ? { namespace: options.namespace } : {}) } }],
    "current-context": name,
  };
}

/** No KUBECONFIG, an empty home, no service account: only what a test adds. */
function isolated(overrides: Partial<LoadOptions> = {}): LoadOptions {
  return { env: {}, home: path.join(dir, "empty-home"), serviceAccountDir: path.join(dir, "no-service-account"), ...overrides };
}

async function failure(loading: Promise<unknown>): Promise<string> {
  const error = await loading.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(KubeConfigError);
  const message = (error as Error).message;
  expect(message).not.toContain(TOKEN);
  return message;
}

describe("where the kubeconfig comes from", () => {
  it("an explicit file, with the current context's cluster, user and namespace", async () => {
    const file = write("explicit/config", kubeconfig({ namespace: "team-a" }));
    const config = await loadKubeConfig(isolated({ file, env: { KUBECONFIG: write("ignored", kubeconfig({ name: "other" })) } }));
    expect(config.source).toBe(file);
    expect(config.currentContext).toBe("main");
    expect(config.contexts.map((context) => context.name)).toEqual(["main"]);
    expect(config.cluster).toMatchObject({ name: "main", server: "https://main.example:6443", insecureSkipTlsVerify: false });
    expect(config.user).toBe("main");
    expect(config.namespace).toBe("team-a");
  });

  it("an explicit file that does not exist is an error, not a fallback", async () => {
    expect(await failure(loadKubeConfig(isolated({ file: path.join(dir, "missing") })))).toBe(`the kubeconfig ${path.join(dir, "missing")} does not exist`);
  });

  it("KUBECONFIG: merged in order; the first file to name a cluster, user or context wins; current-context from the first that sets one; missing files skipped", async () => {
    const first = write("merge/first", {
      clusters: [{ name: "shared", cluster: { server: "https://first.example" } }],
      users: [{ name: "shared", user: { token: "first-token" } }],
      contexts: [{ name: "shared", context: { cluster: "shared", user: "shared", namespace: "first" } }],
    });
    const second = write("merge/second", {
      clusters: [
        { name: "shared", cluster: { server: "https://second.example" } },
        { name: "extra", cluster: { server: "https://extra.example" } },
      ],
      users: [{ name: "shared", user: { token: "second-token" } }],
      contexts: [
        { name: "shared", context: { cluster: "extra", user: "shared", namespace: "second" } },
        { name: "extra", context: { cluster: "extra" } },
      ],
      "current-context": "shared",
    });
    const third = write("merge/third", { "current-context": "extra" });
    const env = { KUBECONFIG: [first, path.join(dir, "merge/missing"), second, third, first].join(path.delimiter) };
    const found = await readKubeconfig(isolated({ env }));
    expect(found.source).toBe([first, second, third].join(path.delimiter));
    expect(found.currentContext).toBe("shared");
    expect(found.contexts.map((context) => context.name)).toEqual(["shared", "extra"]);
    const config = found.select();
    expect(config.cluster.server).toBe("https://first.example");
    expect(config.namespace).toBe("first");
    expect((await config.auth()).authorization).toBe("Bearer first-token");
    const extra = found.select("extra");
    expect(extra.cluster.server).toBe("https://extra.example");
    expect(extra.user).toBeUndefined();
    expect((await extra.auth()).authorization).toBeUndefined();
  });

  it("~/.kube/config when KUBECONFIG is unset or empty, and not when it is set", async () => {
    const home = path.join(dir, "home");
    write("home/.kube/config", kubeconfig({ name: "home" }));
    expect((await loadKubeConfig(isolated({ home }))).cluster.server).toBe("https://home.example:6443");
    expect((await loadKubeConfig(isolated({ home, env: { KUBECONFIG: "" } }))).cluster.server).toBe("https://home.example:6443");
    const listed = write("listed", kubeconfig({ name: "listed" }));
    expect((await loadKubeConfig(isolated({ home, env: { KUBECONFIG: listed } }))).cluster.server).toBe("https://listed.example:6443");
  });

  it("a context other than the current one (--context), and one that does not exist", async () => {
    const file = write("two-contexts", {
      ...kubeconfig(),
      contexts: [
        { name: "main", context: { cluster: "main", user: "main" } },
        { name: "staging", context: { cluster: "main", user: "main", namespace: "staging" } },
      ],
    });
    const config = await loadKubeConfig(isolated({ file, context: "staging" }));
    expect(config.currentContext).toBe("staging");
    expect(config.namespace).toBe("staging");
    expect(await failure(loadKubeConfig(isolated({ file, context: "prod" })))).toBe(`the kubeconfig ${file} has no context "prod"`);
  });

  it("says what is missing: no current-context, a context's cluster or user, a cluster's server", async () => {
    const noCurrent = write("no-current", { ...kubeconfig(), "current-context": "" });
    expect(await failure(loadKubeConfig(isolated({ file: noCurrent })))).toMatch(/sets no current-context \(kubectl config use-context NAME sets one\)$/);
    const noCluster = write("no-cluster", { ...kubeconfig(), clusters: [] });
    expect(await failure(loadKubeConfig(isolated({ file: noCluster })))).toBe(`the context "main" of ${noCluster} names the cluster "main", which it does not define`);
    const noUser = write("no-user", { ...kubeconfig(), users: null });
    expect(await failure(loadKubeConfig(isolated({ file: noUser })))).toBe(`the context "main" of ${noUser} names the user "main", which it does not define`);
    const noServer = write("no-server", kubeconfig({ cluster: { "insecure-skip-tls-verify": true } }));
    expect(await failure(loadKubeConfig(isolated({ file: noServer })))).toBe('cluster "main" has no server');
  });

  it("nothing at all: says where it looked", async () => {
    expect(await failure(loadKubeConfig(isolated()))).toBe(
      `no kubeconfig: ${path.join(dir, "empty-home", ".kube", "config")} does not exist, and this is not a Pod with a service account (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set)`,
    );
    expect(await failure(loadKubeConfig(isolated({ env: { KUBECONFIG: `/nowhere/a${path.delimiter}/nowhere/b` } })))).toMatch(
      /^no kubeconfig: none of the files in KUBECONFIG \(\/nowhere\/a:\/nowhere\/b\) exists, and this is not a Pod/,
    );
  });
});

describe("in a Pod (no kubeconfig file)", () => {
  function serviceAccount(name: string, files: Record<string, string>): string {
    for (const [file, content] of Object.entries(files)) write(`${name}/${file}`, content);
    return path.join(dir, name);
  }
  const pod = { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" };

  it("the service's address, the service account's CA, namespace and token", async () => {
    const serviceAccountDir = serviceAccount("sa", { token: `${TOKEN}\n`, "ca.crt": CA, namespace: "wa-operator-system" });
    const config = await loadKubeConfig(isolated({ env: pod, serviceAccountDir }));
    expect(config.source).toBe("the in-cluster config");
    expect(config.cluster).toEqual({ name: "in-cluster", server: "https://10.96.0.1:443", ca: Buffer.from(CA), insecureSkipTlsVerify: false, tlsServerName: undefined });
    expect(config.namespace).toBe("wa-operator-system");
    expect(config.contexts).toEqual([]);
    expect(config.currentContext).toBeUndefined();
    expect(await config.auth()).toEqual({ ca: Buffer.from(CA), cert: undefined, key: undefined, servername: undefined, rejectUnauthorized: true, authorization: `Bearer ${TOKEN}` });
  });

  it("an IPv6 service address in brackets; POD_NAMESPACE before the namespace file; no ca.crt: the system's roots", async () => {
    const serviceAccountDir = serviceAccount("sa6", { token: TOKEN, namespace: "from-file" });
    const config = await loadKubeConfig(isolated({ env: { KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "6443", POD_NAMESPACE: "from-env" }, serviceAccountDir }));
    expect(config.cluster.server).toBe("https://[fd00::1]:6443");
    expect(new URL(config.cluster.server).hostname).toBe("[fd00::1]");
    expect(config.namespace).toBe("from-env");
    expect(config.cluster.ca).toBeUndefined();
  });

  it("only when there is no kubeconfig file, and not without a token", async () => {
    const serviceAccountDir = serviceAccount("sa-file", { token: TOKEN });
    const file = write("beside-pod", kubeconfig());
    expect((await loadKubeConfig(isolated({ env: { ...pod, KUBECONFIG: file }, serviceAccountDir }))).source).toBe(file);
    expect(await failure(loadKubeConfig(isolated({ env: pod })))).toMatch(/this is not a Pod with a service account \(there is no .*no-service-account\/token\)$/);
    expect(await failure(loadKubeConfig(isolated({ env: pod, serviceAccountDir, context: "x" })))).toBe('the in-cluster config has no contexts, so not "x"');
  });
});

describe("clusters", () => {
  it("certificate-authority relative to the kubeconfig's directory; -data over the file; insecure-skip-tls-verify; tls-server-name", async () => {
    write("rel/pki/ca.crt", CA);
    const fromFile = await loadKubeConfig(isolated({ file: write("rel/config", kubeconfig({ cluster: { server: "https://a", "certificate-authority": "pki/ca.crt" } })) }));
    expect(fromFile.cluster.ca).toEqual(Buffer.from(CA));
    const both = await loadKubeConfig(
      isolated({ file: write("rel/both", kubeconfig({ cluster: { server: "https://a", "certificate-authority": "pki/missing.crt", "certificate-authority-data": b64("DATA") } })) }),
    );
    expect(both.cluster.ca).toEqual(Buffer.from("DATA"));
    const insecure = await loadKubeConfig(
      isolated({ file: write("rel/insecure", kubeconfig({ cluster: { server: "https://a", "insecure-skip-tls-verify": true, "tls-server-name": "kubernetes" } })) }),
    );
    expect(await insecure.auth()).toMatchObject({ ca: undefined, rejectUnauthorized: false, servername: "kubernetes" });
  });

  it("refuses a CA together with insecure-skip-tls-verify, as client-go does, whether the CA is data or a file", async () => {
    write("insecure-ca/ca.crt", CA);
    for (const ca of [{ "certificate-authority-data": b64(CA) }, { "certificate-authority": "ca.crt" }]) {
      const file = write("insecure-ca/config", kubeconfig({ cluster: { server: "https://a", ...ca, "insecure-skip-tls-verify": true } }));
      expect(await failure(loadKubeConfig(isolated({ file })))).toBe(
        'cluster "main": specifying a root certificates file with the insecure flag is not allowed (remove certificate-authority or insecure-skip-tls-verify)',
      );
    }
  });

  it("proxy-url: http and https proxies are kept for the connections; socks5 and other schemes are refused", async () => {
    for (const proxy of ["http://127.0.0.1:3128", "https://user:pw@proxy.internal:443"]) {
      const config = await loadKubeConfig(isolated({ file: write("proxy/ok", kubeconfig({ cluster: { server: "https://a", "proxy-url": proxy } })) }));
      expect(config.cluster.proxyUrl).toBe(proxy);
    }
    const socks = write("proxy/socks", kubeconfig({ cluster: { server: "https://a", "proxy-url": "socks5://127.0.0.1:1080" } }));
    expect(await failure(loadKubeConfig(isolated({ file: socks })))).toBe('cluster "main" sets a socks5 proxy-url, which wa-operator does not support (http and https proxies are)');
    const ftp = write("proxy/ftp", kubeconfig({ cluster: { server: "https://a", "proxy-url": "ftp://127.0.0.1" } }));
    expect(await failure(loadKubeConfig(isolated({ file: ftp })))).toBe('cluster "main": proxy-url must be http://, https:// or socks5://, not ftp://');
  });

  it("a certificate-authority file that cannot be read, base64 that is not", async () => {
    const missing = write("bad/missing-ca", kubeconfig({ cluster: { server: "https://a", "certificate-authority": "nope.crt" } }));
    expect(await failure(loadKubeConfig(isolated({ file: missing })))).toBe(`cannot read the certificate-authority of cluster "main", ${path.join(dir, "bad", "nope.crt")}: ENOENT`);
    const notBase64 = write("bad/not-base64", kubeconfig({ cluster: { server: "https://a", "certificate-authority-data": "-----BEGIN CERTIFICATE-----" } }));
    expect(await failure(loadKubeConfig(isolated({ file: notBase64 })))).toBe('cluster "main": certificate-authority-data is not base64');
  });
});

describe("users", () => {
  it("client certificate and key, as data or as files relative to the kubeconfig", async () => {
    write("certs/client.crt", "CERT");
    write("certs/client.key", "KEY");
    const files = await loadKubeConfig(isolated({ file: write("certs/config", kubeconfig({ user: { "client-certificate": "client.crt", "client-key": "client.key" } })) }));
    expect(await files.auth()).toMatchObject({ cert: Buffer.from("CERT"), key: Buffer.from("KEY"), authorization: undefined });
    const data = await loadKubeConfig(isolated({ file: write("certs/data", kubeconfig({ user: { "client-certificate-data": b64("C"), "client-key-data": b64("K"), token: TOKEN } })) }));
    expect(await data.auth()).toMatchObject({ cert: Buffer.from("C"), key: Buffer.from("K"), authorization: `Bearer ${TOKEN}` });
  });

  it("impersonation: as, as-uid, as-groups and as-user-extra become client-go's Impersonate-* headers", async () => {
    const user = { token: TOKEN, as: "jane", "as-uid": "42", "as-groups": ["devs", "ops"], "as-user-extra": { "acme.com/project": ["a", "b"], reason: ["audit"] } };
    const config = await loadKubeConfig(isolated({ file: write("impersonate", kubeconfig({ user })) }));
    expect((await config.auth()).impersonation).toEqual({
      "Impersonate-User": "jane",
      "Impersonate-Uid": "42",
      "Impersonate-Group": ["devs", "ops"],
      "Impersonate-Extra-acme.com%2Fproject": ["a", "b"],
      "Impersonate-Extra-reason": ["audit"],
    });
    const plain = await loadKubeConfig(isolated({ file: write("not-impersonating", kubeconfig()) }));
    expect((await plain.auth()).impersonation).toBeUndefined();
  });

  it("username and password: basic auth", async () => {
    const config = await loadKubeConfig(isolated({ file: write("basic", kubeconfig({ user: { username: "admin", password: "pa:ss" } })) }));
    expect((await config.auth()).authorization).toBe(`Basic ${b64("admin:pa:ss")}`);
  });

  it("refuses what it does not support, and what kubectl refuses, naming the user", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ "auth-provider": { name: "oidc", config: { "id-token": TOKEN } } }, 'user "main" uses the auth-provider "oidc", which wa-operator does not support; use an exec credential plugin instead (e.g. kubelogin)'],
      [{ token: TOKEN, "as-groups": ["admins"] }, 'user "main" requests groups without impersonating a user (as)'],
      [{ token: TOKEN, "as-uid": "1", "as-user-extra": { scopes: ["x"] } }, 'user "main" requests a uid, user-extra without impersonating a user (as)'],
      [{ token: TOKEN, username: "u", password: "p" }, 'user "main" has both a token and a username/password; only one may be set'],
      [{ "client-certificate-data": b64("C") }, 'user "main" has a client certificate but no key'],
    ];
    for (const [user, message] of cases) {
      expect(await failure(loadKubeConfig(isolated({ file: write("refused", kubeconfig({ user })) })))).toBe(message);
    }
  });
});

describe("a malformed kubeconfig", () => {
  it("names the field and what is wrong with it, never its value", async () => {
    const file = write("malformed/types", { ...kubeconfig(), users: [{ name: "main", user: { token: { value: TOKEN } } }] });
    expect(await failure(loadKubeConfig(isolated({ file })))).toBe(`the kubeconfig ${file} is malformed: users[0].user.token: Invalid input: expected string, received object`);
    const execFile = write("malformed/exec", kubeconfig({ user: { exec: { apiVersion: "client.authentication.k8s.io/v1alpha1", command: "x" } } }));
    expect(await failure(loadKubeConfig(isolated({ file: execFile })))).toMatch(/is malformed: users\[0\]\.user\.exec\.apiVersion: Invalid option: expected one of "client\.authentication\.k8s\.io\/v1"\|/);
    const list = write("malformed/list", "- a\n- b\n");
    expect(await failure(loadKubeConfig(isolated({ file: list })))).toMatch(/is malformed: expected a mapping/);
  });

  it("invalid YAML: the parser's message and position, without the line it quotes", async () => {
    const file = write("malformed/yaml", `users:\n- name: main\n  user: {token: ${TOKEN}: x}\n`);
    expect(await failure(loadKubeConfig(isolated({ file })))).toMatch(new RegExp(`^the kubeconfig ${file} is not valid YAML: .+ at line 3, column \\d+$`));
  });

  it("reads what kubectl reads: JSON, empty values as unset, YAML 1.1 booleans, a number where a name goes", async () => {
    const json = write("lenient/json", JSON.stringify(kubeconfig({ cluster: { server: "https://json", "insecure-skip-tls-verify": true } })));
    expect((await loadKubeConfig(isolated({ file: json }))).cluster.insecureSkipTlsVerify).toBe(true);
    const yaml = write(
      "lenient/yaml",
      [
        "clusters:",
        "- name: 2024",
        "  cluster: {server: 'https://yaml', insecure-skip-tls-verify: yes}",
        "users:",
        "- name: u",
        "  user:",
        "contexts:",
        "- name: c",
        "  context: {cluster: 2024, user: u, namespace: }",
        "current-context: c",
        "preferences: {}",
      ].join("\n"),
    );
    const config = await loadKubeConfig(isolated({ file: yaml }));
    expect(config.cluster).toMatchObject({ name: "2024", server: "https://yaml", insecureSkipTlsVerify: true });
    expect(config.namespace).toBeUndefined();
    expect((await config.auth()).authorization).toBeUndefined();
    const empty = write("lenient/empty", "");
    expect((await readKubeconfig(isolated({ file: empty }))).contexts).toEqual([]);
  });
});

describe("tokenFile", () => {
  it("is read again once a minute has passed (and at once after a 401), keeping the last token while it cannot be read", async () => {
    const tokenFile = write("rotating/token", "first\n");
    let now = 1_000_000;
    const config = await loadKubeConfig(isolated({ file: write("rotating/config", kubeconfig({ user: { tokenFile: "token" } })), now: () => now }));
    expect((await config.auth()).authorization).toBe("Bearer first");
    writeFileSync(tokenFile, "second");
    now += TOKEN_FILE_REFRESH_MS - 1;
    expect((await config.auth()).authorization).toBe("Bearer first");
    now += 1;
    expect((await config.auth()).authorization).toBe("Bearer second");
    writeFileSync(tokenFile, "third");
    config.rejected();
    expect((await config.auth()).authorization).toBe("Bearer third");
    unlinkSync(tokenFile);
    now += TOKEN_FILE_REFRESH_MS;
    expect((await config.auth()).authorization).toBe("Bearer third");
  });

  it("an unreadable file with no token to fall back on is an error naming the file; a token beside it is the fallback", async () => {
    const config = await loadKubeConfig(isolated({ file: write("no-token/config", kubeconfig({ user: { tokenFile: "absent" } })) }));
    expect(await failure(config.auth())).toBe(`cannot read the token file ${path.join(dir, "no-token", "absent")}: ENOENT`);
    const withFallback = await loadKubeConfig(isolated({ file: write("no-token/fallback", kubeconfig({ user: { tokenFile: "absent", token: "inline" } })) }));
    expect((await withFallback.auth()).authorization).toBe("Bearer inline");
  });
});

describe("exec credential plugins", () => {
  /** Logs each run (its KUBERNETES_EXEC_INFO, arguments and EXTRA) to argv[2], then answers as argv[3] says. */
  const PLUGIN = `
import { appendFileSync, readFileSync } from "node:fs";
const [log, mode] = process.argv.slice(2);
appendFileSync(log, JSON.stringify({ info: JSON.parse(process.env.KUBERNETES_EXEC_INFO), args: process.argv.slice(2), extra: process.env.EXTRA ?? null }) + "\\n");
const runs = readFileSync(log, "utf8").trim().split("\\n").length;
if (mode === "fail") process.exit(3);
if (mode === "hang") setInterval(() => undefined, 1000);
if (mode === "flood") { process.stdout.write("x".repeat(64 * 1024)); setInterval(() => process.stdout.write("x".repeat(64 * 1024)), 10); }
if (mode === "garbage") { process.stdout.write("token=${TOKEN}"); process.exit(0); }
const status = mode === "cert" ? { clientCertificateData: "CERT", clientKeyData: "KEY" } : { token: "token-" + runs };
if (process.env.EXPIRES) status.expirationTimestamp = process.env.EXPIRES;
process.stdout.write(JSON.stringify({ apiVersion: process.env.ANSWER_VERSION ?? "client.authentication.k8s.io/v1", kind: "ExecCredential", status }));
`;
  let script: string;
  let runCount = 0;
  beforeAll(() => {
    script = write("exec/plugin.mjs", PLUGIN);
  });

  function execUser(mode: string, extra: Record<string, unknown> = {}, env: { name: string; value: string }[] = []) {
    const log = path.join(dir, "exec", `runs-${++runCount}.log`);
    const user = { exec: { apiVersion: "client.authentication.k8s.io/v1", command: process.execPath, args: [script, log, mode], env, interactiveMode: "Never", ...extra } };
    const runs = (): { info: unknown; args: string[]; extra: string | null }[] =>
      existsSync(log)
        ? readFileSync(log, "utf8")
            .trim()
            .split("\n")
            .map((line) => JSON.parse(line))
        : [];
    return { user, runs, log };
  }

  it("runs the command with its args and env and KUBERNETES_EXEC_INFO; the token is kept until expirationTimestamp; one run for concurrent requests", async () => {
    let now = Date.parse("2030-01-01T00:00:00Z");
    const { user, runs, log } = execUser("token", {}, [
      { name: "EXTRA", value: "from-kubeconfig" },
      { name: "EXPIRES", value: "2030-01-01T00:10:00Z" },
    ]);
    const config = await loadKubeConfig(isolated({ file: write("exec/token", kubeconfig({ user })), now: () => now }));
    const first = await Promise.all([config.auth(), config.auth(), config.auth()]);
    expect(first.map((auth) => auth.authorization)).toEqual(["Bearer token-1", "Bearer token-1", "Bearer token-1"]);
    expect(runs()).toEqual([
      { info: { apiVersion: "client.authentication.k8s.io/v1", kind: "ExecCredential", spec: { interactive: false } }, args: [log, "token"], extra: "from-kubeconfig" },
    ]);
    now = Date.parse("2030-01-01T00:09:59Z");
    expect((await config.auth()).authorization).toBe("Bearer token-1");
    now = Date.parse("2030-01-01T00:10:00Z");
    expect((await config.auth()).authorization).toBe("Bearer token-2");
    config.rejected();
    expect((await config.auth()).authorization).toBe("Bearer token-3");
    expect(runs()).toHaveLength(3);
  });

  it("without expirationTimestamp, kept until a 401; provideClusterInfo sends the cluster", async () => {
    const { user, runs } = execUser("token", { apiVersion: "client.authentication.k8s.io/v1beta1", provideClusterInfo: true, interactiveMode: undefined }, [
      { name: "ANSWER_VERSION", value: "client.authentication.k8s.io/v1beta1" },
    ]);
    const cluster = {
      server: "https://eks.example",
      "certificate-authority-data": b64(CA),
      "tls-server-name": "kubernetes",
      extensions: [{ name: "client.authentication.k8s.io/exec", extension: { region: "eu-west-1" } }],
    };
    const config = await loadKubeConfig(isolated({ file: write("exec/cluster-info", kubeconfig({ user, cluster })) }));
    expect((await config.auth()).authorization).toBe("Bearer token-1");
    expect((await config.auth()).authorization).toBe("Bearer token-1");
    expect(runs()).toHaveLength(1);
    expect(runs()[0]?.info).toEqual({
      apiVersion: "client.authentication.k8s.io/v1beta1",
      kind: "ExecCredential",
      spec: { interactive: false, cluster: { server: "https://eks.example", "tls-server-name": "kubernetes", "certificate-authority-data": b64(CA), config: { region: "eu-west-1" } } },
    });
  });

  it("a client certificate and key from the plugin", async () => {
    const { user } = execUser("cert");
    const config = await loadKubeConfig(isolated({ file: write("exec/cert", kubeconfig({ user })) }));
    expect(await config.auth()).toMatchObject({ cert: "CERT", key: "KEY", authorization: undefined });
  });

  it("a command with a slash is relative to the kubeconfig; one without is looked up on PATH", async () => {
    const log = path.join(dir, "exec", "relative.log");
    write("exec/bin/plugin.sh", `#!/bin/sh\nexec "${process.execPath}" "${script}" "${log}" token\n`);
    chmodSync(path.join(dir, "exec/bin/plugin.sh"), 0o755);
    const relative = await loadKubeConfig(
      isolated({ file: write("exec/relative", kubeconfig({ user: { exec: { apiVersion: "client.authentication.k8s.io/v1", command: "./bin/plugin.sh", interactiveMode: "Never" } } })) }),
    );
    expect((await relative.auth()).authorization).toBe("Bearer token-1");
    const missing = await loadKubeConfig(
      isolated({
        file: write("exec/missing", kubeconfig({ user: { exec: { apiVersion: "client.authentication.k8s.io/v1", command: "wa-operator-no-such-plugin", installHint: "install it from example.com" } } })),
      }),
    );
    expect(await failure(missing.auth())).toBe('cannot run the exec plugin "wa-operator-no-such-plugin" of user "main": ENOENT\ninstall it from example.com');
  });

  it("says what went wrong without repeating the plugin's output", async () => {
    const cases: [string, Record<string, unknown>, { name: string; value: string }[], RegExp][] = [
      ["fail", {}, [], /^the exec plugin ".+" of user "main" failed \(exit code 3\)$/],
      ["garbage", {}, [], /^the exec plugin ".+" of user "main" printed something other than a JSON ExecCredential$/],
      ["token", {}, [{ name: "ANSWER_VERSION", value: "client.authentication.k8s.io/v1beta1" }], /answered with client\.authentication\.k8s\.io\/v1beta1, but the kubeconfig asks for client\.authentication\.k8s\.io\/v1$/],
      ["token", {}, [{ name: "EXPIRES", value: "tomorrow" }], /printed an invalid ExecCredential: status\.expirationTimestamp: Invalid ISO datetime$/],
      ["token", { interactiveMode: "Always" }, [], /asks for interactiveMode Always, but wa-operator runs it without a terminal$/],
    ];
    for (const [mode, extra, env, message] of cases) {
      const { user } = execUser(mode, extra, env);
      const config = await loadKubeConfig(isolated({ file: write("exec/failing", kubeconfig({ user })) }));
      expect(await failure(config.auth())).toMatch(message);
    }
  });

  it("a plugin that hangs is stopped after the timeout, one that prints without end after the output cap; neither hangs the caller", async () => {
    const config = (mode: string) => {
      const log = path.join(dir, "exec", `runs-${++runCount}.log`);
      return { apiVersion: "client.authentication.k8s.io/v1" as const, command: process.execPath, args: [script, log, mode], env: [], installHint: undefined, interactiveMode: "Never" as const, cluster: undefined };
    };
    const hung = new ExecPlugin(config("hang"), 'user "main"', { timeoutMs: 300 });
    expect(await failure(hung.get())).toMatch(/^the exec plugin ".+" of user "main" did not answer within 0\.3 s; it was stopped$/);
    const flood = new ExecPlugin(config("flood"), 'user "main"', { maxOutputBytes: 100_000 });
    expect(await failure(flood.get())).toMatch(/^the exec plugin ".+" of user "main" printed more than 100000 bytes; it was stopped$/);
  });

  it("is not run when the user has a token, password or client certificate of its own (as in client-go)", async () => {
    const { user, runs } = execUser("token");
    const config = await loadKubeConfig(isolated({ file: write("exec/shadowed", kubeconfig({ user: { ...user, token: TOKEN } })) }));
    expect((await config.auth()).authorization).toBe(`Bearer ${TOKEN}`);
    expect(runs()).toEqual([]);
  });
});
