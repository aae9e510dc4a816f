/**
 * The one write at the end of a pass, for every kind: the status when it differs from the
 * cached one, patched with the cached resourceVersion (a 409 means our view was behind:
 * the caller looks again), and the Events that explain it, queued for the recorder to send.
 * What the server returns is written through to the cache, so the next pass reads its own
 * writes.
 */
import type { Condition } from "../api/common.ts";
import { isNotFound, type KubeClient } from "../kube/client.ts";
import type { EventRecorder } from "../kube/events.ts";
import type { KubeObject, ResourceType } from "../kube/resources.ts";
import { applyVerdict, publishableStatus, type Verdict } from "./conditions.ts";
import type { PlannedEvent } from "./instance/plan.ts";
import { mergePatch } from "./status-patch.ts";

export interface StatusOf {
  observedGeneration?: number;
  conditions?: Condition[];
}

export interface Publication<S extends StatusOf> {
  readonly kube: KubeClient;
  readonly recorder: EventRecorder;
  readonly type: ResourceType;
  readonly object: KubeObject & { status?: S };
  /** Status fields besides the conditions and observedGeneration, which are set here. */
  readonly status: S;
  readonly verdict: Verdict;
  readonly events: readonly PlannedEvent[];
  readonly now: number;
  readonly remember?: (object: KubeObject) => void;
}

/** The status a pass ends with: conditions from the verdict, for the object's generation. */
export function finalStatus<S extends StatusOf>(object: KubeObject & { status?: S }, status: S, verdict: Verdict, now: number): S {
  const generation = object.metadata.generation ?? 0;
  return {
    ...status,
    observedGeneration: generation,
    conditions: applyVerdict(status.conditions, verdict, generation, new Date(now).toISOString().replace(/\.\d{3}Z$/, "Z")),
  };
}

/** Returns the status now in force. */
export async function publish<S extends StatusOf>(publication: Publication<S>): Promise<S> {
  const { kube, object, type } = publication;
  // The free text of the status (provider messages) passes the redactor first, with its namespace's credentials.
  const next = publishableStatus(finalStatus(object, publication.status, publication.verdict, publication.now), object.metadata.namespace);
  // Queued, not awaited: the recorder sends them in the background, in order per object.
  for (const event of publication.events) publication.recorder.record(object, event.type, event.reason, event.message);
  const patch = mergePatch(object.status ?? {}, next);
  if (patch === undefined) return next;
  try {
    const written = await kube.patch<KubeObject>(
      type,
      object.metadata.namespace,
      object.metadata.name,
      { metadata: { resourceVersion: object.metadata.resourceVersion }, status: patch },
      "merge",
      "status",
    );
    publication.remember?.(written);
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  return next;
}
