/**
 * The receiver for providers' own lifecycle webhooks. The path names the provider, so
 * its key verifies the signature; a verified event only says "look at this instance
 * now" — the reconciler still reads the provider's state itself. Polling stays the
 * fallback, so a lost event costs latency, never correctness.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { Logger } from "pino";
import type { Cache, InstanceObject } from "../controllers/context.ts";
import { instanceSpecSchema } from "../api/instance.ts";
import { CLUSTER_PROVIDER_KIND, EVENTS_HMAC_KEY, eventsSecretName, eventsSecretNamespace, PROVIDER_KIND, providerKey, type ProviderRefKey } from "../controllers/provider/connections.ts";
import type { LifecycleEvents } from "../providers/module.ts";
import { PROVIDER_MODULES } from "../providers/registry.ts";
import { credentialMatches, presentedCredential } from "../providers/event-authentication.ts";
import type { ProviderType } from "../providers/types.ts";
import type { KubeClient } from "../kube/client.ts";
import { SECRETS } from "../kube/resources.ts";
import { secretValue, type SecretObject } from "../kube/secrets.ts";
import type { Metrics } from "../metrics.ts";

export interface ProviderEventsOptions {
  readonly kube: KubeClient;
  readonly log: Logger;
  readonly operatorNamespace: string;
  readonly instances: Cache<InstanceObject>;
  readonly providerType: (ref: ProviderRefKey) => string | undefined;
  /** Brings the instance to the reconciler's attention (the leader queues it; others annotate it). */
  readonly poke: (namespace: string, name: string) => Promise<void>;
  readonly metrics?: Metrics;
}

export interface EventAnswer {
  readonly status: number;
  readonly body: string;
}


const KEY_CACHE_MS = 10_000;

export class ProviderEventReceiver {
  private readonly options: ProviderEventsOptions;
  private readonly keys = new Map<string, { key: string | undefined; at: number }>();

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

  /** `instance` names the instance when the provider's webhook URL carries it (?instance=ns/name). */
  async handle(ref: ProviderRefKey, headers: IncomingHttpHeaders, body: Buffer, instanceHint?: string): Promise<EventAnswer> {
    const type = this.options.providerType(ref);
    const count = (result: string) => this.options.metrics?.providerEvents.inc({ provider: type ?? "unknown", result });
    // How the provider signs and names its events is its module's business (src/providers/<type>/module.ts).
    const signing = isProviderType(type) ? PROVIDER_MODULES[type].lifecycleEvents : undefined;
    if (!type || !signing) {
      count("unknown_provider");
      return { status: 404, body: "unknown provider" };
    }
    // An HMAC of the body or a token header, as the module declares (src/providers/event-authentication.ts).
    const signature = presentedCredential(signing.authentication, headers);
    if (!signature) {
      count("unsigned");
      return { status: 401, body: "missing signature" };
    }
    const key = await this.keyOf(ref);
    if (!key || !credentialMatches(signing.authentication, signature, body, key)) {
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
    const instance = this.findInstance(ref, signing.instanceOf(event), instanceHint);
    if (!instance) {
      count("unknown_instance");
      return { status: 202, body: "no instance of ours" };
    }
    count("accepted");
    await this.options.poke(instance.metadata.namespace as string, instance.metadata.name);
    return { status: 202, body: "accepted" };
  }

  /** The instance an event is about: as the receiver URL or the session's record names it, or by the provider's id. */
  private findInstance(ref: ProviderRefKey, about: ReturnType<LifecycleEvents["instanceOf"]>, hint: string | undefined): InstanceObject | undefined {
    const wanted = providerKey(ref);
    const ours = (instance: InstanceObject | undefined) => {
      if (!instance) return undefined;
      const spec = instanceSpecSchema.safeParse(instance.spec);
      if (!spec.success) return undefined;
      const instanceRef = {
        kind: spec.data.providerRef.kind,
        namespace: spec.data.providerRef.kind === CLUSTER_PROVIDER_KIND ? undefined : instance.metadata.namespace,
        name: spec.data.providerRef.name,
      };
      return providerKey(instanceRef) === wanted ? instance : undefined;
    };
    if (hint) return ours(this.options.instances.get(hint));
    if (about.instanceKey) return ours(this.options.instances.get(about.instanceKey));
    const id = about.providerInstanceId;
    if (!id) return undefined;
    return this.options.instances.list().find((instance) => instance.status?.providerInstanceId === id && ours(instance));
  }

  private async keyOf(ref: ProviderRefKey): Promise<string | undefined> {
    const cacheKey = providerKey(ref);
    const cached = this.keys.get(cacheKey);
    if (cached && Date.now() - cached.at < KEY_CACHE_MS && cached.key) return cached.key;
    const secret = await this.options.kube.find<SecretObject>(SECRETS, eventsSecretNamespace(ref, this.options.operatorNamespace), eventsSecretName(ref.name));
    const key = secretValue(secret, EVENTS_HMAC_KEY) || undefined;
    this.keys.set(cacheKey, { key, at: Date.now() });
    return key;
  }
}

function isProviderType(type: string | undefined): type is ProviderType {
  return type !== undefined && Object.hasOwn(PROVIDER_MODULES, type);
}
