/**
 * S3 GetObject (streamed, IfMatch, checksum validated while streaming) and PutObject (a Buffer/string with
 * x-amz-checksum-crc32, or a Readable of known length sent aws-chunked with a CRC32 trailer), addressed like the SDK:
 * path-style for an IP-address endpoint, virtual-hosted when the bucket name allows it, path-style otherwise. Keys
 * are encoded per path segment ('/' kept) and S3 signs that path as sent (the signer's uriEscapePath is false).
 */
import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import { isIP } from "node:net";
import type { Readable, Transform } from "node:stream";
import type { GetObjectInput, GetObjectOutput, ObjectTransport, PutObjectInput } from "../transport.js";
import { crc32 } from "node:zlib";
import { AWS_CHUNKED_TRAILER, AwsChunkedEncoder, ObjectBody, responseChecksum, uint32Base64 } from "./checksums.js";
import { LeanInputError, s3Error, type LeanMetadata } from "./errors.js";
import { targetOf, type LeanClient, type ServiceSpec, type Target } from "./client.js";

const S3: ServiceSpec = {
  name: "s3",
  error: (status: number, _headers: IncomingHttpHeaders, body: Buffer, metadata: LeanMetadata) => s3Error(status, body, metadata),
};

/** SHA-256 of the empty payload: what GET requests sign in x-amz-content-sha256. */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** The SDK's extended URI encoding of one path segment: encodeURIComponent plus !'()*. */
export function encodeSegment(segment: string): string {
  return encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** A key as S3's path: each segment encoded, '/' kept. */
export function encodeKey(key: string): string {
  return key.split("/").map(encodeSegment).join("/");
}

/** The SDK's isVirtualHostableS3Bucket: a DNS label (or labels, when `allowDots`), 3-63 chars, not an IP address. */
export function isVirtualHostableBucket(bucket: string, allowDots: boolean): boolean {
  if (bucket.length < 3 || bucket.length > 63 || isIP(bucket) !== 0) return false;
  if (!allowDots) return /^[a-z0-9][a-z0-9-]*[a-z0-9]$/.test(bucket);
  return bucket.split(".").every((label) => /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(label));
}

/** S3's regional endpoint: amazonaws.com.cn in the China regions. */
export function defaultS3Endpoint(region: string): string {
  return `https://s3.${region}.amazonaws.com${region.startsWith("cn-") ? ".cn" : ""}`;
}

export interface Addressed {
  target: Target;
  /** The encoded path: /<key> (virtual-hosted) or /<bucket>/<key> (path-style). */
  path: string;
}

/** Where a bucket's object is addressed, from the endpoint (parsed once) and the bucket name. */
export class S3Addressing {
  private readonly url: URL;
  private readonly ipEndpoint: boolean;
  private readonly pathTarget: Target;
  private readonly basePath: string;
  private readonly virtual = new Map<string, Target>();

  constructor(endpoint: string) {
    this.url = new URL(endpoint);
    const host = this.url.hostname.startsWith("[") ? this.url.hostname.slice(1, -1) : this.url.hostname;
    this.ipEndpoint = isIP(host) !== 0;
    this.pathTarget = targetOf(this.url);
    this.basePath = this.url.pathname.endsWith("/") ? this.url.pathname.slice(0, -1) : this.url.pathname;
  }

  address(bucket: string, key: string): Addressed {
    // An empty key addresses the bucket itself (GET: ListObjects, PUT: CreateBucket); the SDK refuses it too.
    if (bucket === "" || key === "") throw new LeanInputError(`S3 ${bucket === "" ? "bucket" : "key"} is empty`);
    const encodedKey = encodeKey(key);
    const virtual =
      !this.ipEndpoint &&
      (isVirtualHostableBucket(bucket, false) || (this.url.protocol === "http:" && isVirtualHostableBucket(bucket, true)));
    if (!virtual) return { target: this.pathTarget, path: `${this.basePath}/${encodeSegment(bucket)}/${encodedKey}` };
    let target = this.virtual.get(bucket);
    if (target === undefined) {
      target = targetOf(this.url, `${bucket}.${this.url.hostname}`);
      // A bounded cache: the daemon uses two buckets.
      if (this.virtual.size < 64) this.virtual.set(bucket, target);
    }
    return { target, path: `${this.basePath}/${encodedKey}` };
  }
}

/**
 * The answer into the body, as stream.pipeline would, without it: each pipeline() builds an AbortController and, when
 * it ends, aborts it, which builds a DOMException with its stack (about 30 us a document, 2.5% of the daemon's CPU
 * in a profile). An error or early end of either side destroys the other; `done` runs once, when the body closes.
 */
export function pipeAnswer(response: IncomingMessage, body: Transform, done: () => void): void {
  response.pipe(body);
  response.once("error", (error) => body.destroy(error));
  response.once("close", () => {
    if (!response.complete && !body.destroyed) {
      body.destroy(Object.assign(new Error("Premature close"), { code: "ERR_STREAM_PREMATURE_CLOSE" }));
    }
  });
  body.once("close", () => {
    // The reader gave up (or the body failed): stop the download; its socket is not reused.
    if (!response.complete) response.destroy();
    done();
  });
}

function headerString(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return typeof value === "string" ? value : undefined;
}

export class LeanObjects implements ObjectTransport {
  private readonly addressing: S3Addressing;

  constructor(
    private readonly client: LeanClient,
    endpoint: string,
  ) {
    this.addressing = new S3Addressing(endpoint);
  }

  async getObject(input: GetObjectInput, signal: AbortSignal): Promise<GetObjectOutput> {
    const { target, path } = this.addressing.address(input.bucket, input.key);
    const headers: Record<string, string> = { "x-amz-checksum-mode": "ENABLED", "x-amz-content-sha256": EMPTY_SHA256 };
    if (input.ifMatch !== undefined) headers["if-match"] = input.ifMatch;
    const exchange = await this.client.open({ service: S3, target, method: "GET", path, headers, signal });
    const resHeaders = exchange.headers;
    const lengthHeader = headerString(resHeaders, "content-length");
    const contentLength = lengthHeader === undefined ? undefined : Number(lengthHeader);
    const body = new ObjectBody(Number.isSafeInteger(contentLength) ? contentLength : undefined, responseChecksum(resHeaders));
    exchange.attach(body);
    pipeAnswer(exchange.response, body, () => exchange.release());
    const output: GetObjectOutput = { body };
    if (contentLength !== undefined && Number.isSafeInteger(contentLength)) output.contentLength = contentLength;
    const eTag = headerString(resHeaders, "etag");
    if (eTag !== undefined) output.eTag = eTag;
    const contentType = headerString(resHeaders, "content-type");
    if (contentType !== undefined) output.contentType = contentType;
    const lastModified = headerString(resHeaders, "last-modified");
    if (lastModified !== undefined) {
      const date = new Date(lastModified);
      if (!Number.isNaN(date.getTime())) output.lastModified = date;
    }
    return output;
  }

  async putObject(input: PutObjectInput, signal: AbortSignal): Promise<void> {
    const { target, path } = this.addressing.address(input.bucket, input.key);
    const headers: Record<string, string> = { "content-type": input.contentType };
    for (const name in input.metadata) headers[`x-amz-meta-${name}`] = input.metadata[name]!;
    const { body } = input;
    if (typeof body === "string" || body instanceof Uint8Array) {
      const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
      if (bytes.length !== input.contentLength) {
        throw new RangeError(`PutObject ${input.key}: the body has ${bytes.length} bytes, contentLength says ${input.contentLength}`);
      }
      // Integrity by the CRC32 S3 checks (and TLS), not by hashing the payload into the signature.
      headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD";
      headers["x-amz-checksum-crc32"] = uint32Base64(crc32(bytes));
      await this.client.send({ service: S3, target, method: "PUT", path, headers, body: bytes, signal });
      return;
    }
    const source: Readable = body;
    headers["x-amz-content-sha256"] = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
    headers["content-encoding"] = "aws-chunked";
    headers["x-amz-decoded-content-length"] = String(input.contentLength);
    headers["x-amz-trailer"] = AWS_CHUNKED_TRAILER;
    headers["x-amz-sdk-checksum-algorithm"] = "CRC32";
    await this.client.send({
      service: S3,
      target,
      method: "PUT",
      path,
      headers,
      signal,
      stream: (request) => {
        const encoder = new AwsChunkedEncoder(input.contentLength);
        // The encoder's own failures (a body longer or shorter than declared) fail the request.
        encoder.once("error", (error) => request.destroy(error));
        source.once("error", (error) => request.destroy(error));
        source.pipe(encoder).pipe(request);
        return source;
      },
    });
  }
}
