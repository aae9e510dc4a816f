import { describe, expect, it } from "vitest";
import { reportProvider, withoutUserinfo } from "./reconciler.ts";

describe("the provider URL a user sees", () => {
  it("drops user:pass@ from the Available message and its Event", () => {
    const report = reportProvider({
      status: {},
      instances: 0,
      health: { type: "waha", url: "http://admin:s3cr3t-pa55@127.0.0.1:3000/base" },
      failure: undefined,
      checkMs: 60_000,
    });
    expect(report.verdict.message).toBe("waha at http://127.0.0.1:3000/base answers and accepts the credentials");
    expect(JSON.stringify(report.events)).not.toContain("s3cr3t-pa55");
    expect(JSON.stringify(report.events)).not.toContain("admin");
  });

  it("leaves a URL without userinfo exactly as written", () => {
    expect(withoutUserinfo("http://127.0.0.1:3000")).toBe("http://127.0.0.1:3000");
    expect(withoutUserinfo("https://user@127.0.0.1/")).toBe("https://127.0.0.1/");
    expect(withoutUserinfo("not a url")).toBe("not a url");
  });
});
