// Values the integration global setup (test/support/global-setup.ts) provides to tests;
// read them with `inject("kubeconfig")` etc. from "vitest".
import "vitest";

declare module "vitest" {
  export interface ProvidedContext {
    /** Path of an admin kubeconfig for the throwaway control plane. */
    kubeconfig: string;
    /** kube-apiserver's gitVersion, e.g. "v1.36.3". */
    kubeApiserverVersion: string;
    /** https://127.0.0.1:PORT */
    kubeApiserverUrl: string;
    /** etcd's version, e.g. "v3.6.8". */
    etcdVersion: string;
    /** Directory with kubectl, kube-apiserver, kube-controller-manager and etcd (also first on PATH). */
    controlPlaneBinDir: string;
  }
}
