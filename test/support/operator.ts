/**
 * Runs the real Operator in the test process against the local API server, watching
 * one namespace, with short intervals so tests need not wait for production timings.
 */
import { configSchema, type OperatorConfig } from "../../src/config.ts";
import { createLogger } from "../../src/logger.ts";
import { Operator } from "../../src/operator.ts";
import { kubeClient } from "./kube.ts";

export const FAST_SETTINGS = {
  pollInterval: "1s",
  pairingPollInterval: "200ms",
  qrRefreshInterval: "200ms",
  failureBackoff: "1s",
  failureBackoffMax: "4s",
  providerCheckInterval: "1s",
  providerTimeout: "2s",
} as const;

export async function startOperator(namespace: string, overrides: Partial<Record<keyof OperatorConfig, string>> = {}): Promise<Operator> {
  const config = configSchema.parse({ ...FAST_SETTINGS, namespaces: namespace, logLevel: process.env.WA_TEST_LOG_LEVEL ?? "silent", ...overrides });
  const operator = new Operator({ kube: kubeClient(), config, log: createLogger(config.logLevel) });
  await operator.start();
  return operator;
}
