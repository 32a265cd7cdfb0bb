/**
 * The root pino logger: JSON lines on stdout (journald stores them), with secrets redacted wherever they appear in
 * logged objects: credentials, session tokens, signatures and authorization headers. Every line is at most
 * MAX_LOG_LINE_BYTES (journald splits longer ones, which breaks the JSON): callers summarise what grows with input,
 * and a line still too long is cut down here and says so (`logTruncated`).
 */
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from "pino";
import { boundLine } from "./log-bounds.js";

export type { Logger } from "pino";

export const REDACT_PATHS = [
  "accessKeyId",
  "secretAccessKey",
  "sessionToken",
  "*.accessKeyId",
  "*.secretAccessKey",
  "*.sessionToken",
  "*.*.secretAccessKey",
  "*.*.sessionToken",
  "AccessKeyId",
  "SecretAccessKey",
  "Token",
  "*.SecretAccessKey",
  "*.Token",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
  'headers["x-amz-security-token"]',
  '*.headers["x-amz-security-token"]',
  'headers["x-aws-ec2-metadata-token"]',
  '*.headers["x-aws-ec2-metadata-token"]',
  "receiptHandle",
  "*.receiptHandle",
];

export interface LoggerOptions {
  level: LevelWithSilent;
  /** Defaults to stdout; tests pass a stream to read the lines back. */
  destination?: DestinationStream;
  base?: Record<string, unknown>;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: "doc-processor", ...options.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      serializers: { err: pino.stdSerializers.err },
      hooks: { streamWrite: (line) => boundLine(line) },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/**
 * A child that skips the redaction pass: with wildcard paths pino runs it on every field of every line, about 40 us
 * and 75 KiB of garbage per line (see reference performance profile). Only for lines whose fields are fixed
 * primitives (or lists of them) under names no redact path matches, where redaction cannot change a byte: the
 * per-document line (test/unit/observability/document-log.test.ts compares both loggers' output).
 */
export function unredactedChild(log: Logger): Logger {
  return log.child({}, { redact: [] });
}

/** A logger that writes nothing, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
