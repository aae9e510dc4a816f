/** How each provider module maps spec.session to its own config, and finds drift in it. */
import { describe, expect, it } from "vitest";
import { cloudApiSession } from "./cloud-api/session.ts";
import { evolutionSession } from "./evolution/session.ts";
import { fieldsSet, type SessionSettings } from "./session-settings.ts";
import { wahaSession, withSessionSettings } from "./waha/session.ts";

const PROXY = { url: "http://proxy.example:3128", username: "user", password: "pass" };

describe("WAHA's session settings", () => {
  it.each<[string, SessionSettings, unknown]>([
    ["device and browser go to config.client", { deviceName: "Support", browserName: "Firefox" }, { client: { deviceName: "Support", browserName: "Firefox" } }],
    ["the proxy becomes host:port with its credentials", { proxy: PROXY }, { proxy: { server: "proxy.example:3128", username: "user", password: "pass" } }],
    ["ignored chat types go to config.ignore", { ignore: { groups: true, channels: false } }, { ignore: { groups: true, channels: false } }],
    ["always online is NOWEB's markOnline", { alwaysOnline: false }, { noweb: { markOnline: false } }],
    ["nothing set maps to nothing", {}, {}],
  ])("%s", (_, settings, config) => {
    expect(wahaSession.desired(settings)).toEqual(config);
  });

  it.each<[string, Record<string, unknown>, SessionSettings, string[]]>([
    ["a session holding the wanted config is in sync", { client: { deviceName: "Support" }, ignore: { groups: true }, metadata: { a: "b" } }, { deviceName: "Support", ignore: { groups: true } }, []],
    ["another device name is drift", { client: { deviceName: "Old" } }, { deviceName: "Support" }, ["deviceName"]],
    ["a proxy removed behind our back is drift", {}, { proxy: PROXY }, ["proxy"]],
    ["another proxy password is drift", { proxy: { server: "proxy.example:3128", username: "user", password: "old" } }, { proxy: PROXY }, ["proxy"]],
    ["an unset ignore flag reads as WAHA's default, not ignored", {}, { ignore: { status: false } }, []],
    ["an unset markOnline reads as WAHA's default, true", {}, { alwaysOnline: true }, []],
    ["markOnline true when false is wanted is drift", { noweb: { markOnline: true } }, { alwaysOnline: false }, ["alwaysOnline"]],
    ["what spec.session does not set is not compared", { client: { deviceName: "Anything" }, proxy: { server: "x:1" } }, {}, []],
  ])("%s", (_, observed, settings, drift) => {
    expect(wahaSession.drift(observed, wahaSession.desired(settings))).toEqual(drift);
  });

  it("merges the settings into a config, keeping what spec.session does not manage", () => {
    const config = { metadata: { k: "v" }, client: { browserName: "Safari" }, noweb: { store: { enabled: true } }, proxy: { server: "old:1" } };
    expect(withSessionSettings(config, wahaSession.desired({ deviceName: "Support", alwaysOnline: false, proxy: { url: "socks5://p.example:1080" } }))).toEqual({
      metadata: { k: "v" },
      client: { browserName: "Safari", deviceName: "Support" },
      noweb: { store: { enabled: true }, markOnline: false },
      proxy: { server: "p.example:1080" },
    });
  });
});

describe("Evolution's session settings", () => {
  it.each<[string, SessionSettings, unknown]>([
    ["call rejection with a message is rejectCall and msgCall", { rejectCalls: { enabled: true, message: "Busy" } }, { settings: { rejectCall: true, msgCall: "Busy" } }],
    [
      "ignore groups, always online and read receipts are its flags",
      { ignore: { groups: true }, alwaysOnline: true, readReceipts: false },
      { settings: { groupsIgnore: true, alwaysOnline: true, readMessages: false } },
    ],
    ["the proxy is split into protocol, host and port", { proxy: PROXY }, { proxy: { enabled: true, protocol: "http", host: "proxy.example", port: "3128", username: "user", password: "pass" } }],
  ])("%s", (_, settings, config) => {
    expect(evolutionSession.desired(settings)).toEqual(config);
  });

  it.each<[string, unknown, SessionSettings, string[]]>([
    ["settings as wanted are in sync", { settings: { rejectCall: true, msgCall: "Busy", groupsIgnore: false } }, { rejectCalls: { enabled: true, message: "Busy" } }, []],
    ["a call rejection switched off behind our back is drift", { settings: { rejectCall: false } }, { rejectCalls: { enabled: true } }, ["rejectCalls"]],
    ["another call message is drift", { settings: { rejectCall: true, msgCall: "Old" } }, { rejectCalls: { enabled: true, message: "Busy" } }, ["rejectCalls"]],
    ["no settings row reads as Evolution's defaults, all false", {}, { ignore: { groups: false }, readReceipts: false }, []],
    ["a proxy disabled at Evolution is drift", { proxy: { enabled: false, host: "", port: "", protocol: "" } }, { proxy: PROXY }, ["proxy"]],
    ["each differing flag is named", { settings: {} }, { ignore: { groups: true }, alwaysOnline: true, readReceipts: true }, ["ignore.groups", "alwaysOnline", "readReceipts"]],
  ])("%s", (_, observed, settings, drift) => {
    expect(evolutionSession.drift(observed as never, evolutionSession.desired(settings))).toEqual(drift);
  });
});

describe("the Cloud API's business profile", () => {
  const profile = { about: "Open 9-5", websites: ["https://shop.example"], vertical: "RETAIL" };

  it("maps the profile fields that are set, and nothing else", () => {
    expect(cloudApiSession.desired({ businessProfile: profile, deviceName: "ignored" })).toEqual({ businessProfile: profile });
    expect(cloudApiSession.desired({})).toEqual({});
  });

  it.each<[string, unknown, string[]]>([
    ["the same profile, with fields we do not set, is in sync", { businessProfile: { ...profile, email: "x@y.example" } }, []],
    ["another about text is drift", { businessProfile: { ...profile, about: "Closed" } }, ["businessProfile"]],
    ["a website removed is drift", { businessProfile: { ...profile, websites: [] } }, ["businessProfile"]],
    ["an empty profile is drift", {}, ["businessProfile"]],
  ])("%s", (_, observed, drift) => {
    expect(cloudApiSession.drift(observed as never, cloudApiSession.desired({ businessProfile: profile }))).toEqual(drift);
  });
});

describe("the fields a spec.session sets", () => {
  it("names nested ignore flags by their path", () => {
    expect(fieldsSet({ ignore: { status: true }, rejectCalls: { enabled: true } })).toEqual(["ignore.status", "rejectCalls"]);
  });
});
