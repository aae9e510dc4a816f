/**
 * Which cluster, user and namespace the plugin talks to, chosen as kubectl chooses:
 * --kubeconfig, else KUBECONFIG, else ~/.kube/config (or the in-cluster config);
 * --context, else the current context; -n/--namespace, else the context's namespace,
 * else "default".
 */
import { KubeConfig } from "@kubernetes/client-node";
import { existsSync } from "node:fs";
import { KubeClient } from "../kube/client.ts";
import { INSTANCES, type KubeObject, type ResourceType } from "../kube/resources.ts";
import type { CompletionScope, CompletionSources } from "./completion.ts";
import { PluginError, EXIT } from "./errors.ts";

export interface KubeContextOptions {
  readonly kubeconfig?: string | undefined;
  readonly context?: string | undefined;
  readonly namespace?: string | undefined;
}

export interface KubeContext {
  readonly kube: KubeClient;
  readonly config: KubeConfig;
  readonly namespace: string;
  /** The API server's URL, for error messages. */
  readonly server: string;
}

export function loadKubeContext(options: KubeContextOptions): KubeContext {
  const config = new KubeConfig();
  if (options.kubeconfig && !existsSync(options.kubeconfig)) throw new PluginError(EXIT.usage, `the kubeconfig ${options.kubeconfig} does not exist`);
  try {
    if (options.kubeconfig) config.loadFromFile(options.kubeconfig);
    else config.loadFromDefault();
  } catch (error) {
    const source = options.kubeconfig ?? process.env["KUBECONFIG"] ?? "~/.kube/config";
    throw new PluginError(EXIT.usage, `cannot read the kubeconfig ${source}: ${(error as Error).message}`);
  }
  if (options.context) {
    if (!config.getContexts().some((context) => context.name === options.context)) {
      throw new PluginError(EXIT.usage, `the kubeconfig has no context "${options.context}"`);
    }
    config.setCurrentContext(options.context);
  }
  const cluster = config.getCurrentCluster();
  if (!cluster) throw new PluginError(EXIT.error, "the kubeconfig names no current cluster; set one with kubectl config use-context");
  const namespace = options.namespace || config.getContextObject(config.getCurrentContext())?.namespace || "default";
  return { kube: new KubeClient(config), config, namespace, server: cluster.server };
}

const NAMESPACES: ResourceType = { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false };

/** A shell waits for completion: a lookup that takes longer than this offers nothing. */
const COMPLETION_LOOKUP_MS = 3000;

/** Names for shell completion, from the cluster and namespace the typed flags choose. */
export function completionSources(): CompletionSources {
  const names = async (scope: CompletionScope, type: ResourceType): Promise<string[]> => {
    const { kube, namespace } = loadKubeContext(scope);
    let timer: NodeJS.Timeout | undefined;
    const giveUp = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("completion lookup timed out")), COMPLETION_LOOKUP_MS);
    });
    try {
      const list = await Promise.race([kube.list<KubeObject>(type, type.namespaced ? namespace : undefined), giveUp]);
      return list.items.map((item) => item.metadata.name);
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    instances: (scope) => names(scope, INSTANCES),
    namespaces: (scope) => names(scope, NAMESPACES),
    contexts: (scope) => loadKubeContext({ kubeconfig: scope.kubeconfig }).config.getContexts().map((context) => context.name),
  };
}
