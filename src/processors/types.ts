/**
 * The API for processors, built-in or a user's own module (`import type { Processor } from "doc-processor/processor"`).
 * A processor reads one source object as a stream and returns the outputs to write. It must honour `signal`
 * (stop reading, reject). It should consume or destroy `input` before its promise settles, unless it returns a
 * Readable output built from `input` (a streaming transform), which is then read while the output is written.
 * The pipeline destroys `input` once the processor's outputs are written, so a processor that stops reading early
 * does not hold the source. Outputs are written in order, one at a time.
 *
 * A document that can never be processed (corrupt, encrypted, unsupported, over a limit) is reported by throwing a
 * PermanentDocumentError: the pipeline writes `<key>.error.json` and acknowledges the message. Any other rejection is
 * treated as transient: the message is retried and ends in the dead-letter queue.
 */
import type { Readable } from "node:stream";
import type { SourceObjectInfo } from "../domain/document.js";

// The package's public entry point ("doc-processor/processor"): a processor module sees these names here. Inside
// src/ each is imported from its home (src/domain/, src/errors/document.ts), never through this file.
export type { DetectedType, SourceObjectInfo } from "../domain/document.js";
export { PermanentDocumentError, isPermanentDocumentError, type DocumentErrorCode } from "../errors/document.js";

/** The source as recorded in every output and error record. */
export type SourceLineage = Omit<SourceObjectInfo, "lastModified">;

export function sourceLineage(source: SourceObjectInfo): SourceLineage {
  return {
    bucket: source.bucket,
    key: source.key,
    eTag: source.eTag,
    size: source.size,
    ...(source.contentType === undefined ? {} : { contentType: source.contentType }),
  };
}

/** A minimal structured logger (pino's child loggers satisfy it). */
export interface ProcessorLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface ProcessorContext {
  input: Readable;
  source: SourceObjectInfo;
  signal: AbortSignal;
  log: ProcessorLogger;
}

export interface ProcessorOutput {
  /** Appended to `<outputPrefix><source key>`; e.g. ".json". Deterministic, so a redelivery overwrites. */
  suffix: string;
  body: Uint8Array | string | Readable;
  contentType: string;
  /** Required for a Readable body to be sent as one PutObject; otherwise it is uploaded in parts. */
  contentLength?: number;
}

export interface Processor {
  /** Stable name, recorded in the output's lineage metadata. */
  readonly name: string;
  readonly version: string;
  /**
   * The suffixes this processor writes, when known in advance: the chain is refused at start-up when two processors
   * declare the same one, or one declares the reserved ERROR_RECORD_SUFFIX (the pipeline still checks every key).
   */
  readonly outputSuffixes?: readonly string[];
  process(ctx: ProcessorContext): Promise<ProcessorOutput[]>;
}

/** Written by the pipeline, never by a processor: `<key>.error.json` for a document that failed permanently. */
export const ERROR_RECORD_SUFFIX = ".error.json";
