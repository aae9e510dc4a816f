/**
 * pino JSON logs. Anything that could carry a credential, an HMAC key or a QR payload
 * is redacted by path, wherever in a log object it sits.
 */
import { pino, type Logger } from "pino";

export const REDACTED_PATHS = [
  "apiKey",
  "*.apiKey",
  "hmacKey",
  "*.hmacKey",
  "*.*.hmacKey",
  "pin",
  "*.pin",
  "token",
  "*.token",
  "password",
  "*.password",
  "qr",
  "*.qr",
  "png",
  "*.png",
  "text",
  "*.text",
  "pairingCode",
  "*.pairingCode",
  "data",
  "*.data",
  "headers.authorization",
  "headers.cookie",
  'headers["x-api-key"]',
  "*.headers.authorization",
  "*.headers.cookie",
  '*.headers["x-api-key"]',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { component: "wa-operator" },
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
