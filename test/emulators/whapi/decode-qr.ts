/** Reads the payload back out of a QR PNG, as a phone camera would. For tests. */
import jsQRModule from "jsqr";
import { PNG } from "pngjs";

// jsqr's types declare an ES default export, but the package sets module.exports to the
// function itself, which is what Node's default import yields.
const jsQR = jsQRModule as unknown as typeof jsQRModule.default;

export function decodeQrPng(png: Buffer): string | undefined {
  const image = PNG.sync.read(png);
  return jsQR(new Uint8ClampedArray(image.data), image.width, image.height)?.data;
}
