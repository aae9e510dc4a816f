/**
 * manifests/ as users install it (`kubectl apply -k manifests/`) against the real API
 * server, and its RBAC held to what the code does: the calls derived from src/ equal
 * REQUIRED_PERMISSIONS, which equals the rendered ClusterRole and Role; the API server
 * agrees (kubectl auth can-i as the ServiceAccount); and the operator, run as that
 * ServiceAccount with leader election, takes a WAHA number through its whole life.
 *
 * The control plane has no scheduler or workload controllers: the Deployment is stored,
 * never run. What a Pod would do is covered by running the operator process with the
 * ServiceAccount's token instead.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { loadKubeConfig } from "../../src/kube/config.ts";
import { LEASES, SECRETS } from "../../src/kube/resources.ts";
import { permissionRows } from "../../src/kube/permissions.ts";
import { wahaSessionName } from "../../src/providers/waha/client.ts";
import { FakeClock } from "../emulators/shared/clock.ts";
import { startReceiver, type Receiver } from "../emulators/shared/receiver.ts";
import { WahaEmulator } from "../emulators/waha/emulator.ts";
import { scanCodePermissions } from "../support/code-permissions.ts";
import { condition, createNamespace, eventsFor, eventually, instanceWhere, kubeClient, kubeconfigPath, kubectl, kubectlOk, REPO } from "../support/kube.ts";
import { spawnOperator, type OperatorProcess } from "../support/process.ts";

const OPERATOR_NAMESPACE = "wa-operator-system";
const SERVICE_ACCOUNT = `system:serviceaccount:${OPERATOR_NAMESPACE}:wa-operator`;
const MANIFESTS = path.join(REPO, "manifests");
const CLUSTER_SCOPED = new Set(["Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]);
const packageVersion = (JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as { version: string }).version;

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

let rendered: Manifest[] = [];
const find = (kind: string, name?: string): Manifest => {
  const found = rendered.find((object) => object.kind === kind && (name === undefined || object.metadata.name === name));
  if (!found) throw new Error(`kubectl kustomize manifests/ rendered no ${kind} ${name ?? ""}`);
  return found;
};

beforeAll(async () => {
  rendered = parseAllDocuments(await kubectlOk(["kustomize", MANIFESTS])).map((document) => document.toJSON() as Manifest);
});

/** Removes what the install created, except the CRDs the other test files share. */
afterAll(async () => {
  for (const object of rendered.filter((object) => CLUSTER_SCOPED.has(object.kind) && object.kind !== "Namespace" && object.kind !== "CustomResourceDefinition")) {
    await kubectl(["delete", object.kind.toLowerCase(), object.metadata.name, "--ignore-not-found"]);
  }
  await kubectl(["delete", "namespace", OPERATOR_NAMESPACE, "--ignore-not-found", "--wait=false"]);
});

let installation: Promise<{ stdout: string; stderr: string }> | undefined;
/** `kubectl apply -k manifests/`, once per file, as the README says. */
function install(): Promise<{ stdout: string; stderr: string }> {
  installation ??= (async () => {
    const result = await kubectl(["apply", "-k", MANIFESTS]);
    if (result.code !== 0) throw new Error(`kubectl apply -k manifests/ failed: ${result.stderr}`);
    await kubectlOk(["wait", "--for=condition=Established", "--timeout=60s", "crd/whatsappinstances.wa-operator.io", "crd/whatsappproviders.wa-operator.io", "crd/clusterwhatsappproviders.wa-operator.io"]);
    return result;
  })();
  return installation;
}

describe("kubectl kustomize manifests/", () => {
  it("renders the namespace, the three CRDs, a ServiceAccount, RBAC, the Deployment and the Service", () => {
    expect(rendered.map((object) => `${object.kind}/${object.metadata.name}`).sort()).toEqual(
      [
        `Namespace/${OPERATOR_NAMESPACE}`,
        "CustomResourceDefinition/clusterwhatsappproviders.wa-operator.io",
        "CustomResourceDefinition/whatsappinstances.wa-operator.io",
        "CustomResourceDefinition/whatsappproviders.wa-operator.io",
        "ServiceAccount/wa-operator",
        "ClusterRole/wa-operator",
        "ClusterRoleBinding/wa-operator",
        "ClusterRole/wa-operator-secrets",
        "ClusterRoleBinding/wa-operator-secrets",
        "ValidatingAdmissionPolicy/wa-operator-secrets",
        "ValidatingAdmissionPolicyBinding/wa-operator-secrets",
        "Role/wa-operator-leader-election",
        "RoleBinding/wa-operator-leader-election",
        "ClusterRole/wa-operator-view",
        "ClusterRole/wa-operator-edit",
        "Deployment/wa-operator",
        "Service/wa-operator",
        "PodDisruptionBudget/wa-operator",
        "NetworkPolicy/wa-operator",
      ].sort(),
    );
  });

  it("puts every namespaced object in wa-operator-system and labels everything part-of wa-operator", () => {
    for (const object of rendered) {
      expect(object.metadata.namespace, `${object.kind}/${object.metadata.name}`).toBe(CLUSTER_SCOPED.has(object.kind) ? undefined : OPERATOR_NAMESPACE);
      expect(object.metadata.labels?.["app.kubernetes.io/part-of"], `${object.kind}/${object.metadata.name}`).toBe("wa-operator");
    }
  });

  it("runs the image of this version", () => {
    const spec = find("Deployment") as unknown as { spec: { template: { spec: { containers: { image: string }[] } } } };
    expect(spec.spec.template.spec.containers.map((container) => container.image)).toEqual([`ghcr.io/wa-operator/wa-operator:${packageVersion}`]);
  });

  it("Deployment: 2 replicas, probes on port http, hardened, /tmp the only writable path, leader election on", () => {
    const deployment = find("Deployment") as unknown as {
      spec: {
        replicas: number;
        selector: { matchLabels: Record<string, string> };
        template: { metadata: { labels: Record<string, string> }; spec: Record<string, unknown> & { containers: Record<string, unknown>[]; volumes: unknown[] } };
      };
    };
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0] as Record<string, unknown>;
    expect(deployment.spec.replicas).toBe(2);
    expect(pod["serviceAccountName"]).toBe("wa-operator");
    expect(deployment.spec.template.metadata.labels).toMatchObject(deployment.spec.selector.matchLabels);
    expect(pod["securityContext"]).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: "RuntimeDefault" } });
    expect(container["securityContext"]).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(container["ports"]).toEqual([
      { name: "http", containerPort: 8080, protocol: "TCP" },
      { name: "metrics", containerPort: 8081, protocol: "TCP" },
    ]);
    expect(container["livenessProbe"]).toMatchObject({ httpGet: { path: "/healthz", port: "http" } });
    expect(container["readinessProbe"]).toMatchObject({ httpGet: { path: "/readyz", port: "http" } });
    expect(container["resources"]).toMatchObject({ requests: { cpu: expect.any(String), memory: expect.any(String) }, limits: { cpu: expect.any(String), memory: expect.any(String) } });
    expect(container["volumeMounts"]).toEqual([{ name: "tmp", mountPath: "/tmp" }]);
    expect(pod.volumes).toEqual([{ name: "tmp", emptyDir: { sizeLimit: "64Mi" } }]);
    expect(container["env"]).toEqual([
      { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
      { name: "LEADER_ELECTION", value: "true" },
      { name: "HTTP_ADDRESS", value: ":8080" },
      { name: "METRICS_ADDRESS", value: ":8081" },
    ]);
  });

  it("Service: port 8080 named http (provider events) and 8081 named metrics to the operator's pods", () => {
    const service = find("Service") as unknown as { spec: { selector: Record<string, string>; ports: unknown[] } };
    expect(service.spec.ports).toEqual([
      { name: "http", port: 8080, targetPort: "http", protocol: "TCP" },
      { name: "metrics", port: 8081, targetPort: "metrics", protocol: "TCP" },
    ]);
    const deployment = find("Deployment") as unknown as { spec: { template: { metadata: { labels: Record<string, string> } } } };
    expect(deployment.spec.template.metadata.labels).toMatchObject(service.spec.selector);
  });
});

describe("operator hygiene in manifests/", () => {
  const podLabels = () => (find("Deployment") as unknown as { spec: { template: { metadata: { labels: Record<string, string> } } } }).spec.template.metadata.labels;

  it("PodDisruptionBudget: at least 1 of the Deployment's 2 pods stays through voluntary disruptions", () => {
    const pdb = find("PodDisruptionBudget") as unknown as { spec: { minAvailable: number; selector: { matchLabels: Record<string, string> }; unhealthyPodEvictionPolicy: string } };
    expect(pdb.spec.minAvailable).toBe(1);
    expect(podLabels()).toMatchObject(pdb.spec.selector.matchLabels);
    expect(pdb.spec.unhealthyPodEvictionPolicy).toBe("AlwaysAllow");
  });

  it("NetworkPolicy: the operator's pods take ingress on TCP 8080 (probes, provider events) and 8081 (/metrics) only; egress is not restricted", () => {
    const policy = find("NetworkPolicy") as unknown as { spec: { podSelector: { matchLabels: Record<string, string> }; policyTypes: string[]; ingress: unknown[] } };
    expect(podLabels()).toMatchObject(policy.spec.podSelector.matchLabels);
    expect(policy.spec.policyTypes).toEqual(["Ingress"]);
    expect(policy.spec.ingress).toEqual([{ ports: [{ port: 8080, protocol: "TCP" }, { port: 8081, protocol: "TCP" }] }]);
    const container = (find("Deployment") as unknown as { spec: { template: { spec: { containers: { ports: { containerPort: number }[] }[] } } } }).spec.template.spec.containers[0];
    expect(container?.ports.map((port) => port.containerPort)).toEqual([8080, 8081]);
  });
});

describe("the API server accepts manifests/", () => {
  it("kubectl apply -k manifests/ --dry-run=server, with no Pod Security warning under the restricted profile", async () => {
    // A server-side dry run creates nothing, so the namespace must exist for the objects in it.
    await kubectlOk(["apply", "-f", path.join(MANIFESTS, "namespace.yaml")]);
    const result = await kubectl(["apply", "-k", MANIFESTS, "--dry-run=server"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("deployment.apps/wa-operator created (server dry run)");
  });

  it("kubectl apply -k manifests/ installs it, and a second apply has nothing left to change", async () => {
    const { stdout, stderr } = await install();
    expect(stderr).toBe("");
    for (const object of rendered) expect(stdout).toMatch(new RegExp(`/${object.metadata.name.replace(/\./g, "\\.")} (created|configured|unchanged)`));
    const again = await kubectl(["diff", "-k", MANIFESTS]);
    expect(again.stdout).toBe("");
    expect(again.code).toBe(0);
    const deployment = JSON.parse(await kubectlOk(["get", "deployment", "wa-operator", "-n", OPERATOR_NAMESPACE, "-o", "json"])) as { spec: { replicas: number } };
    expect(deployment.spec.replicas).toBe(2);
  });
});

type Row = { apiGroup: string; resource: string; verb: string; scope: string };
const rowKey = (row: Row) => `${row.scope} ${row.apiGroup || "core"} ${row.resource} ${row.verb}`;

describe("RBAC is exactly what the code uses", () => {
  it("the API calls derived from src/ are exactly REQUIRED_PERMISSIONS", () => {
    const scan = scanCodePermissions({
      root: REPO,
      // The plugin runs with its user's credentials, not the operator's ServiceAccount.
      exclude: (file) => file === "src/cli/kubectl-whatsapp.ts" || file.startsWith("src/plugin/"),
    });
    expect(scan.unresolved).toEqual([]);
    expect(scan.files).toContain("src/operator.ts");
    expect(scan.files).toContain("src/runtime/leader-election.ts");
    const fromCode = scan.permissions.map((permission) => `${permission.apiGroup || "core"} ${permission.resource} ${permission.verb}`).sort();
    const declared = permissionRows().map((row) => `${row.apiGroup || "core"} ${row.resource} ${row.verb}`).sort();
    expect(fromCode).toEqual(declared);
  });

  it("the rendered ClusterRole and leader-election Role grant exactly REQUIRED_PERMISSIONS", () => {
    const rows = (rules: PolicyRule[], scope: string): Row[] =>
      rules.flatMap((rule) => {
        expect(rule.resourceNames).toBeUndefined();
        return rule.apiGroups.flatMap((apiGroup) => rule.resources.flatMap((resource) => rule.verbs.map((verb) => ({ apiGroup, resource, verb, scope }))));
      });
    const clusterRole = find("ClusterRole", "wa-operator") as unknown as { rules: PolicyRule[] };
    const secretsRole = find("ClusterRole", "wa-operator-secrets") as unknown as { rules: PolicyRule[] };
    const role = find("Role", "wa-operator-leader-election") as unknown as { metadata: { namespace: string }; rules: PolicyRule[] };
    expect(role.metadata.namespace).toBe(OPERATOR_NAMESPACE);
    const granted = [...rows(clusterRole.rules, "cluster"), ...rows(secretsRole.rules, "watched-namespaces"), ...rows(role.rules, "operator-namespace")].map(rowKey).sort();
    expect(granted).toEqual(permissionRows().map(rowKey).sort());
    expect(new Set(granted).size).toBe(granted.length);
  });

  it("the bindings give those roles to the ServiceAccount the Deployment runs as, and to nobody else", () => {
    for (const [kind, roleKind, roleName] of [
      ["ClusterRoleBinding", "ClusterRole", "wa-operator"],
      ["ClusterRoleBinding", "ClusterRole", "wa-operator-secrets"],
      ["RoleBinding", "Role", "wa-operator-leader-election"],
    ] as const) {
      const binding = find(kind, roleName) as unknown as { roleRef: unknown; subjects: unknown[] };
      expect(binding.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: roleKind, name: roleName });
      expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: "wa-operator", namespace: OPERATOR_NAMESPACE }]);
    }
  });
});

/** `kubectl auth can-i` as the operator's ServiceAccount (or `user`): "yes" or "no". */
async function canI(verb: string, resource: string, namespace: string | "all" | undefined, user = SERVICE_ACCOUNT): Promise<string> {
  const [plural, subresource] = resource.split("/");
  const args = ["auth", "can-i", verb, plural as string, `--as=${user}`];
  if (subresource) args.push(`--subresource=${subresource}`);
  if (namespace === "all") args.push("--all-namespaces");
  else if (namespace) args.push("-n", namespace);
  const result = await kubectl(args);
  if (result.code !== 0 && result.stdout.trim() !== "no") throw new Error(`kubectl ${args.join(" ")}: ${result.stderr}`);
  return result.stdout.trim();
}

const qualified = (row: { apiGroup: string; resource: string }) => {
  const [plural, subresource] = row.resource.split("/");
  return `${plural}${row.apiGroup ? `.${row.apiGroup}` : ""}${subresource ? `/${subresource}` : ""}`;
};

describe("the API server, asked as the ServiceAccount (kubectl auth can-i)", () => {
  beforeAll(async () => {
    await install();
  });

  const clusterScoped = new Set(["clusterwhatsappproviders"]);
  it.each(permissionRows().map((row) => [`${row.verb} ${qualified(row)}`, row] as const))("allows %s", async (_name, row) => {
    const plural = qualified(row);
    if (row.scope === "operator-namespace") {
      expect(await canI(row.verb, plural, OPERATOR_NAMESPACE)).toBe("yes");
      expect(await canI(row.verb, plural, "default")).toBe("no");
    } else {
      expect(await canI(row.verb, plural, clusterScoped.has(row.resource.split("/")[0] as string) ? undefined : "all")).toBe("yes");
    }
  });

  it.each([
    ["delete", "whatsappinstances.wa-operator.io", "all"],
    ["create", "whatsappinstances.wa-operator.io", "all"],
    ["update", "whatsappinstances.wa-operator.io", "all"],
    ["patch", "whatsappproviders.wa-operator.io", "all"],
    ["delete", "clusterwhatsappproviders.wa-operator.io", undefined],
    ["update", "whatsappinstances.wa-operator.io/status", "all"],
    ["patch", "secrets", "all"],
    ["deletecollection", "secrets", "all"],
    ["delete", "events", "all"],
    ["create", "pods", "all"],
    ["get", "pods", OPERATOR_NAMESPACE],
    ["list", "configmaps", "all"],
    ["get", "nodes", undefined],
    ["create", "customresourcedefinitions.apiextensions.k8s.io", undefined],
    ["create", "clusterrolebindings.rbac.authorization.k8s.io", undefined],
    ["impersonate", "serviceaccounts", "all"],
    ["list", "leases.coordination.k8s.io", OPERATOR_NAMESPACE],
    ["delete", "leases.coordination.k8s.io", OPERATOR_NAMESPACE],
    ["update", "leases.coordination.k8s.io", "default"],
  ] as const)("denies %s %s (namespace: %s)", async (verb, resource, namespace) => {
    expect(await canI(verb, resource, namespace)).toBe("no");
  });

  it("the admission policy lets the ServiceAccount write the Secrets it labels, and no other Secret", async () => {
    await install();
    const namespace = await createNamespace("secret-policy");
    const as = `--as=${SERVICE_ACCOUNT}`;
    const secret = (name: string, labels: string) => `apiVersion: v1\nkind: Secret\nmetadata: {name: ${name}, labels: {${labels}}}\nstringData: {k: v}\n`;
    // A new policy takes effect once the API server has loaded it.
    let attempt = 0;
    const refusal = await eventually("the policy refuses an unlabelled Secret", async () => {
      const result = await kubectl(["create", "-n", namespace, "-f", "-", as], secret(`plain-${++attempt}`, ""));
      return result.code !== 0 && result.stderr.includes("ValidatingAdmissionPolicy") ? result.stderr : undefined;
    });
    expect(refusal).toContain("wa-operator writes only Secrets labelled app.kubernetes.io/managed-by=wa-operator");
    await kubectlOk(["create", "-n", namespace, "-f", "-", as], secret("ours", "app.kubernetes.io/managed-by: wa-operator"));
    // A user's Secret, even one labelled as a credential, can be neither relabelled, changed nor deleted by the operator.
    await kubectlOk(["create", "-n", namespace, "-f", "-"], secret("users", "wa-operator.io/credential: 'true'"));
    expect((await kubectl(["label", "secret", "users", "-n", namespace, "app.kubernetes.io/managed-by=wa-operator", as])).code).not.toBe(0);
    expect((await kubectl(["delete", "secret", "users", "-n", namespace, as])).code).not.toBe(0);
    await kubectlOk(["delete", "secret", "ours", "-n", namespace, as]);
    expect(await kubectlOk(["get", "secret", "users", "-n", namespace, "-o", "jsonpath={.metadata.labels}"])).not.toContain("managed-by");
  });
});

describe("people's access to the three kinds through the built-in view, edit and admin roles", () => {
  let namespace: string;
  const users = { view: "wa-viewer", edit: "wa-editor", admin: "wa-admin" } as const;
  const clusterAdminOfNamespaces = "wa-cluster-wide-admin";

  beforeAll(async () => {
    await install();
    namespace = await createNamespace("roles");
    for (const [role, user] of Object.entries(users)) await kubectlOk(["create", "rolebinding", user, "-n", namespace, `--clusterrole=${role}`, `--user=${user}`]);
    // `admin` everywhere, as a ClusterRoleBinding: still no ClusterWhatsAppProviders to create.
    await kubectlOk(["create", "clusterrolebinding", clusterAdminOfNamespaces, "--clusterrole=admin", `--user=${clusterAdminOfNamespaces}`]);
    // kube-controller-manager's aggregation controller copies the rules in.
    await eventually("wa-operator-edit's rules aggregated into admin", async () =>
      (await kubectlOk(["get", "clusterrole", "admin", "-o", "json"])).includes('"whatsappinstances"') ? true : undefined,
    );
  });

  afterAll(async () => {
    await kubectl(["delete", "clusterrolebinding", clusterAdminOfNamespaces, "--ignore-not-found"]);
  });

  const can = (user: string, verb: string, resource: string, where: string | undefined) => canI(verb, resource, where, user);
  const readVerbs = ["get", "list", "watch"];
  const writeVerbs = ["create", "update", "patch", "delete", "deletecollection"];
  const kinds = ["whatsappinstances.wa-operator.io", "whatsappproviders.wa-operator.io"];

  it("view reads instances and providers in its namespace, changes nothing", async () => {
    for (const resource of kinds) {
      for (const verb of readVerbs) expect(await can(users.view, verb, resource, namespace), `${verb} ${resource}`).toBe("yes");
      for (const verb of writeVerbs) expect(await can(users.view, verb, resource, namespace), `${verb} ${resource}`).toBe("no");
    }
  });

  it.each([["edit"], ["admin"]] as const)("%s creates, changes and deletes instances and providers in its namespace, never their status", async (role) => {
    for (const resource of kinds) {
      for (const verb of [...readVerbs, ...writeVerbs]) expect(await can(users[role], verb, resource, namespace), `${verb} ${resource}`).toBe("yes");
      expect(await can(users[role], "patch", `${resource}/status`, namespace)).toBe("no");
      expect(await can(users[role], "get", resource, "default")).toBe("no");
    }
  });

  it("ClusterWhatsAppProviders: admin of every namespace reads them but cannot create, change or delete one", async () => {
    const resource = "clusterwhatsappproviders.wa-operator.io";
    for (const verb of readVerbs) expect(await can(clusterAdminOfNamespaces, verb, resource, undefined)).toBe("yes");
    for (const verb of writeVerbs) expect(await can(clusterAdminOfNamespaces, verb, resource, undefined), verb).toBe("no");
  });
});

describe("the operator running as the ServiceAccount, with leader election", () => {
  const API_KEY = "rbac-test-key";
  const PHONE = "5511977776666";
  const clock = new FakeClock();
  const waha = new WahaEmulator({ apiKey: API_KEY, clock, startDelayMs: 0, crashRestartDelayMs: null });
  const kube = kubeClient();
  let receiver: Receiver;
  let dir: string;
  let namespace: string;
  let proc: OperatorProcess | undefined;

  beforeAll(async () => {
    await install();
    dir = mkdtempSync(path.join(tmpdir(), "wa-operator-sa-"));
    receiver = await startReceiver();
    namespace = await createNamespace("rbac");
    await kubectlOk(["create", "secret", "generic", "waha-key", "-n", namespace, `--from-literal=api-key=${API_KEY}`]);
    await kubectlOk(["label", "secret", "waha-key", "-n", namespace, "wa-operator.io/credential=true"]);
  });

  afterAll(async () => {
    if (proc && proc.child.exitCode === null) {
      proc.kill("SIGKILL");
      await proc.exited;
    }
    await waha.stop();
    await receiver?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A kubeconfig with a bound token of the ServiceAccount, as a Pod would have. */
  async function serviceAccountKubeconfig(): Promise<string> {
    const token = (await kubectlOk(["create", "token", "wa-operator", "-n", OPERATOR_NAMESPACE, "--duration=1h"])).trim();
    const { cluster } = await loadKubeConfig({ file: kubeconfigPath() });
    const caData = cluster.ca?.toString("base64");
    const file = path.join(dir, "kubeconfig");
    writeFileSync(
      file,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "test", cluster: { server: cluster.server, "certificate-authority-data": caData } }],
        users: [{ name: "wa-operator", user: { token } }],
        contexts: [{ name: "wa-operator", context: { cluster: "test", user: "wa-operator", namespace: OPERATOR_NAMESPACE } }],
        "current-context": "wa-operator",
      }),
    );
    return file;
  }

  const session = (name: string) => wahaSessionName(namespace, name);
  const secretData = async (name: string) => (await kube.find<{ metadata: { name: string }; data?: Record<string, string> }>(SECRETS, namespace, name))?.data;

  it("links, rotates, connects, drops a webhook and deletes a WAHA number, never refused by the API server", async () => {
    const kubeconfig = await serviceAccountKubeconfig();
    expect((await kubectl(["--kubeconfig", kubeconfig, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"])).stdout).toBe(SERVICE_ACCOUNT);
    const wahaUrl = await waha.start();
    proc = await spawnOperator(
      [
        "--namespaces",
        namespace,
        "--leader-election",
        "true",
        "--pairing-poll-interval",
        "200ms",
        "--poll-interval",
        "1s",
        "--provider-check-interval",
        "1s",
        "--failure-backoff",
        "1s",
      ],
      { KUBECONFIG: kubeconfig, POD_NAMESPACE: OPERATOR_NAMESPACE },
    );
    const running = proc;
    await eventually("leadership, through the Lease in wa-operator-system", async () => running.logs.find((line) => line.msg === "became the leader"));
    const lease = await kube.get<{ metadata: { name: string }; spec: { holderIdentity: string } }>(LEASES, OPERATOR_NAMESPACE, "wa-operator-leader");
    expect(lease.spec.holderIdentity).toContain("_");

    // The provider: Ready (status patch, Event), and its events Secret (created, owned).
    await kubectlOk(
      ["apply", "-n", namespace, "-f", "-"],
      `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppProvider
metadata: {name: waha}
spec: {type: waha, url: "${wahaUrl}", credentialsSecretRef: {name: waha-key}, events: {url: "${running.url}"}}`,
    );
    await eventually("the provider Ready", async () => {
      const provider = await kube.find<{ metadata: { name: string }; status?: { conditions?: { type: string; status: string }[] } }>(
        { group: "wa-operator.io", version: "v1alpha1", plural: "whatsappproviders", kind: "WhatsAppProvider", namespaced: true },
        namespace,
        "waha",
      );
      return provider?.status?.conditions?.find((entry) => entry.type === "Ready" && entry.status === "True");
    });
    await eventually("the waha-events Secret", async () => (await secretData("waha-events"))?.["hmac-key"]);

    // The instance: finalizer, QR and webhook Secrets, status, Events (and a folded repeat).
    await kubectlOk(
      ["apply", "-n", namespace, "-f", "-"],
      `apiVersion: wa-operator.io/v1alpha1
kind: WhatsAppInstance
metadata: {name: sa-line}
spec:
  providerRef: {name: waha}
  webhook: {url: "${receiver.url}/hook", events: [session.status]}`,
    );
    const scanning = await instanceWhere(kube, namespace, "sa-line", "ScanQR", (object) => object.status?.phase === "ScanQR");
    expect(scanning.metadata.finalizers).toContain("wa-operator.io/finalizer");
    await eventually("the QR Secret", async () => ((await secretData("sa-line-qr"))?.["qr.txt"] ? true : undefined));
    expect((await secretData("sa-line-webhook"))?.["hmac-key"]).toBeDefined();
    const first = waha.currentQr(session("sa-line"));
    clock.advance(60_001);
    await eventually("the rotated QR in the Secret", async () => {
      const text = (await secretData("sa-line-qr"))?.["qr.txt"];
      return text && Buffer.from(text, "base64").toString() !== first ? true : undefined;
    });
    // The first code is named by the Created Event, the rotated one by QRUpdated.
    await eventually("the rotated code told by a QRUpdated Event", async () =>
      (await eventsFor(kube, namespace, "sa-line")).find((event) => event.reason === "QRUpdated" && event.message.includes("sa-line-qr")),
    );
    expect((await eventsFor(kube, namespace, "sa-line")).find((event) => event.reason === "Created")?.message).toContain("its QR code is in Secret sa-line-qr");

    // Connected: the QR Secret is emptied (update).
    waha.scan(session("sa-line"), PHONE);
    const connected = await instanceWhere(kube, namespace, "sa-line", "Connected", (object) => object.status?.phase === "Connected");
    expect(connected.status?.phoneNumber).toBe(PHONE);
    expect(condition(connected, "Ready")?.status).toBe("True");
    await eventually("the QR Secret emptied", async () => {
      const secret = await kube.find<{ metadata: { name: string }; data?: Record<string, string> }>(SECRETS, namespace, "sa-line-qr");
      return secret && Object.keys(secret.data ?? {}).length === 0 ? true : undefined;
    });

    // Dropping spec.webhook deletes the Secret the operator made for it.
    await kubectlOk(["patch", "wai", "sa-line", "-n", namespace, "--type=json", "-p", '[{"op":"remove","path":"/spec/webhook"}]']);
    await eventually("sa-line-webhook deleted", async () => ((await secretData("sa-line-webhook")) === undefined ? true : undefined));

    // Deletion: the session goes, then the finalizer (patch), then the object.
    await kubectlOk(["delete", "wai", "sa-line", "-n", namespace, "--timeout=60s"]);
    expect(waha.session(session("sa-line"))).toBeUndefined();

    // SIGTERM: the leader releases the Lease (update) and exits 0.
    running.kill("SIGTERM");
    expect(await running.exited).toBe(0);
    expect(running.logs.some((line) => line.msg === "released the leader lease")).toBe(true);

    const refused = running.logs.filter((line) => /forbidden|\b403\b/i.test(JSON.stringify(line)));
    expect(refused).toEqual([]);
    expect(running.logs.filter((line) => line.level === "error")).toEqual([]);
  });
});
