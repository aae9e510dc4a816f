/**
 * Kubernetes Events (what `kubectl describe` shows). Repeats of the same reason and
 * message on one object are folded into one Event with a count, as client-go does.
 *
 * Recording never waits for the API server, as with client-go's recorder: an Event is
 * queued with the time it happened and sent in the background, in order per object, a
 * few at a time. A burst of new instances thus spends the API server on the writes its
 * passes wait for (finalizers, QR Secrets, status), and its Events follow a moment later.
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

/** Events waiting to be sent, at most; beyond this a new one is dropped and logged (client-go keeps 1,000). */
export const MAX_QUEUED_EVENTS = 4096;

/**
 * Requests sending Events at once: a few, so a burst of passes keeps the API server for the
 * writes it waits on, and one more per EVENTS_PER_SENDER waiting, so thousands of new
 * instances at once do not leave their Events minutes behind (or dropped). At most a
 * quarter of the API client's 32 connections, so Events never queue a pass's writes.
 */
export const MIN_EVENT_SENDERS = 4;
export const MAX_EVENT_SENDERS = 8;
export const EVENTS_PER_SENDER = 64;

/** Longest an Event is held back while the operator is saturated: it is told at most this late. */
export const MAX_EVENT_HOLD_MS = 30_000;
/** How often a held Event asks again whether the operator is still saturated. */
const HOLD_CHECK_MS = 250;

/** The parts of the object an Event names (holding the whole object would keep it in memory). */
interface Involved {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly name: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
}

interface Pending {
  readonly object: Involved;
  readonly type: EventType;
  readonly reason: string;
  readonly message: string;
  /** When it happened, not when it was sent. */
  readonly at: string;
  /** When it was recorded, by the recorder's clock (how long it may still be held). */
  readonly recordedAt: number;
}

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
  /** Per involved object (by uid), its Events in the order they happened. */
  private readonly waiting = new Map<string, Pending[]>();
  /** Objects whose Events can be sent now: not being sent for already. */
  private readonly ready: string[] = [];
  private readonly sending = new Set<string>();
  private queued = 0;
  private dropped = 0;
  private senders = 0;
  private idleWaiters: (() => void)[] = [];

  private readonly onDrop: (() => void) | undefined;
  private readonly saturated: () => boolean;
  private readonly now: () => number;
  /** flush() was called: nothing is held back any more. */
  private draining = false;

  constructor(options: {
    kube: KubeClient;
    component: string;
    log: Logger;
    host?: string;
    redactor?: Redactor;
    onDrop?: () => void;
    /** Whether the operator is saturated now, so Events should wait (never, when absent). */
    saturated?: () => boolean;
    now?: () => number;
  }) {
    this.kube = options.kube;
    this.onDrop = options.onDrop;
    this.saturated = options.saturated ?? (() => false);
    this.now = options.now ?? Date.now;
    this.redactor = options.redactor ?? processRedactor;
    this.component = options.component;
    this.log = options.log;
    this.host = options.host ?? "";
  }

  /**
   * Queues an Event and returns at once. Sending failures are logged, never thrown (an
   * Event is not worth a failed reconcile). The message is redacted and cut to what the
   * API server keeps before it is queued.
   */
  record(object: KubeObject, type: EventType, reason: string, text: string): void {
    if (this.queued >= MAX_QUEUED_EVENTS) {
      this.onDrop?.();
      // Logged on the first drop and every thousandth after, so a stuck API server cannot flood the log.
      if (this.dropped++ % 1000 === 0) this.log.warn({ reason, dropped: this.dropped }, "too many Events waiting to be sent; dropping new ones");
      return;
    }
    const { apiVersion, kind, metadata } = object;
    const involved: Involved = { apiVersion, kind, name: metadata.name, namespace: metadata.namespace, uid: metadata.uid, resourceVersion: metadata.resourceVersion };
    const pending: Pending = { object: involved, type, reason, message: eventMessage(this.redactor.redact(text, metadata.namespace)), at: new Date().toISOString(), recordedAt: this.now() };
    const uid = object.metadata.uid ?? `${object.metadata.namespace}/${object.metadata.name}`;
    const list = this.waiting.get(uid);
    if (list) list.push(pending);
    else {
      this.waiting.set(uid, [pending]);
      if (!this.sending.has(uid)) this.ready.push(uid);
    }
    this.queued += 1;
    this.startSenders();
  }

  private senderLimit(): number {
    return Math.min(MAX_EVENT_SENDERS, Math.max(MIN_EVENT_SENDERS, Math.ceil(this.queued / EVENTS_PER_SENDER)));
  }

  private startSenders(): void {
    while (this.senders < this.senderLimit() && this.ready.length > 0) {
      this.senders += 1;
      void this.send();
    }
  }

  /** Events recorded and not yet sent. */
  get pending(): number {
    return this.queued;
  }

  /** Resolves once every Event recorded so far was sent (or given up on); none is held back meanwhile. */
  flush(): Promise<void> {
    if (this.queued === 0) return Promise.resolve();
    this.draining = true;
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Waits while the operator is saturated, until the Event has waited MAX_EVENT_HOLD_MS since it was recorded. */
  private async holdWhileSaturated(pending: Pending): Promise<void> {
    while (this.mayHold(pending)) await new Promise((resolve) => setTimeout(resolve, HOLD_CHECK_MS).unref());
  }

  private mayHold(pending: Pending): boolean {
    return !this.draining && this.saturated() && this.now() - pending.recordedAt < MAX_EVENT_HOLD_MS;
  }

  /** Sends one object's next Event after another; stops when none is ready or the backlog no longer needs this sender. */
  private async send(): Promise<void> {
    while (this.senders <= this.senderLimit()) {
      const uid = this.ready.shift();
      if (uid === undefined) break;
      const list = this.waiting.get(uid) as Pending[];
      const pending = list.shift() as Pending;
      if (list.length === 0) this.waiting.delete(uid);
      this.sending.add(uid);
      if (this.mayHold(pending)) await this.holdWhileSaturated(pending);
      await this.deliver(pending);
      this.sending.delete(uid);
      this.queued -= 1;
      if (this.waiting.has(uid)) {
        this.ready.push(uid);
        this.startSenders();
      }
    }
    this.senders -= 1;
    if (this.queued === 0) {
      this.draining = false;
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private async deliver({ object, type, reason, message, at }: Pending): Promise<void> {
    const namespace = object.namespace ?? "default";
    const key = `${object.uid}|${type}|${reason}|${message}`;
    try {
      const previous = this.folded.get(key);
      if (previous) {
        try {
          previous.count += 1;
          await this.kube.patch(EVENTS, previous.namespace, previous.name, { count: previous.count, lastTimestamp: at });
          this.touch(key, previous);
          return;
        } catch (error) {
          if (!isNotFound(error)) throw error;
          this.folded.delete(key);
        }
      }
      const name = `${object.name}.${randomBytes(8).toString("hex")}`;
      await this.kube.create(EVENTS, namespace, {
        apiVersion: "v1",
        kind: "Event",
        metadata: { name, namespace },
        involvedObject: object,
        type,
        reason,
        message,
        count: 1,
        firstTimestamp: at,
        lastTimestamp: at,
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
