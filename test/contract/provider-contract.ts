/**
 * The contract every provider client keeps, whatever gateway it speaks to: one set of
 * lifecycle cases, run by each `<type>.contract.test.ts` against that provider's loopback
 * emulator. A case is skipped only where the provider declares the capability absent, and
 * then the contract checks the opposite: the operation is refused, without a request.
 *
 * The controller relies on exactly these promises (types.ts): observe finds what create
 * made even without its id, connect leads to a scan (or straight to Connected), QR codes
 * are the ones the provider shows, the link survives disconnect and restart, logout
 * removes it, remove is idempotent, webhooks reach and stay in sync, and failures come
 * back as the error kinds the planner decides on.
 */
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ProviderError, type ProviderErrorKind } from "../../src/providers/errors.ts";
import { renderQrPng } from "../../src/providers/qr.ts";
import { RateLimiter } from "../../src/providers/transport/rate-limiter.ts";
import { PROVIDER_MODULES } from "../../src/providers/registry.ts";
import type { InstanceRef, ObservedSession, Phase, ProviderCapabilities, ProviderClient, ProviderType, WebhookTarget } from "../../src/providers/types.ts";
import { decodeQrPng } from "../emulators/shared/qr-png.ts";

/** What a test may do to the emulator behind the client: the phone's and the provider's side. */
export interface ContractHooks {
  /**
   * Lets the provider finish what it does on its own after a call (booting, showing the
   * first code): moves the emulator's fake clock by a small step. Called between looks.
   */
  settle(): void;
  /** The phone links the session `id` by scanning its current code. A no-op where connect alone links (cloud_api). */
  link(id: string): void;
  /** The raw payload of the QR code the provider shows for `id` right now (QR providers). */
  currentQr?(id: string): string | null | undefined;
  /** The HMAC key the provider holds for the webhook of `id` (providers that sign deliveries). */
  webhookKey?(id: string): string | null | undefined;
  /** false: the provider answers its own outage reply to every request until set back. */
  setAvailable(available: boolean): void;
  /** Requests the provider has answered so far. */
  requestCount(): number;
}

export interface ContractSubject {
  /** The client under test, with valid credentials. */
  readonly client: ProviderClient;
  /** The same provider type with other settings (a wrong key, an address where nothing listens). */
  clientWith(overrides: { readonly url?: string; readonly apiKey?: string }): ProviderClient;
  /** The instance the cases drive; without providerInstanceId, as before its first create. */
  readonly ref: InstanceRef;
  readonly hooks: ContractHooks;
  /**
   * Set where the instance exists before create, outside the API (a Cloud API number, a whapi
   * device): observe then shows it idle, in this phase, instead of null.
   */
  readonly preexisting?: { readonly phase: Phase };
  /** The digits observe reports once linked, where the provider reports a phone number at all. */
  readonly phoneNumber?: string;
  /**
   * false where the emulator, following the provider's documentation, drops the link when the
   * session is stopped (whapi's SERVICE_OFF means "off, stopped or logged out"): connect then
   * shows a new code instead of reconnecting.
   */
  readonly disconnectKeepsLink?: boolean;
  /** Stops the emulator. */
  stop(): Promise<void>;
}

/** Looks this many times, settling in between, before a case gives up waiting for a phase. */
const MAX_LOOKS = 20;
/** Nothing listens on port 1 on loopback: connections are refused at once. */
const CLOSED_URL = "http://127.0.0.1:1";
const WRONG_KEY = "not-a-key-this-provider-knows";

/** Where a session may be after its service was stopped or removed: nothing runs. */
const IDLE_PHASES: readonly Phase[] = ["Pending", "Disconnected", "LoggedOut"];


/** The capabilities a provider type declares, read without any I/O, so cases can be skipped when collected. */
export function declaredCapabilities(type: ProviderType): ProviderCapabilities {
  const client = PROVIDER_MODULES[type].createClient(
    { type, url: CLOSED_URL, rateLimit: { requestsPerSecond: 1, burst: 1 }, timeoutMs: 1000 },
    { limiter: new RateLimiter({ requestsPerSecond: 1, burst: 1 }) },
  );
  return client.capabilities;
}

/** A limiter generous enough that only the provider's own answers could make a contract case wait. */
export function contractLimiter(): RateLimiter {
  return new RateLimiter({ requestsPerSecond: 10_000, burst: 10_000 });
}

/** The error a promise rejects with; fails the case when it resolves or throws something that is not a ProviderError. */
async function rejection(promise: Promise<unknown>): Promise<ProviderError> {
  const outcome = await promise.then(
    (value: unknown) => ({ resolved: value }),
    (error: unknown) => ({ error }),
  );
  if (!("error" in outcome)) throw new Error(`expected a ProviderError, but the call succeeded with ${JSON.stringify(outcome.resolved)}`);
  expect(outcome.error).toBeInstanceOf(ProviderError);
  return outcome.error as ProviderError;
}

function expectKind(error: ProviderError, kind: ProviderErrorKind): void {
  // The message is part of the expectation's output, so a wrong kind says why.
  expect({ kind: error.kind, message: error.message }).toEqual({ kind, message: expect.any(String) });
  expect(error.message).not.toBe("");
}

/**
 * Registers the contract's cases for one provider type. `setup` runs before every case and
 * returns a fresh emulator with a client on it; `stop` runs after.
 */
export function describeProviderContract(type: ProviderType, setup: () => Promise<ContractSubject>): void {
  const capabilities = declaredCapabilities(type);
  const webhookEvents = capabilities.webhookEvents === "none" ? [] : capabilities.webhookEvents.slice(0, 2);

  describe(`${type} keeps the provider contract`, () => {
    let subject: ContractSubject;
    let client: ProviderClient;
    let ref: InstanceRef;
    let hooks: ContractHooks;

    beforeEach(async () => {
      subject = await setup();
      ({ client, ref, hooks } = subject);
    });

    afterEach(async () => {
      await subject.stop();
    });

    /** Observes until `test` holds, letting the provider move on between looks. */
    async function until(what: string, target: InstanceRef, test: (session: ObservedSession) => boolean): Promise<ObservedSession> {
      let last: ObservedSession | null = null;
      for (let look = 0; look < MAX_LOOKS; look++) {
        last = await client.observe(target);
        if (last !== null && test(last)) return last;
        hooks.settle();
      }
      throw new Error(`${type}: ${what} never happened; last seen ${JSON.stringify(last)}`);
    }

    const phaseIs = (phase: Phase) => (session: ObservedSession) => session.phase === phase;
    /** What connect leads to on a session nobody has linked yet. */
    const awaitingLink: Phase = capabilities.qr ? "ScanQR" : "Connected";

    async function created(): Promise<InstanceRef> {
      const session = await client.create(ref);
      return { ...ref, providerInstanceId: session.id };
    }

    async function waitingForLink(): Promise<InstanceRef> {
      const target = await created();
      await client.connect(target, target.providerInstanceId as string);
      await until(`connect → ${awaitingLink}`, target, phaseIs(awaitingLink));
      return target;
    }

    async function linked(): Promise<InstanceRef> {
      const target = await waitingForLink();
      hooks.link(target.providerInstanceId as string);
      await until("link → Connected", target, phaseIs("Connected"));
      return target;
    }

    function webhook(url = "http://127.0.0.1:1/contract-hook"): WebhookTarget {
      return { url, events: webhookEvents, hmacKey: randomBytes(32).toString("hex") };
    }

    it("checkHealth: the provider answers and takes the key, with a version exactly where one is declared", async () => {
      const health = await client.checkHealth();
      if (capabilities.version) expect(health.version).toMatch(/\S/);
      else expect(health.version).toBeUndefined();
    });

    it("observe before create: null, or the idle instance where it exists outside the API", async () => {
      const session = await client.observe(ref);
      if (subject.preexisting) expect(session).toMatchObject({ phase: subject.preexisting.phase, id: expect.any(String) });
      else expect(session).toBeNull();
    });

    it("create is idempotent through observe: without the id, observe finds the same session, so it is never created twice", async () => {
      const session = await client.create(ref);
      expect(session.id).toMatch(/\S/);
      expect(session.phase).not.toBe("Connected");
      const byName = await client.observe(ref);
      expect(byName?.id).toBe(session.id);
      const byId = await client.observe({ ...ref, providerInstanceId: session.id });
      expect(byId?.id).toBe(session.id);
      // Where the provider records our uid, it is ours, so the planner never calls it a stranger's.
      if (byName?.ownerUid !== undefined) expect(byName.ownerUid).toBe(ref.uid);
    });

    it(`connect → ${awaitingLink}${capabilities.qr ? "" : " (nothing to scan)"}, with the provider's own word kept`, async () => {
      const target = await created();
      await client.connect(target, target.providerInstanceId as string);
      const session = await until(`connect → ${awaitingLink}`, target, phaseIs(awaitingLink));
      expect(session.providerState).toMatch(/\S/);
      expect(session.id).toBe(target.providerInstanceId);
    });

    it.skipIf(!capabilities.qr)("fetchQr: the code the provider shows now, as an image or as the payload the operator draws", async () => {
      const target = await waitingForLink();
      const id = target.providerInstanceId as string;
      const qr = await client.fetchQr(target, id);
      expect(qr).not.toBeNull();
      const shown = hooks.currentQr?.(id);
      expect(shown).toMatch(/\S/);
      expect(decodeQrPng(qr?.png ?? (await renderQrPng(type, qr?.text ?? "")))).toBe(shown);
      if (qr?.text !== undefined) expect(qr.text).toBe(shown);
      expect(qr?.validForMs).toBeGreaterThan(0);
    });

    it("link → Connected, with the phone number where the provider reports one; no QR is offered any more", async () => {
      const target = await linked();
      const session = await client.observe(target);
      expect(session?.phase).toBe("Connected");
      if (subject.phoneNumber !== undefined) expect(session?.phoneNumber).toBe(subject.phoneNumber);
      else expect(session?.phoneNumber).toBeUndefined();
      if (capabilities.qr) expect(await client.fetchQr(target, target.providerInstanceId as string)).toBeNull();
    });

    it.skipIf(!capabilities.disconnect)("disconnect stops the session (Disconnected) and connect starts it again", async () => {
      const target = await linked();
      const id = target.providerInstanceId as string;
      await client.disconnect(target, id);
      expect((await client.observe(target))?.phase).toBe("Disconnected");
      await client.connect(target, id);
      if (subject.disconnectKeepsLink === false) {
        // The provider forgot the link with the service: a new scan is needed, and works.
        await until("connect after disconnect → ScanQR", target, phaseIs("ScanQR"));
        hooks.link(id);
      }
      await until("connect after disconnect → Connected", target, phaseIs("Connected"));
    });

    it.skipIf(!capabilities.restart)("restart keeps the link: Connected again without a new scan", async () => {
      const target = await linked();
      await client.restart(target, target.providerInstanceId as string);
      const session = await until("restart → Connected", target, phaseIs("Connected"));
      if (subject.phoneNumber !== undefined) expect(session.phoneNumber).toBe(subject.phoneNumber);
    });

    it.skipIf(!capabilities.logout)("logout removes the link: nothing runs, no phone, and connect needs a new link", async () => {
      const target = await linked();
      const id = target.providerInstanceId as string;
      await client.logout(target, id);
      const out = await client.observe(target);
      expect(["Disconnected", "LoggedOut"]).toContain(out?.phase);
      expect(out?.phoneNumber).toBeUndefined();
      await client.connect(target, id);
      await until(`connect after logout → ${awaitingLink}`, target, phaseIs(awaitingLink));
    });

    it.skipIf(!capabilities.pairingCode)("requestPairingCode gives a code to type on the phone while waiting for a link", async () => {
      const target = await waitingForLink();
      const code = await client.requestPairingCode(target, target.providerInstanceId as string, "5511999998888");
      expect(code).toMatch(/^[A-Z0-9-]{8,9}$/);
    });

    const refusals: readonly { readonly capability: keyof ProviderCapabilities; readonly operation: string; readonly call: (target: InstanceRef, id: string) => Promise<unknown> }[] = [
      { capability: "qr", operation: "fetchQr", call: (target, id) => client.fetchQr(target, id) },
      { capability: "pairingCode", operation: "requestPairingCode", call: (target, id) => client.requestPairingCode(target, id, "5511999998888") },
      { capability: "disconnect", operation: "disconnect", call: (target, id) => client.disconnect(target, id) },
      { capability: "restart", operation: "restart", call: (target, id) => client.restart(target, id) },
      { capability: "logout", operation: "logout", call: (target, id) => client.logout(target, id) },
      { capability: "webhook", operation: "configureWebhook", call: (target, id) => client.configureWebhook({ ...target, webhook: webhook() }, id) },
    ];
    for (const { capability, operation, call } of refusals) {
      it.skipIf(capabilities[capability] === true)(`${operation}, declared unsupported, is refused (Rejected) without a request`, async () => {
        const target = await created();
        const before = hooks.requestCount();
        expectKind(await rejection(call(target, target.providerInstanceId as string)), "Rejected");
        expect(hooks.requestCount()).toBe(before);
      });
    }

    it("remove deletes the session (or stops what cannot be deleted), and a second remove succeeds too", async () => {
      const target = await linked();
      const id = target.providerInstanceId as string;
      await client.remove(target, id);
      await client.remove(target, id);
      const after = await client.observe(ref);
      if (subject.preexisting) expect(IDLE_PHASES).toContain(after?.phase);
      else expect(after).toBeNull();
    });

    it.skipIf(!capabilities.webhook)("configureWebhook brings the webhook in sync, keeps it there, and unwires it when none is wanted", async () => {
      const target = await created();
      const id = target.providerInstanceId as string;
      const wanted = { ...target, webhook: webhook() };
      expect((await client.observe(wanted))?.webhookInSync).toBe(false);
      await client.configureWebhook(wanted, id);
      expect((await client.observe(wanted))?.webhookInSync).toBe(true);
      if (capabilities.webhookSigning) expect(hooks.webhookKey?.(id)).toBe(wanted.webhook.hmacKey);
      await client.configureWebhook(wanted, id);
      expect((await client.observe(wanted))?.webhookInSync).toBe(true);
      // Without a webhook in the ref, configureWebhook takes ours away: the wanted one is out of sync again.
      // (The ref as the reconciler builds it once spec.webhook is gone: status.webhook still names the URL.)
      await client.configureWebhook({ ...target, previousWebhookUrl: wanted.webhook.url }, id);
      expect((await client.observe(wanted))?.webhookInSync).toBe(false);
    });

    it.skipIf(!capabilities.webhook)(
      "with spec.webhook removed, our wiring still there is out of sync, and configureWebhook without one takes it away",
      async () => {
        const fresh = await created();
        const id = fresh.providerInstanceId as string;
        const wired = webhook();
        await client.configureWebhook({ ...fresh, webhook: wired }, id);
        // The spec no longer asks for a webhook; the reconciler's ref still names what it wired (status.webhook.url).
        const target = { ...fresh, previousWebhookUrl: wired.url };
        expect((await client.observe(target))?.webhookInSync).toBe(false);
        await client.configureWebhook(target, id);
        expect((await client.observe(target))?.webhookInSync).not.toBe(false);
        if (capabilities.webhookSigning) expect(hooks.webhookKey?.(id) ?? undefined).toBeUndefined();
      },
    );

    it("declares webhook event names only where it can wire webhooks", () => {
      if (!capabilities.webhook) expect(capabilities.webhookEvents).toBe("none");
      if (capabilities.webhookSigning) expect(capabilities.webhook).toBe(true);
    });

    it("a key the provider refuses is InvalidCredentials, for checkHealth and observe", async () => {
      const refused = subject.clientWith({ apiKey: WRONG_KEY });
      const refusedRef = ref.apiKey === undefined ? ref : { ...ref, apiKey: WRONG_KEY };
      expectKind(await rejection(refused.checkHealth()), "InvalidCredentials");
      expectKind(await rejection(refused.observe(refusedRef)), "InvalidCredentials");
    });

    it("an outage is Unavailable, and the same client works again afterwards", async () => {
      hooks.setAvailable(false);
      expectKind(await rejection(client.checkHealth()), "Unavailable");
      expectKind(await rejection(client.observe(ref)), "Unavailable");
      hooks.setAvailable(true);
      await client.checkHealth();
    });

    it("an address where nothing listens is Unavailable", async () => {
      const nowhere = subject.clientWith({ url: CLOSED_URL });
      expectKind(await rejection(nowhere.checkHealth()), "Unavailable");
      expectKind(await rejection(nowhere.observe(ref)), "Unavailable");
    });
  });
}
