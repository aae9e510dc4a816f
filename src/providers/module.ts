/**
 * What makes a provider type: one module per folder (src/providers/<type>/module.ts)
 * names everything the rest of the operator needs to know about it, and registry.ts
 * holds one per ProviderType. Nothing provider-specific lives outside its folder.
 */
import type { InstanceSpec } from "../api/instance.ts";

/** A top-level field of WhatsAppInstance's spec. */
export type InstanceSpecField = keyof InstanceSpec;
import type { InstanceOptions, ProviderCapabilities, ProviderFactory, ProviderType } from "./types.ts";
import type { SessionHook } from "./session-settings.ts";

export interface ProviderModule {
  readonly type: ProviderType;
  /** What the gateway is, for the CRD's description of spec.type ("self-hosted WAHA"). */
  readonly title: string;
  /** What the provider can do; the planner never asks for more. */
  readonly capabilities: ProviderCapabilities;
  /**
   * What spec.adopt.id names for this type ("WAHA session name"), for a provider whose
   * sessions an instance may take over by id. Absent: the type always takes over the number
   * or device it is given (cloud_api, whapi), and spec.adopt means nothing to it.
   */
  readonly adoptId?: string;
  /** Spec sections only this type reads (spec.cloudApi); on an instance of another type they are refused as InvalidSpec. */
  readonly specFields?: readonly InstanceSpecField[];
  /** The base URL when spec.url is left out (only a public service has one). */
  readonly defaultUrl?: string;
  readonly createClient: ProviderFactory;
  /** The provider's own InstanceRef fields, from the instance's spec and the Secrets it names. */
  readonly instanceOptions?: InstanceOptions;
  /** Secrets an instance's provider-specific spec names (a change to one means a look at the instance). */
  readonly referencedSecrets?: (spec: InstanceSpec) => readonly string[];
  /** The lifecycle events the provider posts to the operator's receiver (provider spec.events). */
  readonly lifecycleEvents?: LifecycleEvents;
  /** How a session is proven to be one instance's, and which sessions a spec can name. */
  readonly ownership: Ownership;
  /**
   * Which spec.session fields the provider honours and how they map to its config. Absent:
   * none (a spec.session that sets anything is refused as InvalidSpec, naming the field).
   */
  readonly session?: SessionHook<unknown>;
}

/**
 * Every tenant is a possible adversary: before any call that changes a session or reads
 * its QR code, and before deleting it, the operator proves the session is this resource's.
 */
export interface Ownership {
  /**
   * "recorded": the provider keeps the instance's uid with every session the operator
   * creates (observe reports ownerUid), so a session without it was not made for this
   * resource. "claimed": the provider keeps nothing of ours; the session is named by the
   * spec (a phone number, a device's key), and holding the one claim on it in the cluster
   * is the only proof.
   */
  readonly proof: "recorded" | "claimed";
  /** Whether spec.adopt may name an existing session here. */
  readonly adoptable: boolean;
  /**
   * The existing session a spec names, if any (spec.adopt.id, a cloud_api phone number,
   * a whapi device's key), for one claim per session. `adopts`: naming it takes over a
   * session the operator did not create for this resource (not so for a device reached
   * with the instance's own key), which a cluster provider allows only with adoption: Allowed.
   */
  sessionNamed(spec: InstanceSpec, namespace: string): { readonly id: string; readonly adopts: boolean } | undefined;
}

/** spec.adopt.id, for the providers whose sessions the operator creates and names itself. */
export const adoptedSession = (spec: InstanceSpec): { readonly id: string; readonly adopts: boolean } | undefined =>
  spec.adopt ? { id: spec.adopt.id, adopts: true } : undefined;

export interface LifecycleEvents {
  /** How a delivery proves that it comes from the provider (src/providers/event-authentication.ts checks it). */
  readonly authentication: EventAuthentication;
  /** Which instance an event is about: the "namespace/name" recorded with the session, or the provider's id. */
  instanceOf(event: Readonly<Record<string, unknown>>): { readonly instanceKey?: string; readonly providerInstanceId?: string };
  /** The delivery's id in the signed body, where the provider sends one: a repeat is answered but not acted on. */
  eventIdOf?(event: Readonly<Record<string, unknown>>): string | undefined;
  /** When the provider sent it (ms since the epoch), from the signed body: an old one is refused as a replay. */
  sentAtOf?(event: Readonly<Record<string, unknown>>): number | undefined;
}

/** A provider that signs: the hex HMAC of the body, made with the provider's events key. */
export interface HmacSignature {
  readonly kind: "hmac";
  /**
   * Headers that may carry the hex HMAC of the body (an optional "sha256=" or "sha512="
   * prefix is allowed); the first present is checked. More than one where the provider's
   * documentation does not name it.
   */
  readonly signatureHeaders: readonly string[];
  readonly algorithm: "sha256" | "sha512";
}

/**
 * A provider that signs nothing but sends headers we store with its webhook: the header
 * carries a token the module derives from the provider's events key (never the key).
 * It proves the sender knows the token, not that the body is unchanged.
 */
export interface SecretToken {
  readonly kind: "token";
  /** Lower-case header name. */
  readonly header: string;
  tokenFor(eventsKey: string): string;
}

export type EventAuthentication = HmacSignature | SecretToken;
