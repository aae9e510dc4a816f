/**
 * Which cluster, user and namespace the plugin talks to, chosen as kubectl chooses:
 * --kubeconfig, else KUBECONFIG, else ~/.kube/config (or the in-cluster config);
 * --context, else the current context; -n/--namespace, else the context's namespace,
 * else "default".
 */
import { KubeConfig } from "@kubernetes/client-node";
import { existsSync } from "node:fs";
import { KubeClient } from "../kube/client.ts";
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
