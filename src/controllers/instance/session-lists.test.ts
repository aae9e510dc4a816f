import { describe, expect, it } from "vitest";
import { ProviderError } from "../../providers/errors.ts";
import { SessionLists } from "./session-lists.ts";

/** A provider whose list the test sets; counts its list calls. */
function listingProvider(key = "WhatsAppProvider/ns/waha") {
  const provider = {
    key,
    listed: new Map<string, string>(),
    failure: undefined as ProviderError | undefined,
    calls: 0,
    client: {
      listSessions: async () => {
        provider.calls++;
        if (provider.failure) throw provider.failure;
        return new Map(provider.listed);
      },
    },
  };
  return provider;
}

function lists() {
  const woken: string[][] = [];
  const sessionLists = new SessionLists({ wake: (keys) => woken.push([...keys]), timers: false });
  return { sessionLists, woken };
}

describe("SessionLists", () => {
  it("one list call for every resting instance of a provider; nobody woken while their sessions are as seen", async () => {
    const { sessionLists, woken } = lists();
    const provider = listingProvider();
    for (const n of [1, 2, 3]) {
      provider.listed.set(`s${n}`, `f${n}`);
      sessionLists.watch(provider, 30_000, `ns/i${n}`, { id: `s${n}`, fingerprint: `f${n}` });
    }
    await sessionLists.pollNow(provider.key);
    expect(provider.calls).toBe(1);
    expect(woken).toEqual([]);
    expect(sessionLists.watching(provider.key)).toBe(3);
  });

  it("wakes the instance whose session changed or left the list, and stops watching it until its pass hands it back", async () => {
    const { sessionLists, woken } = lists();
    const provider = listingProvider();
    provider.listed.set("s1", "f1").set("s2", "f2").set("s3", "f3");
    sessionLists.watch(provider, 30_000, "ns/i1", { id: "s1", fingerprint: "f1" });
    sessionLists.watch(provider, 30_000, "ns/i2", { id: "s2", fingerprint: "f2" });
    sessionLists.watch(provider, 30_000, "ns/i3", { id: "s3", fingerprint: "f3" });
    provider.listed.set("s2", "f2-logged-out");
    provider.listed.delete("s3");
    await sessionLists.pollNow(provider.key);
    expect(woken).toEqual([["ns/i2", "ns/i3"]]);
    expect(sessionLists.watching(provider.key)).toBe(1);
    await sessionLists.pollNow(provider.key);
    expect(woken).toHaveLength(1);
  });

  it("a list that fails wakes every instance it watched: their own looks meet the failure and report it", async () => {
    const { sessionLists, woken } = lists();
    const provider = listingProvider();
    provider.listed.set("s1", "f1");
    sessionLists.watch(provider, 30_000, "ns/i1", { id: "s1", fingerprint: "f1" });
    provider.failure = new ProviderError("Unavailable", "waha answered 503");
    await sessionLists.pollNow(provider.key);
    expect(woken).toEqual([["ns/i1"]]);
  });

  it("an instance unwatched (its pass looks itself, or it is gone) is not woken, and a provider without instances is not listed", async () => {
    const { sessionLists, woken } = lists();
    const provider = listingProvider();
    sessionLists.watch(provider, 30_000, "ns/i1", { id: "s1", fingerprint: "f1" });
    sessionLists.unwatch("ns/i1");
    await sessionLists.pollNow(provider.key);
    expect(provider.calls).toBe(0);
    expect(woken).toEqual([]);
  });

  it("an instance moved to another provider is watched there only", async () => {
    const { sessionLists, woken } = lists();
    const a = listingProvider("WhatsAppProvider/ns/a");
    const b = listingProvider("WhatsAppProvider/ns/b");
    sessionLists.watch(a, 30_000, "ns/i1", { id: "s1", fingerprint: "f1" });
    b.listed.set("s1", "f1");
    sessionLists.watch(b, 30_000, "ns/i1", { id: "s1", fingerprint: "f1" });
    await sessionLists.pollNow(a.key);
    await sessionLists.pollNow(b.key);
    expect([a.calls, b.calls]).toEqual([0, 1]);
    expect(woken).toEqual([]);
  });

  it("a provider that cannot list is not watched: its instances keep their own looks", () => {
    const { sessionLists } = lists();
    sessionLists.watch({ key: "WhatsAppProvider/ns/cloud", client: {} as never }, 30_000, "ns/i1", { id: "s1", fingerprint: "f1" });
    expect(sessionLists.watching("WhatsAppProvider/ns/cloud")).toBe(0);
  });
});
