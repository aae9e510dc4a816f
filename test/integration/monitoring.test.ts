/**
 * The monitoring that ships (manifests/monitoring/, and the chart's copies): the alert
 * rules parse with Prometheus's own rule parser (model/rulefmt, as `promtool check rules`
 * uses it); every metric the rules and the Grafana dashboard select is one the operator's
 * /metrics really exports; and each alert fires, or stays quiet, when evaluated by
 * Prometheus's PromQL engine over real scrapes of two operator replicas in a namespace
 * holding a Stalled instance, an unreachable provider and an instance showing QR codes.
 *
 * hack/go-tools/promrules is the Prometheus side: it stores the scrapes in a TSDB as a
 * ServiceMonitor with honorLabels would (target labels job, namespace, pod added unless
 * the sample has its own), and runs the queries at chosen times, so "15 minutes later"
 * needs no waiting: the scrapes are repeated at 30 s steps, as an unchanged state would be.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { WahaEmulator } from "../emulators/waha/emulator.ts";
import { goTool, runGoTool } from "../support/go-tools.ts";
import { condition, createNamespace, eventually, installCrds, instanceWhere, kubeClient, kubectlOk, REPO } from "../support/kube.ts";
import { spawnOperator, type OperatorProcess } from "../support/process.ts";

const MONITORING = path.join(REPO, "manifests", "monitoring");
const API_KEY = "monitoring-test-key";

interface RuleFile {
  groups: { name: string; rules: { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string> }[] }[];
}
const ruleFile = (parseYaml(readFileSync(path.join(MONITORING, "prometheus-rule.yaml"), "utf8")) as { spec: RuleFile }).spec;
const alerts = new Map(ruleFile.groups.flatMap((group) => group.rules.filter((rule) => rule.alert).map((rule) => [rule.alert as string, rule] as const)));
const alertExpr = (name: string): string => {
  const rule = alerts.get(name);
  if (!rule) throw new Error(`no alert ${name} in manifests/monitoring/prometheus-rule.yaml`);
  return rule.expr;
};

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string }[];
}
const dashboard = JSON.parse(readFileSync(path.join(MONITORING, "wa-operator-dashboard.json"), "utf8")) as {
  panels: Panel[];
  templating: { list: { name: string; type: string; definition?: string }[] };
};
/** Grafana's variables as a query would see them: every job, a 5m rate window. */
const asPrometheusSees = (expr: string) => expr.replaceAll("$__rate_interval", "5m").replaceAll("$job", ".*");
const panelQueries = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel: panel.title, expr: asPrometheusSees(target.expr) })));

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "wa-operator-monitoring-"));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function promrules(args: string[], input?: string): Promise<string> {
  const result = await runGoTool("promrules", args, input === undefined ? {} : { input });
  if (result.code !== 0) throw new Error(`promrules ${args.join(" ")} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

/** The metric names a scrape declares (# TYPE), with the series names Prometheus stores for each type. */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [name, type] = [match[1] as string, match[2] as string];
    if (type === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) names.add(name + suffix);
    else if (type === "summary") for (const suffix of ["", "_sum", "_count"]) names.add(name + suffix);
    else names.add(name);
  }
  return names;
}

describe("the alert rules, by Prometheus's rule parser", () => {
  it("manifests/monitoring/prometheus-rule.yaml's groups pass `promtool check rules`'s parse (rulefmt, unknown fields refused)", async () => {
    const file = path.join(dir, "rules.yaml");
    writeFileSync(file, JSON.stringify(ruleFile));
    const checked = JSON.parse(await promrules(["check", file])) as { groups: { rules: { name: string; metrics: string[] }[] }[] };
    expect(checked.groups.flatMap((group) => group.rules.map((rule) => rule.name)).sort()).toEqual(
      ["WaOperatorNoLeader", "WaOperatorReconcileErrors", "WhatsAppInstanceQRNotScanned", "WhatsAppInstanceStalled", "WhatsAppProviderNotReady"].sort(),
    );
  });

  it("the parser refuses a broken rule (so the check above can fail)", async () => {
    const file = path.join(dir, "broken.yaml");
    writeFileSync(file, JSON.stringify({ groups: [{ name: "x", rules: [{ alert: "Broken", expr: "sum(wa_operator_provider_ready", fro: "5m" }] }] }));
    const result = await runGoTool("promrules", ["check", file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/fro|parse error/);
  });

  it("every alert has a severity and a summary", () => {
    for (const [name, rule] of alerts) {
      expect(["critical", "warning", "info"], name).toContain(rule.labels?.["severity"]);
      expect((rule as { annotations?: Record<string, string> }).annotations?.["summary"], name).toBeTruthy();
    }
  });
});

describe("against two real operator replicas", () => {
  const kube = kubeClient();
  const waha = new WahaEmulator({ apiKey: API_KEY, startDelayMs: 0 });
  let namespace: string;
  let leader: OperatorProcess;
  let follower: OperatorProcess;
  /** Two scrapes of each replica, some reconcile errors apart. */
  let first: { leader: string; follower: string };
  let second: { leader: string; follower: string };
  let firstAt: number;
  const processes: OperatorProcess[] = [];

  beforeAll(async () => {
    await Promise.all([goTool("promrules"), installCrds()]);
    const wahaUrl = await waha.start();
    namespace = await createNamespace("monitoring");
    await kubectlOk(["create", "secret", "generic", "waha-key", "-n", namespace, `--from-literal=api-key=${API_KEY}`]);
    await kubectlOk(["label", "secret", "waha-key", "-n", namespace, "wa-operator.io/credential=true"]);
    const args = ["--namespaces", namespace, "--operator-namespace", namespace, "--leader-election", "true", "--pairing-poll-interval", "1s"];
    processes.push(await spawnOperator(args), await spawnOperator(args));
    const leads = (proc: OperatorProcess) => proc.logs.some((line) => line.msg === "became the leader");
    leader = await eventually("a leader", async () => processes.find(leads));
    follower = processes.find((proc) => proc !== leader) as OperatorProcess;
    await kubectlOk(
      ["apply", "-n", namespace, "-f", "-"],
      `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: waha}
spec: {type: waha, url: "${wahaUrl}", credentialsSecretRef: {name: waha-key}}
---
apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: down}
spec: {type: waha, url: "http://127.0.0.1:1", credentialsSecretRef: {name: waha-key}}
---
apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: scanning}
spec: {providerRef: {name: waha}}
---
apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: orphan}
spec: {providerRef: {name: missing}}`,
    );
    await instanceWhere(kube, namespace, "scanning", "ScanQR", (object) => object.status?.phase === "ScanQR");
    await instanceWhere(kube, namespace, "orphan", "Stalled", (object) => condition(object, "Stalled")?.status === "True");
    // An unsigned provider event: refused (401) and counted.
    expect((await fetch(`${leader.url}/provider-events/namespaced/${namespace}/waha`, { method: "POST", body: "{}" })).status).toBe(401);
    const errors = (text: string) =>
      [...text.matchAll(/^controller_runtime_reconcile_errors_total\{controller="whatsappprovider"\} (\d+)/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
    const scrape = async (proc: OperatorProcess) => (await fetch(`${proc.metricsUrl}/metrics`)).text();
    // The unreachable provider fails, with backoff: the first scrape once it has, the second after two more.
    const before = await eventually("a failed provider reconcile", async () => {
      const text = await scrape(leader);
      return errors(text) > 0 ? text : undefined;
    });
    firstAt = Date.now();
    first = { leader: before, follower: await scrape(follower) };
    const after = await eventually("two more failed provider reconciles", async () => {
      const text = await scrape(leader);
      return errors(text) >= errors(before) + 2 ? text : undefined;
    });
    second = { leader: after, follower: await scrape(follower) };
  }, 120_000);

  afterAll(async () => {
    for (const proc of processes) proc.kill("SIGKILL");
    await Promise.all(processes.map((proc) => proc.exited));
    await waha.stop();
  });

  it("every metric the rules and the dashboard select is one /metrics exports", async () => {
    const exported = new Set([...exportedNames(first.leader), ...exportedNames(first.follower)]);
    const file = path.join(dir, "rules-for-names.yaml");
    writeFileSync(file, JSON.stringify(ruleFile));
    const checked = JSON.parse(await promrules(["check", file])) as { groups: { rules: { name: string; metrics: string[] }[] }[] };
    const fromRules = checked.groups.flatMap((group) => group.rules.flatMap((rule) => rule.metrics.map((metric) => `${rule.name}: ${metric}`)));
    const fromPanels = (JSON.parse(await promrules(["metrics"], JSON.stringify(panelQueries.map((query) => query.expr)))) as string[][]).flatMap((metrics, index) =>
      metrics.map((metric) => `${panelQueries[index]?.panel}: ${metric}`),
    );
    const fromVariables = dashboard.templating.list.flatMap((variable) => [...(variable.definition ?? "").matchAll(/label_values\((\w+)/g)].map((match) => `$${variable.name}: ${match[1]}`));
    const used = [...fromRules, ...fromPanels, ...fromVariables];
    expect(fromRules.length).toBeGreaterThanOrEqual(alerts.size);
    expect(fromPanels.length).toBeGreaterThanOrEqual(panelQueries.length);
    expect(used.filter((entry) => !exported.has(entry.split(": ")[1] as string))).toEqual([]);
  });

  interface Sample {
    metric: Record<string, string>;
    value: string;
  }
  const STEP = 30_000;
  /** The replicas' scrapes every 30 s for 20 minutes from firstAt: the first pair for 10 minutes, then the second. */
  const timeline = (replicas: ("leader" | "follower")[]) =>
    Array.from({ length: 40 }, (_, step) => step).flatMap((step) =>
      replicas.map((replica) => ({
        at: firstAt + step * STEP,
        text: (step < 20 ? first : second)[replica],
        target: { job: "wa-operator", namespace: "wa-operator-system", pod: `wa-operator-${replica}` },
      })),
    );
  const minutes = (count: number) => firstAt + count * 60_000;
  async function evaluate(replicas: ("leader" | "follower")[], queries: { expr: string; at: number }[]): Promise<Sample[][]> {
    return JSON.parse(await promrules(["eval"], JSON.stringify({ scrapes: timeline(replicas), queries }))) as Sample[][];
  }
  const both = ["leader", "follower"] as ("leader" | "follower")[];

  it("WhatsAppInstanceStalled names the Stalled instance and its reason, once, from both replicas' series", async () => {
    const [result] = await evaluate(both, [{ expr: alertExpr("WhatsAppInstanceStalled"), at: minutes(11) }]);
    expect(result?.map((sample) => sample.metric)).toEqual([{ namespace, name: "orphan", reason: "ProviderNotFound" }]);
  });

  it("WhatsAppProviderNotReady names the unreachable provider, not the reachable one", async () => {
    const [result] = await evaluate(both, [{ expr: alertExpr("WhatsAppProviderNotReady"), at: minutes(11) }]);
    // Cluster-scoped providers other test files left on this shared API server are not this test's.
    const ours = result?.filter((sample) => sample.metric["kind"] !== "ClusterWhatsAppProvider");
    expect(ours?.map((sample) => sample.metric)).toEqual([{ kind: "WhatsAppProvider", namespace, name: "down" }]);
  });

  it("WhatsAppInstanceQRNotScanned: quiet a minute into the wait, names the instance once it passed 15 minutes", async () => {
    const [early, late] = await evaluate(both, [
      { expr: alertExpr("WhatsAppInstanceQRNotScanned"), at: minutes(1) },
      { expr: alertExpr("WhatsAppInstanceQRNotScanned"), at: minutes(20) },
    ]);
    expect(early).toEqual([]);
    expect(late?.map((sample) => sample.metric)).toEqual([{ namespace, name: "scanning" }]);
    expect(Number(late?.[0]?.value)).toBeGreaterThan(15 * 60);
  });

  it("WaOperatorReconcileErrors: the provider controller, whose reconciles of the unreachable provider fail", async () => {
    const [result] = await evaluate(both, [{ expr: alertExpr("WaOperatorReconcileErrors"), at: minutes(11) }]);
    expect(result?.map((sample) => sample.metric)).toContainEqual({ namespace: "wa-operator-system", controller: "whatsappprovider" });
  });

  it("WaOperatorNoLeader: quiet while one replica leads; fires when the replicas that report all stand by", async () => {
    const [withLeader] = await evaluate(both, [{ expr: alertExpr("WaOperatorNoLeader"), at: minutes(11) }]);
    expect(withLeader).toEqual([]);
    const [followerOnly] = await evaluate(["follower"], [{ expr: alertExpr("WaOperatorNoLeader"), at: minutes(11) }]);
    expect(followerOnly?.map((sample) => sample.metric)).toEqual([{ namespace: "wa-operator-system" }]);
  });

  it("every dashboard query runs on Prometheus's engine and shows data", async () => {
    const results = await evaluate(both, panelQueries.map((query) => ({ expr: query.expr, at: minutes(11) })));
    const empty = panelQueries.filter((_, index) => (results[index] ?? []).length === 0).map((query) => `${query.panel}: ${query.expr}`);
    expect(empty).toEqual([]);
  });
});
