/**
 * Wires the controllers together: informers enqueue keys, work queues run the
 * reconcilers with bounded concurrency. Level-triggered: watches only say "look at
 * this key", never what to do.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { instanceSpecSchema } from "./api/instance.ts";
import { providerWorkerCap, type OperatorConfig } from "./config.ts";
import type { Clock, InstanceObject, OperatorContext, ProviderObject, ReconcileResult } from "./controllers/context.ts";
import { instancesUsing } from "./controllers/instance/observe.ts";
import { placedRefOf } from "./controllers/instance/provider-ref.ts";
import { unplacedInstances } from "./controllers/instance/placement.ts";
import { reconcileInstance } from "./controllers/instance/reconciler.ts";
import { isWebhookSecret } from "./controllers/instance/secrets.ts";
import { CLUSTER_PROVIDER_KIND, PROVIDER_KIND, ProviderConnections, providerKey } from "./controllers/provider/connections.ts";
import { reconcileProvider } from "./controllers/provider/reconciler.ts";
import type { KubeClient } from "./kube/client.ts";
import { EventRecorder } from "./kube/events.ts";
import { SecretReader, slimSecret, type SlimSecret } from "./kube/secret-cache.ts";
import { CREDENTIAL_LABEL, MANAGED_BY, MANAGED_LABEL, type SecretObject } from "./kube/secrets.ts";
import { CLUSTER_PROVIDERS, INSTANCES, keyOf, NAMESPACES, PROVIDERS, SECRETS, type KubeObject, type ResourceType } from "./kube/resources.ts";
import { isPanic, type Metrics, type ProviderRequestSample } from "./metrics.ts";
import { Informer, type InformerEvent } from "./runtime/informer.ts";
import { MultiInformer } from "./runtime/multi-informer.ts";
import { WorkQueue, type WorkQueueOptions } from "./runtime/work-queue.ts";
import { systemClock } from "./runtime/retry.ts";
import { LookBudget } from "./controllers/look-budget.ts";
import { ProviderError } from "./providers/errors.ts";
import { PROVIDER_MODULES } from "./providers/registry.ts";
import { withSpan } from "./tracing.ts";

/** How long a stopping operator waits for its queued Events to be sent. */
const EVENT_FLUSH_MS = 5_000;

export interface OperatorOptions {
  readonly kube: KubeClient;
  readonly config: OperatorConfig;
  readonly log: Logger;
  readonly clock?: Clock;
  readonly host?: string;
  readonly metrics?: Metrics;
  /** Whether this replica may change anything at a provider now (leader election); absent means always. */
  readonly mayWrite?: () => boolean;
  /** Stands in for the instance reconciler (tests of the pass's logging and metrics). */
  readonly reconcileInstance?: typeof reconcileInstance;
}

/**
 * The Secrets whose values the cache keeps: the webhook keys of instances and the event
 * keys of providers, read on every pass that wires a provider. Every other Secret is kept
 * as metadata and a digest (credentials are fetched once per version by SecretReader).
 */
function keepSecretData(secret: SecretObject): boolean {
  if (isWebhookSecret(secret)) return true;
  return (secret.metadata.ownerReferences ?? []).some((owner) => owner.kind === PROVIDER_KIND || owner.kind === CLUSTER_PROVIDER_KIND);
}

/**
 * The Secrets the operator watches: its own, and those users labelled for it. A selector
 * cannot OR two labels, so each is a watch of its own; ours come first, so that our
 * writes are remembered in their part. Nobody else's Secret is held, not even its name.
 */
const SECRET_SELECTORS = [`${MANAGED_LABEL}=${MANAGED_BY[MANAGED_LABEL]}`, `${CREDENTIAL_LABEL}=true`] as const;

export class Operator {
  readonly context: OperatorContext;
  readonly instanceQueue: WorkQueue;
  readonly providerQueue: WorkQueue;
  private readonly secrets: MultiInformer<SlimSecret>;
  /** Why each backed-off instance key last failed: "kube", or the provider's key. */
  private readonly failureCause = new Map<string, string>();
  private readonly options: OperatorOptions;
  private cachesStarted = false;
  private workersStarted = false;

  constructor(options: OperatorOptions) {
    this.options = options;
    const { kube, config, log } = options;
    const namespaced = <T extends KubeObject>(type: ResourceType, transform?: (object: KubeObject) => KubeObject, labelSelectors: readonly (string | undefined)[] = [undefined]) =>
      new MultiInformer<T>(
        labelSelectors.flatMap((labelSelector) =>
          (config.namespaces.length > 0 ? config.namespaces : [undefined]).map(
            (namespace) =>
              new Informer<T>({
                kube,
                type,
                log,
                resyncMs: config.resync,
                ...(namespace ? { namespace } : {}),
                ...(transform ? { transform } : {}),
                ...(labelSelector ? { labelSelector } : {}),
              }),
          ),
        ),
      );
    const instances = namespaced<InstanceObject>(INSTANCES);
    const providers = namespaced<ProviderObject>(PROVIDERS);
    const clusterProviders = new MultiInformer<ProviderObject>([new Informer<ProviderObject>({ kube, type: CLUSTER_PROVIDERS, log, resyncMs: config.resync })]);
    this.secrets = namespaced<SlimSecret>(SECRETS, slimSecret(keepSecretData) as (object: KubeObject) => KubeObject, SECRET_SELECTORS);
    // Only names and labels: what a ClusterWhatsAppProvider's allowedNamespaces selector reads.
    const namespaces = new Informer<KubeObject>({ kube, type: NAMESPACES, log, resyncMs: 0, transform: namespaceLabelsOnly });
    const secretReader = new SecretReader({ kube, cache: this.secrets });
    const connections = new ProviderConnections({
      secrets: secretReader,
      timeoutMs: config.providerTimeout,
      operatorNamespace: config.operatorNamespace,
      maxInFlight: config.providerMaxInFlight,
      maxPauseMs: config.providerMaxPause,
      egressDeny: config.egressDenyCidrs,
      ...(options.mayWrite ? { mayWrite: options.mayWrite } : {}),
      lookup: (ref) =>
        ref.kind === CLUSTER_PROVIDER_KIND ? clusterProviders.get(ref.name) : providers.get(`${ref.namespace}/${ref.name}`),
      namespaceLabels: (namespace) => {
        const object = namespaces.get(namespace);
        return object ? (object.metadata.labels ?? {}) : undefined;
      },
      ...(options.metrics ? { observe: (provider: string, code: string, sample?: ProviderRequestSample) => options.metrics?.observeProviderRequest(provider, code, sample) } : {}),
    });
    this.context = {
      kube,
      log,
      config,
      clock: options.clock ?? systemClock,
      events: new EventRecorder({
        kube,
        component: "wa-operator",
        log,
        ...(options.host ? { host: options.host } : {}),
        ...(options.metrics ? { onDrop: () => options.metrics?.eventsDropped.inc() } : {}),
      }),
      caches: { instances, providers, clusterProviders, secrets: this.secrets },
      secrets: secretReader,
      connections,
      pacing: new Map(),
      lookBudget: new LookBudget(),
      ...(options.metrics ? { observers: { instancePhase: (key: string, phase: string | undefined) => options.metrics?.instancePhase(key, phase) } } : {}),
    };
    options.metrics?.readEventsFrom(this.context.events);
    options.metrics?.readStatusFrom({
      instances: () => instances.list(),
      providers: () => [
        ...providers.list().map((object) => ({ kind: PROVIDER_KIND, object })),
        ...clusterProviders.list().map((object) => ({ kind: CLUSTER_PROVIDER_KIND, object })),
      ],
    });
    this.instanceQueue = new WorkQueue({
      concurrency: config.concurrency,
      // One slow or paused provider holds at most this many workers; the rest serve other providers.
      groupOf: (key) => this.providerKeyOf(key),
      maxPerGroup: providerWorkerCap(config),
      ...queueMetrics(options.metrics, "whatsappinstance"),
    });
    this.providerQueue = new WorkQueue({ concurrency: Math.max(1, Math.ceil(config.concurrency / 4)), ...queueMetrics(options.metrics, "whatsappprovider") });
    options.metrics?.maxConcurrentReconciles.set({ controller: "whatsappinstance" }, config.concurrency);
    options.metrics?.maxConcurrentReconciles.set({ controller: "whatsappprovider" }, Math.max(1, Math.ceil(config.concurrency / 4)));
    options.metrics?.registerController("whatsappinstance", this.instanceQueue);
    options.metrics?.registerController("whatsappprovider", this.providerQueue);
    instances.on((event) => this.onInstance(event));
    providers.on((event) => this.onProvider(PROVIDER_KIND, event));
    clusterProviders.on((event) => this.onProvider(CLUSTER_PROVIDER_KIND, event));
    this.secrets.on((event) => this.onSecret(event));
    namespaces.on((event) => this.onNamespace(event));
    this.informers = [instances, providers, clusterProviders, this.secrets, namespaces];
  }

  private readonly informers: readonly { start(): void; stop(): Promise<void>; readonly synced: Promise<void>; readonly hasSynced: boolean }[];

  /** Starts watching; resolves once every cache has synced and the workers run. */
  async start(): Promise<void> {
    await this.startCaches();
    this.startWorkers();
  }

  /**
   * Starts the informers. Every replica keeps its caches warm (so /readyz is true and a
   * new leader starts at once); only the leader runs workers.
   */
  async startCaches(): Promise<void> {
    if (this.cachesStarted) return;
    this.cachesStarted = true;
    for (const informer of this.informers) informer.start();
    await Promise.all(this.informers.map((informer) => informer.synced));
  }

  /** Starts reconciling (the leader only). Keys queued meanwhile are processed now. */
  startWorkers(): void {
    if (this.workersStarted) return;
    this.workersStarted = true;
    this.instanceQueue.start((key) => this.run("whatsappinstance", this.instanceQueue, key, (ctx) => (this.options.reconcileInstance ?? reconcileInstance)(ctx, key)));
    // Keys added while the caches filled are new work, not polls.
    this.providerQueue.start((key) => {
      const [kind, rest] = splitProviderQueueKey(key);
      return this.run("whatsappprovider", this.providerQueue, key, (ctx) => reconcileProvider(ctx, kind, rest));
    });
    this.options.log.info({ namespaces: this.options.config.namespaces }, "reconciling");
  }

  /** Queues an instance for a look now (a provider event said it changed). */
  poke(namespace: string, name: string): boolean {
    if (!this.context.caches.instances.get(`${namespace}/${name}`)) return false;
    this.instanceQueue.add(`${namespace}/${name}`);
    return true;
  }

  get synced(): boolean {
    return this.informers.every((informer) => informer.hasSynced);
  }

  /** Stops taking work, finishes what is in flight, sends the Events still queued (for a few seconds at most), and stops the watches. */
  async stop(): Promise<void> {
    await Promise.all([this.instanceQueue.shutdown(), this.providerQueue.shutdown()]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.context.events.flush(), new Promise((resolve) => (timer = setTimeout(resolve, EVENT_FLUSH_MS)))]);
    clearTimeout(timer);
    await Promise.all(this.informers.map((informer) => informer.stop()));
  }

  /**
   * One pass: its own reconcileID (as controller-runtime's) on every line it logs, through
   * a child logger in a per-pass copy of the context.
   */
  private async run(controller: string, queue: WorkQueue, key: string, reconcile: (ctx: OperatorContext) => Promise<ReconcileResult>): Promise<void> {
    const started = performance.now();
    const reconcileID = randomUUID();
    const log = this.options.log.child({ controller, reconcileID });
    let outcome: "success" | "error" | "requeue" = "success";
    this.options.metrics?.activeWorkers.inc({ controller });
    try {
      const result = await withSpan("reconcile", { controller, key, reconcileID }, () => reconcile({ ...this.context, log }));
      if (result.backoff) {
        outcome = "error";
        queue.addRateLimited(key);
        if (queue === this.instanceQueue) this.failureCause.set(key, this.providerKeyOf(key) ?? "kube");
      } else {
        queue.forget(key);
        if (queue === this.instanceQueue) this.causeIsGone(key);
        if (result.requeueAfterMs !== undefined) {
          outcome = "requeue";
          queue.addAfter(key, result.requeueAfterMs);
        }
      }
    } catch (error) {
      outcome = "error";
      const delay = queue.addRateLimited(key);
      if (queue === this.instanceQueue) this.failureCause.set(key, error instanceof ProviderError ? (this.providerKeyOf(key) ?? "kube") : "kube");
      if (isPanic(error)) this.options.metrics?.reconcilePanics.inc({ controller });
      log.error({ key, err: error instanceof Error ? error.message : String(error), retryInMs: delay }, "reconcile failed");
    } finally {
      log.debug({ key, outcome, ms: Math.round(performance.now() - started) }, "reconciled");
      const metrics = this.options.metrics;
      if (metrics) {
        metrics.activeWorkers.dec({ controller });
        metrics.reconcileTotal.inc({ controller, result: outcome });
        if (outcome === "error") metrics.reconcileErrors.inc({ controller });
        metrics.reconcileTime.observe({ controller }, (performance.now() - started) / 1000);
      }
    }
  }

  /**
   * A pass succeeded: whatever made other instances of its provider (or every instance,
   * for a failure of the API server) back off is gone, so they look again now instead of
   * at the end of a backoff that may have grown to minutes.
   */
  private causeIsGone(key: string): void {
    const provider = this.providerKeyOf(key);
    this.failureCause.delete(key);
    const recovered = new Set(["kube", ...(provider ? [provider] : [])]);
    const keys = [...this.failureCause].filter(([, cause]) => recovered.has(cause)).map(([other]) => other);
    if (keys.length === 0) return;
    for (const other of keys) this.failureCause.delete(other);
    this.instanceQueue.retryBackedOffNow((candidate) => keys.includes(candidate));
  }

  private providerKeyOf(key: string): string | undefined {
    const instance = this.context.caches.instances.get(key);
    const spec = instance ? instanceSpecSchema.safeParse(instance.spec) : undefined;
    const ref = instance && spec?.success ? placedRefOf(instance, spec.data) : undefined;
    return ref ? providerKey(ref) : undefined;
  }

  private onInstance(event: InformerEvent<InstanceObject>): void {
    // Our own status writes come back as updates; looking again for them would only double
    // the calls to providers. Spec (generation), deletion, finalizers and annotations count.
    if (event.type === "updated" && event.old && !metadataChanged(event.old, event.object)) return;
    // A resync only makes sure nothing is forgotten: an instance with a look scheduled is not.
    if (event.type === "resync") {
      if (!this.instanceQueue.isScheduled(keyOf(event.object))) this.instanceQueue.add(keyOf(event.object), "routine");
      return;
    }
    this.instanceQueue.add(keyOf(event.object));
    if (event.type === "deleted") this.options.metrics?.forgetInstance(keyOf(event.object));
    if (event.type === "updated") return;
    // A new or removed instance changes its provider's count and may free a quota slot.
    const spec = instanceSpecSchema.safeParse(event.object.spec);
    if (!spec.success) return;
    // A deletion frees a slot that an instance waiting for placement may take.
    if (event.type === "deleted") this.wakeUnplaced();
    const ref = placedRefOf(event.object, spec.data);
    if (!ref) return;
    this.providerQueue.add(providerQueueKey(ref.kind, ref.kind === CLUSTER_PROVIDER_KIND ? ref.name : `${ref.namespace}/${ref.name}`));
    if (event.type === "deleted") {
      for (const other of instancesUsing(this.context, providerKey(ref))) this.instanceQueue.add(keyOf(other));
    }
  }

  private onProvider(kind: string, event: InformerEvent<ProviderObject>): void {
    const key = keyOf(event.object);
    this.providerQueue.add(providerQueueKey(kind, key), event.type === "resync" ? "routine" : "urgent");
    const readyBefore = event.old?.status?.conditions?.find((condition) => condition.type === "Ready")?.status;
    const readyNow = event.object.status?.conditions?.find((condition) => condition.type === "Ready")?.status;
    const specChanged = event.old?.metadata.generation !== event.object.metadata.generation;
    const labelsChanged = JSON.stringify(event.old?.metadata.labels ?? {}) !== JSON.stringify(event.object.metadata.labels ?? {});
    if (event.type === "resync" || (event.type === "updated" && !specChanged && !labelsChanged && readyBefore === readyNow)) return;
    // A new, relabelled, resized or newly Ready provider may have room for instances waiting for placement.
    this.wakeUnplaced();
    const ref = { kind, namespace: event.object.metadata.namespace, name: event.object.metadata.name };
    for (const instance of instancesUsing(this.context, providerKey(ref))) this.instanceQueue.add(keyOf(instance));
  }

  /** A namespace's labels changed: which cluster providers let it in may have too. */
  private onNamespace(event: InformerEvent<KubeObject>): void {
    if (event.type === "resync" || event.type === "deleted") return;
    if (event.type === "updated" && JSON.stringify(event.old?.metadata.labels ?? {}) === JSON.stringify(event.object.metadata.labels ?? {})) return;
    const namespace = event.object.metadata.name;
    for (const instance of this.context.caches.instances.list()) {
      if (instance.metadata.namespace !== namespace) continue;
      const spec = instanceSpecSchema.safeParse(instance.spec);
      if (spec.success && (placedRefOf(instance, spec.data)?.kind === CLUSTER_PROVIDER_KIND || spec.data.providerSelector)) this.instanceQueue.add(keyOf(instance));
    }
  }

  /** Instances with a providerSelector and no placement yet look again now. */
  private wakeUnplaced(): void {
    for (const instance of unplacedInstances(this.context)) this.instanceQueue.add(keyOf(instance));
  }

  /** A referenced Secret changed: re-check the providers and instances that read it. */
  private onSecret(event: InformerEvent<SlimSecret>): void {
    if (event.type === "resync") return;
    if (event.type === "updated" && event.old?.dataDigest === event.object.dataDigest) return;
    const namespace = event.object.metadata.namespace;
    const name = event.object.metadata.name;
    if (event.type === "deleted") this.context.secrets.drop(namespace as string, name);
    const providerOwner = event.object.metadata.ownerReferences?.find((reference) => reference.kind === PROVIDER_KIND || reference.kind === CLUSTER_PROVIDER_KIND);
    if (providerOwner) {
      // A provider's events Secret appeared or changed: its sessions get the new wiring.
      const ref = { kind: providerOwner.kind, namespace: providerOwner.kind === PROVIDER_KIND ? namespace : undefined, name: providerOwner.name };
      for (const instance of instancesUsing(this.context, providerKey(ref))) this.instanceQueue.add(keyOf(instance));
      if (event.type === "deleted") this.providerQueue.add(providerQueueKey(ref.kind, ref.kind === PROVIDER_KIND ? `${namespace}/${ref.name}` : ref.name));
      return;
    }
    const owner = event.object.metadata.ownerReferences?.find((reference) => reference.kind === INSTANCES.kind);
    if (owner) {
      // Our own Secrets change because we write them; only a deletion needs repair.
      if (event.type === "deleted") this.instanceQueue.add(`${namespace}/${owner.name}`);
      return;
    }
    const ctx = this.context;
    const matches = (ref: { name?: string; namespace?: string } | undefined, defaultNamespace: string | undefined) =>
      ref?.name === name && (ref.namespace ?? defaultNamespace) === namespace;
    for (const [kind, cache] of [
      [PROVIDER_KIND, ctx.caches.providers],
      [CLUSTER_PROVIDER_KIND, ctx.caches.clusterProviders],
    ] as const) {
      for (const provider of cache.list()) {
        const spec = provider.spec as { credentialsSecretRef?: { name?: string; namespace?: string } };
        if (!matches(spec.credentialsSecretRef, provider.metadata.namespace)) continue;
        this.onProvider(kind, { type: "updated", object: provider });
        this.providerQueue.add(providerQueueKey(kind, keyOf(provider)));
      }
    }
    for (const instance of ctx.caches.instances.list()) {
      if (instance.metadata.namespace !== namespace) continue;
      if (secretsNamedBy(instance).includes(name)) this.instanceQueue.add(keyOf(instance));
    }
  }
}

function namespaceLabelsOnly(object: KubeObject): KubeObject {
  const { name, uid, resourceVersion, labels } = object.metadata;
  return { metadata: { name, ...(uid ? { uid } : {}), ...(resourceVersion ? { resourceVersion } : {}), ...(labels ? { labels } : {}) } };
}

function metadataChanged(before: KubeObject, after: KubeObject): boolean {
  const a = before.metadata;
  const b = after.metadata;
  return (
    a.generation !== b.generation ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    JSON.stringify(a.finalizers ?? []) !== JSON.stringify(b.finalizers ?? []) ||
    JSON.stringify(a.annotations ?? {}) !== JSON.stringify(b.annotations ?? {})
  );
}

function queueMetrics(metrics: Metrics | undefined, name: string): Pick<WorkQueueOptions, "onDepth" | "onAdd" | "onRetry" | "onTaken" | "onDone"> {
  if (!metrics) return {};
  return {
    onDepth: (depth) => metrics.workqueueDepth.set({ name }, depth),
    onAdd: () => metrics.workqueueAdds.inc({ name }),
    onRetry: () => metrics.workqueueRetries.inc({ name }),
    onTaken: (seconds) => metrics.workqueueQueueDuration.observe({ name }, seconds),
    onDone: (seconds) => metrics.workqueueWorkDuration.observe({ name }, seconds),
  };
}

function providerQueueKey(kind: string, key: string): string {
  return `${kind}|${key}`;
}

function splitProviderQueueKey(key: string): [string, string] {
  const bar = key.indexOf("|");
  return [key.slice(0, bar), key.slice(bar + 1)];
}

/** The Secrets an instance's spec names: its key, its webhook's, and its provider type's own (the cloud_api PIN). */
function secretsNamedBy(instance: InstanceObject): readonly string[] {
  const parsed = instanceSpecSchema.safeParse(instance.spec);
  if (!parsed.success) return [];
  const spec = parsed.data;
  const own = Object.values(PROVIDER_MODULES).flatMap((module) => module.referencedSecrets?.(spec) ?? []);
  return [spec.credentialsSecretRef?.name, spec.webhook?.secretRef?.name, ...own].filter((name): name is string => name !== undefined);
}
