/**
 * The API for processors, built-in or a user's own module (`import type { Processor } from "doc-processor/processor"`).
 * A processor reads one source object as a stream and returns the outputs to write. It must honour `signal`
 * (stop reading, reject). It should consume or destroy `input` before its promise settles, unless it returns a
 * Readable output built from `input` (a streaming transform), which is then read while the output is written.
 * The pipeline destroys `input` once the processor's outputs are written, so a processor that stops reading early
 * does not hold the source. Outputs are written in order, one at a time.
 */
import type { Readable } from "node:stream";

export interface SourceObjectInfo {
  bucket: string;
  key: string;
  /** Size in bytes from S3 (Content-Length). */
  size: number;
  eTag: string;
  /** Content-Type stored with the object; the uploader's claim, not sniffed. */
  contentType?: string;
  lastModified?: Date;
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
  process(ctx: ProcessorContext): Promise<ProcessorOutput[]>;
}

/** A processor module's default export: a Processor, or a factory returning one. */
export type ProcessorModule = Processor | (() => Processor | Promise<Processor>);
