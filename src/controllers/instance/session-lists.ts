/**
 * Instances at rest on a provider that can list its sessions (ProviderClient.listSessions)
 * are not looked at one by one: each provider's list is read once per poll interval, and
 * only an instance whose session changed in it, or left it, is woken for a real look. At
 * rest a fleet of N sessions then costs one provider call per interval instead of N, and
 * no pass at all. A pass that ends at rest hands its instance here (watch); any other pass
 * takes it back (unwatch). A list that fails wakes every instance it watched: their own
 * looks then meet the failure and report it, as they would without a list.
 */
import type { ProviderClient } from "../../providers/types.ts";

/** What the lists need of a provider: its key and a client that may list. */
export interface ListingProvider {
  readonly key: string;
  readonly client: Pick<ProviderClient, "listSessions">;
}

interface Watched {
  readonly id: string;
  readonly fingerprint: string;
}

interface ProviderWatch {
  client: ListingProvider["client"];
  intervalMs: number;
  readonly instances: Map<string, Watched>;
  timer?: ReturnType<typeof setTimeout>;
}

export interface SessionListsOptions {
  /** Wakes instances for a real look (the instance controller's queue). */
  readonly wake: (keys: readonly string[]) => void;
  /** Tells of a list that failed (to log it). */
  readonly onListFailed?: (provider: string, error: unknown) => void;
  /** Tests drive the polls themselves (pollNow): no timers. */
  readonly timers?: boolean;
}

export class SessionLists {
  private readonly providers = new Map<string, ProviderWatch>();
  /** instance key → provider key: where to take it back from. */
  private readonly placedOn = new Map<string, string>();
  private readonly options: SessionListsOptions;
  private stopped = false;

  constructor(options: SessionListsOptions) {
    this.options = options;
  }

  /** The instance rests on `provider` with the session a look just found; its next look comes from the list, every `intervalMs`. */
  watch(provider: ListingProvider, intervalMs: number, key: string, session: { readonly id: string; readonly fingerprint: string }): void {
    if (this.stopped || !provider.client.listSessions) return;
    this.unwatch(key);
    // A provider edited since (a new client, another interval) is watched as it now is.
    const watch: ProviderWatch = this.providers.get(provider.key) ?? { client: provider.client, intervalMs, instances: new Map() };
    watch.client = provider.client;
    watch.intervalMs = intervalMs;
    watch.instances.set(key, { id: session.id, fingerprint: session.fingerprint });
    this.providers.set(provider.key, watch);
    this.placedOn.set(key, provider.key);
    this.schedule(provider.key, watch);
  }

  /** A pass looks at it itself now (or it is gone). */
  unwatch(key: string): void {
    const provider = this.placedOn.get(key);
    if (provider === undefined) return;
    this.placedOn.delete(key);
    this.providers.get(provider)?.instances.delete(key);
  }

  /** How many instances rest on the list of `provider`. */
  watching(provider: string): number {
    return this.providers.get(provider)?.instances.size ?? 0;
  }

  /** Reads the provider's list now and wakes every instance whose session is not in it as it was seen. */
  async pollNow(provider: string): Promise<void> {
    const watch = this.providers.get(provider);
    if (!watch || watch.instances.size === 0 || !watch.client.listSessions) return;
    let listed: ReadonlyMap<string, string> | undefined;
    try {
      listed = await watch.client.listSessions();
    } catch (error) {
      this.options.onListFailed?.(provider, error);
    }
    const changed = [...watch.instances].filter(([, seen]) => listed?.get(seen.id) !== seen.fingerprint).map(([key]) => key);
    for (const key of changed) this.unwatch(key);
    if (changed.length > 0) this.options.wake(changed);
  }

  /** No more polls: leadership ended or the operator stops. */
  stop(): void {
    this.stopped = true;
    for (const watch of this.providers.values()) clearTimeout(watch.timer);
    this.providers.clear();
    this.placedOn.clear();
  }

  private schedule(provider: string, watch: ProviderWatch): void {
    if (watch.timer || this.options.timers === false) return;
    watch.timer = setTimeout(() => {
      delete watch.timer;
      void this.pollNow(provider).finally(() => {
        if (!this.stopped && watch.instances.size > 0) this.schedule(provider, watch);
      });
    }, watch.intervalMs);
    watch.timer.unref?.();
  }
}
