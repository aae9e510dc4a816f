#!/usr/bin/env node
/**
 * The `wa-operator` command: runs the controllers against the cluster of KUBECONFIG,
 * or the in-cluster config when run in a Pod.
 */
import { KubeConfig } from "@kubernetes/client-node";
import os from "node:os";
import { loadConfig, usage } from "../config.ts";
import { KubeClient } from "../kube/client.ts";
import { createLogger } from "../logger.ts";
import { Operator } from "../operator.ts";

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(usage());
    return;
  }
  let config;
  try {
    config = loadConfig(argv, process.env);
  } catch (error) {
    console.error((error as Error).message);
    console.error(`\n${usage()}`);
    process.exitCode = 2;
    return;
  }
  const log = createLogger(config.logLevel);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  const operator = new Operator({ kube: new KubeClient(kubeConfig), config, log, host: os.hostname() });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping: finishing in-flight work");
    operator.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: (error as Error).message }, "stop failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  await operator.start();
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exit(1);
});
