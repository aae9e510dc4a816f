/**
 * Resolves a providerRef to a ready-to-use client: reads the provider resource and its
 * credentials Secret, and keeps one client and one rate limiter per provider, so every
 * instance using a provider shares its rateLimit.
 */
import { createHash } from "node:crypto";
import type { AdoptionPolicy, ClusterProviderSpec } from "../../api/provider.ts";
import { parseClusterProviderSpec, parseProviderSpec } from "../../api/parse-once.ts";
import { matchesSelector } from "../../kube/label-selector.ts";
import { parseDuration } from "../../config.ts";
import type { SecretReader } from "../../kube/secret-cache.ts";
import { MissingSecretError, secretValue } from "../../kube/secrets.ts";
import type { ResponseObserver } from "../../providers/transport/http.ts";
import { EgressGuard } from "../../providers/transport/egress.ts";
import { ReadLatency } from "../../providers/transport/latency.ts";
import { InFlightLimit } from "../../providers/transport/in-flight.ts";
import { RateLimiter } from "../../providers/transport/rate-limiter.ts";
import { PROVIDER_MODULES } from "../../providers/registry.ts";
import type { InstanceRef, ProviderClient, ProviderDeps, ProviderSettings, ProviderType } from "../../providers/types.ts";
import { traced } from "../../providers/traced.ts";
import { OPERATOR_SCOPE, redactor } from "../../redaction.ts";
import type { ProviderObject } from "../../api/objects.ts";

export const PROVIDER_KIND = "WhatsAppProvider";
export const CLUSTER_PROVIDER_KIND = "ClusterWhatsAppProvider";

export interface ProviderRefKey {
  readonly kind: string;
  /** The instance's namespace for WhatsAppProvider; undefined for the cluster kind. */
  readonly namespace: string | undefined;
  readonly name: string;
}

export interface ResolvedProvider {
  readonly key: string;
  /** What named it: kind, namespace (of a namespaced provider) and name. */
  readonly ref: ProviderRefKey;
  readonly object: ProviderObject;
  readonly type: ProviderType;
  readonly client: ProviderClient;
  readonly settings: ProviderSettings;
  readonly pollIntervalMs: number | undefined;
  /** The smaller of spec.maxInstances and spec.capacity.maxSessions; undefined: no bound. */
  readonly maxInstances: number | undefined;
  /** spec.maxConcurrentStarts: most sessions starting at once (start-slots.ts). */
  readonly maxConcurrentStarts: number;
  /** Where and with which key the provider sends lifecycle events to the operator (spec.events). */
  readonly events: { readonly url: string; readonly hmacKey: string } | undefined;
  /**
   * Whether an instance may take over an existing session here (spec.adopt): a namespaced
   * provider is its namespace's own, so always; a cluster provider as its spec.adoption says.
   */
  readonly adoption: AdoptionPolicy;
}

/** Why a provider could not be resolved; each maps to a Stalled reason. */
export class ProviderResolutionError extends Error {
  readonly reason: "ProviderNotFound" | "SecretNotFound" | "InvalidSpec" | "ProviderNotAllowed";
  constructor(reason: ProviderResolutionError["reason"], message: string) {
    super(message);
    this.name = "ProviderResolutionError";
    this.reason = reason;
  }
}

/** The Secret holding the HMAC key of a provider's lifecycle events. */
export const eventsSecretName = (provider: string) => `${provider}-events`;
export const EVENTS_HMAC_KEY = "hmac-key";

/** Cluster-scoped providers keep their events Secret in the operator's namespace. */
export function eventsSecretNamespace(ref: ProviderRefKey, operatorNamespace: string): string {
  return ref.kind === CLUSTER_PROVIDER_KIND ? operatorNamespace : (ref.namespace as string);
}

/** The receiver path for a provider: the path itself says whose key verifies the body. */
export function providerEventsPath(ref: ProviderRefKey): string {
  return ref.kind === CLUSTER_PROVIDER_KIND ? `/provider-events/cluster/${ref.name}` : `/provider-events/namespaced/${ref.namespace}/${ref.name}`;
}

export function providerKey(ref: ProviderRefKey): string {
  return ref.kind === CLUSTER_PROVIDER_KIND ? `${CLUSTER_PROVIDER_KIND}/${ref.name}` : `${PROVIDER_KIND}/${ref.namespace}/${ref.name}`;
}

interface Entry {
  fingerprint: string;
  client: ProviderClient;
  limiter: RateLimiter;
  inFlight: InFlightLimit;
  readLatency: ReadLatency;
}

/** maxInstances and capacity.maxSessions both bound the sessions kept on a provider: the smaller holds. */
export function smallerBound(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  return b === undefined ? a : Math.min(a, b);
}

export class ProviderConnections {
  private readonly secrets: SecretReader;
  private readonly timeoutMs: number;
  private readonly observe: ResponseObserver | undefined;
  private readonly lookup: (ref: ProviderRefKey) => ProviderObject | undefined;
  private readonly namespaceLabels: (namespace: string) => Readonly<Record<string, string>> | undefined;
  private readonly operatorNamespace: string;
  private readonly maxInFlight: number;
  private readonly maxPauseMs: number | undefined;
  private readonly egress: EgressGuard | undefined;
  private readonly mayWrite: (() => boolean) | undefined;
  private readonly entries = new Map<string, Entry>();

  constructor(options: {
    secrets: SecretReader;
    timeoutMs: number;
    lookup: (ref: ProviderRefKey) => ProviderObject | undefined;
    /** A namespace's labels (from the namespace informer), for allowedNamespaces selectors; undefined when it is not known. */
    namespaceLabels?: (namespace: string) => Readonly<Record<string, string>> | undefined;
    observe?: ResponseObserver;
    operatorNamespace: string;
    /** Requests on the wire to one provider at once (default 16, as PROVIDER_MAX_IN_FLIGHT). */
    maxInFlight?: number;
    /** The longest pause a provider may impose (PROVIDER_MAX_PAUSE); default: no ceiling. */
    maxPauseMs?: number;
    /** Address ranges never connected to (EGRESS_DENY_CIDRS); default: the transport's default list. */
    egressDeny?: readonly string[];
    /** Leader election's answer to "may this replica change anything now?"; absent means always. */
    mayWrite?: () => boolean;
  }) {
    this.secrets = options.secrets;
    this.maxInFlight = options.maxInFlight ?? 16;
    this.maxPauseMs = options.maxPauseMs;
    this.egress = options.egressDeny ? new EgressGuard({ deny: options.egressDeny }) : undefined;
    this.mayWrite = options.mayWrite;
    this.operatorNamespace = options.operatorNamespace;
    this.timeoutMs = options.timeoutMs;
    this.lookup = options.lookup;
    this.namespaceLabels = options.namespaceLabels ?? (() => undefined);
    this.observe = options.observe;
  }

  /**
   * The provider with its credentials, or a ProviderResolutionError saying what is missing.
   * With `forNamespace` (the instance's namespace: every path on behalf of an instance
   * gives it), a cluster provider resolves only for a namespace its allowedNamespaces lets
   * in, so observe, cleanup, quota and events all inherit the boundary from here.
   */
  async resolve(ref: ProviderRefKey, forNamespace?: string): Promise<ResolvedProvider> {
    const object = this.lookup(ref);
    const key = providerKey(ref);
    if (!object || object.metadata.deletionTimestamp) {
      const where = ref.kind === CLUSTER_PROVIDER_KIND ? "" : ` in namespace ${ref.namespace}`;
      throw new ProviderResolutionError("ProviderNotFound", `${ref.kind} ${ref.name} does not exist${where}`);
    }
    const parsed = ref.kind === CLUSTER_PROVIDER_KIND ? parseClusterProviderSpec(object.spec) : parseProviderSpec(object.spec);
    if (!parsed.success) throw new ProviderResolutionError("InvalidSpec", `${ref.kind} ${ref.name} has an invalid spec: ${parsed.error.issues[0]?.message}`);
    const spec = parsed.data;
    const cluster = ref.kind === CLUSTER_PROVIDER_KIND;
    if (cluster && forNamespace !== undefined) {
      const refusal = namespaceRefusal(spec as ClusterProviderSpec, forNamespace, this.namespaceLabels(forNamespace));
      if (refusal) throw new ProviderResolutionError("ProviderNotAllowed", `ClusterWhatsAppProvider ${ref.name} ${refusal}`);
    }
    const credentials = spec.credentialsSecretRef as { name: string; key: string; namespace?: string } | undefined;
    const { apiKey, login } = credentials
      ? await readCredentials(
          this.secrets,
          { namespace: credentials.namespace ?? (ref.namespace as string), name: credentials.name, key: credentials.key },
          // A cluster provider's key serves every namespace: hidden in all of their texts.
          cluster ? OPERATOR_SCOPE : ref.namespace,
        )
      : {};
    const url = spec.url ?? PROVIDER_MODULES[spec.type].defaultUrl;
    if (!url) throw new ProviderResolutionError("InvalidSpec", `${ref.kind} ${ref.name} has no url`);
    const settings: ProviderSettings = {
      type: spec.type,
      url: url.replace(/\/+$/, ""),
      ...(apiKey !== undefined ? { apiKey } : {}),
      ...(login !== undefined ? { login } : {}),
      ...(spec.whapi ? { whapi: { apiKeyInQuery: spec.whapi.apiKeyInQuery } } : {}),
      rateLimit: { requestsPerSecond: spec.rateLimit?.requestsPerSecond ?? 10, burst: spec.rateLimit?.burst ?? 20 },
      timeoutMs: this.timeoutMs,
    };
    return {
      key,
      ref,
      object,
      events: await this.eventsTarget(ref, object, spec.events?.url),
      type: spec.type,
      client: this.clientFor(key, settings),
      settings,
      pollIntervalMs: spec.pollInterval ? parseDuration(spec.pollInterval) : undefined,
      maxInstances: smallerBound(spec.maxInstances, spec.capacity?.maxSessions),
      maxConcurrentStarts: spec.maxConcurrentStarts,
      adoption: cluster ? ((spec as ClusterProviderSpec).adoption ?? "Disabled") : "Allowed",
    };
  }

  /**
   * Which gateway a provider resource reaches ("type url"), from the cache and without its
   * credentials: two provider resources pointing at one gateway share its sessions.
   */
  endpoint(ref: ProviderRefKey): string | undefined {
    const spec = (this.lookup(ref)?.spec ?? {}) as { type?: ProviderType; url?: string };
    if (!spec.type || !(spec.type in PROVIDER_MODULES)) return undefined;
    const url = spec.url ?? PROVIDER_MODULES[spec.type].defaultUrl;
    return url === undefined ? undefined : `${spec.type} ${url.replace(/\/+$/, "")}`;
  }

  /**
   * Whether a cluster provider lets `namespace` in, from the caches alone: for the callers
   * that only need the boundary (quota counts, which instances an event may reach).
   */
  allows(ref: ProviderRefKey, namespace: string): boolean {
    if (ref.kind !== CLUSTER_PROVIDER_KIND) return ref.namespace === namespace;
    const parsed = parseClusterProviderSpec(this.lookup(ref)?.spec);
    return parsed.success && namespaceRefusal(parsed.data, namespace, this.namespaceLabels(namespace)) === undefined;
  }

  /**
   * The receiver URL for this provider's events and its HMAC key, once the provider
   * reconciler has created the key's Secret (until then events are simply not wired).
   */
  private async eventsTarget(ref: ProviderRefKey, object: ProviderObject, baseUrl: string | undefined): Promise<ResolvedProvider["events"]> {
    if (!baseUrl) return undefined;
    const secret = await this.secrets.owned(eventsSecretNamespace(ref, this.operatorNamespace), eventsSecretName(object.metadata.name), object.metadata.uid);
    const hmacKey = secretValue(secret, EVENTS_HMAC_KEY, OPERATOR_SCOPE);
    if (!hmacKey) return undefined;
    return { url: `${baseUrl.replace(/\/+$/, "")}${providerEventsPath(ref)}`, hmacKey };
  }

  forget(key: string): void {
    this.entries.delete(key);
  }

  private clientFor(key: string, settings: ProviderSettings): ProviderClient {
    const fingerprint = createHash("sha256")
      .update(JSON.stringify([settings.type, settings.url, settings.apiKey ?? "", settings.login ?? null, settings.whapi ?? null, settings.timeoutMs]))
      .digest("hex");
    const existing = this.entries.get(key);
    if (existing) {
      existing.limiter.update(settings.rateLimit);
      if (existing.fingerprint === fingerprint) return existing.client;
    }
    // The limiter and the in-flight bound outlive a client rebuilt for new settings: they belong to the provider.
    // A pass waits for the provider's gate or a token at most one request timeout; longer, it reports RateLimited and comes back.
    const limiter =
      existing?.limiter ??
      new RateLimiter(settings.rateLimit, { maxWaitMs: this.timeoutMs, name: settings.type, ...(this.maxPauseMs === undefined ? {} : { maxPauseMs: this.maxPauseMs }) });
    const inFlight = existing?.inFlight ?? new InFlightLimit(this.maxInFlight);
    const readLatency = existing?.readLatency ?? new ReadLatency();
    const deps: ProviderDeps = {
      limiter,
      inFlight,
      readLatency,
      ...(this.observe ? { observe: this.observe } : {}),
      ...(this.mayWrite ? { mayWrite: this.mayWrite } : {}),
      ...(this.egress ? { egress: this.egress } : {}),
    };
    const client = rememberingSecrets(traced(PROVIDER_MODULES[settings.type].createClient(settings, deps)));
    this.entries.set(key, { fingerprint, client, limiter, inFlight, readLatency });
    return client;
  }
}

/** The credentials Secret's keys for an account login (wapiz), beside the API key or token. */
export const LOGIN_EMAIL_KEY = "email";
export const LOGIN_PASSWORD_KEY = "password";

/**
 * What the credentials Secret holds: the value under `key` (an API key or token) and, when
 * it has both `email` and `password`, an account login. With a login the key may be absent.
 * Throws MissingSecretError when the Secret is missing or holds neither.
 */
async function readCredentials(
  secrets: SecretReader,
  ref: { readonly namespace: string; readonly name: string; readonly key: string },
  scope: string | undefined,
): Promise<Pick<ProviderSettings, "apiKey" | "login">> {
  const secret = await secrets.secret(ref.namespace, ref.name);
  if (!secret) throw new MissingSecretError(ref.namespace, ref.name);
  // Through secretValue: the redactor learns each value before it can be echoed anywhere.
  const value = (key: string) => secretValue(secret, key, scope);
  const apiKey = value(ref.key);
  const email = value(LOGIN_EMAIL_KEY);
  const password = value(LOGIN_PASSWORD_KEY);
  const login = email && password ? { email, password } : undefined;
  if (apiKey === undefined && login === undefined) throw new MissingSecretError(ref.namespace, ref.name, ref.key);
  return { ...(apiKey !== undefined ? { apiKey } : {}), ...(login ? { login } : {}) };
}

/**
 * Why a cluster provider does not let `namespace` in, or undefined when it does. Absent
 * allowedNamespaces means no namespace: sharing a gateway is a decision an admin writes down.
 */
export function namespaceRefusal(
  spec: Pick<ClusterProviderSpec, "allowedNamespaces">,
  namespace: string,
  labels: Readonly<Record<string, string>> | undefined,
): string | undefined {
  const allowed = spec.allowedNamespaces;
  if (!allowed) return `lets no namespace use it: its spec.allowedNamespaces is not set (an admin sets {from: All} or {from: Selector, selector: ...})`;
  if (allowed.from === "All") return undefined;
  if (allowed.selector && labels !== undefined && matchesSelector(allowed.selector, labels)) return undefined;
  return `does not let namespace ${namespace} use it: the namespace's labels do not match its spec.allowedNamespaces.selector`;
}

/**
 * The client, telling the redactor every secret it is given or answers with (keys, PINs,
 * HMAC keys; QR payloads and pairing codes) before a provider could echo it, each in the
 * scope of the instance's namespace (the operator's own events key in the operator's).
 */
function rememberingSecrets(client: ProviderClient): ProviderClient {
  const seen = (ref: InstanceRef): InstanceRef => {
    const scope = redactor.in(ref.namespace);
    scope.remember(ref.apiKey, ref.webhook?.hmacKey, ...(ref.sessionSecrets ?? []));
    scope.rememberExact(ref.cloudApi?.pin);
    redactor.remember(ref.providerEvents?.hmacKey);
    return ref;
  };
  return {
    type: client.type,
    capabilities: client.capabilities,
    checkHealth: (options) => {
      redactor.remember(options?.instanceKey);
      return client.checkHealth(options);
    },
    observe: (ref) => client.observe(seen(ref)),
    create: (ref, options) => client.create(seen(ref), options),
    connect: (ref, id) => client.connect(seen(ref), id),
    disconnect: (ref, id) => client.disconnect(seen(ref), id),
    restart: (ref, id) => client.restart(seen(ref), id),
    logout: (ref, id) => client.logout(seen(ref), id),
    remove: (ref, id) => client.remove(seen(ref), id),
    configureWebhook: (ref, id) => client.configureWebhook(seen(ref), id),
    ...(client.claim ? { claim: (ref: InstanceRef, id: string) => (client.claim as NonNullable<ProviderClient["claim"]>)(seen(ref), id) } : {}),
    ...(client.release ? { release: (ref: InstanceRef, id: string) => (client.release as NonNullable<ProviderClient["release"]>)(seen(ref), id) } : {}),
    // Answers fingerprints only: nothing in it to remember.
    ...(client.listSessions ? { listSessions: () => (client.listSessions as NonNullable<ProviderClient["listSessions"]>)() } : {}),
    ...(client.readSessionConfig
      ? { readSessionConfig: (ref: InstanceRef, id: string) => (client.readSessionConfig as NonNullable<ProviderClient["readSessionConfig"]>)(seen(ref), id) }
      : {}),
    ...(client.applySessionConfig
      ? { applySessionConfig: (ref: InstanceRef, id: string) => (client.applySessionConfig as NonNullable<ProviderClient["applySessionConfig"]>)(seen(ref), id) }
      : {}),
    fetchQr: async (ref, id) => {
      const qr = await client.fetchQr(seen(ref), id);
      redactor.in(ref.namespace).rememberBriefly(qr?.text);
      return qr;
    },
    requestPairingCode: async (ref, id, phoneNumber) => {
      const code = await client.requestPairingCode(seen(ref), id, phoneNumber);
      // A pairing code is short (8 characters) and plain, but secret while it lasts.
      redactor.in(ref.namespace).rememberExact(code);
      return code;
    },
  };
}
