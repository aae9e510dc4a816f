/**
 * A client of one kubeconfig file, made synchronously (test files make theirs at the top,
 * outside any async hook): the file is parsed here rather than by loadKubeConfig, which
 * loads its YAML parser on demand and so is async.
 */
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { KubeClient } from "../../src/kube/client.ts";
import { mergeKubeconfigs } from "../../src/kube/config.ts";

export function kubeClientOf(file: string): KubeClient {
  return new KubeClient(mergeKubeconfigs([{ file, document: parse(readFileSync(file, "utf8")) }]).select());
}
