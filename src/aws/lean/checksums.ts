/**
 * Integrity of object bodies. PutObject: CRC32 (node:zlib's native crc32) of an in-memory body in
 * x-amz-checksum-crc32, or of a stream in an aws-chunked trailer. GetObject: the full-object checksum S3 returns
 * (x-amz-checksum-mode: ENABLED) checked while the body streams, in the SDK's priority order (SHA256, SHA1, CRC32,
 * CRC32C, CRC64NVME); a composite checksum of a multipart object (`…-N`) is skipped, as the SDK does.
 */
import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { crc32 } from "node:zlib";
import { Crc32c, Crc64Nvme } from "@aws-sdk/checksums/crc";
import { LeanChecksumError, LeanTruncatedBodyError } from "./errors.js";

/** A running checksum of a byte stream. */
export interface RunningChecksum {
  update(chunk: Uint8Array): void;
  /** base64, as S3 writes it in x-amz-checksum-*. */
  digest(): Promise<string>;
}

export function uint32Base64(value: number): string {
  const bytes = Buffer.allocUnsafe(4);
  bytes.writeUInt32BE(value >>> 0);
  return bytes.toString("base64");
}

class Crc32Running implements RunningChecksum {
  private value = 0;
  update(chunk: Uint8Array): void {
    this.value = crc32(chunk, this.value);
  }
  async digest(): Promise<string> {
    return uint32Base64(this.value);
  }
}

class HashRunning implements RunningChecksum {
  private readonly hash: Hash;
  constructor(algorithm: "sha1" | "sha256") {
    this.hash = createHash(algorithm);
  }
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
  }
  async digest(): Promise<string> {
    return this.hash.digest("base64");
  }
}

class SmithyRunning implements RunningChecksum {
  constructor(private readonly checksum: { update(chunk: Uint8Array): void; digest(): Promise<Uint8Array> }) {}
  update(chunk: Uint8Array): void {
    this.checksum.update(chunk);
  }
  async digest(): Promise<string> {
    return Buffer.from(await this.checksum.digest()).toString("base64");
  }
}

/** The response checksum headers we validate, in the SDK's priority order. */
export const RESPONSE_CHECKSUMS: readonly { header: string; algorithm: string; create: () => RunningChecksum }[] = [
  { header: "x-amz-checksum-sha256", algorithm: "SHA256", create: () => new HashRunning("sha256") },
  { header: "x-amz-checksum-sha1", algorithm: "SHA1", create: () => new HashRunning("sha1") },
  { header: "x-amz-checksum-crc32", algorithm: "CRC32", create: () => new Crc32Running() },
  { header: "x-amz-checksum-crc32c", algorithm: "CRC32C", create: () => new SmithyRunning(new Crc32c()) },
  { header: "x-amz-checksum-crc64nvme", algorithm: "CRC64NVME", create: () => new SmithyRunning(new Crc64Nvme()) },
];

/** The SDK's isChecksumWithPartNumber: `<base64>-<1..10000>` is a composite checksum of parts, not of the object. */
export function isCompositeChecksum(value: string): boolean {
  const dash = value.lastIndexOf("-");
  if (dash === -1) return false;
  const part = value.slice(dash + 1);
  if (part.startsWith("0")) return false;
  const n = Number(part);
  return Number.isInteger(n) && n >= 1 && n <= 10_000;
}

export interface ExpectedChecksum {
  algorithm: string;
  expected: string;
  running: RunningChecksum;
}

/** The checksum to validate a GetObject body against, from its headers; undefined when S3 sent none we can check. */
export function responseChecksum(headers: Readonly<Record<string, string | string[] | undefined>>): ExpectedChecksum | undefined {
  for (const { header, algorithm, create } of RESPONSE_CHECKSUMS) {
    const value = headers[header];
    if (typeof value !== "string" || value === "") continue;
    // The SDK validates the first header present by priority, and skips validation when it is composite.
    if (isCompositeChecksum(value)) return undefined;
    return { algorithm, expected: value, running: create() };
  }
  return undefined;
}

/**
 * The body handed to GetObject's caller: passes the bytes through, counts them against Content-Length and feeds the
 * checksum; at the end a short body or a checksum mismatch fails the stream instead of ending it.
 */
export class ObjectBody extends Transform {
  private received = 0;
  constructor(
    private readonly expectedLength: number | undefined,
    private readonly checksum: ExpectedChecksum | undefined,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.received += chunk.length;
    this.checksum?.running.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.expectedLength !== undefined && this.received !== this.expectedLength) {
      callback(new LeanTruncatedBodyError(`The body ended after ${this.received} of ${this.expectedLength} bytes`));
      return;
    }
    const checksum = this.checksum;
    if (checksum === undefined) {
      callback();
      return;
    }
    checksum.running.digest().then(
      (actual) => callback(actual === checksum.expected ? null : new LeanChecksumError(checksum.algorithm, checksum.expected, actual)),
      (err: unknown) => callback(err as Error),
    );
  }
}

/**
 * aws-chunked framing of a stream body with a CRC32 trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER), as the SDK sends
 * stream bodies: `<hex size>\r\n<data>\r\n` per chunk, then `0\r\nx-amz-checksum-crc32:<base64>\r\n\r\n`.
 */
export class AwsChunkedEncoder extends Transform {
  private crc = 0;
  private received = 0;
  constructor(private readonly declaredLength: number) {
    super();
  }

  override _transform(chunk: Buffer | string, encoding: BufferEncoding, callback: TransformCallback): void {
    const bytes = typeof chunk === "string" ? Buffer.from(chunk, encoding) : chunk;
    if (bytes.length === 0) {
      callback();
      return;
    }
    this.received += bytes.length;
    if (this.received > this.declaredLength) {
      callback(new Error(`The body is longer than its declared length ${this.declaredLength}`));
      return;
    }
    this.crc = crc32(bytes, this.crc);
    this.push(`${bytes.length.toString(16)}\r\n`);
    this.push(bytes);
    callback(null, "\r\n");
  }

  override _flush(callback: TransformCallback): void {
    if (this.received !== this.declaredLength) {
      callback(new Error(`The body ended after ${this.received} of its declared ${this.declaredLength} bytes`));
      return;
    }
    callback(null, `0\r\nx-amz-checksum-crc32:${uint32Base64(this.crc)}\r\n\r\n`);
  }
}

/** The trailer AwsChunkedEncoder writes (announced in x-amz-trailer). */
export const AWS_CHUNKED_TRAILER = "x-amz-checksum-crc32";
