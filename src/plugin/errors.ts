/** Exit codes of kubectl-whatsapp, and the error that carries one to the user. */
import { KubeError } from "../kube/client.ts";

export const EXIT = {
  ok: 0,
  /** The API server refused or could not be reached, or the instance does not exist. */
  error: 1,
  /** Unknown command or flag, missing NAME, unreadable kubeconfig. */
  usage: 2,
  /** qr: no QR code or pairing code yet, or none the terminal can fit (with --once), or --timeout ran out. */
  noCode: 3,
  /** qr: the instance cannot link as it stands (Stalled, or spec.state is not Connected). */
  cannotLink: 4,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error whose message is meant for the user, as is, with the exit code to use. */
export class PluginError extends Error {
  readonly exitCode: ExitCode;

  constructor(exitCode: ExitCode, message: string) {
    super(message);
    this.name = "PluginError";
    this.exitCode = exitCode;
  }
}

/** The user-facing message and exit code for anything main() catches. */
export function describeError(error: unknown, server: string | undefined): { message: string; exitCode: ExitCode } {
  if (error instanceof PluginError) return { message: error.message, exitCode: error.exitCode };
  if (error instanceof KubeError) {
    if (error.status === 401) return { message: `the API server at ${server ?? "?"} does not accept these credentials (401): ${error.message}`, exitCode: EXIT.error };
    if (error.status === 403) return { message: `forbidden: ${error.message}`, exitCode: EXIT.error };
    if (error.status === 404 && /the server could not find the requested resource/i.test(error.message)) {
      return { message: "the cluster does not serve whatsappinstances.wa-operator.io; install the CRDs (kubectl apply -k manifests/)", exitCode: EXIT.error };
    }
    return { message: `the API server answered ${error.status}: ${error.message}`, exitCode: EXIT.error };
  }
  const code = (error as { code?: string; cause?: { code?: string } } | undefined)?.code ?? (error as { cause?: { code?: string } } | undefined)?.cause?.code;
  if (code && /^(ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|ECONNRESET|EAI_AGAIN)$/.test(code)) {
    return { message: `cannot reach the API server at ${server ?? "?"} (${code})`, exitCode: EXIT.error };
  }
  return { message: error instanceof Error ? error.message : String(error), exitCode: EXIT.error };
}
