import { describe, expect, it } from "vitest";
import { isProviderError } from "./errors.ts";
import { isPng, renderQrPng } from "./qr.ts";

describe("renderQrPng", () => {
  it("renders a WhatsApp-sized payload", async () => {
    expect(isPng(await renderQrPng("waha", `2@${"A".repeat(200)},1`))).toBe(true);
  });

  it("turns a payload too large for any QR code into a short Malformed ProviderError", async () => {
    const error = await renderQrPng("waha", "x".repeat(5000)).catch((caught: unknown) => caught);
    expect(isProviderError(error, "Malformed")).toBe(true);
    expect((error as Error).message).toBe("waha gave a QR payload of 5000 characters, which no QR code can hold");
  });
});
