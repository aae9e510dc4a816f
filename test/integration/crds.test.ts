/**
 * The CRDs against the real API server: they install, every example is accepted,
 * invalid specs are rejected at apply time with a message naming the field, and
 * kubectl shows the contract's columns and descriptions.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { createNamespace, installCrds, kubectl, kubectlOk, REPO } from "../support/kube.ts";

let namespace: string;

beforeAll(async () => {
  await installCrds();
  namespace = await createNamespace("crds");
});

const instance = (spec: string) => `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: bad}
spec:
${spec}`;
const provider = (spec: string, kind = "WhatsAppProvider") => `apiVersion: wa-operator.io/v1alpha1
kind: ${kind}
metadata: {name: bad}
spec:
${spec}`;
const validProvider = `  type: waha
  url: http://waha:3000
  credentialsSecretRef: {name: key}`;

describe("the CRDs", () => {
  it("install and are listed by kubectl get crd", async () => {
    const out = await kubectlOk(["get", "crd", "-o", "name"]);
    expect(out).toContain("whatsappinstances.wa-operator.io");
    expect(out).toContain("whatsappproviders.wa-operator.io");
    expect(out).toContain("clusterwhatsappproviders.wa-operator.io");
  });

  it("accepts every file in examples/", async () => {
    const files = readdirSync(path.join(REPO, "examples"), { recursive: true })
      .map(String)
      .filter((file) => file.endsWith(".yaml"));
    expect(files.length).toBeGreaterThan(3);
    for (const file of files) {
      const result = await kubectl(["apply", "-n", namespace, "--validate=strict", "-f", path.join(REPO, "examples", file)]);
      expect(result.stderr, file).toBe("");
      expect(result.code, file).toBe(0);
    }
  });
});

describe("invalid specs are rejected at apply time", () => {
  it.each([
    ["an unknown state", instance("  providerRef: {name: p}\n  state: Running"), "spec.state"],
    ["pairing by Code without a phone number", instance("  providerRef: {name: p}\n  pairing: {method: Code}"), "pairing.phoneNumber is required when method is Code"],
    ["a phone number that is not digits", instance('  providerRef: {name: p}\n  pairing: {method: Code, phoneNumber: "+55 11 9999"}'), "spec.pairing.phoneNumber"],
    ["an unknown pairing method", instance("  providerRef: {name: p}\n  pairing: {method: Carrier}"), "spec.pairing.method"],
    ["a webhook URL that is not http(s)", instance("  providerRef: {name: p}\n  webhook: {url: ftp://hooks.example.com/wa}"), "spec.webhook.url"],
    ["a webhook URL that is not a URL", instance("  providerRef: {name: p}\n  webhook: {url: hooks}"), "spec.webhook.url"],
    ["an empty webhook event name", instance('  providerRef: {name: p}\n  webhook: {url: "https://h.example/w", events: [""]}'), "spec.webhook.events[0]"],
    ["a restartRequestedAt that is not a timestamp", instance("  providerRef: {name: p}\n  restartRequestedAt: yesterday"), "spec.restartRequestedAt"],
    ["a missing providerRef", instance("  state: Connected"), "spec.providerRef"],
    ["a providerRef of an unknown kind", instance("  providerRef: {kind: Provider, name: p}"), "spec.providerRef.kind"],
    ["a providerRef without a name", instance("  providerRef: {kind: WhatsAppProvider}"), "spec.providerRef.name"],
    ["an unknown deletionPolicy", instance("  providerRef: {name: p}\n  deletionPolicy: Keep"), "spec.deletionPolicy"],
    ["a cloudApi phone number id that is not digits", instance("  providerRef: {name: p}\n  cloudApi: {phoneNumberId: abc, pinSecretRef: {name: pin}}"), "spec.cloudApi.phoneNumberId"],
    ["a cloudApi without its PIN Secret", instance('  providerRef: {name: p}\n  cloudApi: {phoneNumberId: "123"}'), "spec.cloudApi.pinSecretRef"],
    ["an unknown wappfy instance type", instance("  providerRef: {name: p}\n  wappfy: {type: baileys}"), "spec.wappfy.type"],
    ["a credentials Secret reference without a name", instance("  providerRef: {name: p}\n  credentialsSecretRef: {key: api-key}"), "spec.credentialsSecretRef.name"],
    ["an unknown field", instance("  providerRef: {name: p}\n  colour: green"), "unknown field \"spec.colour\""],
    ["a provider type outside the five", provider("  type: telegram\n  url: http://x\n  credentialsSecretRef: {name: key}"), "spec.type"],
    ["a negative maxInstances", provider(`${validProvider}\n  maxInstances: -1`), "spec.maxInstances"],
    ["a provider without a url", provider("  type: waha\n  credentialsSecretRef: {name: key}"), "url is required for this provider type"],
    ["a provider without credentials", provider("  type: wappfy\n  url: https://api.wappfy.io"), "credentialsSecretRef is required"],
    ["a provider URL that is not http(s)", provider("  type: waha\n  url: waha:3000\n  credentialsSecretRef: {name: key}"), "spec.url"],
    ["a rate limit of zero", provider(`${validProvider}\n  rateLimit: {requestsPerSecond: 0}`), "spec.rateLimit.requestsPerSecond"],
    ["a poll interval that is not a duration", provider(`${validProvider}\n  pollInterval: soon`), "spec.pollInterval"],
    ["whapi settings on another provider type", provider(`${validProvider}\n  whapi: {apiKeyInQuery: true}`), "whapi settings are only for type whapi"],
    ["a poll interval of 0s", provider(`${validProvider}\n  pollInterval: 0s`), "spec.pollInterval: Invalid value"],
    ["a poll interval of 1ms", provider(`${validProvider}\n  pollInterval: 1ms`), "spec.pollInterval: Invalid value"],
    ["a poll interval over a day", provider(`${validProvider}\n  pollInterval: 25h`), "spec.pollInterval: Invalid value"],
    ["a poll interval too long to be one", provider(`${validProvider}\n  pollInterval: ${"1s".repeat(20)}`), "spec.pollInterval"],
    ["a rate limit under one request in 10 s", provider(`${validProvider}\n  rateLimit: {requestsPerSecond: 0.01}`), "spec.rateLimit.requestsPerSecond"],
    ["a rate limit over 10000 per second", provider(`${validProvider}\n  rateLimit: {requestsPerSecond: 10001}`), "spec.rateLimit.requestsPerSecond"],
    ["a burst of zero", provider(`${validProvider}\n  rateLimit: {burst: 0}`), "spec.rateLimit.burst"],
    ["a maxInstances over 100000", provider(`${validProvider}\n  maxInstances: 100001`), "spec.maxInstances"],
    ["a capacity of zero sessions", provider(`${validProvider}\n  capacity: {maxSessions: 0}`), "spec.capacity.maxSessions"],
    ["a capacity over 100000 sessions", provider(`${validProvider}\n  capacity: {maxSessions: 100001}`), "spec.capacity.maxSessions"],
    ["both a providerRef and a providerSelector", instance("  providerRef: {name: p}\n  providerSelector: {matchLabels: {fleet: a}}"), "set exactly one of providerRef and providerSelector"],
    ["a providerSelector with an unknown operator", instance("  providerSelector: {matchExpressions: [{key: fleet, operator: Near}]}"), "spec.providerSelector.matchExpressions[0].operator"],
    ["a displayName over 128 characters", instance(`  providerRef: {name: p}\n  displayName: ${"x".repeat(129)}`), "spec.displayName"],
    ["more than 64 webhook events", instance(`  providerRef: {name: p}\n  webhook: {url: "https://h.example/w", events: [${Array.from({ length: 65 }, (_, i) => `e${i}`).join(", ")}]}`), "spec.webhook.events"],
    ["a webhook event name over 128 characters", instance(`  providerRef: {name: p}\n  webhook: {url: "https://h.example/w", events: [${"e".repeat(129)}]}`), "spec.webhook.events[0]"],
    ["a webhook URL over 2048 characters", instance(`  providerRef: {name: p}\n  webhook: {url: "https://h.example/${"w".repeat(2048)}"}`), "spec.webhook.url"],
    ["a cloudApi phone number id over 32 digits", instance(`  providerRef: {name: p}\n  cloudApi: {phoneNumberId: "${"1".repeat(33)}", pinSecretRef: {name: pin}}`), "spec.cloudApi.phoneNumberId"],
    ["a phone number over 15 digits", instance(`  providerRef: {name: p}\n  pairing: {method: Code, phoneNumber: "${"5".repeat(16)}"}`), "spec.pairing.phoneNumber"],
    [
      "a cluster provider's Secret reference without a namespace",
      provider("  type: waha\n  url: http://x\n  credentialsSecretRef: {name: key}", "ClusterWhatsAppProvider"),
      "spec.credentialsSecretRef.namespace",
    ],
  ])("%s", async (_sentence, manifest, field) => {
    const result = await kubectl(["apply", "-n", namespace, "--validate=strict", "-f", "-"], manifest);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(field);
  });

  it("a provider's type cannot change after creation", async () => {
    await kubectlOk(["apply", "-n", namespace, "-f", "-"], provider(validProvider).replace("name: bad", "name: fixed-type"));
    const result = await kubectl(
      ["apply", "-n", namespace, "-f", "-"],
      provider(validProvider.replace("type: waha", "type: wappfy")).replace("name: bad", "name: fixed-type"),
    );
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("type is immutable");
  });

  it("an instance's providerRef cannot change after creation", async () => {
    await kubectlOk(["apply", "-n", namespace, "-f", "-"], instance("  providerRef: {name: one}").replace("name: bad", "name: fixed-ref"));
    const result = await kubectl(["apply", "-n", namespace, "-f", "-"], instance("  providerRef: {name: two}").replace("name: bad", "name: fixed-ref"));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("providerRef is immutable");
  });

  it("an instance cannot switch from a providerSelector to a providerRef", async () => {
    await kubectlOk(["apply", "-n", namespace, "-f", "-"], instance("  providerSelector: {matchLabels: {fleet: a}}").replace("name: bad", "name: by-selector"));
    const result = await kubectl(["apply", "-n", namespace, "-f", "-"], instance("  providerRef: {name: one}").replace("name: bad", "name: by-selector"));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("cannot switch between providerRef and providerSelector");
  });

  it("a placement in status.providerRef is decided once: it can neither move nor go", async () => {
    await kubectlOk(["apply", "-n", namespace, "-f", "-"], instance("  providerSelector: {matchLabels: {fleet: a}}").replace("name: bad", "name: placed-once"));
    const status = (providerRef: unknown) => kubectl(["patch", "wai", "placed-once", "-n", namespace, "--subresource=status", "--type=merge", "-p", JSON.stringify({ status: { providerRef } })]);
    expect((await status({ kind: "WhatsAppProvider", name: "one" })).code).toBe(0);
    const moved = await status({ kind: "WhatsAppProvider", name: "two" });
    expect(moved.code).not.toBe(0);
    expect(moved.stderr).toContain("status.providerRef is decided once and never moves");
    const removed = await status(null);
    expect(removed.code).not.toBe(0);
    expect(removed.stderr).toContain("status.providerRef is decided once and never removed");
  });
});

/**
 * URLs the operator calls, or wires a provider to call, checked by the API server with a
 * server-side dry run: it validates and admits, stores nothing, and nothing is sent to
 * any of these addresses.
 */
describe("URLs that reach link-local or metadata addresses are refused at apply time", () => {
  const dryRun = (manifest: string) => kubectl(["apply", "-n", namespace, "--dry-run=server", "-f", "-"], manifest);
  const withUrl = (url: string) => provider(`  type: waha\n  url: "${url}"\n  credentialsSecretRef: {name: key}`);
  const refusals = [
    ["the AWS/GCP/Azure metadata address", "http://169.254.169.254/latest/meta-data", "link-local"],
    ["another link-local IPv4 address", "http://169.254.10.1:3000", "link-local"],
    ["a link-local IPv6 address", "http://[fe80::1]:3000", "link-local"],
    ["GCP's metadata name", "http://metadata.google.internal/computeMetadata/v1", "cloud metadata"],
    ["GCP's short metadata name, upper case and with a trailing dot", "http://METADATA./", "cloud metadata"],
    ["AWS's IPv6 metadata address", "http://[fd00:ec2::254]/latest", "cloud metadata"],
    ["a user and password", "https://admin:hunter2@waha.example:3000", "user or password"],
    ["a user without a password", "https://admin@waha.example", "user or password"],
    ["169.254.169.254 written as one decimal number", "http://2852039166/", "plain IP address"],
    ["169.254.169.254 written in hex", "http://0xa9fea9fe/", "plain IP address"],
    ["169.254.169.254 as an IPv4-mapped IPv6 address", "http://[::ffff:169.254.169.254]/", "plain IP address"],
  ] as const;

  it.each(refusals)("a provider url naming %s", async (_sentence, url, message) => {
    const result = await dryRun(withUrl(url));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("spec.url");
    expect(result.stderr).toContain(message);
  });

  it.each(refusals)("an events url and a webhook url naming %s", async (_sentence, url, message) => {
    const events = await dryRun(provider(`${validProvider}\n  events: {url: "${url}"}`));
    expect(events.code).not.toBe(0);
    expect(events.stderr).toContain("spec.events.url");
    expect(events.stderr).toContain(message);
    const webhook = await dryRun(instance(`  providerRef: {name: p}\n  webhook: {url: "${url}"}`));
    expect(webhook.code).not.toBe(0);
    expect(webhook.stderr).toContain("spec.webhook.url");
    expect(webhook.stderr).toContain(message);
  });

  it.each([
    "http://127.0.0.1:3000",
    "http://127.0.0.2:3000",
    "http://[::1]:3000",
    "http://localhost:3000",
    "http://waha.waha.svc:3000",
    "https://graph.facebook.com",
    "http://10.0.0.7:8080/path?x=@y",
  ])("accepts %s (loopback keeps working)", async (url) => {
    const result = await dryRun(withUrl(url));
    expect(result.stderr).toBe("");
    expect(result.stdout).toContain("(server dry run)");
  });
});

describe("spec.adopt", () => {
  it.each([
    ["an id with a slash", "../other"],
    ["an id with a query", "a?b=c"],
    ["an id over 128 characters", "x".repeat(129)],
  ])("refuses %s", async (_sentence, id) => {
    const result = await kubectl(["apply", "-n", namespace, "--dry-run=server", "-f", "-"], instance(`  providerRef: {name: p}\n  adopt: {id: "${id}"}`));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("spec.adopt.id");
  });

  it("can be set only when the instance is created, and never changed", async () => {
    const named = (name: string, spec: string) => instance(spec).replace("name: bad", `name: ${name}`);
    await kubectlOk(["apply", "-n", namespace, "-f", "-"], named("adopt-later", "  providerRef: {name: p}"));
    const added = await kubectl(["apply", "-n", namespace, "-f", "-"], named("adopt-later", "  providerRef: {name: p}\n  adopt: {id: default}"));
    expect(added.code).not.toBe(0);
    expect(added.stderr).toContain("adopt can be set only when the instance is created");
    await kubectlOk(["apply", "-n", namespace, "-f", "-"], named("adopt-first", "  providerRef: {name: p}\n  adopt: {id: default}"));
    const changed = await kubectl(["apply", "-n", namespace, "-f", "-"], named("adopt-first", "  providerRef: {name: p}\n  adopt: {id: other}"));
    expect(changed.code).not.toBe(0);
    expect(changed.stderr).toContain("adopt is immutable");
  });
});

describe("what kubectl shows", () => {
  it("kubectl get wai prints the contract's columns", async () => {
    await kubectlOk(["apply", "-n", namespace, "-f", "-"], instance("  providerRef: {name: waha}\n  state: Disconnected").replace("name: bad", "name: columns"));
    const out = await kubectlOk(["get", "wai", "-n", namespace, "columns"]);
    const header = out.split("\n")[0]?.trim().split(/\s+/);
    expect(header).toEqual(["NAME", "PROVIDER", "DESIRED", "PHASE", "PHONE", "READY", "AGE"]);
    expect(out.split("\n")[1]).toMatch(/^columns\s+waha\s+Disconnected\s+/);
  });

  it("kubectl get wap prints the contract's columns", async () => {
    const out = await kubectlOk(["get", "wap", "-n", namespace]);
    expect(out.split("\n")[0]?.trim().split(/\s+/)).toEqual(["NAME", "TYPE", "URL", "READY", "INSTANCES", "AGE"]);
  });

  it("kubectl get whatsapp lists every kind of the category", async () => {
    const out = await kubectlOk(["get", "whatsapp", "-n", namespace, "-o", "name"]);
    expect(out).toContain("whatsappinstance.wa-operator.io/columns");
    expect(out).toContain("whatsappprovider.wa-operator.io/waha");
  });

  it.each([
    ["wai.spec.pairing", "How the phone is linked."],
    ["wai.spec.state", "Desired state: Connected"],
    ["wai.status.qr", "only while phase is ScanQR"],
    ["wap.spec.maxInstances", "QuotaExceeded"],
    ["cwap.spec.credentialsSecretRef.namespace", "Namespace of the Secret"],
  ])("kubectl explain %s shows the field's description", async (field, words) => {
    const out = await kubectlOk(["explain", field]);
    expect(out).toContain(words);
  });
});
