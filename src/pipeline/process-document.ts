/**
 * The flow of one document: size check, one streaming GetObject, the processor chain over that one stream, every
 * output written to its deterministic key. Resolves to an Outcome and never rejects; the GetObject body is always
 * consumed or destroyed (an abandoned body holds a socket until the client runs out of them).
 *
 * A processor that throws a PermanentDocumentError does not stop the others: they finish and write their outputs,
 * then `<key>.error.json` records why the document cannot be processed, and the outcome is acknowledgeable. Any other
 * failure aborts the chain and wins (the message is retried, and everything is redone then).
 */
import { PassThrough, type Readable, type Writable } from "node:stream";
import type { S3Client } from "@aws-sdk/client-s3";
import { awsErrorInfo, ErrorCode, errorMessage } from "../errors.js";
import {
  ERROR_RECORD_SUFFIX,
  isPermanentDocumentError,
  sourceLineage,
  type DetectedType,
  type Processor,
  type ProcessorLogger,
  type ProcessorOutput,
  type SourceLineage,
  type SourceObjectInfo,
} from "../processors/types.js";
import type { DocumentRef } from "../queue/records.js";
import { OutputKeyTooLongError, longestSuffix, outputKey } from "../storage/keys.js";
import { writeOutput, type SinkTarget } from "../storage/sink.js";
import { openSource, type SourceFailure } from "../storage/source.js";
import type { Outcome } from "./outcome.js";
import type { SubmitContext } from "./types.js";

export interface DocumentDeps {
  s3: S3Client;
  outputBucket: string;
  outputPrefix: string;
  maxObjectBytes: number;
  /** The chain, in order; all of them read the same single GetObject stream. */
  processors: readonly Processor[];
  log: ProcessorLogger;
  /** Multipart tuning for outputs of unknown length (see SinkTarget). */
  partSize?: number;
  queueSize?: number;
}

type Failure = Exclude<Outcome, { status: "done" | "failed-permanently" }>;

/** One processor's refusal of the document (a PermanentDocumentError). */
export interface Refusal {
  processor: { name: string; version: string };
  code: string;
  reason: string;
  detectedType?: DetectedType;
}

/** The body of `<key>.error.json`. */
export interface ErrorRecord {
  status: "failed-permanently";
  code: string;
  reason: string;
  detectedType?: DetectedType;
  source: SourceLineage;
  /** The processor that refused the document (the first one, when several did). */
  processor: { name: string; version: string };
  /** Further refusals by other processors of the chain. */
  others?: Refusal[];
  /** What the rest of the chain wrote for this same document. */
  outputs: string[];
}

/** Pure: the error record of a document refused by `refusals[0]` (and possibly others). */
export function errorRecord(
  source: SourceObjectInfo,
  refusals: readonly Refusal[],
  outputs: readonly string[],
): ErrorRecord {
  const [first, ...others] = refusals;
  if (first === undefined) throw new Error("errorRecord needs at least one refusal");
  return {
    status: "failed-permanently",
    code: first.code,
    reason: first.reason,
    ...(first.detectedType === undefined ? {} : { detectedType: first.detectedType }),
    source: sourceLineage(source),
    processor: first.processor,
    ...(others.length === 0 ? {} : { others }),
    outputs: [...outputs],
  };
}

const aborted = (where: string): Failure => ({ status: "retry", code: ErrorCode.aborted, reason: `aborted ${where}` });

function sourceFailureOutcome(f: SourceFailure): Failure {
  switch (f.kind) {
    case "superseded":
      return { status: "superseded", reason: f.reason };
    case "aborted":
      return aborted("while opening the source object");
    // 403 is retried, not rejected: the redrive policy ends it in the DLQ after maxReceiveCount, and a key that was
    // only briefly unreadable (eventual consistency of a policy change) still gets its chances.
    case "missing-or-forbidden":
    case "read-failed":
      return { status: "retry", code: f.code, reason: f.reason };
  }
}

/** A user module's error may carry anything as its detected type: keep only a well-formed one. */
function checkedType(value: unknown): DetectedType | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { mime, ext } = value as { mime?: unknown; ext?: unknown };
  if (typeof mime !== "string") return undefined;
  return typeof ext === "string" ? { mime, ext } : { mime };
}

/** Per-document runner for createPipeline's `run`. */
export function createDocumentRunner(deps: DocumentDeps): (doc: DocumentRef, ctx: SubmitContext) => Promise<Outcome> {
  return (doc, ctx) => processDocument(deps, doc, ctx);
}

export async function processDocument(deps: DocumentDeps, doc: DocumentRef, ctx: SubmitContext): Promise<Outcome> {
  try {
    return await processOrFail(deps, doc, ctx);
  } catch (err) {
    // A bug, not a document problem: keep the message and say so.
    deps.log.error({ err, key: doc.key }, "unexpected error while processing a document");
    return { status: "retry", code: ErrorCode.internal, reason: `unexpected error: ${errorMessage(err)}` };
  }
}

function tooLarge(size: number, max: number): Failure {
  return {
    status: "rejected",
    code: ErrorCode.objectTooLarge,
    reason: `object is ${size} bytes, above maxObjectBytes (${max})`,
  };
}

async function processOrFail(deps: DocumentDeps, doc: DocumentRef, ctx: SubmitContext): Promise<Outcome> {
  if (ctx.signal.aborted) return aborted("before start");
  if (doc.size !== undefined && doc.size > deps.maxObjectBytes) return tooLarge(doc.size, deps.maxObjectBytes);
  try {
    // Refuse before downloading anything when an output the chain declares could not be written (a processor that
    // declares no suffixes is checked when it writes).
    outputKey(deps.outputPrefix, doc.key, longestSuffix(deps.processors.flatMap((p) => p.outputSuffixes ?? [])));
  } catch (err) {
    if (err instanceof OutputKeyTooLongError) return { status: "rejected", code: err.code, reason: err.message };
    throw err;
  }

  const opened = await openSource(deps.s3, doc, ctx.signal);
  if (!opened.ok) return sourceFailureOutcome(opened.failure);
  const { body, info, contentLength } = opened.object;
  if (ctx.signal.aborted) {
    body.destroy();
    return aborted("while opening the source object");
  }
  // The event may not have carried a size (e.g. a manual `process <key>`): check again with S3's own.
  if (info.size > deps.maxObjectBytes) {
    body.destroy();
    return tooLarge(info.size, deps.maxObjectBytes);
  }
  return runChain(deps, body, info, contentLength, ctx);
}

/** Resolves on 'drain', or on 'close' when the reader went away (a destroyed stream never drains). */
function drainOrClose(w: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      w.off("drain", done);
      w.off("close", done);
      resolve();
    };
    w.on("drain", done);
    w.on("close", done);
  });
}

/**
 * Copies the source into one branch per processor, reading the next chunk only when every live branch has room:
 * the slowest processor sets the pace and memory stays at a few chunks per branch. Stops reading (destroying the
 * body) once no branch wants more. Returns the bytes read.
 */
async function fanOut(body: Readable, branches: readonly PassThrough[], expected: number | undefined): Promise<number> {
  let bytes = 0;
  let abandoned = false;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    const live = branches.filter((b) => !b.destroyed && !b.writableEnded);
    if (live.length === 0) {
      abandoned = true;
      break; // for-await's return() destroys the body
    }
    const waits: Promise<void>[] = [];
    for (const b of live) if (!b.write(chunk)) waits.push(drainOrClose(b));
    if (waits.length > 0) await Promise.all(waits);
  }
  if (!abandoned && expected !== undefined && bytes !== expected) {
    throw new Error(`the source stream ended after ${bytes} of ${expected} bytes`);
  }
  for (const b of branches) if (!b.destroyed) b.end();
  return bytes;
}

/**
 * Counts the bytes taken from `body` by whoever reads it. Every way of consuming a Readable (async iteration, 'data',
 * pipe) goes through its read(), so wrapping that one method counts them all without a stream in between: a single
 * processor gets the body itself, saving a PassThrough and an async iteration per chunk.
 */
function countReads(body: Readable): () => number {
  let bytes = 0;
  const read = body.read.bind(body);
  body.read = (size?: number): unknown => {
    const chunk: unknown = read(size);
    if (typeof chunk === "string") bytes += Buffer.byteLength(chunk, body.readableEncoding ?? "utf8");
    else if (chunk instanceof Uint8Array) bytes += chunk.length;
    return chunk;
  };
  return () => bytes;
}

function isReadable(v: unknown): v is Readable {
  return typeof v === "object" && v !== null && typeof (v as Readable).pipe === "function";
}

function destroyOutputs(outputs: unknown): void {
  if (!Array.isArray(outputs)) return;
  for (const o of outputs as unknown[]) {
    const body = (o as { body?: unknown } | null)?.body;
    if (isReadable(body)) body.destroy();
  }
}

/** The processor's return value, checked: a user module can return anything. */
function checkOutputs(value: unknown, name: string): ProcessorOutput[] | string {
  if (!Array.isArray(value)) return `processor ${name} returned ${typeof value}, not an array of outputs`;
  for (const [i, o] of (value as unknown[]).entries()) {
    const bad = `processor ${name} returned an invalid output at index ${i} (needs suffix, contentType, body)`;
    if (typeof o !== "object" || o === null) return bad;
    const out = o as Partial<ProcessorOutput>;
    const bodyOk = typeof out.body === "string" || out.body instanceof Uint8Array || isReadable(out.body);
    const lengthOk =
      out.contentLength === undefined || (Number.isSafeInteger(out.contentLength) && out.contentLength >= 0);
    if (typeof out.suffix !== "string" || typeof out.contentType !== "string" || out.contentType === "") return bad;
    if (!bodyOk || !lengthOk) return bad;
  }
  return value as ProcessorOutput[];
}

async function runChain(
  deps: DocumentDeps,
  body: Readable,
  info: SourceObjectInfo,
  contentLength: number | undefined,
  ctx: SubmitContext,
): Promise<Outcome> {
  const { log } = deps;
  // One signal for the whole chain: aborted by the consumer, or by the first failure so the rest stops early.
  const controller = new AbortController();
  const { signal } = controller;
  let failure: Failure | undefined;
  const fail = (f: Failure, err?: unknown): void => {
    if (failure !== undefined) return; // errors after the first are mostly its consequences
    failure = f;
    log.debug({ err, key: info.key, code: "code" in f ? f.code : undefined }, f.reason);
    controller.abort(err instanceof Error ? err : new Error(f.reason));
  };
  const onCtxAbort = (): void => fail(aborted("while processing"), ctx.signal.reason);
  ctx.signal.addEventListener("abort", onCtxAbort, { once: true });

  // One processor reads the body itself; several get a branch each, fed by fanOut.
  const direct = deps.processors.length === 1;
  const branches = direct ? [] : deps.processors.map(() => new PassThrough());
  const bytesRead = direct ? countReads(body) : undefined;
  // A processor may destroy its input with an error nobody listens to any more; its own rejection reports it.
  for (const b of branches) b.on("error", () => undefined);
  body.on("error", () => undefined);
  const release = (): void => {
    body.destroy();
    for (const b of branches) b.destroy();
  };
  signal.addEventListener("abort", release, { once: true });

  const sink: SinkTarget = {
    s3: deps.s3,
    bucket: deps.outputBucket,
    ...(deps.partSize === undefined ? {} : { partSize: deps.partSize }),
    ...(deps.queueSize === undefined ? {} : { queueSize: deps.queueSize }),
  };
  const written: string[] = [];
  const refusals: Refusal[] = [];
  const keys = new Set<string>();
  let bytesIn = 0;
  let bytesOut = 0;

  const sourceFailed = (err: unknown): void => {
    fail(
      { status: "retry", code: ErrorCode.sourceReadFailed, reason: `reading the source failed: ${errorMessage(err)}` },
      err,
    );
  };
  // Read directly, a body that ended short of its Content-Length is a source failure, found before anything is
  // written (fanOut checks the same for branches).
  const checkLength = (): void => {
    if (bytesRead === undefined) return;
    bytesIn = bytesRead();
    if (body.readableEnded && contentLength !== undefined && bytesIn !== contentLength) {
      sourceFailed(new Error(`the source stream ended after ${bytesIn} of ${contentLength} bytes`));
    }
  };
  const feeding = direct
    ? Promise.resolve()
    : fanOut(body, branches, contentLength).then((n) => {
        bytesIn = n;
      }, sourceFailed);

  const runOne = async (processor: Processor, input: Readable): Promise<void> => {
    try {
      let produced: unknown;
      try {
        produced = await processor.process({ input, source: info, signal, log });
        checkLength();
      } catch (err) {
        // Read directly, a broken source surfaces as the processor's error: name the source, as fanOut does.
        if (direct && body.errored !== null) {
          sourceFailed(body.errored);
          return;
        }
        if (isPermanentDocumentError(err)) {
          // Not a chain failure: the others go on, and the error record is written once they are done.
          const detectedType = checkedType(err.detectedType);
          refusals.push({
            processor: { name: processor.name, version: processor.version },
            code: err.code,
            reason: err.message,
            ...(detectedType === undefined ? {} : { detectedType }),
          });
          log.debug({ key: info.key, processor: processor.name, code: err.code }, err.message);
          return;
        }
        const reason = `processor ${processor.name} failed: ${errorMessage(err)}`;
        fail({ status: "retry", code: ErrorCode.processorFailed, reason }, err);
        return;
      }
      const outputs = checkOutputs(produced, processor.name);
      if (typeof outputs === "string") {
        destroyOutputs(produced);
        fail({ status: "retry", code: ErrorCode.processorFailed, reason: outputs });
        return;
      }
      const lineage = { source: info, processor: { name: processor.name, version: processor.version } };
      // In order, one at a time: simple, and memory stays bounded by one upload per processor.
      for (const output of outputs) {
        if (failure !== undefined) {
          destroyOutputs([output]);
          continue;
        }
        let key: string;
        try {
          key = outputKey(deps.outputPrefix, info.key, output.suffix);
        } catch (err) {
          destroyOutputs([output]);
          const code = err instanceof OutputKeyTooLongError ? err.code : ErrorCode.sinkWriteFailed;
          fail({ status: "rejected", code, reason: errorMessage(err) }, err);
          continue;
        }
        if (output.suffix === ERROR_RECORD_SUFFIX) {
          destroyOutputs([output]);
          const reason = `processor ${processor.name} wrote the suffix "${output.suffix}", reserved for error records`;
          fail({ status: "rejected", code: ErrorCode.processorFailed, reason });
          continue;
        }
        if (keys.has(key)) {
          destroyOutputs([output]);
          const reason = `two outputs map to the same key ${key} (processor ${processor.name}, suffix "${output.suffix}")`;
          fail({ status: "rejected", code: ErrorCode.processorFailed, reason });
          continue;
        }
        keys.add(key);
        try {
          const result = await writeOutput(sink, key, output, lineage, signal);
          written.push(key);
          bytesOut += result.bytes;
          log.debug({ key, bytes: result.bytes, method: result.method }, "output written");
        } catch (err) {
          const { name, status } = awsErrorInfo(err);
          const reason = `writing ${key} failed: ${name}${status === undefined ? "" : ` ${status}`}: ${errorMessage(err)}`;
          fail({ status: "retry", code: ErrorCode.sinkWriteFailed, reason }, err);
        }
      }
    } finally {
      // The processor is finished with its input; let the fan-out stop waiting for it.
      if (!input.readableEnded) input.destroy();
    }
  };

  await Promise.all([feeding, ...deps.processors.map((p, i) => runOne(p, branches[i] ?? body))]);
  // Past this line a late abort changes nothing: everything already settled.
  ctx.signal.removeEventListener("abort", onCtxAbort);
  signal.removeEventListener("abort", release);
  if (!body.destroyed) body.destroy();

  if (failure !== undefined) return failure;
  if (refusals.length > 0) return writeErrorRecord(deps, sink, info, refusals, written, signal);
  return { status: "done", outputs: written, bytesIn, bytesOut };
}

async function writeErrorRecord(
  deps: DocumentDeps,
  sink: SinkTarget,
  info: SourceObjectInfo,
  refusals: readonly Refusal[],
  written: readonly string[],
  signal: AbortSignal,
): Promise<Outcome> {
  const first = refusals[0]!;
  let key: string;
  try {
    key = outputKey(deps.outputPrefix, info.key, ERROR_RECORD_SUFFIX);
  } catch (err) {
    // Nowhere to record the refusal: rejected, so the message goes to the DLQ (with the refusal in its reason).
    const code = err instanceof OutputKeyTooLongError ? err.code : ErrorCode.sinkWriteFailed;
    return { status: "rejected", code, reason: `${first.code}: ${first.reason}; and ${errorMessage(err)}` };
  }
  const record = errorRecord(info, refusals, written);
  const body = `${JSON.stringify(record, null, 2)}\n`;
  try {
    const output = { suffix: ERROR_RECORD_SUFFIX, body, contentType: "application/json" };
    await writeOutput(sink, key, output, { source: info, processor: first.processor }, signal);
  } catch (err) {
    const { name, status } = awsErrorInfo(err);
    const reason = `writing ${key} failed: ${name}${status === undefined ? "" : ` ${status}`}: ${errorMessage(err)}`;
    return { status: "retry", code: ErrorCode.sinkWriteFailed, reason };
  }
  return { status: "failed-permanently", code: first.code, reason: first.reason, outputs: [...written, key] };
}
