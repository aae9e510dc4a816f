import { describe, expect, it } from "vitest";
import { WorkQueue } from "./work-queue.ts";

const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));

describe("WorkQueue", () => {
  it("queues a key once however often it is added", async () => {
    const queue = new WorkQueue({ concurrency: 1 });
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) queue.add("ns/a");
    queue.add("ns/b");
    queue.start(async (key) => {
      seen.push(key);
    });
    await queue.whenIdle();
    await queue.shutdown();
    expect(seen).toEqual(["ns/a", "ns/b"]);
  });

  it("counts as pressing the keys something asked for or that continue work, not routine looks", () => {
    const queue = new WorkQueue({ concurrency: 1 });
    for (let i = 0; i < 5; i++) queue.add(`ns/poll-${i}`, "routine");
    queue.add("ns/new", "urgent");
    queue.add("ns/starting", "inFlight");
    expect(queue.pressingMoreThan(1)).toBe(true);
    expect(queue.pressingMoreThan(2)).toBe(false);
    queue.add("ns/poll-0", "urgent");
    expect(queue.pressingMoreThan(2)).toBe(true);
  });

  it("tells how long each key waited from its first add and how long its handler ran", async () => {
    const taken: number[] = [];
    const done: number[] = [];
    const queue = new WorkQueue({ concurrency: 1, onTaken: (seconds) => taken.push(seconds), onDone: (seconds) => done.push(seconds) });
    queue.add("ns/a");
    queue.add("ns/b");
    await tick(30);
    // Adding a waiting key again does not restart its clock.
    queue.add("ns/b");
    queue.start(async (key) => {
      if (key === "ns/a") await tick(30);
    });
    await queue.whenIdle();
    await queue.shutdown();
    expect(taken).toHaveLength(2);
    expect(done).toHaveLength(2);
    // b waited behind a's run as well as before the workers started.
    expect(taken[1]).toBeGreaterThanOrEqual((taken[0] ?? 0) + 0.025);
    expect(done[0]).toBeGreaterThanOrEqual(0.025);
    expect(done[1]).toBeLessThan(done[0] ?? 0);
  });

  it("never runs one key twice at once, and runs it again if it was added meanwhile", async () => {
    const queue = new WorkQueue({ concurrency: 4 });
    let running = 0;
    let most = 0;
    let runs = 0;
    queue.start(async () => {
      running += 1;
      runs += 1;
      most = Math.max(most, running);
      await tick(20);
      running -= 1;
    });
    queue.add("ns/a");
    await tick();
    queue.add("ns/a");
    queue.add("ns/a");
    await tick(60);
    await queue.whenIdle();
    await queue.shutdown();
    expect(most).toBe(1);
    expect(runs).toBe(2);
  });

  it("bounds concurrency across keys", async () => {
    const queue = new WorkQueue({ concurrency: 3 });
    let running = 0;
    let most = 0;
    queue.start(async () => {
      running += 1;
      most = Math.max(most, running);
      await tick(10);
      running -= 1;
    });
    for (let i = 0; i < 20; i++) queue.add(`ns/${i}`);
    await tick(100);
    await queue.whenIdle();
    await queue.shutdown();
    expect(most).toBe(3);
  });

  it("backs off per key exponentially, and a success forgets the failures", () => {
    const queue = new WorkQueue({ concurrency: 1, baseDelayMs: 100, maxDelayMs: 1000 });
    expect([1, 2, 3, 4, 5].map(() => queue.addRateLimited("ns/a"))).toEqual([100, 200, 400, 800, 1000]);
    expect(queue.addRateLimited("ns/b")).toBe(100);
    queue.forget("ns/a");
    expect(queue.addRateLimited("ns/a")).toBe(100);
    void queue.shutdown();
  });

  it("keeps the earliest of two delayed adds", async () => {
    const queue = new WorkQueue({ concurrency: 1 });
    const seen: number[] = [];
    const started = Date.now();
    queue.start(async () => {
      seen.push(Date.now() - started);
    });
    queue.addAfter("ns/a", 5_000);
    queue.addAfter("ns/a", 20);
    await tick(80);
    await queue.shutdown();
    expect(seen).toHaveLength(1);
  });

  it("on shutdown lets in-flight work finish and takes nothing new", async () => {
    const queue = new WorkQueue({ concurrency: 1 });
    const finished: string[] = [];
    queue.start(async (key) => {
      await tick(30);
      finished.push(key);
    });
    queue.add("ns/a");
    await tick();
    const stopped = queue.shutdown();
    queue.add("ns/b");
    await stopped;
    expect(finished).toEqual(["ns/a"]);
  });

  it("runs urgent keys before routine ones, and an urgent add overtakes a routine wait", async () => {
    const queue = new WorkQueue({ concurrency: 1 });
    const seen: string[] = [];
    queue.add("ns/poll-1", "routine");
    queue.add("ns/poll-2", "routine");
    queue.add("ns/poll-3", "routine");
    queue.add("ns/new");
    queue.add("ns/poll-3");
    queue.start(async (key) => {
      seen.push(key);
    });
    await queue.whenIdle();
    await queue.shutdown();
    expect(seen).toEqual(["ns/new", "ns/poll-3", "ns/poll-1", "ns/poll-2"]);
  });

  it("takes the next look of work in flight before new work queued earlier, so a burst finishes what it began", async () => {
    const queue = new WorkQueue({ concurrency: 1 });
    const seen: string[] = [];
    for (const key of ["ns/new-1", "ns/new-2", "ns/new-3"]) queue.add(key);
    queue.add("ns/poll", "routine");
    queue.start(async (key) => {
      seen.push(key);
      // The first pass began a session that is still starting: its next look is due while ns/new-2 runs.
      if (key === "ns/new-1" && seen.length === 1) queue.addAfter(key, 10, "inFlight");
      if (key === "ns/new-2") await tick(40);
    });
    await tick(80);
    await queue.whenIdle();
    await queue.shutdown();
    expect(seen).toEqual(["ns/new-1", "ns/new-2", "ns/new-1", "ns/new-3", "ns/poll"]);
  });

  it("retryBackedOffNow ends every pending backoff at once", async () => {
    const queue = new WorkQueue({ concurrency: 1, baseDelayMs: 60_000 });
    const seen: string[] = [];
    queue.addRateLimited("ns/a");
    queue.start(async (key) => {
      seen.push(key);
    });
    await tick(20);
    expect(seen).toEqual([]);
    queue.retryBackedOffNow();
    await tick(20);
    await queue.shutdown();
    expect(seen).toEqual(["ns/a"]);
  });

  it("a handler that rejects keeps its worker, reports the error and retries the key with backoff", async () => {
    const errors: string[] = [];
    const queue = new WorkQueue({ concurrency: 1, baseDelayMs: 10, onError: (key, error) => errors.push(`${key}: ${(error as Error).message}`) });
    const seen: string[] = [];
    let failuresLeft = 2;
    queue.start(async (key) => {
      seen.push(key);
      if (key === "ns/a" && failuresLeft-- > 0) throw new Error("boom");
    });
    queue.add("ns/a");
    queue.add("ns/b");
    await tick(150);
    await queue.whenIdle();
    // The single worker survived both rejections: ns/b ran, and ns/a came back until it succeeded.
    expect(seen).toEqual(["ns/a", "ns/b", "ns/a", "ns/a"]);
    expect(errors).toEqual(["ns/a: boom", "ns/a: boom"]);
    queue.add("ns/c");
    await tick();
    await queue.whenIdle();
    await queue.shutdown();
    expect(seen.at(-1)).toBe("ns/c");
  });
});

describe("WorkQueue in progress", () => {
  it("says since when each key in a worker's hands was taken, and forgets it once done", async () => {
    const queue = new WorkQueue({ concurrency: 2 });
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const before = performance.now();
    queue.add("ns/a");
    queue.add("ns/b");
    queue.start(() => held);
    await tick();
    const since = queue.processingSince();
    expect(since).toHaveLength(2);
    for (const at of since) expect(at).toBeGreaterThanOrEqual(before);
    release();
    await queue.whenIdle();
    expect(queue.processingSince()).toEqual([]);
    await queue.shutdown();
  });
});

/** Starts the queue with a handler that records the keys it runs and holds `heldKey` until release(). */
function startHolding(queue: WorkQueue, heldKey: string): { readonly ran: string[]; readonly release: () => void } {
  const ran: string[] = [];
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  queue.start(async (key) => {
    ran.push(key);
    if (key === heldKey) await held;
  });
  return { ran, release };
}

describe("WorkQueue groups", () => {
  it("runs at most maxPerGroup keys of one group at once, and keys of other groups meanwhile", async () => {
    const groupOf = (key: string) => key.split("/")[0];
    const queue = new WorkQueue({ concurrency: 4, groupOf, maxPerGroup: 2 });
    const running = new Map<string, number>();
    const most = new Map<string, number>();
    const order: string[] = [];
    let release: () => void = () => undefined;
    const slow = new Promise<void>((resolve) => (release = resolve));
    queue.start(async (key) => {
      const group = groupOf(key) as string;
      running.set(group, (running.get(group) ?? 0) + 1);
      most.set(group, Math.max(most.get(group) ?? 0, running.get(group) ?? 0));
      order.push(key);
      // The slow provider's reconciles hang until released.
      if (group === "slow") await slow;
      running.set(group, (running.get(group) ?? 0) - 1);
    });
    for (let i = 0; i < 6; i++) queue.add(`slow/${i}`);
    for (let i = 0; i < 3; i++) queue.add(`fast/${i}`);
    await tick(30);
    // Every key of the other provider ran while the slow one held its two workers.
    expect(order.filter((key) => key.startsWith("fast/"))).toEqual(["fast/0", "fast/1", "fast/2"]);
    expect(running.get("slow")).toBe(2);
    release();
    await queue.whenIdle();
    await queue.shutdown();
    expect(most.get("slow")).toBe(2);
    expect(order.filter((key) => key.startsWith("slow/"))).toEqual(["slow/0", "slow/1", "slow/2", "slow/3", "slow/4", "slow/5"]);
  });

  it("runs every key set aside behind its full group even when those keys leave the group meanwhile (their instances deleted)", async () => {
    const groups = new Map([
      ["p/held", "p"],
      ["p/a", "p"],
      ["p/b", "p"],
      ["p/c", "p"],
    ]);
    const queue = new WorkQueue({ concurrency: 4, groupOf: (key) => groups.get(key), maxPerGroup: 1 });
    const { ran, release } = startHolding(queue, "p/held");
    for (const key of groups.keys()) queue.add(key);
    await tick();
    expect(ran).toEqual(["p/held"]);
    // Deleted while they wait: no provider any more, so no group.
    for (const key of ["p/a", "p/b", "p/c"]) groups.delete(key);
    release();
    await tick(30);
    expect(ran.sort()).toEqual(["p/a", "p/b", "p/c", "p/held"]);
    expect(queue.depth).toBe(0);
    await queue.shutdown();
  });

  it("gives a full group's room to a continuation set aside behind it before the new keys set aside earlier", async () => {
    const queue = new WorkQueue({ concurrency: 2, groupOf: (key) => key.split("/")[0], maxPerGroup: 1 });
    const { ran, release } = startHolding(queue, "p/held");
    queue.add("p/held");
    await tick();
    queue.add("p/new-1");
    queue.add("p/new-2");
    await tick();
    queue.addAfter("p/continuation", 0, "inFlight");
    await tick();
    release();
    await queue.whenIdle();
    await queue.shutdown();
    expect(ran).toEqual(["p/held", "p/continuation", "p/new-1", "p/new-2"]);
  });

  it("moves a key set aside behind its full group to the urgent lane when it is asked for again", async () => {
    const queue = new WorkQueue({ concurrency: 2, groupOf: (key) => key.split("/")[0], maxPerGroup: 1 });
    const { ran: order, release } = startHolding(queue, "p/held");
    queue.add("p/held");
    await tick();
    queue.addAfter("p/routine", 0);
    queue.addAfter("q/other", 0);
    await tick();
    queue.add("p/routine", "urgent");
    release();
    await queue.whenIdle();
    await queue.shutdown();
    expect(order).toEqual(["p/held", "q/other", "p/routine"]);
    expect(queue.depth).toBe(0);
  });

  it("holds a provider's huge requeueAfter in a timer without firing it at once", async () => {
    const queue = new WorkQueue({ concurrency: 1 });
    const seen: string[] = [];
    queue.start(async (key) => {
      seen.push(key);
    });
    // 1e10 s: setTimeout would overflow into a 1 ms timer.
    queue.addAfter("ns/paused", 1e13);
    await tick(20);
    expect(seen).toEqual([]);
    expect(queue.isScheduled("ns/paused")).toBe(true);
    await queue.shutdown();
  });
});
