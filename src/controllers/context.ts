/**
 * Everything a reconciler needs, in one object: the kube client, caches, provider
 * connections, the event recorder, logger, clock and settings. Tests build one from
 * real servers instead of mocking modules.
 */
import type { Logger } from "pino";
import type { InstanceObject, ProviderObject } from "../api/objects.ts";
import type { OperatorConfig } from "../config.ts";
import type { KubeClient } from "../kube/client.ts";
import type { EventRecorder } from "../kube/events.ts";
import type { SecretCache, SecretReader } from "../kube/secret-cache.ts";
import type { ObservedSession } from "../providers/types.ts";
import type { ShownCode, ShownQr } from "./instance/next-look.ts";
import type { Placements } from "./instance/placement-reservations.ts";
import type { SessionLists } from "./instance/session-lists.ts";
import type { StartSlots } from "./instance/start-slots.ts";
import type { GatewayRestarts } from "./instance/restart-recovery.ts";
import type { LookBudget } from "./look-budget.ts";
import type { Clock } from "../runtime/retry.ts";
import type { ProviderConnections } from "./provider/connections.ts";

/** The API's objects (src/api/objects.ts), named here too for the controllers. */
export type { InstanceObject, ProviderObject } from "../api/objects.ts";

/** A read-only view of an informer's cache. */
export interface Cache<T> {
  get(key: string): T | undefined;
  list(): T[];
  /** The objects an index files under `value` (INSTANCE_INDEXERS); undefined where the cache keeps no such index. */
  byIndex?(index: string, value: string): T[] | undefined;
}

/** A cache our own writes go through (see Informer.remember). */
export interface WritableCache<T> extends Cache<T> {
  remember(object: T): void;
}

/**
 * What the operator remembers of an instance between passes, in memory only (a new
 * leader starts without it, which costs one extra look): how long it has been starting,
 * and when its QR code was last fetched.
 */
export interface Pacing {
  startingLooks: number;
  /** The code last fetched into the QR Secret, and which code it was (so a refresh that finds it again draws nothing). */
  qr?: ShownQr & { readonly code?: ShownCode };
  /** The session as a plain look last found it, and when: a pairing look may trust it for a while. */
  seen?: { readonly session: ObservedSession; readonly at: number };
  /**
   * The uid whose provider session a deletion already removed: a pass that still finds our
   * finalizer (a conflict, or the DELETED event not come yet) takes it off without removing
   * the session again.
   */
  cleanedUp?: string;
  /**
   * When the provider's session settings were last read with a call of their own (a module
   * whose session.observedWith is "read"), and for which generation: read again only when
   * the spec changed or a resync interval passed.
   */
  sessionRead?: { readonly generation: number; readonly at: number };
}

/** The one Clock (runtime/retry.ts); the controllers only read it. */
export type { Clock } from "../runtime/retry.ts";

/** Optional observers of what the reconcilers do (metrics). */
export interface ReconcileObservers {
  instancePhase?(key: string, phase: string | undefined): void;
  /** A session got a start slot of `provider` after waiting this long (0 when it did not wait). */
  startSlotWait?(provider: { readonly kind: string; readonly namespace?: string | undefined; readonly name: string }, seconds: number): void;
}

export interface OperatorContext {
  readonly kube: KubeClient;
  readonly log: Logger;
  readonly events: EventRecorder;
  readonly config: OperatorConfig;
  readonly clock: Pick<Clock, "now">;
  readonly caches: {
    readonly instances: WritableCache<InstanceObject>;
    readonly providers: WritableCache<ProviderObject>;
    readonly clusterProviders: WritableCache<ProviderObject>;
    readonly secrets: SecretCache;
  };
  /** Values of referenced Secrets, fetched once per version. */
  readonly secrets: SecretReader;
  readonly connections: ProviderConnections;
  /** Per instance key; see Pacing. */
  readonly pacing: Map<string, Pacing>;
  /** What each provider's routine looks cost, to spread them within its rate limit. */
  readonly lookBudget: LookBudget;
  /** Who may start a session on each provider now (spec.maxConcurrentStarts), in this process. */
  readonly startSlots: StartSlots;
  /** Placement writes in flight and the new leader's catch-up read (instance/placement.ts), in this process. */
  readonly placements: Placements;
  /** Which gateways restarted and how their recoveries go (gateway-restart.ts), in this process. */
  readonly gatewayRestarts: GatewayRestarts;
  /** Instances at rest watched through their provider's session list (instance/session-lists.ts); absent: each looks itself. */
  readonly sessionLists?: SessionLists;
  /** Queues these instances for a look now (a gateway lost their sessions); absent in tests without a controller. */
  readonly wakeInstances?: (keys: readonly string[]) => void;
  readonly observers?: ReconcileObservers;
}

/** What a reconcile asks of the queue. */
export interface ReconcileResult {
  /** Look again after this long. */
  readonly requeueAfterMs?: number;
  /** The look continues work in flight (a session starting, a change just made): it goes ahead of new work. */
  readonly inFlight?: boolean;
  /** A transient failure: retry with the key's exponential backoff. */
  readonly backoff?: boolean;
}

export const FINALIZER = "wa-operator.io/finalizer";
