/** QR images: rendering a raw payload (to PNG, or to modules to draw), and reading the data URLs some providers return. */
import QRCode from "qrcode";
import { ProviderError } from "./errors.ts";
import type { ProviderType } from "./types.ts";

/**
 * Renders a provider's QR payload as a PNG a phone can scan from a screen. A payload no
 * QR code can hold (over 2331 bytes at level M) is the provider's Malformed answer, so
 * it becomes a condition like any other bad answer, not an unclassified failure.
 */
export async function renderQrPng(provider: ProviderType, payload: string): Promise<Buffer> {
  try {
    return await QRCode.toBuffer(payload, { type: "png", errorCorrectionLevel: "M", margin: 2, scale: 6 });
  } catch {
    throw new ProviderError("Malformed", `${provider} gave a QR payload of ${payload.length} characters, which no QR code can hold`);
  }
}

/**
 * The modules of the QR code for a payload, row by row, true for dark, without a quiet
 * zone: for drawing it elsewhere than in a PNG (a terminal, an SVG page).
 */
export function qrModules(payload: string, errorCorrectionLevel: "L" | "M"): boolean[][] {
  const { modules } = QRCode.create(payload, { errorCorrectionLevel });
  return Array.from({ length: modules.size }, (_, y) => Array.from({ length: modules.size }, (_, x) => Boolean(modules.get(y, x))));
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function isPng(bytes: Buffer): boolean {
  return bytes.length > PNG_SIGNATURE.length && bytes.subarray(0, PNG_SIGNATURE.length).equals(PNG_SIGNATURE);
}

/** Decodes `data:image/png;base64,...` to PNG bytes; anything else is a Malformed answer. */
export function pngFromDataUrl(provider: ProviderType, dataUrl: string): Buffer {
  const match = /^data:image\/png;base64,([A-Za-z0-9+/=\s]+)$/.exec(dataUrl.trim());
  const bytes = match?.[1] ? Buffer.from(match[1], "base64") : undefined;
  if (!bytes || !isPng(bytes)) throw new ProviderError("Malformed", `${provider} returned a QR code that is not a PNG data URL`);
  return bytes;
}
