/**
 * The figures of a chaos run, computed from what the provider emulator recorded and what
 * the run collected (statuses, Events, log files). Pure functions, so each rule is tested
 * on its own (test/unit/chaos-figures.test.ts) and the bench only gathers and prints.
 */
import { mostAtOnce } from "../support/fleet.ts";

/** One provider request as the fault injector recorded it (the fields the figures read). */
export interface Call {
  readonly at: number;
  readonly method: string;
  readonly path: string;
  readonly replica: string | undefined;
  readonly forwarded: boolean;
  readonly upstreamStatus?: number;
  readonly status: number;
  readonly retryUntil?: number;
  readonly doneAt?: number;
  readonly note?: Readonly<Record<string, string>>;
}

/** Reads do not change the provider; everything else may. */
export function isMutating(call: Pick<Call, "method">): boolean {
  return call.method !== "GET" && call.method !== "HEAD";
}

/** The most arrivals inside any window of `windowMs` (a sliding second by default), and where it starts. */
export function busiestWindow(times: readonly number[], windowMs = 1000): { count: number; startsAt: number | undefined } {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let startsAt: number | undefined;
  let first = 0;
  for (let last = 0; last < sorted.length; last++) {
    while ((sorted[last] as number) - (sorted[first] as number) >= windowMs) first++;
    if (last - first + 1 > best) {
      best = last - first + 1;
      startsAt = sorted[first];
    }
  }
  return { count: best, startsAt };
}

/**
 * Requests a client sent while a 429's Retry-After still held: from the same client, arriving
 * more than `graceMs` after that 429 was written (requests already on their way when it
 * arrived are not the client's fault) and before its Retry-After ran out.
 */
export function retryAfterViolations(calls: readonly Call[], graceMs: number): { rateLimited: number; violations: Call[] } {
  const windows = calls.filter((call) => call.status === 429 && call.retryUntil !== undefined);
  const violations = calls.filter((call) =>
    windows.some(
      (window) =>
        window !== call &&
        window.replica === call.replica &&
        call.at > (window.doneAt ?? window.at) + graceMs &&
        call.at < (window.retryUntil as number),
    ),
  );
  return { rateLimited: windows.length, violations };
}

export interface WriterOverlap {
  readonly replicas: readonly [string, string];
  readonly from: number;
  readonly to: number;
  /** Mutating calls of either replica inside [from, to]. */
  readonly calls: number;
}

/**
 * Windows in which two operator processes both made mutating provider calls: for each pair,
 * the intersection of the spans from each one's first to its last mutating call. Under
 * leader election each leader's span must end before the next one's begins.
 */
export function writerOverlaps(calls: readonly Call[]): WriterOverlap[] {
  const spans = new Map<string, { first: number; last: number; times: number[] }>();
  for (const call of calls) {
    if (!isMutating(call) || call.replica === undefined) continue;
    const span = spans.get(call.replica) ?? { first: call.at, last: call.at, times: [] };
    span.first = Math.min(span.first, call.at);
    span.last = Math.max(span.last, call.at);
    span.times.push(call.at);
    spans.set(call.replica, span);
  }
  const entries = [...spans.entries()].sort((a, b) => a[1].first - b[1].first);
  const overlaps: WriterOverlap[] = [];
  for (let i = 0; i < entries.length; i++) {
    for (let j = i + 1; j < entries.length; j++) {
      const [a, spanA] = entries[i] as [string, { first: number; last: number; times: number[] }];
      const [b, spanB] = entries[j] as [string, { first: number; last: number; times: number[] }];
      const from = Math.max(spanA.first, spanB.first);
      const to = Math.min(spanA.last, spanB.last);
      if (from > to) continue;
      const inside = (time: number) => time >= from && time <= to;
      overlaps.push({ replicas: [a, b], from, to, calls: spanA.times.filter(inside).length + spanB.times.filter(inside).length });
    }
  }
  return overlaps;
}

/**
 * Requested restarts the provider carried out, per session (a restart of a FAILED session is
 * the operator's own recovery, not a request). `repeated` lists sessions restarted more than
 * once, meaningful when each instance was asked for one restart.
 */
export function requestedRestarts(calls: readonly Call[]): { carriedOut: number; repeated: { session: string; times: number }[] } {
  const perSession = new Map<string, number>();
  for (const call of calls) {
    if (call.method !== "POST" || !/^\/api\/sessions\/[^/]+\/restart$/.test(call.path)) continue;
    if (!call.forwarded || call.upstreamStatus === undefined || call.upstreamStatus >= 300) continue;
    if (call.note?.["status"] === "FAILED") continue;
    const session = call.note?.["session"] ?? call.path;
    perSession.set(session, (perSession.get(session) ?? 0) + 1);
  }
  const repeated = [...perSession].filter(([, times]) => times > 1).map(([session, times]) => ({ session, times }));
  return { carriedOut: [...perSession.values()].reduce((sum, times) => sum + times, 0), repeated };
}

/** Sessions the provider created more than once (a second session for one instance, over time). */
export function sessionsCreatedTwice(calls: readonly Call[]): { session: string; times: number }[] {
  const created = new Map<string, number>();
  for (const call of calls) {
    if (call.method !== "POST" || call.path !== "/api/sessions" || !call.forwarded) continue;
    if (call.upstreamStatus === undefined || call.upstreamStatus >= 300) continue;
    const session = call.note?.["session"] ?? "(unnamed)";
    created.set(session, (created.get(session) ?? 0) + 1);
  }
  return [...created].filter(([, times]) => times > 1).map(([session, times]) => ({ session, times }));
}

/** Instances with more than one session at the provider right now, by the owner each session names. */
export function duplicateSessions(sessions: readonly { name: string; owner: string | undefined }[]): { owner: string; sessions: string[] }[] {
  const byOwner = new Map<string, string[]>();
  for (const session of sessions) {
    if (session.owner === undefined) continue;
    byOwner.set(session.owner, [...(byOwner.get(session.owner) ?? []), session.name]);
  }
  return [...byOwner].filter(([, names]) => names.length > 1).map(([owner, names]) => ({ owner, sessions: names }));
}

export interface Credential {
  /** What it is, e.g. "provider API key" (never the value: this goes into the report). */
  readonly kind: string;
  readonly value: string;
}

export interface Haystack {
  /** Where the text comes from, e.g. "log op3" or "Event". */
  readonly where: string;
  readonly text: string;
}

export interface SecretHit {
  readonly kind: string;
  readonly where: string;
  readonly count: number;
}

/** Every place a credential's value appears, counted. Values shorter than 8 characters are not searched (they would match by chance). */
export function secretHits(haystacks: readonly Haystack[], credentials: readonly Credential[]): SecretHit[] {
  const hits: SecretHit[] = [];
  for (const credential of credentials) {
    if (credential.value.length < 8) continue;
    for (const haystack of haystacks) {
      let count = 0;
      for (let at = haystack.text.indexOf(credential.value); at >= 0; at = haystack.text.indexOf(credential.value, at + 1)) count++;
      if (count > 0) hits.push({ kind: credential.kind, where: haystack.where, count });
    }
  }
  return hits;
}

export interface Spread {
  readonly count: number;
  readonly p50: number | undefined;
  readonly p95: number | undefined;
  readonly max: number | undefined;
}

/** Median, 95th percentile (nearest rank) and maximum. */
export function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
  return { count: sorted.length, p50: rank(0.5), p95: rank(0.95), max: sorted.at(-1) };
}

/**
 * The most sessions a gateway held at once, from its requests alone: a session counts from
 * the answer to its create until its delete arrives (the least overlap the calls allow, so a
 * figure over capacity is an over-fill that surely happened, not a sampling artefact).
 */
export function mostSessionsAtOnce(calls: readonly Call[]): number {
  const edges: { at: number; delta: number }[] = [];
  for (const call of calls) {
    if (!call.forwarded || call.upstreamStatus === undefined || call.upstreamStatus >= 300) continue;
    if (call.method === "POST" && call.path === "/api/sessions") edges.push({ at: call.doneAt ?? call.at, delta: 1 });
    else if (call.method === "DELETE" && /^\/api\/sessions\/[^/]+$/.test(call.path)) edges.push({ at: call.at, delta: -1 });
  }
  return mostAtOnce(edges);
}
