/**
 * Streaming read of one source object. Only s3:GetObject is allowed: no VersionId (that needs s3:GetObjectVersion),
 * no HeadObject, no ListBucket. Failures come back as typed values, never as thrown SDK errors.
 */
import type { Readable } from "node:stream";
import type { ObjectTransport } from "../aws/transport.js";
import type { DocumentRef, SourceObjectInfo } from "../domain/document.js";
import { awsErrorInfo, awsErrorLabel, describeAwsError } from "../errors/aws.js";
import { OutcomeCode } from "../errors/document.js";

export const MISSING_OR_FORBIDDEN =
  "missing or forbidden: without s3:ListBucket S3 reports a missing key as AccessDenied";

export interface SourceObject {
  body: Readable;
  info: SourceObjectInfo;
  /** Content-Length as S3 sent it (info.size falls back to the event's size when it is absent). */
  contentLength?: number;
}

export type SourceFailureKind = "superseded" | "missing-or-forbidden" | "aborted" | "read-failed";

export interface SourceFailure {
  kind: SourceFailureKind;
  code: OutcomeCode;
  reason: string;
  cause?: unknown;
}

export type OpenSourceResult = { ok: true; object: SourceObject } | { ok: false; failure: SourceFailure };

/** What a GetObject error means for the document (pure, so each case is tested on its own). */
export function classifyGetObjectError(err: unknown, signal?: AbortSignal): SourceFailure {
  const { name, status } = awsErrorInfo(err);
  if (signal?.aborted === true || name === "AbortError") {
    return { kind: "aborted", code: OutcomeCode.aborted, reason: "aborted while opening the source object", cause: err };
  }
  if (status === 412 || name === "PreconditionFailed") {
    return {
      kind: "superseded",
      code: OutcomeCode.sourceSuperseded,
      reason: "the object changed after the event (412 on IfMatch); a newer event follows",
      cause: err,
    };
  }
  if (status === 403 || status === 404 || name === "AccessDenied" || name === "NoSuchKey") {
    return {
      kind: "missing-or-forbidden",
      code: OutcomeCode.sourceMissingOrForbidden,
      reason: `${MISSING_OR_FORBIDDEN} (${awsErrorLabel(err)})`,
      cause: err,
    };
  }
  return {
    kind: "read-failed",
    code: OutcomeCode.sourceReadFailed,
    reason: `GetObject failed: ${describeAwsError(err)}`,
    cause: err,
  };
}

/** S3 quotes ETags; events carry them bare. */
export function unquoteETag(eTag: string): string {
  return eTag.replace(/^(?:W\/)?"(.*)"$/, "$1");
}

/**
 * GetObject with `IfMatch` set to the event's eTag when it has one, so an object overwritten since the event gives
 * 412 rather than the newer bytes (whose own event will follow).
 */
export async function openSource(
  objects: ObjectTransport,
  doc: DocumentRef,
  signal: AbortSignal,
): Promise<OpenSourceResult> {
  if (signal.aborted) {
    return { ok: false, failure: classifyGetObjectError(signal.reason, signal) };
  }
  let out;
  try {
    out = await objects.getObject(
      { bucket: doc.bucket, key: doc.key, ...(doc.eTag === undefined ? {} : { ifMatch: `"${unquoteETag(doc.eTag)}"` }) },
      signal,
    );
  } catch (err) {
    return { ok: false, failure: classifyGetObjectError(err, signal) };
  }
  const info: SourceObjectInfo = {
    bucket: doc.bucket,
    key: doc.key,
    // S3 always sends Content-Length on GetObject; the event's size is only a fallback.
    size: out.contentLength ?? doc.size ?? 0,
    eTag: out.eTag === undefined ? (doc.eTag ?? "") : unquoteETag(out.eTag),
    ...(out.contentType === undefined ? {} : { contentType: out.contentType }),
    ...(out.lastModified === undefined ? {} : { lastModified: out.lastModified }),
  };
  return {
    ok: true,
    object: { body: out.body, info, ...(out.contentLength === undefined ? {} : { contentLength: out.contentLength }) },
  };
}
