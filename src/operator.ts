/**
 * Builds the caches and the shared context, and connects each declared controller
 * (src/controllers/<kind>/controller.ts) to the informers its watches name. Which event
 * wakes which key is said in those declarations, not here. Level-triggered: watches only
 * say "look at this key", never what to do.
 */
import type { Logger } from "pino";
import type { InstanceObject, ProviderObject } from "./api/objects.ts";
import { providerWorkerCap, type OperatorConfig } from "./config.ts";
import type { Clock, OperatorContext } from "./controllers/context.ts";
import { instanceController } from "./controllers/instance/controller.ts";
import { INSTANCE_INDEXERS } from "./controllers/instance/indexes.ts";
import { Placements } from "./controllers/instance/placement-reservations.ts";
import { GatewayRestarts } from "./controllers/instance/restart-recovery.ts";
import { ProviderError } from "./providers/errors.ts";
import { SessionLists } from "./controllers/instance/session-lists.ts";
import { StartSlots } from "./controllers/instance/start-slots.ts";
import type { reconcileInstance } from "./controllers/instance/reconciler.ts";
import { isWebhookSecret } from "./controllers/instance/secrets.ts";
import { Controller } from "./controllers/kit/controller.ts";
import { LookBudget } from "./controllers/look-budget.ts";
import { CLUSTER_PROVIDER_KIND, PROVIDER_KIND, ProviderConnections } from "./controllers/provider/connections.ts";
import { providerController } from "./controllers/provider/controller.ts";
import type { WatchSource } from "./controllers/watch-sources.ts";
import type { KubeClient } from "./kube/client.ts";
import { EventRecorder } from "./kube/events.ts";
import { SecretReader, slimSecret, type SlimSecret } from "./kube/secret-cache.ts";
import { CREDENTIAL_LABEL, MANAGED_BY, MANAGED_LABEL, type SecretObject } from "./kube/secrets.ts";
import { CLUSTER_PROVIDERS, INSTANCES, keyOf, NAMESPACES, PROVIDERS, SECRETS, type KubeObject, type ResourceType } from "./kube/resources.ts";
import type { Metrics, ProviderRequestSample } from "./metrics.ts";
import { Informer, type InformerEvent, type InformerOptions } from "./runtime/informer.ts";
import { MultiInformer } from "./runtime/multi-informer.ts";
import { systemClock } from "./runtime/retry.ts";
import type { WorkQueue } from "./runtime/work-queue.ts";

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
  /** The two controllers, declared in src/controllers/<kind>/controller.ts. */
  readonly instances: Controller<WatchSource, OperatorContext>;
  readonly providers: Controller<WatchSource, OperatorContext>;
  private readonly secrets: MultiInformer<SlimSecret>;
  private readonly options: OperatorOptions;
  private cachesStarted = false;
  private workersStarted = false;

  constructor(options: OperatorOptions) {
    this.options = options;
    const { kube, config, log } = options;
    const namespaced = <T extends KubeObject>(
      type: ResourceType,
      transform?: (object: KubeObject) => KubeObject,
      labelSelectors: readonly (string | undefined)[] = [undefined],
      indexers?: InformerOptions["indexers"],
    ) =>
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
                ...(indexers ? { indexers } : {}),
              }),
          ),
        ),
      );
    const instances = namespaced<InstanceObject>(INSTANCES, undefined, undefined, INSTANCE_INDEXERS);
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
    /** Queues instances for a look now: freed start slots, a gateway restart, a changed session in a list. */
    const wakeInstances = (keys: readonly string[]) => {
      for (const key of keys) this.instances.wake({ key });
    };
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
        // More new or in-flight instances waiting for a worker than there are workers: their writes go first.
        saturated: () => this.instances.queue.pressingMoreThan(config.concurrency),
      }),
      caches: { instances, providers, clusterProviders, secrets: this.secrets },
      secrets: secretReader,
      connections,
      pacing: new Map(),
      lookBudget: new LookBudget(),
      startSlots: new StartSlots(),
      placements: new Placements(options.mayWrite ? { mayWrite: options.mayWrite } : {}),
      gatewayRestarts: new GatewayRestarts(),
      wakeInstances,
      sessionLists: new SessionLists({
        wake: wakeInstances,
        // The kind only: the instances' own looks report the failure in their conditions, redacted.
        onListFailed: (provider, error) => log.info({ provider, kind: error instanceof ProviderError ? error.kind : "unexpected" }, "listing the provider's sessions failed; its instances look themselves"),
      }),
      ...(options.metrics
        ? {
            observers: {
              instancePhase: (key: string, phase: string | undefined) => options.metrics?.instancePhase(key, phase),
              startSlotWait: ({ kind, namespace, name }: { kind: string; namespace?: string | undefined; name: string }, seconds: number) =>
                options.metrics?.startSlotWait.observe({ kind, ...(namespace ? { namespace } : {}), name }, seconds),
            },
          }
        : {}),
    };
    options.metrics?.readEventsFrom(this.context.events);
    options.metrics?.readStatusFrom({
      instances: () => instances.list(),
      providers: () => [
        ...providers.list().map((object) => ({ kind: PROVIDER_KIND, object })),
        ...clusterProviders.list().map((object) => ({ kind: CLUSTER_PROVIDER_KIND, object })),
      ],
    });
    this.instances = new Controller(
      instanceController({
        workers: config.concurrency,
        maxPerProvider: providerWorkerCap(config),
        ...(options.reconcileInstance ? { reconcile: options.reconcileInstance } : {}),
      }),
      this.context,
      options.metrics,
    );
    this.providers = new Controller(providerController({ workers: Math.max(1, Math.ceil(config.concurrency / 4)) }), this.context, options.metrics);
    const sources: Record<WatchSource, { on(listener: (event: InformerEvent<KubeObject>) => void): void }> = {
      instances,
      providers,
      clusterProviders,
      secrets: this.secrets,
      namespaces,
    };
    // What happens to the caches themselves comes first, then each controller hears of it.
    instances.on((event) => {
      if (event.type === "deleted") options.metrics?.forgetInstance(keyOf(event.object));
    });
    this.secrets.on((event) => {
      if (event.type === "deleted") this.context.secrets.drop(event.object.metadata.namespace as string, event.object.metadata.name);
    });
    for (const controller of [this.instances, this.providers]) {
      for (const source of new Set(controller.definition.watches.map((entry) => entry.source))) {
        sources[source].on((event) => controller.notify(source, event));
      }
    }
    this.informers = [instances, providers, clusterProviders, this.secrets, namespaces];
  }

  get instanceQueue(): WorkQueue {
    return this.instances.queue;
  }

  get providerQueue(): WorkQueue {
    return this.providers.queue;
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
    this.instances.start();
    this.providers.start();
    this.options.log.info({ namespaces: this.options.config.namespaces }, "reconciling");
  }

  /** Queues an instance for a look now (a provider event said it changed). */
  poke(namespace: string, name: string): boolean {
    if (!this.context.caches.instances.get(`${namespace}/${name}`)) return false;
    this.instances.wake({ key: `${namespace}/${name}` });
    return true;
  }

  get synced(): boolean {
    return this.informers.every((informer) => informer.hasSynced);
  }

  /** Stops taking work, finishes what is in flight, sends the Events still queued (for a few seconds at most), and stops the watches. */
  async stop(): Promise<void> {
    this.context.sessionLists?.stop();
    await Promise.all([this.instances.queue.shutdown(), this.providers.queue.shutdown()]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.context.events.flush(), new Promise((resolve) => (timer = setTimeout(resolve, EVENT_FLUSH_MS)))]);
    clearTimeout(timer);
    await Promise.all(this.informers.map((informer) => informer.stop()));
  }
}

function namespaceLabelsOnly(object: KubeObject): KubeObject {
  const { name, uid, resourceVersion, labels } = object.metadata;
  return { metadata: { name, ...(uid ? { uid } : {}), ...(resourceVersion ? { resourceVersion } : {}), ...(labels ? { labels } : {}) } };
}
