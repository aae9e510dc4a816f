/**
 * `kubectl whatsapp events NAME`: the Events of one instance, oldest first so the newest is
 * on the last line (as a terminal reads them), in kubectl's columns. Pure.
 */
import type { KubeObject } from "../kube/resources.ts";
import { formatTable, humanAge, itemsDocument } from "./status-table.ts";

/** The fields of a core/v1 Event that the table shows. */
export interface EventObject extends KubeObject {
  readonly type?: string;
  readonly reason?: string;
  readonly message?: string;
  readonly count?: number;
  readonly firstTimestamp?: string | null;
  readonly lastTimestamp?: string | null;
  readonly eventTime?: string | null;
  readonly series?: { readonly count?: number; readonly lastObservedTime?: string } | null;
}

/** When the Event was last seen: its series, lastTimestamp, eventTime, firstTimestamp, else its creation. */
export function lastSeen(event: EventObject): string | undefined {
  return event.series?.lastObservedTime ?? event.lastTimestamp ?? event.eventTime ?? event.firstTimestamp ?? event.metadata.creationTimestamp ?? undefined;
}

/** Oldest first: the newest Event is the last line. */
export function sortEvents(events: readonly EventObject[]): EventObject[] {
  const at = (event: EventObject) => Date.parse(lastSeen(event) ?? "") || 0;
  return [...events].sort((a, b) => at(a) - at(b));
}

export function eventsTable(events: readonly EventObject[], options: { now: number }): string {
  const rows = sortEvents(events).map((event) => {
    const seen = Date.parse(lastSeen(event) ?? "");
    const count = event.series?.count ?? event.count ?? 1;
    return [Number.isFinite(seen) ? humanAge(options.now - seen) : "", event.type ?? "", event.reason ?? "", String(count), event.message ?? ""];
  });
  return formatTable([["LAST SEEN", "TYPE", "REASON", "COUNT", "MESSAGE"], ...rows]);
}

/** `events -o json|yaml`: {"items": [...]}, oldest first, with the facts the table shows. */
export function eventsDocument(events: readonly EventObject[], format: "json" | "yaml"): string {
  const items = sortEvents(events).map((event) => ({
    lastSeen: lastSeen(event),
    type: event.type,
    reason: event.reason,
    count: event.series?.count ?? event.count ?? 1,
    message: event.message,
  }));
  return itemsDocument(items, format);
}
