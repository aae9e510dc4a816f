/**
 * `npm run bench` (node bench/reconcile.ts): the hot pure paths of a reconcile pass — planning, computing
 * conditions, diffing status — and the work queue under a burst of keys.
 */
import { Bench } from "tinybench";
import { instanceSpecSchema } from "../src/api/instance.ts";
import { applyVerdict } from "../src/controllers/conditions.ts";
import { planInstance, type PlanInput } from "../src/controllers/instance/plan.ts";
import { mergePatch } from "../src/controllers/status-patch.ts";
import { wahaCapabilities } from "../src/providers/waha/client.ts";
import { WorkQueue } from "../src/runtime/work-queue.ts";

const input: PlanInput = {
  now: Date.parse("2026-11-21T10:00:00Z"),
  name: "support-line",
  uid: "uid",
  spec: instanceSpecSchema.parse({ providerRef: { name: "waha" }, webhook: { url: "https://h.example/w", events: ["message"] } }),
  status: { phase: "Connected" },
  providerType: "waha",
  capabilities: wahaCapabilities,
  session: { id: "ns__support-line", phase: "Connected", providerState: "WORKING", ownerUid: "uid", phoneNumber: "5511999998888", webhookInSync: true },
  quota: { allowed: true, message: "" },
  adoption: "Allowed",
  ownership: { proof: "recorded", adoptable: true, canClaim: true },
  qrSecretFilled: false,
  webhookSecret: "current",
  failureBackoff: { baseMs: 60_000, maxMs: 1_800_000 },
  stuckTimeoutMs: 300_000,
};
const conditions = applyVerdict([], { ready: true, stalled: false, reason: "Connected", message: "linked" }, 1, "2026-11-21T10:00:00Z");
const before = { phase: "ScanQR", observedGeneration: 1, conditions, qr: { secretName: "a-qr", updatedAt: "x", expiresAt: "y" } };
const after = { phase: "Connected", observedGeneration: 1, conditions, phoneNumber: "5511999998888" };

const suite = new Bench({ time: 1000, warmupTime: 200 });
suite
  .add("planInstance (linked, nothing to do)", () => {
    planInstance(input);
  })
  .add("parse a spec with zod (defaults applied)", () => {
    instanceSpecSchema.parse({ providerRef: { name: "waha" }, pairing: { method: "Code", phoneNumber: "5511999998888" } });
  })
  .add("applyVerdict (three kstatus conditions)", () => {
    applyVerdict(conditions, { ready: false, stalled: false, reason: "ScanQR", message: "scan" }, 2, "2026-11-21T10:01:00Z");
  })
  .add("mergePatch of a status", () => {
    mergePatch(before, after);
  })
  .add("work queue: 10,000 adds of 1,000 keys drained by 8 workers", async () => {
    const queue = new WorkQueue({ concurrency: 8 });
    queue.start(async () => undefined);
    for (let i = 0; i < 10_000; i++) queue.add(`ns/instance-${i % 1000}`);
    await queue.whenIdle();
    await queue.shutdown();
  });

await suite.run();
console.table(
  suite.tasks.map((task) => {
    const result = task.result as { throughput?: { mean: number }; latency?: { mean: number; p99?: number } } | undefined;
    return {
      benchmark: task.name,
      "ops/s": Math.round(result?.throughput?.mean ?? 0),
      "mean (µs)": Number(((result?.latency?.mean ?? 0) * 1000).toFixed(2)),
      "p99 (µs)": Number(((result?.latency?.p99 ?? 0) * 1000).toFixed(2)),
    };
  }),
);
