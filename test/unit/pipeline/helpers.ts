/** Shared by the pipeline, storage and processor unit tests: an S3 client that never leaves the process, and streams. */
import { Readable } from "node:stream";
import { S3Client } from "@aws-sdk/client-s3";
import { sdkStreamMixin } from "@smithy/core/serde";
import type { SubmitContext } from "../../../src/pipeline/types.js";
import type { SourceObjectInfo } from "../../../src/domain/document.js";
import type { ProcessorLogger } from "../../../src/processors/types.js";
import type { NotifiedDocument } from "../../../src/queue/records.js";

/** A real S3Client pointed at a closed loopback port; tests replace its send() with aws-sdk-client-mock. */
export function testS3Client(): S3Client {
  return new S3Client({
    region: "us-east-1",
    endpoint: "http://127.0.0.1:9",
    forcePathStyle: true,
    credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" },
    maxAttempts: 1,
  });
}

export const silentLog: ProcessorLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** A document as the queue hands it to the pipeline (with the notification's own fields, which the pipeline ignores). */
export function docRef(overrides: Partial<NotifiedDocument> = {}): NotifiedDocument {
  return {
    bucket: "source-bucket",
    key: "in/report 1.txt",
    rawKey: "in/report+1.txt",
    size: 12,
    eTag: "0123456789abcdef",
    eventName: "ObjectCreated:Put",
    ...overrides,
  };
}

export function submitContext(signal: AbortSignal = new AbortController().signal): SubmitContext {
  return { messageId: "msg-1", receiveCount: 1, signal };
}

export function sourceInfo(overrides: Partial<SourceObjectInfo> = {}): SourceObjectInfo {
  return { bucket: "source-bucket", key: "in/a.txt", size: 0, eTag: "etag", ...overrides };
}

/** A body as the SDK hands it out: a Node Readable with the SDK's stream helpers mixed in. */
export function sdkBody(stream: Readable): Readable {
  return sdkStreamMixin(stream) as unknown as Readable;
}

/** A Readable of the given chunks, one per read, in binary mode (so highWaterMark counts bytes). */
export function chunked(chunks: readonly (string | Uint8Array)[]): Readable {
  let i = 0;
  return new Readable({
    read() {
      const c = chunks[i++];
      this.push(c === undefined ? null : typeof c === "string" ? Buffer.from(c) : Buffer.from(c));
    },
  });
}

/** A body that never produces data: only a destroy() ends it. */
export function stalled(): Readable {
  return new Readable({ read() {} });
}

/**
 * A lazy source of `total` bytes in `chunkSize` chunks, made only when the reader asks; `produced` says how many
 * bytes have been made so far.
 */
export function generated(
  total: number,
  chunkSize = 64 * 1024,
  fill: (offset: number, chunk: Buffer) => void = (offset, chunk) => chunk.fill(offset % 251),
): Readable & { produced: number } {
  let produced = 0;
  const stream = new Readable({
    highWaterMark: chunkSize,
    read() {
      if (produced >= total) {
        this.push(null);
        return;
      }
      const chunk = Buffer.alloc(Math.min(chunkSize, total - produced));
      fill(produced, chunk);
      produced += chunk.length;
      this.push(chunk);
    },
  }) as Readable & { produced: number };
  Object.defineProperty(stream, "produced", { get: () => produced });
  return stream;
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** An SDK-shaped service error (name + HTTP status in $metadata). */
export function awsError(name: string, status: number, message = name): Error {
  return Object.assign(new Error(message), { name, $fault: status >= 500 ? "server" : "client", $metadata: { httpStatusCode: status } });
}

/** Reads a stream to a Buffer (test-side only). */
export async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

/** The options a mocked send() was called with (the SDK's second argument, e.g. abortSignal). */
export function sendOptions(call: { args: readonly unknown[] }): { abortSignal?: AbortSignal } | undefined {
  return call.args[1] as { abortSignal?: AbortSignal } | undefined;
}
