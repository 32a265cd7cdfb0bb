/**
 * Per-document failures: how one document ended badly, never a reason for the process to exit. Two sets of codes:
 * OutcomeCode for a document the daemon could not process (retried, or left to the dead-letter queue), and
 * DocumentErrorCode for one a processor refused for good (recorded in `<key>.error.json`, acknowledged).
 */
import type { DetectedType } from "../domain/document.js";

/** Why a document's outcome is retry or rejected: stable strings, in logs and metrics labels. */
export const OutcomeCode = {
  sourceMissingOrForbidden: "SOURCE_MISSING_OR_FORBIDDEN",
  sourceSuperseded: "SOURCE_SUPERSEDED",
  sourceReadFailed: "SOURCE_READ_FAILED",
  objectTooLarge: "OBJECT_TOO_LARGE",
  processorFailed: "PROCESSOR_FAILED",
  sinkWriteFailed: "SINK_WRITE_FAILED",
  aborted: "ABORTED",
  internal: "INTERNAL",
  /** prefix + source key + suffix is over S3's 1,024-byte key limit: the output can never be written. */
  outputKeyTooLong: "OUTPUT_KEY_TOO_LONG",
} as const;
export type OutcomeCode = (typeof OutcomeCode)[keyof typeof OutcomeCode];

/** A per-document failure as an exception (an abort reason, a key that cannot be built); never a process exit. */
export class DocumentError extends Error {
  readonly code: OutcomeCode;

  constructor(code: OutcomeCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * The output key would exceed S3's limit: permanent for this source key, so never worth retrying. No error record
 * can say so either (its key is longer still): the message goes to the DLQ.
 */
export class OutputKeyTooLongError extends DocumentError {
  readonly bytes: number;

  constructor(key: string, bytes: number, limit: number) {
    super(
      OutcomeCode.outputKeyTooLong,
      `output key would be ${bytes} bytes of UTF-8, above S3's limit of ${limit}: ` +
        `${JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}...` : key)} (shorten outputPrefix or the source key; ` +
        "the message goes to the DLQ, and no error record can be written under a key that long)",
    );
    this.bytes = bytes;
  }
}

/**
 * Why a document can never be processed: the built-in processors' codes, stable strings (in error records, logs and
 * the README's table). A processor may use its own (upper snake case), which ends up in the error record as it is.
 */
export const BUILTIN_DOCUMENT_ERROR_CODES = [
  "UNSUPPORTED_TYPE",
  "CORRUPT",
  "ENCRYPTED",
  "EMPTY",
  "TOO_LARGE",
  "UNSAFE_ARCHIVE",
  "TIMEOUT",
  "MEMORY_LIMIT",
  /** More pages than may be recognised (ocrMaxPages): refused before any page is. */
  "TOO_MANY_PAGES",
] as const;

export type DocumentErrorCode = (typeof BUILTIN_DOCUMENT_ERROR_CODES)[number] | (string & {});

/**
 * Thrown by a processor for a document that can never be processed as it is. Retrying cannot help, so the pipeline
 * records the reason in `<key>.error.json` and acknowledges the message instead of sending it to the DLQ.
 */
export class PermanentDocumentError extends Error {
  readonly code: DocumentErrorCode;
  readonly detectedType: DetectedType | undefined;

  constructor(code: DocumentErrorCode, message: string, options?: { detectedType?: DetectedType; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "PermanentDocumentError";
    this.code = code;
    this.detectedType = options?.detectedType;
  }
}

/**
 * Whether `err` is a PermanentDocumentError: this class, or any Error named "PermanentDocumentError" with a string
 * `code`, so a processor module that cannot import this package (or bundles its own copy) can still throw one.
 */
export function isPermanentDocumentError(err: unknown): err is PermanentDocumentError {
  if (err instanceof PermanentDocumentError) return true;
  return err instanceof Error && err.name === "PermanentDocumentError" && typeof (err as { code?: unknown }).code === "string";
}
