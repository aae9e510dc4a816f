/** QR images: rendering a raw payload (to PNG, or to modules to draw), and reading the data URLs some providers return. */
import QRCode from "qrcode";
import { crc32, deflateSync } from "node:zlib";
import { ProviderError } from "./errors.ts";
import type { ProviderType } from "./types.ts";

/** Pixels per module, and the quiet zone in modules, of the PNGs the operator draws. */
const PNG_SCALE = 6;
const PNG_MARGIN = 2;

/**
 * Renders a provider's QR payload as a PNG a phone can scan from a screen: black and
 * white, one bit a pixel, which is all a QR code needs (an RGBA image of the same code
 * has 32 times the bytes to compress; drawing it was most of the CPU a new instance cost).
 * A payload no QR code can hold (over 2331 bytes at level M) is the provider's Malformed
 * answer, so it becomes a condition like any other bad answer, not an unclassified failure.
 */
export async function renderQrPng(provider: ProviderType, payload: string): Promise<Buffer> {
  let modules: { size: number; get(row: number, column: number): number | boolean };
  try {
    // One byte-mode segment: the library's search for the shortest mix of modes cost as much
    // as the rest of the drawing, and a WhatsApp payload (base64 and commas) gains nothing from it.
    modules = QRCode.create([{ data: Buffer.from(payload, "utf8"), mode: "byte" }], { errorCorrectionLevel: "M" }).modules;
  } catch {
    throw new ProviderError("Malformed", `${provider} gave a QR payload of ${payload.length} characters, which no QR code can hold`);
  }
  return bilevelPng(modules.size, (row, column) => Boolean(modules.get(row, column)), PNG_SCALE, PNG_MARGIN);
}

/**
 * A PNG of a square of `size` × `size` modules, each `scale` pixels wide, inside a white
 * margin of `margin` modules: greyscale at bit depth 1 (0 is black), no interlace, every
 * row unfiltered (PNG, RFC 2083: IHDR, IDAT with zlib data, IEND).
 */
function bilevelPng(size: number, dark: (row: number, column: number) => boolean, scale: number, margin: number): Buffer {
  const side = (size + 2 * margin) * scale;
  const rowBytes = Math.ceil(side / 8);
  const stride = rowBytes + 1; // each row starts with its filter type, 0
  const raw = Buffer.alloc(stride * side, 0xff);
  for (let y = 0; y < side; y++) raw[y * stride] = 0;
  for (let row = 0; row < size; row++) {
    const first = (row + margin) * scale;
    const line = raw.subarray(first * stride, (first + 1) * stride);
    for (let column = 0; column < size; column++) {
      if (!dark(row, column)) continue;
      for (let x = (column + margin) * scale, end = x + scale; x < end; x++) {
        const at = 1 + (x >> 3);
        line[at] = (line[at] as number) & ~(0x80 >> (x & 7));
      }
    }
    for (let copy = 1; copy < scale; copy++) line.copy(raw, (first + copy) * stride);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(side, 0);
  header.writeUInt32BE(side, 4);
  header[8] = 1; // bit depth
  header[9] = 0; // greyscale
  return Buffer.concat([PNG_SIGNATURE, pngChunk("IHDR", header), pngChunk("IDAT", deflateSync(raw, { level: 9 })), pngChunk("IEND", Buffer.alloc(0))]);
}

function pngChunk(type: string, data: Buffer): Buffer {
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write(type, 4, "latin1");
  data.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length);
  return chunk;
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
