import { describe, expect, it } from "vitest";
import { instanceSpecSchema, type InstanceStatus } from "../../api/instance.ts";
import type { ObservedSession, ProviderCapabilities } from "../../providers/types.ts";
import { derivePhase, planInstance, type PlanInput } from "./plan.ts";

const everything: ProviderCapabilities = {
  qr: true,
  pairingCode: true,
  disconnect: true,
  restart: true,
  logout: true,
  webhook: true,
  webhookEvents: ["session.status", "message"],
  webhookSigning: true,
  version: true,
};
const qrOnly: ProviderCapabilities = { ...everything, pairingCode: false, disconnect: false, restart: false, logout: false, webhook: true, webhookEvents: "none" };
const NOW = Date.parse("2026-11-21T10:00:00Z");

function session(phase: ObservedSession["phase"], extra: Partial<ObservedSession> = {}): ObservedSession {
  return { id: "ns__one", phase, providerState: phase.toUpperCase(), ownerUid: "uid-1", ...extra };
}

function input(overrides: { spec?: Record<string, unknown>; status?: InstanceStatus } & Partial<Omit<PlanInput, "spec" | "status">> = {}): PlanInput {
  const { spec, status, ...rest } = overrides;
  const parsed = instanceSpecSchema.parse({ providerRef: { name: "p" }, ...spec });
  return {
    now: NOW,
    name: "one",
    uid: "uid-1",
    spec: parsed,
    // The owned webhook Secret is as the spec wants it unless a case says otherwise.
    webhookSecret: parsed.webhook && !parsed.webhook.secretRef ? "current" : "absent",
    status: status ?? {},
    providerType: "waha",
    capabilities: everything,
    session: session("Connected"),
    quota: { allowed: true, message: "" },
    adoption: "Allowed",
    ownership: { proof: "recorded", adoptable: true, canClaim: true },
    qrSecretFilled: false,
    failureBackoff: { baseMs: 60_000, maxMs: 30 * 60_000 },
    stuckTimeoutMs: 5 * 60_000,
    ...rest,
  };
}

const kinds = (plan: ReturnType<typeof planInstance>) => plan.steps.map((step) => step.kind);

describe("planning towards Connected", () => {
  it.each([
    ["a missing session is created", input({ session: null }), ["create"], "Pending"],
    ["a stopped session is started", input({ session: session("Disconnected"), status: { phase: "Connected" } }), ["connect"], "Disconnected"],
    ["a session created but not yet started is Pending, and started", input({ session: session("Disconnected"), status: { phase: "Pending" } }), ["connect"], "Pending"],
    ["a session found stopped before this instance ever saw it run is Pending", input({ session: session("Disconnected") }), ["connect"], "Pending"],
    ["a booting session is left to boot", input({ session: session("Starting") }), [], "Starting"],
    ["a session showing a QR keeps the QR Secret current", input({ session: session("ScanQR") }), ["showQr"], "ScanQR"],
    ["a linked session with nothing to fix is left alone", input({ session: session("Connected") }), [], "Connected"],
    ["a linked session empties the QR Secret", input({ qrSecretFilled: true }), ["clearQr"], "Connected"],
    [
      "a linked session whose webhook drifted is rewired",
      input({ spec: { webhook: { url: "https://h.example/w", events: ["message"] } }, session: session("Connected", { webhookInSync: false }) }),
      ["configureWebhook"],
      "Connected",
    ],
    ["a logged-out session is started again", input({ session: session("Disconnected"), status: { phase: "LoggedOut" } }), ["connect"], "LoggedOut"],
    [
      "a session about to start gets its webhook first, so the receiver hears about the linking",
      input({ spec: { webhook: { url: "https://h.example/w", events: ["session.status"] } }, session: session("Pending", { webhookInSync: false }) }),
      ["configureWebhook", "connect"],
      "Pending",
    ],
    [
      "a session showing a QR gets its webhook before the phone links",
      input({ spec: { webhook: { url: "https://h.example/w", events: ["session.status"] } }, session: session("ScanQR", { webhookInSync: false }) }),
      ["configureWebhook", "showQr"],
      "ScanQR",
    ],
  ])("%s", (_sentence, planInput, steps, phase) => {
    const plan = planInstance(planInput);
    expect(kinds(plan)).toEqual(steps);
    expect(plan.phase).toBe(phase);
  });

  it("is Ready only when linked", () => {
    expect(planInstance(input()).verdict).toMatchObject({ ready: true, stalled: false, reason: "Connected" });
    expect(planInstance(input({ session: session("ScanQR") })).verdict).toMatchObject({ ready: false, stalled: false });
  });

  it("asks for a pairing code once and then waits for the phone", () => {
    const spec = { pairing: { method: "Code", phoneNumber: "5511999998888" } };
    expect(kinds(planInstance(input({ spec, session: session("ScanQR") })))).toEqual(["requestPairingCode"]);
    expect(kinds(planInstance(input({ spec, session: session("ScanQR"), pairingCode: { requestedAt: NOW - 60_000 } })))).toEqual([]);
    expect(kinds(planInstance(input({ spec, session: session("ScanQR"), pairingCode: { requestedAt: NOW - 4 * 60_000 } })))).toEqual([
      "requestPairingCode",
    ]);
  });

  it("asks again for a pairing code the provider replaces sooner, as it follows a QR", () => {
    const spec = { pairing: { method: "Code", phoneNumber: "5511999998888" } };
    const rotating = { ...everything, pairingCodeValidForMs: 45_000 };
    const asked = (ago: number) => kinds(planInstance(input({ spec, capabilities: rotating, session: session("ScanQR"), pairingCode: { requestedAt: NOW - ago } })));
    expect(asked(5_000)).toEqual([]);
    expect(asked(20_000)).toEqual(["requestPairingCode"]);
  });

  it("says when a session was stopped behind its back", () => {
    const plan = planInstance(input({ session: session("Disconnected"), status: { phase: "Connected" } }));
    expect(plan.events.map((event) => event.reason)).toEqual(["DriftDetected", "Starting"]);
  });

  it("says when a session was deleted behind its back", () => {
    const plan = planInstance(input({ session: null, status: { phase: "Connected", providerInstanceId: "ns__one" } }));
    expect(plan.events.map((event) => event.reason)).toEqual(["DriftDetected", "Created"]);
  });

  it("never touches a session that belongs to another resource", () => {
    const plan = planInstance(input({ session: session("Connected", { ownerUid: "someone-else" }) }));
    expect(plan.steps).toEqual([]);
    expect(plan.verdict).toMatchObject({ stalled: true, reason: "SessionOwnedElsewhere" });
  });
});

describe("rewiring a running session where that restarts it (WAHA)", () => {
  const restarting = { ...everything, webhookRestartsSession: true };
  const webhook = { url: "https://h.example/w", events: ["message"] };
  const restartEvents = (plan: ReturnType<typeof planInstance>) => plan.events.filter((event) => event.reason === "Restarted");

  it.each([
    ["a linked session", session("Connected", { webhookInSync: false }), ["configureWebhook"], 1],
    ["a session showing a QR", session("ScanQR", { webhookInSync: false }), ["configureWebhook", "showQr"], 1],
    ["a stopped session, which nothing restarts", session("Disconnected", { webhookInSync: false }), ["configureWebhook", "connect"], 0],
    ["a linked session already in sync", session("Connected", { webhookInSync: true }), [], 0],
  ])("%s: rewired only when out of sync, with one Event saying it restarts the session", (_sentence, observed, steps, events) => {
    const plan = planInstance(input({ spec: { webhook }, status: { phase: observed.phase }, capabilities: restarting, session: observed }));
    expect(kinds(plan)).toEqual(steps);
    expect(restartEvents(plan)).toHaveLength(events);
    if (events > 0) expect(restartEvents(plan)[0]?.message).toContain("reconfiguring the webhook restarts the waha session");
  });

  it("says nothing where rewiring leaves the session running", () => {
    const plan = planInstance(input({ spec: { webhook }, session: session("Connected", { webhookInSync: false }) }));
    expect(kinds(plan)).toEqual(["configureWebhook"]);
    expect(restartEvents(plan)).toEqual([]);
  });
});

describe("restarts", () => {
  it("restarts once for a new restartRequestedAt and records it", () => {
    const spec = { restartRequestedAt: "2026-11-21T09:00:00Z" };
    const plan = planInstance(input({ spec }));
    expect(kinds(plan)).toEqual(["restart"]);
    expect(plan.lastRestartAt).toBe("2026-11-21T09:00:00Z");
    expect(kinds(planInstance(input({ spec, status: { lastRestartAt: "2026-11-21T09:00:00Z" } })))).toEqual([]);
  });

  it("records a restart asked for before the session existed without restarting", () => {
    const plan = planInstance(input({ spec: { restartRequestedAt: "2026-11-21T09:00:00Z" }, session: null }));
    expect(kinds(plan)).toEqual(["create"]);
    expect(plan.lastRestartAt).toBe("2026-11-21T09:00:00Z");
  });
});

describe("recovering a FAILED session", () => {
  it("first waits the base backoff and says so", () => {
    const plan = planInstance(input({ session: session("Failed") }));
    expect(plan.steps).toEqual([]);
    expect(plan.phase).toBe("Failed");
    expect(plan.verdict.message).toContain("restarting in 1m (attempt 1)");
    expect(plan.recovery).toEqual({ attempts: 0, notBefore: "2026-11-21T10:01:00.000Z" });
    expect(plan.requeue).toEqual({ afterMs: 60_000 });
  });

  it("restarts when the wait is over and counts the attempt", () => {
    const plan = planInstance(input({ session: session("Failed"), status: { recovery: { attempts: 0, notBefore: "2026-11-21T09:59:00Z" } } }));
    expect(plan.steps).toEqual([{ kind: "restart", why: "recovery" }]);
    expect(plan.recovery).toEqual({ attempts: 1 });
  });

  it.each([
    [1, 2 * 60_000],
    [3, 8 * 60_000],
    [5, 30 * 60_000],
    [9, 30 * 60_000],
  ])("after %i attempts waits %i ms, never more than 30 minutes", (attempts, wait) => {
    const plan = planInstance(input({ session: session("Failed"), status: { recovery: { attempts } } }));
    expect(plan.requeue).toEqual({ afterMs: wait });
  });

  it("forgets the failures once linked", () => {
    expect(planInstance(input({ status: { recovery: { attempts: 3 } } })).recovery).toBeNull();
  });
});

describe("a session stuck in STARTING (WAHA issues #1043, #2243)", () => {
  const at = (minutesAgo: number) => new Date(NOW - minutesAgo * 60_000).toISOString();
  const starting = session("Starting", { providerState: "STARTING" });

  it.each([
    ["starting for less than the stuck timeout: waits", { phase: "Starting", providerState: { state: "STARTING", since: at(4) } }, [], "Starting", "Starting"],
    [
      "starting for longer than the stuck timeout: restarted once",
      { phase: "Starting", providerState: { state: "STARTING", since: at(6) } },
      ["restart"],
      "Starting",
      "Restarting",
    ],
    [
      "still starting a stuck timeout after that restart: Failed, with the FAILED backoff",
      { phase: "Starting", providerState: { state: "STARTING", since: at(6) }, recovery: { attempts: 0 } },
      [],
      "Failed",
      "Failed",
    ],
    [
      "Failed for being stuck and the backoff is over: restarted again",
      { phase: "Failed", providerState: { state: "STARTING", since: at(9) }, recovery: { attempts: 0, notBefore: at(1) } },
      ["restart"],
      "Failed",
      "Restarting",
    ],
    [
      "Failed for being stuck, backoff still running: stays Failed although the provider says STARTING",
      { phase: "Failed", providerState: { state: "STARTING", since: at(9) }, recovery: { attempts: 0, notBefore: new Date(NOW + 60_000).toISOString() } },
      [],
      "Failed",
      "Failed",
    ],
    ["a state first seen now has just begun", { phase: "ScanQR", providerState: { state: "SCAN_QR_CODE", since: at(60) } }, [], "Starting", "Starting"],
  ] as const)("%s", (_sentence, status, steps, phase, reason) => {
    const plan = planInstance(input({ session: starting, status: status as InstanceStatus }));
    expect(kinds(plan)).toEqual(steps);
    expect(plan.phase).toBe(phase);
    expect(plan.verdict.reason).toBe(reason);
    expect(plan.verdict.stalled).toBe(false);
  });

  it("the restart starts the clock again, and says why in an Event and in the Ready message", () => {
    const plan = planInstance(input({ session: starting, status: { phase: "Starting", providerState: { state: "STARTING", since: at(6) } } }));
    expect(plan.providerState).toEqual({ state: "STARTING", since: new Date(NOW).toISOString() });
    expect(plan.recovery).toEqual({ attempts: 0 });
    expect(plan.verdict.message).toContain("stuck in STARTING for more than 5m");
    expect(plan.events).toEqual([expect.objectContaining({ reason: "Restarted", message: expect.stringContaining("stuck in STARTING") })]);
  });

  it("reported Failed, it names the reason and waits the FAILED backoff", () => {
    const plan = planInstance(input({ session: starting, status: { phase: "Starting", providerState: { state: "STARTING", since: at(6) }, recovery: { attempts: 0 } } }));
    expect(plan.verdict.message).toContain("stuck in STARTING for more than 5m");
    expect(plan.recovery).toEqual({ attempts: 0, notBefore: new Date(NOW + 60_000).toISOString() });
    expect(plan.requeue).toEqual({ afterMs: 60_000 });
  });

  it("times a stuck session from when it got its start slot: seen STARTING for long, but granted a slot a minute ago, it is not restarted", () => {
    const self = { key: "ns/one", createdAt: "2026-01-01T00:00:00Z", linked: true };
    const startSlot = { max: 3, stuckTimeoutMs: 5 * 60_000, now: NOW, self, holders: [{ key: "ns/one", grantedAt: NOW - 60_000 }], waiters: [] };
    const status: InstanceStatus = { phase: "Starting", providerState: { state: "STARTING", since: at(6) } };
    expect(kinds(planInstance(input({ session: starting, status, startSlot })))).toEqual([]);
    expect(kinds(planInstance(input({ session: starting, status, startSlot: { ...startSlot, holders: [{ key: "ns/one", grantedAt: NOW - 6 * 60_000 }] } })))).toEqual(["restart"]);
  });

  it("records when a state was first seen, and leaves it while it lasts", () => {
    expect(planInstance(input({ session: starting, status: { phase: "ScanQR" } })).providerState).toEqual({ state: "STARTING", since: new Date(NOW).toISOString() });
    expect(planInstance(input({ session: starting, status: { phase: "Starting", providerState: { state: "STARTING", since: at(1) } } })).providerState).toBeUndefined();
  });

  it.each([
    ["a provider that cannot restart", { ...everything, restart: false }, starting],
    ["a state the operator does not know", everything, session("Starting", { providerState: "HIBERNATING", unknownState: true })],
  ])("never restarts %s for being slow", (_sentence, capabilities, observed) => {
    const status: InstanceStatus = { phase: "Starting", providerState: { state: observed.providerState, since: at(60) } };
    const plan = planInstance(input({ session: observed, status, capabilities }));
    expect(kinds(plan)).toEqual([]);
    expect(plan.phase).toBe("Starting");
  });
});

describe("an unknown provider state", () => {
  it("is looked at again at the poll interval, not every 2 s; a known STARTING is watched closely", () => {
    expect(planInstance(input({ session: session("Starting", { providerState: "WARMING_UP", unknownState: true }) })).requeue).toBe("poll");
    expect(planInstance(input({ session: session("Starting", { providerState: "STARTING" }) })).requeue).toBe("starting");
  });
});

describe("planning towards Disconnected and LoggedOut", () => {
  it.each([
    ["a running session is stopped", "Disconnected", session("Connected"), {}, ["disconnect"], "Connected"],
    ["a stopped session is in sync", "Disconnected", session("Disconnected"), {}, [], "Disconnected"],
    ["a created-but-never-started instance counts as stopped", "Disconnected", session("Pending"), {}, [], "Disconnected"],
    ["a linked session is logged out", "LoggedOut", session("Connected"), {}, ["logout"], "Connected"],
    ["a stopped session with a link is logged out", "LoggedOut", session("Disconnected"), {}, ["logout"], "Disconnected"],
    ["a logged-out session is in sync", "LoggedOut", session("Disconnected"), { phase: "LoggedOut" }, [], "LoggedOut"],
  ] as const)("%s", (_sentence, state, observed, status, steps, phase) => {
    const plan = planInstance(input({ spec: { state }, session: observed, status: status as InstanceStatus }));
    expect(kinds(plan)).toEqual(steps);
    expect(plan.phase).toBe(phase);
  });
});

describe("what the provider cannot do", () => {
  it.each([
    ["disconnecting", { state: "Disconnected" }, "disconnecting"],
    ["logging out", { state: "LoggedOut" }, "logging out"],
    ["pairing by code", { pairing: { method: "Code", phoneNumber: "5511999998888" } }, "pairing by code"],
    ["restarting on request", { restartRequestedAt: "2026-11-21T09:00:00Z" }, "restart"],
    ["filtering webhook events", { webhook: { url: "https://h.example/w", events: ["message"] } }, "filtering webhook events"],
  ])("%s is Stalled as UnsupportedByProvider, with no call", (_sentence, spec, words) => {
    const plan = planInstance(input({ spec, capabilities: qrOnly, providerType: "wapiz" }));
    expect(plan.steps).toEqual([]);
    expect(plan.verdict).toMatchObject({ ready: false, stalled: true, reason: "UnsupportedByProvider" });
    expect(plan.verdict.message).toContain("wapiz");
    expect(plan.verdict.message).toContain(words);
  });

  it.each([
    ["spec.cloudApi on a waha instance", "waha", { cloudApi: { phoneNumberId: "123", pinSecretRef: { name: "pin" } } }, "spec.cloudApi"],
    ["spec.wappfy on a waha instance", "waha", { wappfy: { type: "waha" } }, "spec.wappfy"],
    ["spec.cloudApi on a wappfy instance", "wappfy", { cloudApi: { phoneNumberId: "123", pinSecretRef: { name: "pin" } } }, "spec.cloudApi"],
    ["spec.wappfy on a cloud_api instance", "cloud_api", { wappfy: { type: "cloud_api" }, cloudApi: { phoneNumberId: "123", pinSecretRef: { name: "pin" } } }, "spec.wappfy"],
  ] as const)("%s is Stalled as InvalidSpec naming the field, with no call", (_sentence, providerType, spec, field) => {
    const plan = planInstance(input({ spec, providerType, session: null }));
    expect(plan.steps).toEqual([]);
    expect(plan.verdict).toMatchObject({ ready: false, stalled: true, reason: "InvalidSpec" });
    expect(plan.verdict.message).toContain(field);
    expect(plan.verdict.message).toContain(providerType);
    expect(plan.events).toEqual([expect.objectContaining({ type: "Warning", reason: "InvalidSpec" })]);
  });

  it.each([
    ["spec.cloudApi on a cloud_api instance", "cloud_api", { cloudApi: { phoneNumberId: "123", pinSecretRef: { name: "pin" } } }],
    ["spec.wappfy on a wappfy instance", "wappfy", { wappfy: { type: "cloud_api" } }],
  ] as const)("%s is its own provider's field and is accepted", (_sentence, providerType, spec) => {
    expect(planInstance(input({ spec, providerType, session: null })).steps.map((step) => step.kind)).toEqual(["create"]);
  });

  it("names webhook events the provider does not know", () => {
    const plan = planInstance(input({ spec: { webhook: { url: "https://h.example/w", events: ["message", "bogus.event"] } } }));
    expect(plan.verdict).toMatchObject({ stalled: true, reason: "UnsupportedByProvider" });
    expect(plan.verdict.message).toContain("bogus.event");
  });
});

describe("quota", () => {
  it("a new instance beyond maxInstances waits, Stalled as QuotaExceeded", () => {
    const plan = planInstance(input({ session: null, quota: { allowed: false, message: "full" } }));
    expect(plan.steps).toEqual([]);
    expect(plan.verdict).toMatchObject({ stalled: true, reason: "QuotaExceeded" });
  });

  it("an instance that already has a session keeps it", () => {
    expect(kinds(planInstance(input({ session: session("Disconnected"), quota: { allowed: false, message: "full" } })))).toEqual(["connect"]);
  });
});

describe("provider blocks", () => {
  it("makes no attempt before the time the provider gave", () => {
    const plan = planInstance(
      input({ providerType: "cloud_api", session: session("Pending"), status: { recovery: { attempts: 0, notBefore: "2026-11-24T10:00:00Z" } } }),
    );
    expect(plan.steps).toEqual([]);
    expect(plan.verdict).toMatchObject({ stalled: true, reason: "RegistrationBlocked" });
    expect(plan.verdict.message).toContain("2026-11-24T10:00:00.000Z");
  });
});

describe("derivePhase", () => {
  it("remembers LoggedOut, which providers show as merely stopped", () => {
    expect(derivePhase(session("Disconnected"), { phase: "LoggedOut" }, "LoggedOut")).toBe("LoggedOut");
    expect(derivePhase(session("Disconnected"), { phase: "Connected" }, "Connected")).toBe("Disconnected");
  });

  it.each([
    ["created, not started, Connected wanted", session("Disconnected"), { phase: "Pending" }, "Connected", "Pending"],
    ["never seen running (no phase yet), Connected wanted", session("Disconnected"), {}, "Connected", "Pending"],
    ["created, not started, Disconnected wanted", session("Disconnected"), { phase: "Pending" }, "Disconnected", "Disconnected"],
    ["seen running before, now stopped", session("Disconnected"), { phase: "ScanQR" }, "Connected", "Disconnected"],
    ["provider says created (Pending), Connected wanted", session("Pending"), {}, "Connected", "Pending"],
  ] as const)("a stopped session %s reads as %s", (_sentence, observed, status, desired, phase) => {
    expect(derivePhase(observed, status as InstanceStatus, desired)).toBe(phase);
  });
});

describe("the tenant boundary", () => {
  it.each([
    ["a spec naming a session on a provider that does not allow adoption is Stalled AdoptionDisabled, with no step", input({ spec: { adopt: { id: "x" } }, adoption: "Disabled", claim: { id: "x", adopts: true } }), "AdoptionDisabled"],
    ["a session another instance claims is Stalled SessionClaimed, with no step", input({ claim: { id: "x", adopts: true, heldElsewhere: "claimed by another" } }), "SessionClaimed"],
    ["a session on our name without our uid (a squatter) is refused", input({ session: session("ScanQR", { ownerUid: undefined }), status: { providerInstanceId: "ns__one" } }), "SessionOwnedElsewhere"],
    ["a session carrying another resource's uid is refused", input({ session: session("Connected", { ownerUid: "uid-2" }) }), "SessionOwnedElsewhere"],
  ])("%s", (_name, given, reason) => {
    const plan = planInstance(given);
    expect(plan.steps).toEqual([]);
    expect(plan.verdict).toMatchObject({ stalled: true, reason });
  });

  it("an adopted session without an owner gets our claim first, whatever the desired state", () => {
    const plan = planInstance(input({ spec: { adopt: { id: "ns__one" }, state: "LoggedOut" }, session: session("Connected", { ownerUid: undefined }), claim: { id: "ns__one", adopts: true } }));
    expect(kinds(plan)).toEqual(["claim"]);
  });

  it("an id recorded before names carried the uid is still followed where the provider cannot write a claim", () => {
    const plan = planInstance(input({ session: session("Connected", { ownerUid: undefined }), status: { providerInstanceId: "inst_1" }, ownership: { proof: "recorded", adoptable: true, canClaim: false } }));
    expect(plan.verdict.stalled).toBe(false);
  });

  it("a provider that keeps no owner (cloud_api, whapi) drives the session its held claim names", () => {
    const plan = planInstance(input({ session: session("Connected", { ownerUid: undefined }), ownership: { proof: "claimed", adoptable: false, canClaim: false }, claim: { id: "123", adopts: true } }));
    expect(plan.verdict).toMatchObject({ ready: true, stalled: false });
  });
});

describe("planning spec.session", () => {
  const wahaConfig = { client: { deviceName: "Support" } };

  it("refuses a field the provider's module does not declare, naming it", () => {
    const plan = planInstance(input({ providerType: "wapiz", spec: { session: { rejectCalls: { message: "Busy" } } } }));
    expect(plan.verdict).toMatchObject({ stalled: true, reason: "InvalidSpec", message: expect.stringContaining("spec.session.rejectCalls is not supported by wapiz") });
    expect(plan.steps).toEqual([]);
  });

  it("refuses a Cloud API business profile on WAHA", () => {
    const plan = planInstance(input({ spec: { session: { businessProfile: { about: "Hi" } } } }));
    expect(plan.verdict.message).toContain("spec.session.businessProfile is not supported by waha");
  });

  it("applies drifted settings to a linked WAHA session once, saying that it restarts", () => {
    const plan = planInstance(
      input({ status: { phase: "Connected" }, spec: { session: { deviceName: "Support" } }, sessionSettings: { desired: wahaConfig, observed: { client: { deviceName: "Old" } } } }),
    );
    expect(plan.steps).toEqual([{ kind: "applySessionSettings", fields: ["deviceName"] }]);
    expect(plan.events).toEqual([expect.objectContaining({ type: "Normal", reason: "Restarted", message: expect.stringContaining("spec.session.deviceName restarts the waha session") })]);
  });

  it("leaves settings in sync alone", () => {
    const plan = planInstance(input({ status: { phase: "Connected" }, spec: { session: { deviceName: "Support" } }, sessionSettings: { desired: wahaConfig, observed: wahaConfig } }));
    expect(plan.steps).toEqual([]);
    expect(plan.events).toEqual([]);
  });

  it("does nothing when the provider's settings were not read this pass", () => {
    const plan = planInstance(input({ providerType: "evolution", status: { phase: "Connected" }, spec: { session: { alwaysOnline: true } }, sessionSettings: { desired: { settings: { alwaysOnline: true } } } }));
    expect(plan.steps).toEqual([]);
  });

  it("applies Evolution settings without a restart Event", () => {
    const plan = planInstance(
      input({ providerType: "evolution", status: { phase: "Connected" }, spec: { session: { alwaysOnline: true } }, sessionSettings: { desired: { settings: { alwaysOnline: true } }, observed: {} } }),
    );
    expect(kinds(plan)).toEqual(["applySessionSettings"]);
    expect(plan.events).toEqual([expect.objectContaining({ reason: "SessionConfigured" })]);
  });

  it("sets a stopped session's settings before starting it, which restarts nothing", () => {
    const plan = planInstance(
      input({ session: session("Pending"), spec: { session: { deviceName: "Support" } }, sessionSettings: { desired: wahaConfig, observed: {} } }),
    );
    expect(kinds(plan)).toEqual(["applySessionSettings", "connect"]);
    expect(plan.events.map((event) => event.reason)).toEqual(["Starting", "SessionConfigured"]);
  });

  it("says one restart when the settings and the webhook change in the same WAHA write", () => {
    const plan = planInstance(
      input({
        capabilities: { ...everything, webhookRestartsSession: true },
        status: { phase: "Connected" },
        spec: { session: { deviceName: "Support" }, webhook: { url: "https://h.example/w", events: ["message"] } },
        session: session("Connected", { webhookInSync: false }),
        sessionSettings: { desired: wahaConfig, observed: {} },
      }),
    );
    expect(kinds(plan)).toEqual(["applySessionSettings", "configureWebhook"]);
    expect(plan.events.filter((event) => event.reason === "Restarted")).toHaveLength(1);
  });
});

describe("start slots", () => {
  const full = {
    max: 1,
    stuckTimeoutMs: 5 * 60_000,
    now: NOW,
    self: { key: "ns/one", createdAt: "2026-11-21T09:00:00Z", linked: false },
    holders: [{ key: "ns/other", grantedAt: NOW - 1000 }],
    waiters: [],
  };

  it.each([
    ["a new session waits for a slot, Pending", input({ session: null, startSlot: full }), "Pending"],
    ["a stopped session waits before it is started", input({ session: session("Disconnected"), status: { phase: "Connected" }, startSlot: full }), "Pending"],
    ["a requested restart of a linked session waits, and it stays Connected meanwhile", input({ spec: { restartRequestedAt: "2026-11-21T09:59:00Z" }, status: { phase: "Connected" }, startSlot: full }), "Connected"],
    [
      "a failed session's recovery restart waits its turn too",
      input({ session: session("Failed"), status: { phase: "Failed", recovery: { attempts: 1, notBefore: "2026-11-21T09:00:00Z" } }, startSlot: full }),
      "Pending",
    ],
  ])("%s", (_sentence, planInput, phase) => {
    const plan = planInstance(planInput);
    expect(kinds(plan)).toEqual([]);
    expect(plan).toMatchObject({ phase, waitingForStartSlot: true, verdict: { reason: "WaitingForStartSlot", stalled: false }, events: [] });
    expect(plan.lastRestartAt).toBeUndefined();
    expect(plan.recovery).toBeUndefined();
  });

  it("a session with a slot free is started, and one that starts nothing needs none", () => {
    expect(kinds(planInstance(input({ session: null, startSlot: { ...full, holders: [] } })))).toEqual(["create"]);
    expect(planInstance(input({ session: session("ScanQR"), startSlot: full })).waitingForStartSlot).toBeUndefined();
  });
});
