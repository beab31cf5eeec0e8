/**
 * Structured logging for every process: pino, JSON lines on stdout. Secrets are redacted by
 * path before a line is written, so a token in a header or a config never reaches a log.
 */
import pino, { type DestinationStream, type Logger, type LoggerOptions } from "pino";

export type { Logger };

export const REDACTED_PATHS = [
  "token",
  "*.token",
  "tokens",
  "*.tokens",
  "admin.tokens",
  "*.admin.tokens",
  "authorization",
  "headers.authorization",
  "headers.cookie",
  'headers["set-cookie"]',
  "req.headers.authorization",
  "req.headers.cookie",
  "private_key",
  "*.private_key",
];

export interface LoggerSettings {
  readonly name: string;
  readonly level?: string;
  /** Where lines go; stdout by default, written asynchronously so logging never blocks. */
  readonly destination?: DestinationStream;
}

export function createLogger(settings: LoggerSettings): Logger {
  const options: LoggerOptions = {
    name: settings.name,
    level: settings.level ?? "info",
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    formatters: { level: (label) => ({ level: label }) },
  };
  return pino(options, settings.destination ?? pino.destination({ dest: 1, sync: false }));
}
