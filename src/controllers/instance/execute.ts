/**
 * Execute: carries out a plan's steps in order and says what each one did. It changes
 * the provider and the instance's own Secrets; the status is the reporter's business,
 * except for the one record that must precede a call (a restart's intent).
 */
import type { InstanceSpec } from "../../api/instance.ts";
import { INSTANCES, keyOf, type KubeObject } from "../../kube/resources.ts";
import type { InstanceRef, ObservedSession } from "../../providers/types.ts";
import { isProviderError } from "../../providers/errors.ts";
import type { InstanceObject, OperatorContext } from "../context.ts";
import type { InstanceObservation } from "./observe.ts";
import { START_STEPS, type Plan, type Step } from "./plan.ts";
import { freeStartSlot, startSlotView, StartSlotTaken, waitingMessage } from "./start-slots.ts";
import { recordRecoveryEvent } from "./gateway-restart.ts";
import { deleteWebhookSecret, qrSecretDigest, writeQrSecret, writeWebhookSecret } from "./secrets.ts";
import { renderQrPng } from "../../providers/qr.ts";
import type { ShownCode } from "./next-look.ts";

/** What one step did. */
export type StepFact =
  | { readonly kind: "created"; readonly session: ObservedSession }
  /** A QR fetched; `written` when the Secret changed; `validForMs` undefined when the session showed none; `code`: what the Secret now shows. */
  | { readonly kind: "qr"; readonly written: boolean; readonly validForMs: number | undefined; readonly code?: ShownCode }
  | { readonly kind: "pairingCode"; readonly requestedAt: number }
  /** `session`: what the provider answered the step with, when it says where the session now is. */
  | { readonly kind: "done"; readonly step: Step["kind"]; readonly session?: ObservedSession };

/** Steps carried out before one failed: what they did is reported, the rest is still owed. */
export class StepsFailed extends Error {
  readonly facts: readonly StepFact[];
  readonly error: unknown;
  constructor(facts: readonly StepFact[], error: unknown) {
    super(error instanceof Error ? error.message : String(error));
    this.name = "StepsFailed";
    this.facts = facts;
    this.error = error;
  }
}

export interface ExecuteContext {
  readonly ctx: OperatorContext;
  readonly spec: InstanceSpec;
  readonly observation: InstanceObservation;
  /** The instance as last written (a step may write it: the restart intent). */
  instance: InstanceObject;
  /** The code an earlier pass put in the QR Secret (Pacing.qr). */
  readonly shownCode?: ShownCode | undefined;
}

/** Runs every step; throws StepsFailed with the facts so far when one fails. */
export async function executePlan(run: ExecuteContext, plan: Plan): Promise<StepFact[]> {
  const facts: StepFact[] = [];
  let ref = run.observation.ref;
  const provider = run.observation.provider;
  if (plan.waitingForStartSlot) run.ctx.startSlots.wait(startSlotView(run.ctx, run.instance, provider), provider.key);
  // A look that wants no start leaves the line it was put in (a gateway restart puts every session there).
  else if (!plan.steps.some((step) => START_STEPS.has(step.kind))) run.ctx.startSlots.withdraw(provider.key, keyOf(run.instance));
  for (const step of plan.steps) {
    try {
      const fact = await executeStep(run, ref, step);
      if (fact.kind === "created") ref = { ...ref, providerInstanceId: fact.session.id };
      facts.push(fact);
    } catch (error) {
      // A start the provider did not carry out (a 429, or its pause refused it here) starts nothing:
      // the slot goes to the next in line, which meets the same pause and says so in its own status.
      if (START_STEPS.has(step.kind) && isProviderError(error, "RateLimited")) freeStartSlot(run.ctx, provider.key, keyOf(run.instance));
      throw new StepsFailed(facts, error);
    }
  }
  return facts;
}

async function executeStep(run: ExecuteContext, ref: InstanceRef, step: Step): Promise<StepFact> {
  const { ctx, observation } = run;
  const client = observation.provider.client;
  const id = observation.session?.id ?? ref.providerInstanceId ?? "";
  const done: StepFact = { kind: "done", step: step.kind };
  if (START_STEPS.has(step.kind)) takeStartSlot(run);
  switch (step.kind) {
    case "create":
      return { kind: "created", session: await client.create(ref, step.start ? { start: true } : undefined) };
    case "claim":
      await client.claim?.(ref, id);
      return done;
    case "connect": {
      const session = await client.connect(ref, id);
      return session ? { ...done, session } : done;
    }
    case "disconnect":
      await client.disconnect(ref, id);
      return done;
    case "restart":
      if (step.why === "requested") await recordRestartIntent(run);
      await client.restart(ref, id);
      return done;
    case "logout":
      await client.logout(ref, id);
      return done;
    case "configureWebhook":
      await client.configureWebhook(ref, id);
      return done;
    case "applySessionSettings":
      await applySessionSettings(run, ref, id);
      return done;
    case "showQr": {
      const qr = await client.fetchQr(ref, id);
      if (!qr) return { kind: "qr", written: false, validForMs: undefined };
      // The code the Secret shows, untouched since: a refresh that finds it again costs the read, not a drawing.
      const shown = run.shownCode;
      if (shown && qr.text === shown.text && qrSecretDigest(ctx.caches.secrets, run.instance) === shown.secretDigest) {
        return { kind: "qr", written: false, validForMs: qr.validForMs, code: shown };
      }
      const png = qr.png ?? (await renderQrPng(observation.provider.type, qr.text ?? ""));
      const written = await writeQrSecret(ctx.kube, ctx.caches.secrets, run.instance, { png, ...(qr.text ? { text: qr.text } : {}) });
      const secretDigest = qrSecretDigest(ctx.caches.secrets, run.instance);
      return { kind: "qr", written, validForMs: qr.validForMs, ...(qr.text && secretDigest ? { code: { text: qr.text, secretDigest } } : {}) };
    }
    case "requestPairingCode": {
      const now = ctx.clock.now();
      const code = await client.requestPairingCode(ref, id, run.spec.pairing?.phoneNumber as string);
      await writeQrSecret(ctx.kube, ctx.caches.secrets, run.instance, { pairingCode: code, pairingRequestedAt: new Date(now).toISOString() });
      return { kind: "pairingCode", requestedAt: now };
    }
    case "clearQr":
      await writeQrSecret(ctx.kube, ctx.caches.secrets, run.instance, {});
      return done;
    case "writeWebhookSecret":
      await writeWebhookSecret(ctx.kube, ctx.caches.secrets, run.instance, run.spec.webhook as NonNullable<InstanceSpec["webhook"]>, observation.webhookSecret.hmacKey);
      return done;
    case "deleteWebhookSecret":
      await deleteWebhookSecret(ctx.kube, ctx.caches.secrets, run.instance);
      return done;
  }
}

/**
 * The slot a start step needs: kept when held, else taken if admission allows; a new grant
 * is timed (the wait metric) and may close a wave of a gateway restart recovery.
 */
function takeStartSlot(run: ExecuteContext): void {
  const { ctx } = run;
  const provider = run.observation.provider;
  const key = keyOf(run.instance);
  const now = ctx.clock.now();
  const held = ctx.startSlots.holds(provider.key, key, now, ctx.config.stuckTimeout);
  const since = ctx.startSlots.waitingSince(provider.key, key);
  const view = startSlotView(ctx, run.instance, provider);
  if (!ctx.startSlots.acquire(view, provider.key)) {
    // Planned with a free slot that another pass took meanwhile: no call, wait in line.
    throw new StartSlotTaken(waitingMessage(provider.maxConcurrentStarts, provider.type));
  }
  if (held) return;
  ctx.observers?.startSlotWait?.(provider.ref, since === undefined ? 0 : (now - since) / 1000);
  const load = ctx.startSlots.load(provider.key, now, ctx.config.stuckTimeout);
  recordRecoveryEvent(ctx, provider, ctx.gatewayRestarts.granted(provider.key, key, view.self.linked, load));
}

/**
 * Until the provider has taken the settings, the next pass must read them again: the
 * record of the last read is dropped first and renewed once the call succeeded.
 */
async function applySessionSettings(run: ExecuteContext, ref: InstanceRef, id: string): Promise<void> {
  const { ctx, instance } = run;
  const apply = run.observation.provider.client.applySessionConfig;
  if (!apply) throw new Error(`the ${run.observation.provider.type} client cannot apply session settings`);
  const key = `${instance.metadata.namespace}/${instance.metadata.name}`;
  const { sessionRead: _dropped, ...pacing } = ctx.pacing.get(key) ?? { startingLooks: 0 };
  ctx.pacing.set(key, pacing);
  await apply.call(run.observation.provider.client, ref, id);
  ctx.pacing.set(key, { ...(ctx.pacing.get(key) ?? pacing), sessionRead: { generation: instance.metadata.generation ?? 0, at: ctx.clock.now() } });
}

/**
 * A requested restart is recorded before its call (status.restartInFlight), with the
 * cached resourceVersion: if this replica dies or loses its lease mid-call, the next one
 * finds the record and does not restart again. At most once across a crash.
 */
async function recordRestartIntent(run: ExecuteContext): Promise<void> {
  const { ctx, instance } = run;
  const written = await ctx.kube.patch<KubeObject>(
    INSTANCES,
    instance.metadata.namespace,
    instance.metadata.name,
    { metadata: { resourceVersion: instance.metadata.resourceVersion }, status: { restartInFlight: run.spec.restartRequestedAt } },
    "merge",
    "status",
  );
  ctx.caches.instances.remember(written as InstanceObject);
  run.instance = written as InstanceObject;
}
