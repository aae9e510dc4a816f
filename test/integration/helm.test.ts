/**
 * charts/wa-operator with helm built from its Go module (hack/go-tools/build.sh helm):
 * `helm lint`, `helm template` with default values and with every toggle on, the API
 * server's verdict on both (server-side dry run), a real `helm install` and `helm
 * uninstall` (the CRDs stay), `helm upgrade` from the previous chart (the CRD change is
 * served afterwards), the chart as a subchart of an umbrella chart, and, with default
 * values, the very objects `kubectl apply --server-side -k manifests/` installs, apart from
 * Helm's own labels and the Namespace (Helm installs into one: `helm install -n
 * wa-operator-system --create-namespace`).
 *
 * There is no kubelet: nothing here waits for a pod to run, it checks what the API server
 * stores. The CRDs are cluster-wide and every test file installs them, so each release here
 * takes them over (`--take-ownership`) and, with crds.keep, leaves them behind.
 *
 * The ServiceMonitor and PrometheusRule need the Prometheus Operator's CRDs: the test
 * installs the real ones (from its Go module, hack/go-tools/build.sh
 * prometheus-operator-crds), so the server checks them against their schemas too.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { loadConfig } from "../../src/config.ts";
import { goTool, runGoTool } from "../support/go-tools.ts";
import { createNamespace, eventually, installCrds, kubeconfigPath, kubectl, kubectlOk, REPO } from "../support/kube.ts";

const CHART = path.join(REPO, "charts", "wa-operator");
const RELEASE = "wa-operator";
/** main before the CRDs became templates: chart 0.1.0, its CRDs in crds/. */
const PREVIOUS = "b111cba";
const run = promisify(execFile);
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
global: {imagePullSecrets: [{name: global-credentials}], commonLabels: {example.com/umbrella: platform}, storageClass: not-ours}
commonLabels: {example.com/owner: messaging}
replicas: 3
strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 0, maxUnavailable: 1}}
image: {repository: registry.example.com/wa/wa-operator, tag: "9.9.9", pullPolicy: Always}
imagePullSecrets: [{name: registry-credentials}]
leaderElection: {enabled: true, leaseDuration: 20s, leaseName: wa-leader}
watchNamespaces: [team-a, team-b]
logLevel: debug
concurrency: 16
pollIntervals: {status: 45s, pairing: 3s, providerCheck: 2m, resync: 15m}
qrRefreshInterval: 4s
stuckTimeout: 7m
failureBackoff: 90s
failureBackoffMax: 20m
providerTimeout: 12s
providerMaxInFlight: 8
extraEnv: [{name: OTEL_SERVICE_NAME, value: wa-operator-test}]
extraArgs: [--failure-backoff-max=45m]
extraVolumes: [{name: ca, configMap: {name: corporate-ca}}]
extraVolumeMounts: [{name: ca, mountPath: /etc/ssl/corporate, readOnly: true}]
topologySpreadConstraints: [{maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway}]
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
serviceAccount: {create: true, name: wa-runner, annotations: {example.com/role: whatsapp}}
podDisruptionBudget: {enabled: true, minAvailable: 2}
networkPolicy:
  enabled: true
  from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}
    - ipBlock: {cidr: 10.0.0.0/8}
metrics:
  serviceMonitor:
    enabled: true
    interval: 15s
    scrapeTimeout: 10s
    labels: {release: prometheus}
    relabelings: [{sourceLabels: [__meta_kubernetes_pod_node_name], targetLabel: node}]
    metricRelabelings: [{sourceLabels: [__name__], regex: go_.*, action: drop}]
  prometheusRule:
    enabled: true
    labels: {release: prometheus}
    runbookBaseUrl: https://wiki.example.com/wa-operator
    alerts: {WhatsAppInstanceQRNotScanned: {enabled: false}}
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

/** node (this one) with `args`; never throws on a non-zero exit. */
function runNode(args: readonly string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...args], { env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

const documents = (text: string): KubeManifest[] =>
  parseAllDocuments(text)
    .map((document) => document.toJSON() as KubeManifest | null)
    .filter((object): object is KubeManifest => object !== null);

/** `helm template` of the chart as the release `release` in `namespace`; the `helm test` pod only with `tests`. */
async function template(options: { release?: string; namespace?: string; values?: string[]; set?: string[]; tests?: boolean } = {}): Promise<KubeManifest[]> {
  const args = ["template", options.release ?? RELEASE, CHART, "--namespace", options.namespace ?? NAMESPACE, ...(options.tests ? [] : ["--skip-tests"])];
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

  it("the CRDs are crds/'s, with the chart's labels and helm.sh/resource-policy: keep", () => {
    const files = readdirSync(path.join(REPO, "crds")).map((file) => parseYaml(readFileSync(path.join(REPO, "crds", file), "utf8")) as KubeManifest);
    const crds = chart.filter((object) => object.kind === "CustomResourceDefinition");
    expect(crds.map(id).sort()).toEqual(files.map(id).sort());
    const selector = (find(chart, "Deployment") as unknown as { spec: { selector: { matchLabels: Record<string, string> } } }).spec.selector.matchLabels;
    for (const crd of crds) {
      const { labels, annotations, ...metadata } = crd.metadata;
      expect({ ...crd, metadata }, id(crd)).toEqual(files.find((file) => file.metadata.name === crd.metadata.name));
      expect(labels, id(crd)).toMatchObject({ ...selector, "app.kubernetes.io/part-of": "wa-operator", "app.kubernetes.io/managed-by": "Helm" });
      expect(annotations, id(crd)).toEqual({ "helm.sh/resource-policy": "keep" });
    }
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

  it("the settings reach the operator as environment variables and flags it reads back as set", () => {
    const container = deployment().spec.template.spec.containers[0] as { env: { name: string; value?: string }[]; args: string[] };
    const values = Object.fromEntries(container.env.filter((entry) => entry.value !== undefined).map((entry) => [entry.name, entry.value as string]));
    expect(container.env[0]).toEqual({ name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } });
    expect(values["OTEL_SERVICE_NAME"]).toBe("wa-operator-test");
    const config = loadConfig(container.args, { ...values, POD_NAMESPACE: NAMESPACE });
    expect(config).toEqual({
      ...loadConfig([], {}),
      operatorNamespace: NAMESPACE,
      leaderElection: true,
      leaseDuration: 20_000,
      leaseName: "wa-leader",
      namespaces: ["team-a", "team-b"],
      logLevel: "debug",
      concurrency: 16,
      pollInterval: 45_000,
      pairingPollInterval: 3_000,
      providerCheckInterval: 120_000,
      resync: 15 * 60_000,
      qrRefreshInterval: 4_000,
      stuckTimeout: 7 * 60_000,
      failureBackoff: 90_000,
      // The flag in extraArgs wins over failureBackoffMax's variable.
      failureBackoffMax: 45 * 60_000,
      providerTimeout: 12_000,
      providerMaxInFlight: 8,
      httpAddress: ":8080",
      metricsAddress: ":8081",
    });
  });

  it("strategy, topology spread (selecting the operator's pods), extra volumes and mounts, pull secrets with global's", () => {
    const { spec } = deployment();
    const pod = spec.template.spec;
    const container = pod.containers[0] as { volumeMounts: unknown[] };
    expect((spec as unknown as { strategy: unknown }).strategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } });
    expect(pod["topologySpreadConstraints"]).toEqual([
      { maxSkew: 1, topologyKey: "topology.kubernetes.io/zone", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: spec.selector.matchLabels } },
    ]);
    expect(pod["volumes"]).toContainEqual({ name: "ca", configMap: { name: "corporate-ca" } });
    expect(container.volumeMounts).toContainEqual({ name: "ca", mountPath: "/etc/ssl/corporate", readOnly: true });
    expect(pod["imagePullSecrets"]).toEqual([{ name: "registry-credentials" }, { name: "global-credentials" }]);
  });

  it("commonLabels and global.commonLabels are on every object and on the pods", () => {
    const common = { "example.com/owner": "messaging", "example.com/umbrella": "platform" };
    for (const object of chart) expect(object.metadata.labels, id(object)).toMatchObject(common);
    expect(deployment().spec.template.metadata.labels).toMatchObject(common);
  });

  it("the ServiceAccount has the name from serviceAccount.name, and the pods and RBAC bindings use it", () => {
    expect(find(chart, "ServiceAccount").metadata.name).toBe("wa-runner");
    expect(deployment().spec.template.spec["serviceAccountName"]).toBe("wa-runner");
    for (const binding of chart.filter((object) => object.kind === "ClusterRoleBinding" || object.kind === "RoleBinding")) {
      expect((binding as unknown as { subjects: unknown[] }).subjects, id(binding)).toEqual([{ kind: "ServiceAccount", name: "wa-runner", namespace: NAMESPACE }]);
    }
  });

  it("image, replicas, resources, scheduling, pod labels and annotations come from the values", () => {
    const { spec } = deployment();
    const pod = spec.template.spec;
    const container = pod.containers[0] as Record<string, unknown>;
    expect(spec.replicas).toBe(3);
    expect(container["image"]).toBe("registry.example.com/wa/wa-operator:9.9.9");
    expect(container["imagePullPolicy"]).toBe("Always");
    expect(container["resources"]).toEqual({ requests: { cpu: "100m", memory: "256Mi" }, limits: { cpu: "1", memory: "1Gi" } });
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
    const values = parseYaml(ALL_ON) as { metrics: { serviceMonitor: Record<string, unknown> } };
    const { interval, scrapeTimeout, relabelings, metricRelabelings } = values.metrics.serviceMonitor;
    for (const object of ours) {
      const theirs = monitoring.get(id(object)) as KubeManifest;
      const spec = theirs["spec"] as { endpoints: object[]; groups: { rules: { alert: string; expr: string; annotations: object }[] }[] };
      let patched = theirs;
      if (object.kind === "ServiceMonitor") patched = { ...theirs, spec: { ...spec, endpoints: [{ ...spec.endpoints[0], interval, scrapeTimeout, relabelings, metricRelabelings }] } };
      if (object.kind === "PrometheusRule") {
        // Less the alert turned off, each with its runbook, and the Lease's name from the values.
        const groups = spec.groups.map((group) => ({
          ...group,
          rules: group.rules
            .filter((rule) => rule.alert !== "WhatsAppInstanceQRNotScanned")
            .map((rule) => {
              const anchor = (rule.annotations as { runbook_url?: string }).runbook_url?.split("#")[1] ?? rule.alert.toLowerCase();
              return { ...rule, expr: rule.expr.replace('"wa-operator-leader"', '"wa-leader"'), annotations: { ...rule.annotations, runbook_url: `https://wiki.example.com/wa-operator#${anchor}` } };
            }),
        }));
        patched = { ...theirs, spec: { ...spec, groups } };
      }
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
  const kinds = (objects: KubeManifest[], kind: string) => objects.filter((object) => object.kind === kind);

  it("crds.enabled=false renders no CRD; crds.keep=false renders them without the keep policy", async () => {
    expect(kinds(await template({ set: ["crds.enabled=false"] }), "CustomResourceDefinition")).toEqual([]);
    const unkept = kinds(await template({ set: ["crds.keep=false"] }), "CustomResourceDefinition");
    expect(unkept).toHaveLength(readdirSync(path.join(REPO, "crds")).length);
    for (const crd of unkept) expect(crd.metadata.annotations, id(crd)).toBeUndefined();
  });

  it("by default each alert's runbook_url is its README section at the chart's version", async () => {
    const readme = readFileSync(path.join(REPO, "README.md"), "utf8");
    const rule = find(await template({ set: ["metrics.prometheusRule.enabled=true"] }), "PrometheusRule") as KubeManifest & {
      spec: { groups: { rules: { alert?: string; annotations?: { runbook_url?: string } }[] }[] };
    };
    const alerting = rule.spec.groups.flatMap((group) => group.rules.filter((entry) => entry.alert));
    expect(alerting.length).toBeGreaterThan(0);
    for (const { alert = "", annotations } of alerting) {
      const anchor = `runbook-${alert.toLowerCase()}`;
      expect(annotations?.runbook_url, alert).toBe(`https://github.com/wa-operator/wa-operator/blob/v${packageVersion}/README.md#${anchor}`);
      expect(readme, alert).toContain(`<a id="${anchor}"></a>\n#### ${alert}\n`);
    }
  });

  it("nameOverride names the objects and the app label; fullnameOverride names the objects", async () => {
    const renamed = await template({ release: "team", set: ["nameOverride=whatsapp"] });
    expect(find(renamed, "Deployment").metadata).toMatchObject({ name: "team-whatsapp", labels: { "app.kubernetes.io/name": "whatsapp" } });
    const full = await template({ set: ["fullnameOverride=wa"] });
    for (const kind of ["Deployment", "Service", "ServiceAccount", "ClusterRole", "NetworkPolicy"]) expect(find(full, kind).metadata.name.startsWith("wa"), kind).toBe(true);
    expect(find(full, "Deployment").metadata.name).toBe("wa");
  });

  it("networkPolicy.egress is off by default; on, the pods may reach only DNS, the API server and the providers from values", async () => {
    expect((await template()).filter((object) => object.kind === "NetworkPolicy" && object.metadata.name.endsWith("-egress"))).toEqual([]);
    const values = path.join(dir, "egress.yaml");
    writeFileSync(
      values,
      `networkPolicy:
  egress:
    enabled: true
    apiServer: {cidrs: [10.0.0.1/32], ports: [6443]}
    providers:
      - {cidr: 10.20.0.0/24, ports: [3000, 3001]}
      - {cidr: 192.0.2.7/32, ports: [443]}
`,
    );
    const chart = await template({ values: [values] });
    const egress = find(chart, "NetworkPolicy", `${RELEASE}-egress`) as unknown as { spec: Record<string, unknown> };
    const deployment = find(chart, "Deployment") as unknown as { spec: { selector: { matchLabels: Record<string, string> } } };
    expect(egress.spec).toEqual({
      podSelector: { matchLabels: deployment.spec.selector.matchLabels },
      policyTypes: ["Egress"],
      egress: [
        {
          ports: [
            { port: 53, protocol: "UDP" },
            { port: 53, protocol: "TCP" },
          ],
          to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } }, podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }],
        },
        { to: [{ ipBlock: { cidr: "10.0.0.1/32" } }], ports: [{ port: 6443, protocol: "TCP" }] },
        {
          to: [{ ipBlock: { cidr: "10.20.0.0/24" } }],
          ports: [
            { port: 3000, protocol: "TCP" },
            { port: 3001, protocol: "TCP" },
          ],
        },
        { to: [{ ipBlock: { cidr: "192.0.2.7/32" } }], ports: [{ port: 443, protocol: "TCP" }] },
      ],
    });
    // The ingress policy is still there, unchanged by egress.
    expect((find(chart, "NetworkPolicy", RELEASE) as unknown as { spec: { policyTypes: string[] } }).spec.policyTypes).toEqual(["Ingress"]);
    // A provider entry without ports is refused by the schema.
    const bad = await helm(["template", RELEASE, CHART, "--set", "networkPolicy.egress.enabled=true", "--set", "networkPolicy.egress.providers[0].cidr=10.1.0.0/16"]);
    expect(bad.code).not.toBe(0);
  });

  it("image.digest pulls the image by digest", async () => {
    const digest = `sha256:${"ab".repeat(32)}`;
    const pod = (find(await template({ set: [`image.digest=${digest}`] }), "Deployment") as unknown as { spec: { template: { spec: { containers: { image: string }[] } } } }).spec.template.spec;
    expect(pod.containers[0]?.image).toBe(`ghcr.io/wa-operator/wa-operator@${digest}`);
  });

  it("serviceAccount.create=false creates none and binds the named one; automount=false mounts no token", async () => {
    const chart = await template({ set: ["serviceAccount.create=false", "serviceAccount.name=existing", "serviceAccount.automount=false"] });
    expect(kinds(chart, "ServiceAccount")).toEqual([]);
    const pod = (find(chart, "Deployment") as unknown as { spec: { template: { spec: Record<string, unknown> } } }).spec.template.spec;
    expect(pod).toMatchObject({ serviceAccountName: "existing", automountServiceAccountToken: false });
    expect((find(chart, "ClusterRoleBinding") as unknown as { subjects: { name: string }[] }).subjects[0]?.name).toBe("existing");
  });

  it("podDisruptionBudget.maxUnavailable replaces minAvailable", async () => {
    const budget = find(await template({ set: ["podDisruptionBudget.maxUnavailable=50%"] }), "PodDisruptionBudget") as unknown as { spec: Record<string, unknown> };
    expect(budget.spec["maxUnavailable"]).toBe("50%");
    expect(budget.spec).not.toHaveProperty("minAvailable");
  });

  it("the helm test pod asks the Service for /healthz and /readyz, with the operator's image, and tests.enabled=false drops it", async () => {
    const chart = await template({ tests: true });
    const pod = find(chart, "Pod") as unknown as { metadata: { annotations: Record<string, string> }; spec: { containers: { image: string; command: string[]; env: { name: string; value: string }[] }[] } };
    expect(pod.metadata.annotations["helm.sh/hook"]).toBe("test");
    const container = pod.spec.containers[0];
    const deployment = find(chart, "Deployment") as unknown as { spec: { template: { spec: { containers: { image: string }[] } } } };
    expect(container?.image).toBe(deployment.spec.template.spec.containers[0]?.image);
    expect(container?.env).toEqual([{ name: "OPERATOR_URL", value: `http://${find(chart, "Service").metadata.name}.${NAMESPACE}.svc:8080` }]);
    expect(container?.command.slice(0, 3)).toEqual(["node", "--input-type=module", "--eval"]);
    expect(kinds(await template({ set: ["tests.enabled=false"], tests: true }), "Pod")).toEqual([]);
  });

  it("the helm test pod's script passes when /healthz and /readyz answer 200, and fails while /readyz says 503", async () => {
    const pod = find(await template({ tests: true }), "Pod") as unknown as { spec: { containers: { command: string[] }[] } };
    const script = pod.spec.containers[0]?.command[3] as string;
    let ready = false;
    const requests: string[] = [];
    // The operator's answers (src/http/server.ts): /healthz 200 "ok"; /readyz 200 "ok" once the caches synced, else 503.
    const server = http.createServer((req, res) => {
      requests.push(req.url ?? "");
      if (req.url === "/healthz") res.writeHead(200).end("ok");
      else if (req.url === "/readyz") res.writeHead(ready ? 200 : 503).end(ready ? "ok" : "caches not synced");
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const check = () => runNode(["--input-type=module", "--eval", script], { OPERATOR_URL: url, HEALTH_WAIT_MS: "1500" });
    try {
      const failing = await check();
      expect(failing.code).toBe(1);
      expect(failing.stderr).toContain("/readyz: 503 caches not synced");
      ready = true;
      const passing = await check();
      expect(passing).toMatchObject({ code: 0, stdout: "/healthz: 200 ok\n/readyz: 200 ok\n" });
      expect(requests).toContain("/healthz");
    } finally {
      server.close();
    }
  });

  it("NOTES.txt names the image, warns that the default one exists only once the version is released, and says the CRDs are kept", async () => {
    const notes = async (set: string[]) => (await helmOk(["install", "notes", CHART, "--dry-run=client", "--namespace", NAMESPACE, ...set.flatMap((value) => ["--set", value])])).split("NOTES:")[1] ?? "";
    const byDefault = await notes([]);
    expect(byDefault).toContain(`Image: ghcr.io/wa-operator/wa-operator:${packageVersion}`);
    expect(byDefault).toContain("ImagePullBackOff");
    expect(byDefault).toContain("make image");
    expect(byDefault).toContain("`helm uninstall` leaves them");
    const own = await notes(["image.repository=registry.example.com/wa/wa-operator", "crds.keep=false"]);
    expect(own).toContain(`Image: registry.example.com/wa/wa-operator:${packageVersion}`);
    expect(own).not.toContain("ImagePullBackOff");
    expect(own).toContain("DELETES them");
  });

  it("values.schema.json accepts any key under global, as an umbrella chart sets them", async () => {
    const result = await helm(["template", RELEASE, CHART, "--set", "global.storageClass=fast", "--set", "global.anything.nested=1"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
  });

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
    await expectAccepted(await template({ release: "wa-dry-run", namespace, values: files.map(() => allOnFile), tests: true }), namespace);
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

  const exists = async (object: KubeManifest) =>
    (await kubectl(["get", object.kind.toLowerCase(), object.metadata.name, ...(object.metadata.namespace ? ["-n", object.metadata.namespace] : []), "-o", "name"])).code === 0;
  const crdNames = () => readdirSync(path.join(REPO, "crds")).map((file) => (parseYaml(readFileSync(path.join(REPO, "crds", file), "utf8")) as KubeManifest).metadata.name);
  const storedCrd = async (name: string) => JSON.parse(await kubectlOk(["get", "crd", name, "-o", "json"])) as KubeManifest & { spec: { versions: { schema: unknown }[] } };

  it("helm install puts every object in place and owns the CRDs; helm uninstall removes all but the CRDs (crds.keep)", async () => {
    const namespace = await restrictedNamespace("helm-install");
    const release = "wa-helm";
    const rendered = await template({ release, namespace, values: [allOnFile] });
    const install = await helm(["install", release, CHART, "--namespace", namespace, "--values", allOnFile, "--take-ownership"]);
    expect(install.stderr).not.toMatch(/warning|error/i);
    expect(install.code).toBe(0);
    expect(install.stdout).toContain("STATUS: deployed");
    for (const object of rendered) expect(await exists(object), id(object)).toBe(true);
    for (const name of crdNames()) {
      expect((await storedCrd(name)).metadata.annotations, name).toMatchObject({ "meta.helm.sh/release-name": release, "helm.sh/resource-policy": "keep" });
    }
    const uninstall = await helm(["uninstall", release, "--namespace", namespace, "--wait"]);
    expect(uninstall.code).toBe(0);
    for (const object of rendered) expect(await exists(object), id(object)).toBe(object.kind === "CustomResourceDefinition");
  });

  it("helm upgrade from the previous chart (main at b111cba, CRDs in crds/) takes the CRDs over and serves the field they lacked", async () => {
    const namespace = await restrictedNamespace("helm-upgrade");
    const release = "wa-upgrade";
    // The previous chart, as it is in git, and its CRDs as 0.1.0 published them: without spec.adopt.
    const archive = path.join(dir, "previous.tar");
    await run("git", ["-C", REPO, "archive", "--format=tar", "-o", archive, PREVIOUS, "charts/wa-operator"]);
    const previous = path.join(dir, "previous");
    mkdirSync(previous);
    await run("tar", ["-xf", archive, "-C", previous]);
    const previousChart = path.join(previous, "charts", "wa-operator");
    expect((parseYaml(readFileSync(path.join(previousChart, "Chart.yaml"), "utf8")) as { version: string }).version).toBe("0.1.0");
    const instancesCrd = path.join(previousChart, "crds", "wa-operator.io_whatsappinstances.yaml");
    const old = parseYaml(readFileSync(instancesCrd, "utf8")) as { spec: { versions: { schema: { openAPIV3Schema: { properties: { spec: { properties: Record<string, unknown> } } } } }[] } };
    delete old.spec.versions[0]?.schema.openAPIV3Schema.properties.spec.properties["adopt"];
    writeFileSync(instancesCrd, JSON.stringify(old));
    // The cluster as the previous chart leaves it: its CRDs (Helm installs crds/ only where they are missing).
    await kubectlOk(["apply", "-f", path.join(previousChart, "crds")]);
    const install = await helm(["install", release, previousChart, "--namespace", namespace]);
    expect(install.code, install.stderr).toBe(0);

    const withAdopt = `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: adopted, namespace: ${namespace}}
spec: {providerRef: {name: waha}, adopt: {id: legacy-session}}
`;
    const dryRun = () => kubectl(["create", "--dry-run=server", "--validate=strict", "-o", "json", "-f", "-"], withAdopt);
    await eventually("the previous CRD to refuse spec.adopt", async () => ((await dryRun()).stderr.includes('unknown field "spec.adopt"') ? true : undefined));
    // A field the chart at PREVIOUS really lacks, untouched: a ClusterWhatsAppProvider's allowedNamespaces.
    const withAllowed = `apiVersion: wa-operator.io/v1alpha1
kind: ClusterWhatsAppProvider
metadata: {name: shared-upgrade}
spec: {type: waha, url: "http://waha.waha.svc:3000", credentialsSecretRef: {name: waha-key, namespace: ${namespace}, key: api-key}, allowedNamespaces: {from: All}}
`;
    const dryRunAllowed = () => kubectl(["create", "--dry-run=server", "--validate=strict", "-o", "json", "-f", "-"], withAllowed);
    expect((await dryRunAllowed()).stderr).toContain('unknown field "spec.allowedNamespaces"');

    // Helm does not own CRDs that came from crds/: it says so, and --take-ownership takes them.
    const refused = await helm(["upgrade", release, CHART, "--namespace", namespace]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/CustomResourceDefinition.*(exists and cannot be imported|invalid ownership metadata)/s);
    // --force-conflicts: the CRDs' fields belong to whoever applied them last (kubectl, here), and
    // Helm 4 applies server-side.
    const upgrade = await helm(["upgrade", release, CHART, "--namespace", namespace, "--take-ownership", "--force-conflicts"]);
    expect(upgrade.code, upgrade.stderr).toBe(0);
    expect(upgrade.stdout).toContain("STATUS: deployed");

    for (const file of readdirSync(path.join(REPO, "crds"))) {
      const ours = parseYaml(readFileSync(path.join(REPO, "crds", file), "utf8")) as { metadata: { name: string }; spec: { versions: { schema: unknown }[] } };
      const stored = await storedCrd(ours.metadata.name);
      expect(stored.spec.versions.map((version) => version.schema), file).toEqual(ours.spec.versions.map((version) => version.schema));
      expect(stored.metadata.annotations, file).toMatchObject({ "meta.helm.sh/release-name": release, "helm.sh/resource-policy": "keep" });
    }
    const served = await eventually("spec.adopt to be served", async () => {
      const result = await dryRun();
      return result.code === 0 ? result.stdout : undefined;
    });
    expect((JSON.parse(served) as { spec: { adopt?: unknown } }).spec.adopt).toEqual({ id: "legacy-session" });
    const allowed = await eventually("spec.allowedNamespaces to be served", async () => {
      const result = await dryRunAllowed();
      return result.code === 0 ? result.stdout : undefined;
    });
    expect((JSON.parse(allowed) as { spec: { allowedNamespaces?: unknown } }).spec.allowedNamespaces).toEqual({ from: "All" });

    const uninstall = await helm(["uninstall", release, "--namespace", namespace, "--wait"]);
    expect(uninstall.code).toBe(0);
    for (const name of crdNames()) expect(await exists({ kind: "CustomResourceDefinition", apiVersion: "", metadata: { name } }), name).toBe(true);
  });

  it("installs as a subchart of an umbrella chart that sets global values", async () => {
    const namespace = await restrictedNamespace("helm-umbrella");
    const umbrella = path.join(dir, "umbrella");
    mkdirSync(umbrella);
    writeFileSync(
      path.join(umbrella, "Chart.yaml"),
      `apiVersion: v2\nname: platform\nversion: 1.0.0\ndependencies:\n  - name: wa-operator\n    version: ${packageVersion}\n    repository: file://${CHART}\n`,
    );
    writeFileSync(
      path.join(umbrella, "values.yaml"),
      "global:\n  commonLabels: {example.com/umbrella: platform}\n  domain: example.com\nwa-operator:\n  replicas: 1\n  networkPolicy: {enabled: false}\n",
    );
    // The umbrella's own object, which reads a global value this chart has no use for.
    mkdirSync(path.join(umbrella, "templates"));
    writeFileSync(
      path.join(umbrella, "templates", "settings.yaml"),
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: platform-settings\ndata:\n  domain: {{ .Values.global.domain | quote }}\n",
    );
    await helmOk(["dependency", "build", umbrella]);
    const lint = await helm(["lint", "--strict", umbrella]);
    expect(lint.stderr + lint.stdout).not.toMatch(/\[(ERROR|WARNING)\]/);
    expect(lint.code).toBe(0);
    const install = await helm(["install", "platform", umbrella, "--namespace", namespace, "--take-ownership"]);
    expect(install.code, install.stderr).toBe(0);
    const deployment = JSON.parse(await kubectlOk(["get", "deployment", "platform-wa-operator", "-n", namespace, "-o", "json"])) as { metadata: { labels: Record<string, string> }; spec: { replicas: number } };
    expect(deployment.metadata.labels).toMatchObject({ "example.com/umbrella": "platform", "app.kubernetes.io/instance": "platform" });
    expect(deployment.spec.replicas).toBe(1);
    expect((await kubectl(["get", "networkpolicy", "-n", namespace, "-o", "name"])).stdout).toBe("");
    const uninstall = await helm(["uninstall", "platform", "--namespace", namespace, "--wait"]);
    expect(uninstall.code).toBe(0);
  });
});
