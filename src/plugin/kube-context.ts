/**
 * Which cluster, user and namespace the plugin talks to, chosen as kubectl chooses:
 * --kubeconfig, else KUBECONFIG, else ~/.kube/config (or the in-cluster config);
 * --context, else the current context; -n/--namespace, else the context's namespace,
 * else "default".
 */
import { KubeClient } from "../kube/client.ts";
import { KubeConfigError, loadKubeConfig, readKubeconfig, type KubeConfig } from "../kube/config.ts";
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

export async function loadKubeContext(options: KubeContextOptions): Promise<KubeContext> {
  const config = await usable(loadKubeConfig({ file: options.kubeconfig, context: options.context }));
  const namespace = options.namespace || config.namespace || "default";
  return { kube: new KubeClient(config), config, namespace, server: config.cluster.server };
}

/** A kubeconfig that cannot be used is the user's to fix: a usage error, with what is wrong. */
async function usable<T>(loading: Promise<T>): Promise<T> {
  try {
    return await loading;
  } catch (error) {
    if (error instanceof KubeConfigError) throw new PluginError(EXIT.usage, error.message);
    throw error;
  }
}

const NAMESPACES: ResourceType = { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false };

/** A shell waits for completion: a lookup that takes longer than this offers nothing. */
const COMPLETION_LOOKUP_MS = 3000;

/** Names for shell completion, from the cluster and namespace the typed flags choose. */
export function completionSources(): CompletionSources {
  const names = async (scope: CompletionScope, type: ResourceType): Promise<string[]> => {
    const { kube, namespace } = await loadKubeContext(scope);
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
    contexts: async (scope) => (await usable(readKubeconfig({ file: scope.kubeconfig }))).contexts.map((context) => context.name),
  };
}
