/**
 * Writes one processor output to the output bucket with lineage metadata. Only s3:PutObject is allowed (multipart
 * uploads are PutObject too); never HeadObject or ListBucket, and no AbortMultipartUpload: a failed multipart upload
 * leaves its parts to the output bucket's AbortIncompleteMultipartUpload lifecycle rule.
 */
import { Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { S3Client } from "@aws-sdk/client-s3";
import type { ObjectTransport } from "../aws/transport.js";
import type { SourceObjectInfo } from "../domain/document.js";

const MiB = 1024 * 1024;

/** S3's limit for one PutObject; a Readable with a known length up to this goes in one request. */
export const MAX_SINGLE_PUT_BYTES = 5 * 1024 * MiB;
/** S3 allows at most 10,000 parts per upload. */
const MAX_PARTS = 10_000;
/** S3 counts user metadata (names and values, UTF-8) against 2 KiB. */
const MAX_METADATA_BYTES = 2048;

export interface SinkTarget {
  /** Single PutObject calls (the configured transport). */
  objects: ObjectTransport;
  /** Multipart uploads (lib-storage's Upload on the SDK client, both loaded on first use). */
  s3: () => Promise<S3Client>;
  bucket: string;
  /**
   * Part size of multipart uploads (streams without a length). Memory per upload is about partSize * (queueSize + 1).
   * @default 8 MiB
   */
  partSize?: number;
  /** Parts uploaded at once. @default 2 */
  queueSize?: number;
}

/** What is written: a processor's output (ProcessorOutput has this shape) or the pipeline's error record. */
export interface SinkOutput {
  body: Uint8Array | string | Readable;
  contentType: string;
  /** Required for a Readable body to be sent as one PutObject; otherwise it is uploaded in parts. */
  contentLength?: number;
}

export interface Lineage {
  source: SourceObjectInfo;
  processor: { name: string; version: string };
}

export interface WriteResult {
  key: string;
  bytes: number;
  /** "put" for one PutObject, "multipart" when lib-storage split the stream into parts. */
  method: "put" | "multipart";
}

const PLAIN_METADATA = /^[\x21-\x24\x26-\x7e](?:[\x20-\x24\x26-\x7e]*[\x21-\x24\x26-\x7e])?$/;

/**
 * Metadata values travel as HTTP headers and must be ASCII. Percent-encode everything outside printable ASCII, '%'
 * itself (so decodeURIComponent always gives the original back) and spaces at either end (HTTP trims them).
 */
export function encodeMetadataValue(value: string): string {
  // Most values (bucket names, ETags, plain keys) need nothing: printable ASCII but '%', no space at either end.
  if (PLAIN_METADATA.test(value)) return value;
  let out = "";
  for (const ch of value) {
    const code = ch.codePointAt(0) ?? 0;
    out += code < 0x20 || code > 0x7e || ch === "%" ? encodeURIComponent(ch) : ch;
  }
  return out.replace(/^ +| +$/g, (spaces) => "%20".repeat(spaces.length));
}

/** The longest prefix of `value`, in whole characters, whose encoding fits in `max` characters, encoded. */
function encodeTruncated(value: string, max: number): string {
  const chars = [...value];
  let n = 0;
  for (let used = 0; n < chars.length; n++) {
    used += encodeMetadataValue(chars[n]!).length;
    if (used > max) break;
  }
  let out = encodeMetadataValue(chars.slice(0, n).join(""));
  // Spaces at the new end get encoded too, which can add a little.
  while (out.length > max && n > 0) out = encodeMetadataValue(chars.slice(0, --n).join(""));
  return out;
}

/** x-amz-meta-* lineage: where an output came from and what made it. */
export function lineageMetadata(lineage: Lineage): Record<string, string> {
  const meta: Record<string, string> = {
    "source-bucket": lineage.source.bucket,
    "source-key": encodeMetadataValue(lineage.source.key),
    "source-etag": encodeMetadataValue(lineage.source.eTag),
    processor: encodeMetadataValue(lineage.processor.name),
    "processor-version": encodeMetadataValue(lineage.processor.version),
  };
  const size = Object.entries(meta).reduce((n, [k, v]) => n + k.length + v.length, 0);
  if (size > MAX_METADATA_BYTES) {
    // Encoding triples each non-ASCII UTF-8 byte, and S3 would refuse the whole PutObject over 2 KiB. The output body
    // names the full key anyway, so shorten it here, cutting between characters so it still decodes.
    const room = meta["source-key"]!.length - (size - MAX_METADATA_BYTES) - "source-key-truncated".length - 4;
    meta["source-key"] = encodeTruncated(lineage.source.key, room);
    meta["source-key-truncated"] = "true";
  }
  return meta;
}

/** Counts the bytes of a stream of unknown length on its way to the uploader. */
class ByteCounter extends Transform {
  bytes = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}

/**
 * Write `output` to `key`. Uint8Array and string bodies, and Readables with a known length up to 5 GiB, go as one
 * PutObject; other Readables are uploaded in parts with bounded memory. A Readable body is always consumed or
 * destroyed when this settles.
 */
export async function writeOutput(
  target: SinkTarget,
  key: string,
  output: SinkOutput,
  lineage: Lineage,
  signal: AbortSignal,
): Promise<WriteResult> {
  const { body } = output;
  const metadata = lineageMetadata(lineage);
  const put = { bucket: target.bucket, key, contentType: output.contentType, metadata };
  if (!(body instanceof Readable)) {
    const bytes = typeof body === "string" ? Buffer.byteLength(body, "utf8") : body.byteLength;
    signal.throwIfAborted();
    await target.objects.putObject({ ...put, body, contentLength: bytes }, signal);
    return { key, bytes, method: "put" };
  }
  try {
    signal.throwIfAborted();
    const length = output.contentLength;
    if (length !== undefined && length <= MAX_SINGLE_PUT_BYTES) {
      await target.objects.putObject({ ...put, body, contentLength: length }, signal);
      return { key, bytes: length, method: "put" };
    }
    const common = { Bucket: target.bucket, Key: key, ContentType: output.contentType, Metadata: metadata };
    return await uploadInParts(target, common, body, length, signal);
  } finally {
    // On success the transport has read it to the end; on failure nobody will.
    if (!body.readableEnded) body.destroy();
  }
}

async function uploadInParts(
  target: SinkTarget,
  common: { Bucket: string; Key: string; ContentType: string; Metadata: Record<string, string> },
  body: Readable,
  length: number | undefined,
  signal: AbortSignal,
): Promise<WriteResult> {
  const counter = new ByteCounter();
  // Errors of the processor's stream reach the uploader through the counter; this promise never rejects, the error
  // is read from body.errored below.
  const piping = pipeline(body, counter).catch(() => undefined);
  const minPart = length === undefined ? 0 : Math.ceil(length / MAX_PARTS);
  const abortController = new AbortController();
  let loaded;
  try {
    loaded = await Promise.all([target.s3(), import("@aws-sdk/lib-storage")]);
    // An Upload made with an aborted controller would not notice: stop here if the signal fired while loading.
    signal.throwIfAborted();
  } catch (err) {
    counter.destroy();
    await piping;
    throw err;
  }
  const [client, { Upload }] = loaded;
  const upload = new Upload({
    client,
    params: { ...common, Body: counter, ...(length === undefined ? {} : { ContentLength: length }) },
    partSize: Math.max(target.partSize ?? 8 * MiB, minPart),
    queueSize: target.queueSize ?? 2,
    // The role has no s3:AbortMultipartUpload: trying it would fail with AccessDenied and hide the real error.
    leavePartsOnError: true,
    abortController,
  });
  const onAbort = (): void => {
    abortController.abort();
  };
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    await upload.done();
  } catch (err) {
    // Prefer the processor stream's own error over the uploader's view of it (a short or broken body).
    const streamError: unknown = body.errored;
    counter.destroy();
    await piping;
    throw streamError ?? err;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  await piping;
  if (body.errored) throw body.errored;
  return { key: common.Key, bytes: counter.bytes, method: upload.uploadId === undefined ? "put" : "multipart" };
}
