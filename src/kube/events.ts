/**
 * Kubernetes Events (what `kubectl describe` shows). Repeats of the same reason and
 * message on one object are folded into one Event with a count, as client-go does.
 */
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { redactor as processRedactor, type Redactor } from "../redaction.ts";
import { isNotFound, type KubeClient } from "./client.ts";
import { EVENTS, type KubeObject } from "./resources.ts";

export type EventType = "Normal" | "Warning";

interface Folded {
  readonly namespace: string;
  readonly name: string;
  count: number;
}

const MAX_REMEMBERED = 4096;

/**
 * Event notes are limited to 1024 bytes (NoteLengthLimit in Kubernetes'
 * pkg/apis/core/validation/events.go, which kube-scheduler truncates to as well).
 */
export const MAX_EVENT_MESSAGE_BYTES = 1024;

/** The message cut to MAX_EVENT_MESSAGE_BYTES of UTF-8, on a character boundary, saying it was cut. */
export function eventMessage(text: string): string {
  if (Buffer.byteLength(text, "utf8") <= MAX_EVENT_MESSAGE_BYTES) return text;
  const suffix = " …";
  const budget = MAX_EVENT_MESSAGE_BYTES - Buffer.byteLength(suffix, "utf8");
  let bytes = 0;
  let end = 0;
  // By code point, so a character is never split.
  for (const char of text) {
    const size = Buffer.byteLength(char, "utf8");
    if (bytes + size > budget) break;
    bytes += size;
    end += char.length;
  }
  return text.slice(0, end) + suffix;
}

export class EventRecorder {
  private readonly kube: KubeClient;
  private readonly component: string;
  private readonly log: Logger;
  private readonly host: string;
  private readonly folded = new Map<string, Folded>();
  private readonly redactor: Redactor;

  constructor(options: { kube: KubeClient; component: string; log: Logger; host?: string; redactor?: Redactor }) {
    this.kube = options.kube;
    this.redactor = options.redactor ?? processRedactor;
    this.component = options.component;
    this.log = options.log;
    this.host = options.host ?? "";
  }

  /**
   * Records an Event; failures are logged, never thrown (an Event is not worth a failed
   * reconcile). The message is redacted and cut to what the API server keeps.
   */
  async record(object: KubeObject, type: EventType, reason: string, text: string): Promise<void> {
    const message = eventMessage(this.redactor.redact(text));
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
