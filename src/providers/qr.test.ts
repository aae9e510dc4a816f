import { describe, expect, it } from "vitest";
import { isProviderError } from "./errors.ts";
import { PNG } from "pngjs";
import { decodeQrPng } from "../../test/emulators/shared/qr-png.ts";
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

describe("the PNG it draws", () => {
  it("decodes to the payload, drawn in black on white with a quiet zone", async () => {
    const payload = `2@${"Ab9/+".repeat(48)},Zx0=,1`;
    const png = await renderQrPng("waha", payload);
    expect(decodeQrPng(png)).toBe(payload);
    const image = PNG.sync.read(png);
    // The corner is margin (white); the finder pattern's corner just inside it is black.
    expect([...image.data.subarray(0, 3)]).toEqual([255, 255, 255]);
    const inside = (12 * image.width + 12) * 4;
    expect([...image.data.subarray(inside, inside + 3)]).toEqual([0, 0, 0]);
  });
});
