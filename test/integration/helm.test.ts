/**
 * charts/wa-operator with helm built from its Go module (hack/go-tools/build.sh helm):
 * `helm lint`, `helm template` with default values and with every toggle on, the API
 * server's verdict on both (server-side dry run), a real `helm install` and `helm
 * uninstall`, and, with default values, the very objects `kubectl apply --server-side -k
 * manifests/` installs, apart from Helm's own labels and the Namespace (Helm installs
 * into one: `helm install -n wa-operator-system --create-namespace`).
 *
 * The ServiceMonitor and PrometheusRule need the Prometheus Operator's CRDs: the test
 * installs the real ones (from its Go module, hack/go-tools/build.sh
 * prometheus-operator-crds), so the server checks them against their schemas too.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { loadConfig } from "../../src/config.ts";
import { goTool, runGoTool } from "../support/go-tools.ts";
import { createNamespace, installCrds, kubeconfigPath, kubectl, kubectlOk, REPO } from "../support/kube.ts";

const CHART = path.join(REPO, "charts", "wa-operator");
const RELEASE = "wa-operator";
const NAMESPACE = "wa-operator-system";
const packageVersion = (JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as { version: string }).version;
/** The labels Helm's charts add that the kustomize install has no use for. */
const HELM_LABELS = ["app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "app.kubernetes.io/version", "helm.sh/chart"];

interface KubeManifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** Every toggle on, and a non-default value for every setting. */
const ALL_ON = `
replicas: 3
image: {repository: registry.example.com/wa/wa-operator, tag: "9.9.9", pullPolicy: Always}
imagePullSecrets: [{name: registry-credentials}]
leaderElection: {enabled: true, leaseDuration: 20s}
watchNamespaces: [team-a, team-b]
logLevel: debug
concurrency: 16
pollIntervals: {status: 45s, pairing: 3s, providerCheck: 2m, resync: 15m}
extraEnv: [{name: FAILURE_BACKOFF, value: 90s}]
resources: {requests: {cpu: 100m, memory: 256Mi}, limits: {cpu: "1", memory: 1Gi}}
nodeSelector: {kubernetes.io/os: linux}
tolerations: [{key: dedicated, operator: Equal, value: operators, effect: NoSchedule}]
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/arch, operator: In, values: [amd64, arm64]}]}]
priorityClassName: wa-operator-test
podAnnotations: {example.com/team: messaging}
podLabels: {example.com/cost-center: "42"}
serviceAccount: {annotations: {example.com/role: whatsapp}}
podDisruptionBudget: {enabled: true, minAvailable: 2}
networkPolicy:
  enabled: true
  from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}
    - ipBlock: {cidr: 10.0.0.0/8}
metrics:
  serviceMonitor: {enabled: true, interval: 15s, labels: {release: prometheus}}
  prometheusRule: {enabled: true, labels: {release: prometheus}}
  grafanaDashboard: {enabled: true, annotations: {grafana_folder: WhatsApp}}
`;

const WATCHED = ["team-a", "team-b"];

let dir: string;
let allOnFile: string;

/** helm, with its caches and settings in a scratch directory and the test cluster's kubeconfig. */
async function helm(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runGoTool("helm", args, {
    env: { HELM_CACHE_HOME: path.join(dir, "cache"), HELM_CONFIG_HOME: path.join(dir, "config"), HELM_DATA_HOME: path.join(dir, "data"), KUBECONFIG: kubeconfigPath() },
  });
}

async function helmOk(args: readonly string[]): Promise<string> {
  const result = await helm(args);
  if (result.code !== 0) throw new Error(`helm ${args.join(" ")} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

const documents = (text: string): KubeManifest[] =>
  parseAllDocuments(text)
    .map((document) => document.toJSON() as KubeManifest | null)
    .filter((object): object is KubeManifest => object !== null);

/** `helm template` of the chart, CRDs included, as the release `release` in `namespace`. */
async function template(options: { release?: string; namespace?: string; values?: string[]; set?: string[] } = {}): Promise<KubeManifest[]> {
  const args = ["template", options.release ?? RELEASE, CHART, "--namespace", options.namespace ?? NAMESPACE, "--include-crds"];
  for (const file of options.values ?? []) args.push("--values", file);
  for (const value of options.set ?? []) args.push("--set", value);
  return documents(await helmOk(args));
}

const id = (object: KubeManifest) => `${object.kind}/${object.metadata.namespace ? `${object.metadata.namespace}/` : ""}${object.metadata.name}`;
const byId = (objects: KubeManifest[]) => new Map(objects.map((object) => [id(object), object]));
const find = (objects: KubeManifest[], kind: string, name?: string): KubeManifest => {
  const found = objects.find((object) => object.kind === kind && (name === undefined || object.metadata.name === name));
  if (!found) throw new Error(`no ${kind} ${name ?? ""} in ${objects.map(id).join(", ")}`);
  return found;
};

/** Everything but metadata (name and namespace kept), with Helm's labels taken out of selectors and templates. */
function content(object: KubeManifest): unknown {
  const strip = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(strip);
    if (value && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).filter(([key]) => !HELM_LABELS.includes(key)).map(([key, child]) => [key, strip(child)]));
    }
    return value;
  };
  const { metadata, ...rest } = object;
  return strip({ ...rest, metadata: { name: metadata.name, namespace: metadata.namespace } });
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "wa-operator-helm-"));
  allOnFile = path.join(dir, "all-on.yaml");
  writeFileSync(allOnFile, ALL_ON);
  await goTool("helm");
}, 600_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("the chart", () => {
  it("Chart.yaml: apiVersion v2, version and appVersion are package.json's version", () => {
    const chart = parseYaml(readFileSync(path.join(CHART, "Chart.yaml"), "utf8")) as { apiVersion: string; version: string; appVersion: string };
    expect(chart).toMatchObject({ apiVersion: "v2", version: packageVersion, appVersion: packageVersion });
  });

  it.each([
    ["default values", []],
    ["every toggle on", ["all-on"]],
  ])("helm lint --strict passes with %s", async (_name, files) => {
    const result = await helm(["lint", "--strict", CHART, ...files.flatMap(() => ["--values", allOnFile])]);
    expect(result.stderr + result.stdout).not.toMatch(/\[(ERROR|WARNING)\]/);
    expect(result.code).toBe(0);
  });
});

describe("helm template with default values", () => {
  let chart: KubeManifest[];
  let kustomize: KubeManifest[];

  beforeAll(async () => {
    chart = await template();
    kustomize = documents(await kubectlOk(["kustomize", path.join(REPO, "manifests")]));
  });

  it("renders the objects of `kubectl kustomize manifests/`, but the Namespace", () => {
    const expected = kustomize.filter((object) => object.kind !== "Namespace").map(id).sort();
    expect(chart.map(id).sort()).toEqual(expected);
  });

  it("each object has the same content (spec, rules, roleRef, subjects, data, ...) apart from Helm's labels", () => {
    const ours = byId(chart);
    for (const object of kustomize.filter((each) => each.kind !== "Namespace")) {
      expect(content(ours.get(id(object)) as KubeManifest), id(object)).toEqual(content(object));
    }
  });

  it("carries the kustomize labels, and beyond them only Helm's (crds/ are installed as they are, unlabelled)", () => {
    const ours = byId(chart);
    for (const object of kustomize.filter((each) => each.kind !== "Namespace" && each.kind !== "CustomResourceDefinition")) {
      const labels = ours.get(id(object))?.metadata.labels ?? {};
      expect(labels, id(object)).toMatchObject(object.metadata.labels ?? {});
      expect(Object.keys(labels).filter((key) => !(key in (object.metadata.labels ?? {}))).sort(), id(object)).toEqual([...HELM_LABELS].sort());
    }
  });

  it("the CRDs are the files in crds/, as `npm run crds` renders them", () => {
    const files = readdirSync(path.join(CHART, "crds")).sort();
    expect(files).toEqual(readdirSync(path.join(REPO, "crds")).sort());
    for (const file of files) expect(readFileSync(path.join(CHART, "crds", file), "utf8"), file).toBe(readFileSync(path.join(REPO, "crds", file), "utf8"));
  });

  it("creates no monitoring objects: their CRDs may not exist", () => {
    expect(chart.filter((object) => ["ServiceMonitor", "PodMonitor", "PrometheusRule", "ConfigMap"].includes(object.kind))).toEqual([]);
  });
});

describe("helm template with every toggle on", () => {
  let chart: KubeManifest[];
  beforeAll(async () => {
    chart = await template({ values: [allOnFile] });
  });
  const deployment = () =>
    find(chart, "Deployment") as unknown as {
      spec: {
        replicas: number;
        selector: { matchLabels: Record<string, string> };
        template: { metadata: { labels: Record<string, string>; annotations: Record<string, string> }; spec: Record<string, unknown> & { containers: Record<string, unknown>[] } };
      };
    };

  it("the settings reach the operator as environment variables it reads back as set", () => {
    const env = deployment().spec.template.spec.containers[0]?.["env"] as { name: string; value?: string }[];
    const values = Object.fromEntries(env.filter((entry) => entry.value !== undefined).map((entry) => [entry.name, entry.value as string]));
    expect(env[0]).toEqual({ name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } });
    const config = loadConfig([], { ...values, POD_NAMESPACE: NAMESPACE });
    expect(config).toMatchObject({
      leaderElection: true,
      leaseDuration: 20_000,
      namespaces: ["team-a", "team-b"],
      logLevel: "debug",
      concurrency: 16,
      pollInterval: 45_000,
      pairingPollInterval: 3_000,
      providerCheckInterval: 120_000,
      resync: 15 * 60_000,
      failureBackoff: 90_000,
      httpAddress: ":8080",
      metricsAddress: ":8081",
    });
  });

  it("image, replicas, resources, scheduling, pod labels and annotations come from the values", () => {
    const { spec } = deployment();
    const pod = spec.template.spec;
    const container = pod.containers[0] as Record<string, unknown>;
    expect(spec.replicas).toBe(3);
    expect(container["image"]).toBe("registry.example.com/wa/wa-operator:9.9.9");
    expect(container["imagePullPolicy"]).toBe("Always");
    expect(container["resources"]).toEqual({ requests: { cpu: "100m", memory: "256Mi" }, limits: { cpu: "1", memory: "1Gi" } });
    expect(pod["imagePullSecrets"]).toEqual([{ name: "registry-credentials" }]);
    expect(pod["nodeSelector"]).toEqual({ "kubernetes.io/os": "linux" });
    expect(pod["tolerations"]).toEqual([{ key: "dedicated", operator: "Equal", value: "operators", effect: "NoSchedule" }]);
    expect(pod["affinity"]).toEqual(parseYaml(ALL_ON).affinity);
    expect(pod["priorityClassName"]).toBe("wa-operator-test");
    expect(spec.template.metadata.labels).toMatchObject({ ...spec.selector.matchLabels, "example.com/cost-center": "42" });
    expect(spec.template.metadata.annotations).toEqual({ "example.com/team": "messaging" });
    expect(find(chart, "ServiceAccount").metadata.annotations).toEqual({ "example.com/role": "whatsapp" });
  });

  it("PodDisruptionBudget and NetworkPolicy take their values", () => {
    expect((find(chart, "PodDisruptionBudget") as unknown as { spec: { minAvailable: number } }).spec.minAvailable).toBe(2);
    const policy = find(chart, "NetworkPolicy") as unknown as { spec: { ingress: unknown[] } };
    expect(policy.spec.ingress).toEqual([{ ports: [{ port: 8080, protocol: "TCP" }, { port: 8081, protocol: "TCP" }], from: parseYaml(ALL_ON).networkPolicy.from }]);
  });

  it("ServiceMonitor, PrometheusRule and the dashboard ConfigMap are manifests/monitoring/'s, with the values' labels", async () => {
    const monitoring = byId(documents(await kubectlOk(["kustomize", path.join(REPO, "manifests", "monitoring")])));
    const ours = chart.filter((object) => ["ServiceMonitor", "PrometheusRule", "ConfigMap"].includes(object.kind));
    expect(ours.map(id).sort()).toEqual([...monitoring.keys()].sort());
    for (const object of ours) {
      const theirs = monitoring.get(id(object)) as KubeManifest;
      const patched = object.kind === "ServiceMonitor" ? { ...theirs, spec: { ...(theirs["spec"] as object), endpoints: [{ ...(theirs["spec"] as { endpoints: object[] }).endpoints[0], interval: "15s" }] } } : theirs;
      expect(content(object), id(object)).toEqual(content(patched));
    }
    expect(find(chart, "ServiceMonitor").metadata.labels).toMatchObject({ release: "prometheus" });
    expect(find(chart, "PrometheusRule").metadata.labels).toMatchObject({ release: "prometheus" });
    expect(find(chart, "ConfigMap").metadata).toMatchObject({ labels: { grafana_dashboard: "1" }, annotations: { grafana_folder: "WhatsApp" } });
  });

  it("with watchNamespaces, Secrets are granted by a Role in each watched namespace and the release's, and by no ClusterRole", () => {
    const roles = chart.filter((object) => object.kind === "Role" && object.metadata.name === "wa-operator-secrets");
    expect(roles.map((object) => object.metadata.namespace).sort()).toEqual([...WATCHED, NAMESPACE].sort());
    const bindings = chart.filter((object) => object.kind === "RoleBinding" && object.metadata.name === "wa-operator-secrets");
    expect(bindings.map((object) => object.metadata.namespace).sort()).toEqual([...WATCHED, NAMESPACE].sort());
    const clusterRules = chart.filter((object) => object.kind === "ClusterRole" && !object.metadata.name.endsWith("-view") && !object.metadata.name.endsWith("-edit"));
    expect(clusterRules.flatMap((object) => (object["rules"] as { resources: string[] }[]).flatMap((rule) => rule.resources))).not.toContain("secrets");
  });

  it("the ServiceMonitor selects the Service, which selects the Deployment's pods", () => {
    const monitor = find(chart, "ServiceMonitor") as unknown as { spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string }[] } };
    const service = find(chart, "Service") as unknown as { metadata: { labels: Record<string, string> }; spec: { selector: Record<string, string>; ports: { name: string }[] } };
    expect(service.metadata.labels).toMatchObject(monitor.spec.selector.matchLabels);
    expect(service.spec.ports.map((port) => port.name)).toContain(monitor.spec.endpoints[0]?.port);
    expect(deployment().spec.template.metadata.labels).toMatchObject(service.spec.selector);
  });
});

describe("values that change what is rendered", () => {
  it("replicas: 1 renders no PodDisruptionBudget (minAvailable 1 would block every drain)", async () => {
    expect((await template({ set: ["replicas=1"] })).filter((object) => object.kind === "PodDisruptionBudget")).toEqual([]);
  });

  it("leader election off, one replica: LEADER_ELECTION=false and no leader-election Role", async () => {
    const chart = await template({ set: ["replicas=1", "leaderElection.enabled=false"] });
    expect(chart.filter((object) => object.kind === "Role" || object.kind === "RoleBinding")).toEqual([]);
    const env = (find(chart, "Deployment") as unknown as { spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } } }).spec.template.spec.containers[0]?.env;
    expect(env).toContainEqual({ name: "LEADER_ELECTION", value: "false" });
  });

  it.each([
    ["a misspelt value", "replica=3", "additional properties 'replica' not allowed"],
    ["a duration that is none", "pollIntervals.status=soon", "/pollIntervals/status"],
    ["an unknown log level", "logLevel=verbose", "/logLevel"],
  ])("values.schema.json refuses %s", async (_name, value, message) => {
    const result = await helm(["template", RELEASE, CHART, "--set", value]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(message);
  });

  it("refuses more than one replica without leader election", async () => {
    const result = await helm(["template", RELEASE, CHART, "--set", "leaderElection.enabled=false"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("replicas > 1 needs leaderElection.enabled");
  });
});

describe("on the API server", () => {
  const monitoringCrds: string[] = [];

  beforeAll(async () => {
    // Ours as every test file installs them (client-side), so helm install finds them and
    // leaves them be, and no later `kubectl apply` meets CRDs it did not apply.
    await installCrds();
    const crdDir = await goTool("prometheus-operator-crds");
    for (const file of readdirSync(crdDir).filter((name) => name.endsWith(".yaml"))) monitoringCrds.push(path.join(crdDir, file));
    for (const file of monitoringCrds) await kubectlOk(["apply", "--server-side", "-f", file]);
    await kubectlOk(["wait", "--for=condition=Established", "--timeout=60s", ...monitoringCrds.flatMap((file) => ["-f", file])]);
    await kubectlOk(["create", "priorityclass", "wa-operator-test", "--value=1000"]);
    // ALL_ON's watchNamespaces: the chart puts the operator's Secret Roles in them.
    for (const namespace of WATCHED) await kubectlOk(["apply", "-f", "-"], `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${namespace}}\n`);
  }, 120_000);

  afterAll(async () => {
    await kubectl(["delete", "priorityclass", "wa-operator-test", "--ignore-not-found"]);
    await kubectl(["delete", "namespace", ...WATCHED, "--ignore-not-found", "--wait=false"]);
    for (const file of monitoringCrds) await kubectl(["delete", "-f", file, "--ignore-not-found"]);
  });

  /** A fresh namespace under the Pod Security "restricted" profile, as manifests/ makes its own. */
  async function restrictedNamespace(prefix: string): Promise<string> {
    const namespace = await createNamespace(prefix);
    await kubectlOk(["label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/warn=restricted"]);
    return namespace;
  }

  /**
   * `kubectl apply --dry-run=server` of `objects`: the server validates and admits each, and
   * stores nothing. Client-side apply, like every test file's CRD install: server-side apply
   * would trade field-ownership warnings with it over the shared CRDs.
   */
  async function expectAccepted(objects: KubeManifest[], name: string): Promise<void> {
    const file = path.join(dir, `${name}.yaml`);
    writeFileSync(file, objects.map((object) => JSON.stringify(object)).join("\n---\n"));
    const result = await kubectl(["apply", "--dry-run=server", "-f", file]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    for (const object of objects) expect(result.stdout).toMatch(new RegExp(`/${object.metadata.name.replaceAll(".", "\\.")} (created|configured|unchanged) \\(server dry run\\)`));
  }

  it.each([
    ["default values", []],
    ["every toggle on", ["all-on"]],
  ])("accepts helm template's output with %s (kubectl apply --dry-run=server, no Pod Security warning)", async (_name, files) => {
    const namespace = await restrictedNamespace("helm-dry-run");
    await expectAccepted(await template({ release: "wa-dry-run", namespace, values: files.map(() => allOnFile) }), namespace);
  });

  it("accepts manifests/monitoring/ (kustomize) against the Prometheus Operator's CRDs (kubectl apply --dry-run=server)", async () => {
    // In a namespace of its own: wa-operator-system comes and goes with the kustomize install test.
    const namespace = await createNamespace("monitoring-dry-run");
    const objects = documents(await kubectlOk(["kustomize", path.join(REPO, "manifests", "monitoring")]));
    expect(objects.map((object) => object.kind).sort()).toEqual(["ConfigMap", "PrometheusRule", "ServiceMonitor"]);
    await expectAccepted(
      objects.map((object) => ({ ...object, metadata: { ...object.metadata, namespace } })),
      namespace,
    );
  });

  it("helm install puts every object in place, and helm uninstall removes them again", async () => {
    const namespace = await restrictedNamespace("helm-install");
    const release = "wa-helm";
    const rendered = (await template({ release, namespace, values: [allOnFile] })).filter((object) => object.kind !== "CustomResourceDefinition");
    const install = await helm(["install", release, CHART, "--namespace", namespace, "--values", allOnFile]);
    expect(install.stderr).not.toMatch(/warning|error/i);
    expect(install.code).toBe(0);
    expect(install.stdout).toContain("STATUS: deployed");
    const exists = async (object: KubeManifest) =>
      (await kubectl(["get", object.kind.toLowerCase(), object.metadata.name, ...(object.metadata.namespace ? ["-n", object.metadata.namespace] : []), "-o", "name"])).code === 0;
    for (const object of rendered) expect(await exists(object), id(object)).toBe(true);
    const uninstall = await helm(["uninstall", release, "--namespace", namespace, "--wait"]);
    expect(uninstall.code).toBe(0);
    for (const object of rendered) expect(await exists(object), id(object)).toBe(false);
  });
});
