/**
 * QR images both ways: emulators render a payload the way providers do, and tests read
 * it back the way a phone camera would, so a test can prove the client delivered the
 * very code the emulator is showing.
 */
import jsQRModule from "jsqr";
import { PNG } from "pngjs";
import QRCode from "qrcode";

// jsqr's types declare an ES default export, but the package sets module.exports to the
// function itself, which is what Node's default import yields.
const jsQR = jsQRModule as unknown as typeof jsQRModule.default;

/** PNG bytes of a QR code holding `payload`. */
export function renderQrPng(payload: string): Promise<Buffer> {
  return QRCode.toBuffer(payload, { type: "png", margin: 2, scale: 4 });
}

/** The payload of a QR PNG, or undefined when no code can be read from it. */
export function decodeQrPng(png: Buffer): string | undefined {
  const image = PNG.sync.read(png);
  return jsQR(new Uint8ClampedArray(image.data), image.width, image.height)?.data;
}
