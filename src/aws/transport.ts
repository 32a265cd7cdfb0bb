/**
 * The per-document AWS calls (the hot path), as an interface with two implementations: `lean` (src/aws/lean/: SigV4
 * over a keep-alive node:http(s) agent, the default) and `sdk` (src/aws/sdk-transport.ts: the AWS SDK v3 clients,
 * the fallback behind `transport: "sdk"`). Everything else (STS, `check`, the start-up probes, multipart uploads)
 * stays on the SDK clients.
 *
 * Errors are thrown in the SDK's shape so one classifier reads both (src/errors/aws.ts): `name` is the AWS error code
 * (`AccessDenied`, `NoSuchKey`, `PreconditionFailed`, `QueueDoesNotExist` (the modeled name; the query code stays in `Code`), ...), and
 * `$metadata.httpStatusCode` the HTTP status when an answer came; an aborted call throws a `name: "AbortError"` error.
 */
import type { Readable } from "node:stream";
import type { Message } from "@aws-sdk/client-sqs";

export type TransportName = "lean" | "sdk";

/** The messages' shape is SQS's own JSON (the SDK's `Message`): the lean transport passes it through as parsed. */
export type { Message };

export interface ReceiveInput {
  queueUrl: string;
  /** 1..10. */
  maxMessages: number;
  /** Long-poll wait, 0..20. */
  waitTimeSeconds: number;
  visibilityTimeoutSeconds: number;
  /** MessageSystemAttributeNames, e.g. ApproximateReceiveCount, SentTimestamp. */
  systemAttributes: readonly string[];
}

export interface BatchEntry {
  /** Unique within the call (the callers use `m<index>`). */
  id: string;
  receiptHandle: string;
}

/** One entry a batch call's 200 answer listed as failed. */
export interface BatchEntryFailure {
  id: string;
  code: string;
  message: string;
  senderFault: boolean;
}

export interface QueueTransport {
  /**
   * ReceiveMessage; [] when the long poll ends empty. One attempt, never retried here: the receive loop retries with
   * its own backoff, so the consumer knows of every long poll it opened (src/queue/consumer.ts, endReceiving).
   */
  receiveMessages(input: ReceiveInput, signal: AbortSignal): Promise<Message[]>;
  deleteMessage(queueUrl: string, receiptHandle: string): Promise<void>;
  /** DeleteMessageBatch (at most 10 entries); the failed entries of a 200 answer. */
  deleteMessageBatch(queueUrl: string, entries: readonly BatchEntry[]): Promise<BatchEntryFailure[]>;
  changeVisibility(queueUrl: string, receiptHandle: string, seconds: number): Promise<void>;
  /** ChangeMessageVisibilityBatch (at most 10 entries, all to `seconds`); the failed entries of a 200 answer. */
  changeVisibilityBatch(queueUrl: string, entries: readonly BatchEntry[], seconds: number): Promise<BatchEntryFailure[]>;
}

export interface GetObjectInput {
  bucket: string;
  key: string;
  /** Quoted ETag: the call fails with 412 PreconditionFailed when the object no longer has it. */
  ifMatch?: string;
}

export interface GetObjectOutput {
  /** The object's bytes, streamed; the caller reads it to the end or destroys it (which frees the socket). */
  body: Readable;
  contentLength?: number;
  /** Quoted, as S3 sends it. */
  eTag?: string;
  contentType?: string;
  lastModified?: Date;
}

export interface PutObjectInput {
  bucket: string;
  key: string;
  /** A Readable must deliver exactly contentLength bytes. */
  body: Uint8Array | string | Readable;
  contentLength: number;
  contentType: string;
  /** x-amz-meta-* (names without the prefix; values already ASCII). */
  metadata: Readonly<Record<string, string>>;
}

export interface ObjectTransport {
  getObject(input: GetObjectInput, signal: AbortSignal): Promise<GetObjectOutput>;
  /** One PutObject of at most 5 GiB (larger and unknown-length bodies go through the SDK's multipart Upload). */
  putObject(input: PutObjectInput, signal: AbortSignal): Promise<void>;
}

export interface Transport {
  readonly name: TransportName;
  readonly queue: QueueTransport;
  readonly objects: ObjectTransport;
  /** Closes its sockets. */
  destroy(): void;
}
