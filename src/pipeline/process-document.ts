/**
 * The flow of one document: size and key checks, one streaming GetObject, then the processor chain (chain.ts) over
 * that one stream. Resolves to an Outcome and never rejects; the GetObject body is always consumed or destroyed (an
 * abandoned body holds a socket until the client runs out of them).
 */
import type { S3Client } from "@aws-sdk/client-s3";
import type { ObjectTransport } from "../aws/transport.js";
import type { DocumentRef } from "../domain/document.js";
import { OutcomeCode, OutputKeyTooLongError } from "../errors/document.js";
import { errorMessage } from "../errors/message.js";
import type { Processor, ProcessorLogger } from "../processors/types.js";
import { longestSuffix, outputKey } from "../storage/keys.js";
import type { SinkTarget } from "../storage/sink.js";
import { openSource, type SourceFailure } from "../storage/source.js";
import { aborted, ChainRun } from "./chain.js";
import type { Outcome } from "./outcome.js";
import type { SubmitContext } from "./types.js";

export interface DocumentDeps {
  /** GetObject and single PutObject calls (the configured transport). */
  objects: ObjectTransport;
  /** Multipart uploads of outputs of unknown or >5 GiB length (the SDK's Upload). */
  s3: () => Promise<S3Client>;
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

function sourceFailureOutcome(f: SourceFailure): Outcome {
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

function tooLarge(size: number, max: number): Outcome {
  return {
    status: "rejected",
    code: OutcomeCode.objectTooLarge,
    reason: `object is ${size} bytes, above maxObjectBytes (${max})`,
  };
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
    return { status: "retry", code: OutcomeCode.internal, reason: `unexpected error: ${errorMessage(err)}` };
  }
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

  const opened = await openSource(deps.objects, doc, ctx.signal);
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
  const sink: SinkTarget = {
    objects: deps.objects,
    s3: deps.s3,
    bucket: deps.outputBucket,
    ...(deps.partSize === undefined ? {} : { partSize: deps.partSize }),
    ...(deps.queueSize === undefined ? {} : { queueSize: deps.queueSize }),
  };
  const chain = new ChainRun({ sink, outputPrefix: deps.outputPrefix, processors: deps.processors, log: deps.log }, info);
  return chain.run(body, contentLength, ctx.signal);
}
