/**
 * The receiver for providers' own lifecycle webhooks. The path names the provider, so
 * its key verifies the signature; a verified event only says "look at this instance
 * now" — the reconciler still reads the provider's state itself. Polling stays the
 * fallback, so a lost event costs latency, never correctness.
 *
 * Anyone who can reach the port can send here, so nothing is spent before the sender is
 * known: a request for a provider we do not have, or without a signature, is answered
 * from the caches before its body is read (see admit); keys, found or not, are kept a
 * while, so such requests never reach the API server; a signed event older than the
 * replay window, or one already seen, is not acted on.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { Logger } from "pino";
import type { Cache } from "../controllers/context.ts";
import type { InstanceObject } from "../api/objects.ts";
import { parseInstanceSpec } from "../api/parse-once.ts";
import { CLUSTER_PROVIDER_KIND, PROVIDER_KIND, providerKey, type ProviderRefKey } from "../controllers/provider/connections.ts";
import { placedRefOf } from "../controllers/instance/provider-ref.ts";
import { verifiedHint } from "../providers/event-hint.ts";
import type { LifecycleEvents } from "../providers/module.ts";
import { PROVIDER_MODULES } from "../providers/registry.ts";
import type { ProviderType } from "../providers/types.ts";
import { credentialMatches, presentedCredential } from "../providers/event-authentication.ts";
import type { Metrics } from "../metrics.ts";

export interface ProviderEventsOptions {
  readonly log: Logger;
  readonly instances: Cache<InstanceObject>;
  readonly providerType: (ref: ProviderRefKey) => string | undefined;
  /** The provider's events HMAC key (from its <name>-events Secret, ours only), or undefined. */
  readonly eventsKey: (ref: ProviderRefKey) => Promise<string | undefined>;
  /** Brings the instance to the reconciler's attention; makes no API write. */
  readonly poke: (namespace: string, name: string) => void;
  readonly metrics?: Metrics;
  /** For tests; Date.now by default. */
  readonly now?: () => number;
}

export interface EventAnswer {
  readonly status: number;
  readonly body: string;
}

/** Largest body read; bigger ones are refused by Content-Length, or cut off while streaming. */
export const MAX_EVENT_BODY = 64 * 1024;
/** How long a key, or the fact that a provider has none, is kept before it is read again. */
const KEY_CACHE_MS = 10_000;
/** Events sent longer ago than this (or this far in the future) are refused as replays. */
export const REPLAY_WINDOW_MS = 5 * 60_000;
/** Event ids remembered for dedupe, across providers: the oldest go first. */
const SEEN_IDS = 4096;

/** What admit found out about a sender before its body is read. */
type Admission = { readonly refused: EventAnswer } | { readonly key: string; readonly signing: LifecycleEvents; readonly signature: string; readonly type: ProviderType };

export class ProviderEventReceiver {
  private readonly options: ProviderEventsOptions;
  private readonly keys = new Map<string, { key: string | undefined; at: number }>();
  private readonly seen = new Map<string, true>();

  constructor(options: ProviderEventsOptions) {
    this.options = options;
  }

  /** Parses `/provider-events/namespaced/<ns>/<name>` or `/provider-events/cluster/<name>`. */
  static refOf(path: string): ProviderRefKey | undefined {
    const parts = path.split("?")[0]?.split("/").filter(Boolean) ?? [];
    if (parts[0] !== "provider-events") return undefined;
    if (parts[1] === "namespaced" && parts.length === 4) return { kind: PROVIDER_KIND, namespace: parts[2], name: parts[3] as string };
    if (parts[1] === "cluster" && parts.length === 3) return { kind: CLUSTER_PROVIDER_KIND, namespace: undefined, name: parts[2] as string };
    return undefined;
  }

  /**
   * Everything that can be judged before the body is read: a provider of ours that sends
   * signed events, a signature header, and a key (cached, found or not). Refusals here cost
   * no read of the body and no API request.
   */
  async admit(ref: ProviderRefKey, headers: IncomingHttpHeaders): Promise<Admission> {
    const type = this.options.providerType(ref);
    // How the provider signs and names its events is its module's business (src/providers/<type>/module.ts).
    const signing = isProviderType(type) ? PROVIDER_MODULES[type].lifecycleEvents : undefined;
    if (!isProviderType(type) || !signing) return this.refuse(type, "unknown_provider", 404, "unknown provider");
    // An HMAC of the body or a token header, as the module declares (src/providers/event-authentication.ts).
    const signature = presentedCredential(signing.authentication, headers);
    if (!signature) return this.refuse(type, "unsigned", 401, "missing signature");
    const key = await this.keyOf(ref);
    if (!key) return this.refuse(type, "bad_signature", 401, "bad signature");
    return { key, signing, signature, type };
  }

  /** `query` is the request URL's query: a routing hint in it counts only when signed (see event-hint.ts). */
  async handle(ref: ProviderRefKey, headers: IncomingHttpHeaders, body: Buffer, query: URLSearchParams = new URLSearchParams()): Promise<EventAnswer> {
    const admission = await this.admit(ref, headers);
    if ("refused" in admission) return admission.refused;
    const { key, signing, signature, type } = admission;
    const count = (result: string) => this.options.metrics?.providerEvents.inc({ provider: type, result });
    if (!credentialMatches(signing.authentication, signature, body, key)) {
      count("bad_signature");
      this.options.log.warn({ provider: providerKey(ref) }, "refused a provider event with a bad signature");
      return { status: 401, body: "bad signature" };
    }
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
    } catch {
      count("malformed");
      return { status: 400, body: "not JSON" };
    }
    if (!event || typeof event !== "object") {
      count("malformed");
      return { status: 400, body: "not a JSON object" };
    }
    const sentAt = signing.sentAtOf?.(event);
    const now = (this.options.now ?? Date.now)();
    if (sentAt !== undefined && Math.abs(now - sentAt) > REPLAY_WINDOW_MS) {
      count("replayed");
      return { status: 400, body: "event outside the replay window" };
    }
    const id = signing.eventIdOf?.(event);
    if (id !== undefined && !this.firstSight(`${providerKey(ref)} ${id}`)) {
      count("duplicate");
      // Already acted on: the provider may stop retrying.
      return { status: 202, body: "already seen" };
    }
    const instance = this.findInstance(ref, signing.instanceOf(event), verifiedHint(key, query));
    if (!instance) {
      count("unknown_instance");
      return { status: 202, body: "no instance of ours" };
    }
    count("accepted");
    this.options.poke(instance.metadata.namespace as string, instance.metadata.name);
    return { status: 202, body: "accepted" };
  }

  private refuse(type: string | undefined, result: string, status: number, body: string): { refused: EventAnswer } {
    this.options.metrics?.providerEvents.inc({ provider: type ?? "unknown", result });
    return { refused: { status, body } };
  }

  /** Whether this event id is new; remembers it, forgetting the oldest beyond SEEN_IDS. */
  private firstSight(id: string): boolean {
    if (this.seen.has(id)) return false;
    this.seen.set(id, true);
    if (this.seen.size > SEEN_IDS) this.seen.delete(this.seen.keys().next().value as string);
    return true;
  }

  /** The instance an event is about: as the signed receiver URL or the session's record names it, or by the provider's id. */
  private findInstance(ref: ProviderRefKey, about: ReturnType<LifecycleEvents["instanceOf"]>, hint: string | undefined): InstanceObject | undefined {
    const wanted = providerKey(ref);
    const ours = (instance: InstanceObject | undefined) => {
      if (!instance) return undefined;
      const spec = parseInstanceSpec(instance.spec);
      if (!spec.success) return undefined;
      const instanceRef = placedRefOf(instance, spec.data);
      return instanceRef && providerKey(instanceRef) === wanted ? instance : undefined;
    };
    if (hint) return ours(this.options.instances.get(hint));
    if (about.instanceKey) return ours(this.options.instances.get(about.instanceKey));
    const id = about.providerInstanceId;
    if (!id) return undefined;
    return this.options.instances.list().find((instance) => instance.status?.providerInstanceId === id && ours(instance));
  }

  /** The provider's key, and its absence too, kept KEY_CACHE_MS: unsigned senders cannot make us read Secrets. */
  private async keyOf(ref: ProviderRefKey): Promise<string | undefined> {
    const cacheKey = providerKey(ref);
    const now = (this.options.now ?? Date.now)();
    const cached = this.keys.get(cacheKey);
    if (cached && now - cached.at < KEY_CACHE_MS) return cached.key;
    const key = (await this.options.eventsKey(ref)) || undefined;
    // Only providers in our caches get here, so the map is as large as their number.
    this.keys.set(cacheKey, { key, at: now });
    return key;
  }
}

function isProviderType(type: string | undefined): type is ProviderType {
  return type !== undefined && Object.hasOwn(PROVIDER_MODULES, type);
}
