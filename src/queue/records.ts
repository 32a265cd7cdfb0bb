/** What the notification parser hands to the consumer: typed, decoded, already filtered to the source bucket. */
import type { DocumentRef } from "../domain/document.js";

/** One object to process, from one notification record: the document, and what only the queue's logs need. */
export interface NotifiedDocument extends DocumentRef {
  /** The key as it appeared in the notification, for logs. */
  rawKey: string;
  /** e.g. "ObjectCreated:Put", or "Object Created" for EventBridge. */
  eventName: string;
  versionId?: string;
  sequencer?: string;
}

/** Why a record in an otherwise valid message is skipped (the message is still acknowledged). */
export type IgnoreReason =
  | "not-object-created"
  | "other-bucket"
  | "output-bucket"
  | "under-output-prefix"
  | "unsupported-event-version";

export interface IgnoredRecord {
  reason: IgnoreReason;
  detail: string;
}

/** Why a whole message cannot be understood; it is left for the queue's redrive policy. */
export type MalformedReason =
  | "not-json"
  | "not-an-object"
  | "unknown-shape"
  | "bad-sns-envelope"
  | "bad-record"
  | "bad-key-encoding"
  | "empty";

export type ParsedNotification =
  /** Documents to process; `ignored` lists records of the same message that were skipped. */
  | { kind: "documents"; documents: NotifiedDocument[]; ignored: IgnoredRecord[] }
  /** s3:TestEvent (direct or inside SNS): acknowledge and drop. */
  | { kind: "test-event" }
  /** A valid message with nothing for us: acknowledge, log the reasons. */
  | { kind: "ignored"; ignored: IgnoredRecord[] }
  /** Not understood: never deleted; logged once per receive; the redrive policy moves it to the DLQ. */
  | { kind: "malformed"; reason: MalformedReason; detail: string };

export interface ParseOptions {
  sourceBucket: string;
  outputBucket: string;
  outputPrefix: string;
}
