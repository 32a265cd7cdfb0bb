// S3 event notifications in AWS's exact shape (eventVersion 2.1), built by the gateway because fauxqs sends none.
// Pure apart from the clock; the gateway sends the result to the queue.
import { randomBytes } from "node:crypto";

export type CreatedEventName = "ObjectCreated:Put" | "ObjectCreated:CompleteMultipartUpload" | "ObjectCreated:Copy";
export type RemovedEventName = "ObjectRemoved:Delete";

/**
 * Encodes a key the way S3 writes it into event records: application/x-www-form-urlencoded style (space as '+',
 * everything but A-Z a-z 0-9 - _ . * percent-encoded as UTF-8) except that '/' stays as it is.
 */
export function encodeEventKey(key: string): string {
  return encodeURIComponent(key)
    .replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, "+")
    .replace(/%2F/g, "/");
}

/** Strictly increasing hex sequencers, as S3 gives events for one key (18 upper-case hex digits). */
export class Sequencer {
  private last = 0n;
  constructor(private readonly now: () => number = Date.now) {}
  next(): string {
    const candidate = BigInt(this.now()) << 20n;
    this.last = candidate > this.last ? candidate : this.last + 1n;
    return this.last.toString(16).toUpperCase().padStart(18, "0");
  }
}

export interface ObjectEventInput {
  eventName: CreatedEventName | RemovedEventName;
  region: string;
  time: Date;
  bucket: string;
  /** Bucket owner's canonical-style principal id. */
  bucketOwnerId: string;
  key: string;
  size?: number;
  /** With or without quotes; written without. */
  eTag?: string;
  sequencer: string;
  /** "AWS:AIDA…" or "AWS:AROA…:i-…" */
  principalId: string;
  sourceIp: string;
  requestId: string;
  hostId: string;
  configurationId: string;
}

/** One S3 event message body (`{"Records":[…]}`) for an object. */
export function objectEvent(input: ObjectEventInput): string {
  const object: Record<string, unknown> = { key: encodeEventKey(input.key) };
  if (input.size !== undefined) object["size"] = input.size;
  if (input.eTag !== undefined) object["eTag"] = input.eTag.replace(/^"|"$/g, "");
  object["sequencer"] = input.sequencer;
  return JSON.stringify({
    Records: [
      {
        eventVersion: "2.1",
        eventSource: "aws:s3",
        awsRegion: input.region,
        eventTime: input.time.toISOString(),
        eventName: input.eventName,
        userIdentity: { principalId: input.principalId },
        requestParameters: { sourceIPAddress: input.sourceIp },
        responseElements: { "x-amz-request-id": input.requestId, "x-amz-id-2": input.hostId },
        s3: {
          s3SchemaVersion: "1.0",
          configurationId: input.configurationId,
          bucket: {
            name: input.bucket,
            ownerIdentity: { principalId: input.bucketOwnerId },
            arn: `arn:aws:s3:::${input.bucket}`,
          },
          object,
        },
      },
    ],
  });
}

/** The message S3 sends once when a notification configuration is saved. */
export function testEvent(bucket: string, time: Date, requestId: string, hostId: string): string {
  return JSON.stringify({
    Service: "Amazon S3",
    Event: "s3:TestEvent",
    Time: time.toISOString(),
    Bucket: bucket,
    RequestId: requestId,
    HostId: hostId,
  });
}

/** A stable canonical-style owner id for an account (S3's ownerIdentity.principalId looks like "A3NL1KOZZKExample"). */
export function ownerIdFor(accountId: string): string {
  return `A${Buffer.from(accountId).toString("hex").toUpperCase().slice(0, 13)}`;
}

// Random bytes drawn a few KiB at a time: one randomBytes call per request id cost more than the rest of the id.
const ID_POOL_BYTES = 4096;
let idPool = Buffer.alloc(0);
let idOffset = 0;

export function newRequestId(): string {
  if (idOffset + 8 > idPool.length) {
    idPool = randomBytes(ID_POOL_BYTES);
    idOffset = 0;
  }
  const id = idPool.toString("hex", idOffset, idOffset + 8).toUpperCase();
  idOffset += 8;
  return id;
}

export interface NotificationRule {
  bucket: string;
  queueName: string;
  configurationId: string;
  /** "s3:ObjectCreated:*" (default) and/or "s3:ObjectRemoved:*". */
  events?: string[];
  prefix?: string;
  suffix?: string;
}

/** Whether `rule` sends `eventName` for `key` in `bucket`. */
export function ruleMatches(rule: NotificationRule, bucket: string, key: string, eventName: string): boolean {
  if (rule.bucket !== bucket) return false;
  if (rule.prefix !== undefined && !key.startsWith(rule.prefix)) return false;
  if (rule.suffix !== undefined && !key.endsWith(rule.suffix)) return false;
  const events = rule.events ?? ["s3:ObjectCreated:*"];
  return events.some((pattern) => {
    const wanted = pattern.replace(/^s3:/, "");
    return wanted.endsWith(":*") ? eventName.startsWith(wanted.slice(0, -1)) : wanted === eventName;
  });
}
