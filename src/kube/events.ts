/**
 * Kubernetes Events (what `kubectl describe` shows). Repeats of the same reason and
 * message on one object are folded into one Event with a count, as client-go does.
 */
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { isNotFound, type KubeClient } from "./client.ts";
import { EVENTS, type KubeObject } from "./resources.ts";

export type EventType = "Normal" | "Warning";

interface Folded {
  readonly namespace: string;
  readonly name: string;
  count: number;
}

const MAX_REMEMBERED = 4096;

export class EventRecorder {
  private readonly kube: KubeClient;
  private readonly component: string;
  private readonly log: Logger;
  private readonly host: string;
  private readonly folded = new Map<string, Folded>();

  constructor(options: { kube: KubeClient; component: string; log: Logger; host?: string }) {
    this.kube = options.kube;
    this.component = options.component;
    this.log = options.log;
    this.host = options.host ?? "";
  }

  /** Records an Event; failures are logged, never thrown (an Event is not worth a failed reconcile). */
  async record(object: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    const namespace = object.metadata.namespace ?? "default";
    const key = `${object.metadata.uid}|${type}|${reason}|${message}`;
    const now = new Date().toISOString();
    try {
      const previous = this.folded.get(key);
      if (previous) {
        try {
          previous.count += 1;
          await this.kube.patch(EVENTS, previous.namespace, previous.name, { count: previous.count, lastTimestamp: now });
          this.touch(key, previous);
          return;
        } catch (error) {
          if (!isNotFound(error)) throw error;
          this.folded.delete(key);
        }
      }
      const name = `${object.metadata.name}.${randomBytes(8).toString("hex")}`;
      await this.kube.create(EVENTS, namespace, {
        apiVersion: "v1",
        kind: "Event",
        metadata: { name, namespace },
        involvedObject: {
          apiVersion: object.apiVersion,
          kind: object.kind,
          name: object.metadata.name,
          namespace: object.metadata.namespace,
          uid: object.metadata.uid,
          resourceVersion: object.metadata.resourceVersion,
        },
        type,
        reason,
        message,
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
        source: { component: this.component, ...(this.host ? { host: this.host } : {}) },
        reportingComponent: this.component,
        reportingInstance: this.host || this.component,
      });
      this.touch(key, { namespace, name, count: 1 });
    } catch (error) {
      this.log.warn({ reason, err: error instanceof Error ? error.message : String(error) }, "could not record an event");
    }
  }

  private touch(key: string, value: Folded): void {
    this.folded.delete(key);
    this.folded.set(key, value);
    if (this.folded.size > MAX_REMEMBERED) {
      const oldest = this.folded.keys().next().value;
      if (oldest !== undefined) this.folded.delete(oldest);
    }
  }
}
