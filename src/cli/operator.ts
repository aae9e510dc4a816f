#!/usr/bin/env node
/**
 * The `wa-operator` command: runs the controllers against the cluster of KUBECONFIG,
 * or the in-cluster config when run in a Pod. With --leader-election only the holder
 * of the Lease reconciles; every replica keeps warm caches and serves HTTP.
 * src/bin/wa-operator.ts checks the Node version before loading this.
 */
import { randomBytes } from "node:crypto";
import os from "node:os";
import { loadConfig, usage, type OperatorConfig } from "../config.ts";
import { buildInfo } from "../build-info.ts";
import type { ProviderObject } from "../api/objects.ts";
import { CLUSTER_PROVIDER_KIND, EVENTS_HMAC_KEY, eventsSecretName, eventsSecretNamespace, type ProviderRefKey } from "../controllers/provider/connections.ts";
import { ProviderEventReceiver } from "../http/provider-events.ts";
import { startServer } from "../http/server.ts";
import { KubeClient } from "../kube/client.ts";
import { loadKubeConfig } from "../kube/config.ts";
import { secretValue } from "../kube/secrets.ts";
import { createLogger } from "../logger.ts";
import { Metrics } from "../metrics.ts";
import { Operator } from "../operator.ts";
import { LeaderElector } from "../runtime/leader-election.ts";
import { startTracing, tracesUrl } from "../tracing.ts";

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(usage());
    return;
  }
  if (argv.includes("--version")) {
    console.log(`wa-operator ${buildInfo().version}`);
    return;
  }
  let config: OperatorConfig;
  try {
    config = loadConfig(argv, process.env);
  } catch (error) {
    console.error((error as Error).message);
    console.error(`\n${usage()}`);
    process.exitCode = 2;
    return;
  }
  const log = createLogger(config.logLevel);
  // Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set; then the SDK is loaded, not before.
  const tracing = await startTracing({ env: process.env, version: buildInfo().version });
  if (tracing) log.info({ endpoint: tracesUrl(process.env) }, "exporting traces");
  const metrics = new Metrics();
  const kube = new KubeClient(await loadKubeConfig(), { observe: (request) => metrics.observeKubeRequest(request) });
  const identity = `${os.hostname()}_${randomBytes(4).toString("hex")}`;
  let elector: LeaderElector | undefined;
  // Surely the leader (or no election at all): asked before every write to a provider.
  const leading = () => !elector || elector.isLeader;
  const operator = new Operator({ kube, config, log, metrics, host: os.hostname(), mayWrite: leading });

  const providerObject = (ref: ProviderRefKey): ProviderObject | undefined =>
    ref.kind === CLUSTER_PROVIDER_KIND ? operator.context.caches.clusterProviders.get(ref.name) : operator.context.caches.providers.get(`${ref.namespace}/${ref.name}`);
  const events = new ProviderEventReceiver({
    log,
    instances: operator.context.caches.instances,
    metrics,
    providerType: (ref) => (providerObject(ref)?.spec as { type?: string } | undefined)?.type,
    eventsKey: async (ref) => {
      const object = providerObject(ref);
      if (!object) return undefined;
      // Our own <name>-events only (our controller reference with the provider's uid), read through the cache.
      const secret = await operator.context.secrets.owned(eventsSecretNamespace(ref, config.operatorNamespace), eventsSecretName(ref.name), object.metadata.uid);
      return secretValue(secret, EVENTS_HMAC_KEY);
    },
    // A queued look and nothing else: the stand-by's queue runs once it leads, and until then
    // the leader's own polling sees the change. No replica turns an event into an API write.
    poke: (namespace, name) => void operator.poke(namespace, name),
  });
  const server = await startServer({ address: config.httpAddress, log, ready: () => operator.synced, events });
  const metricsServer = await startServer({ address: config.metricsAddress, log, ready: () => operator.synced, metrics });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping: finishing in-flight work");
    try {
      await operator.stop();
      await elector?.stop();
      await server.close();
      await tracing?.shutdown();
      await metricsServer.close();
      process.exit(0);
    } catch (error) {
      log.error({ err: (error as Error).message }, "stop failed");
      process.exit(1);
    }
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));

  await operator.startCaches();
  if (!config.leaderElection) {
    operator.startWorkers();
    return;
  }
  elector = new LeaderElector({
    kube,
    namespace: config.operatorNamespace,
    name: config.leaseName,
    identity,
    leaseDurationMs: config.leaseDuration,
    renewDeadlineMs: Math.round((config.leaseDuration * 2) / 3),
    retryPeriodMs: Math.max(500, Math.round(config.leaseDuration / 7.5)),
    log,
    onStartedLeading: () => {
      metrics.leader.set({ name: config.leaseName }, 1);
      operator.startWorkers();
    },
    onStoppedLeading: () => {
      // Another replica may already reconcile: stop at once rather than risk two leaders.
      metrics.leader.set({ name: config.leaseName }, 0);
      log.error("lost leadership; exiting so a fresh process can rejoin the election");
      process.exit(1);
    },
  });
  metrics.leader.set({ name: config.leaseName }, 0);
  elector.start();
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exit(1);
});
