// The poison and malformed message bodies, each with what the README says must happen to it: left for the redrive
// policy (DLQ) with a typed reason, dropped (deleted) with a logged reason, or refused by SQS itself before any
// consumer sees it. Pure: built from the bucket names.
import type { IgnoreReason, MalformedReason } from "../../../src/queue/records.js";
import {
  eventBridgeBody,
  s3EventBody,
  s3EventBodyOf,
  s3Record,
  s3TestEventBody,
  snsEnvelope,
} from "../../fixtures/notifications/factory.js";

export type Expectation =
  /** Malformed: logged with one of these reasons on every receive, never deleted, moved to the DLQ by redrive. */
  | { kind: "dlq"; reasons: readonly MalformedReason[] }
  /** Acknowledged and deleted: an s3:TestEvent, or records skipped with exactly these reasons (none for []). */
  | { kind: "dropped"; outcome: "test-event" }
  | { kind: "dropped"; outcome: "ignored"; reasons: readonly IgnoreReason[] }
  /** SQS refuses the body (characters outside what it stores): nothing ever reaches the daemon. */
  | { kind: "refused" };

export interface PoisonBody {
  name: string;
  body: string;
  expect: Expectation;
}

/** SQS's maximum message size. */
export const SQS_MAX_BODY_BYTES = 256 * 1024;

const dlq = (...reasons: MalformedReason[]): Expectation => ({ kind: "dlq", reasons });
const ignored = (...reasons: IgnoreReason[]): Expectation => ({ kind: "dropped", outcome: "ignored", reasons });

/** Bytes that are not UTF-8 text as a producer's mis-decoding turns them into characters (latin1), SQS-storable. */
function latin1Garbage(length: number): string {
  let out = "\u00ff\u00fe";
  for (let i = 0; out.length < length; i++) out += String.fromCharCode(0x80 + ((i * 37) % 0x80), 0x41 + (i % 26));
  return out;
}

export function poisonCorpus(buckets: { source: string; output: string }): PoisonBody[] {
  const { source, output } = buckets;
  const valid = s3EventBody(source, "poison/never-uploaded.txt", 10, "0123456789abcdef0123456789abcdef");
  const brokenRecord = { eventVersion: "2.1", eventSource: "aws:s3", eventName: "ObjectCreated:Put" };
  const otherBucket = (i: number) => s3Record({ bucket: "someone-elses-bucket", rawKey: `other/${i}.txt`, size: 5, eTag: "e" });
  // About 240 KiB of records for another bucket, then one broken record: the whole message is malformed.
  const manyRecords: unknown[] = [];
  while (JSON.stringify(manyRecords).length < 240 * 1024) manyRecords.push(otherBucket(manyRecords.length));
  const padded = s3Record({ bucket: "someone-elses-bucket", rawKey: "padded.txt", size: 5, eTag: "e" });
  padded["responseElements"] = { "x-amz-request-id": "PAD", "x-amz-id-2": "A".repeat(250 * 1024) };

  return [
    { name: "truncated-json", body: valid.slice(0, Math.floor(valid.length / 2)), expect: dlq("not-json") },
    { name: "one-brace", body: "{", expect: dlq("not-json") },
    { name: "whitespace-only", body: " \n\t ", expect: dlq("empty") },
    { name: "json-array", body: "[]", expect: dlq("not-an-object") },
    { name: "json-number", body: "42", expect: dlq("not-an-object") },
    { name: "json-null", body: "null", expect: dlq("not-an-object") },
    { name: "unknown-object", body: JSON.stringify({ hello: "world" }), expect: dlq("unknown-shape") },
    { name: "proto-keys", body: '{"__proto__":{"Records":[]},"constructor":{"Records":[]}}', expect: dlq("unknown-shape") },
    { name: "records-not-array", body: JSON.stringify({ Records: { 0: {} } }), expect: dlq("bad-record") },
    { name: "record-not-object", body: JSON.stringify({ Records: ["x"] }), expect: dlq("bad-record") },
    { name: "record-without-s3", body: s3EventBodyOf([brokenRecord]), expect: dlq("bad-record") },
    {
      name: "negative-size",
      body: s3EventBodyOf([s3Record({ bucket: source, rawKey: "poison/a.txt", size: -1, eTag: "e" })]),
      expect: dlq("bad-record"),
    },
    {
      name: "size-as-string",
      body: s3EventBodyOf([s3Record({ bucket: source, rawKey: "poison/a.txt", size: "12", eTag: "e" })]),
      expect: dlq("bad-record"),
    },
    {
      name: "one-good-one-broken",
      body: s3EventBodyOf([s3Record({ bucket: source, rawKey: "poison/a.txt", size: 1, eTag: "e" }), brokenRecord]),
      expect: dlq("bad-record"),
    },
    { name: "bad-percent", body: s3EventBody(source, "poison/bad%ZZkey.txt", 1, "e"), expect: dlq("bad-key-encoding") },
    { name: "cut-percent", body: s3EventBody(source, "poison/cut%E2%82", 1, "e"), expect: dlq("bad-key-encoding") },
    { name: "non-utf8-percent", body: s3EventBody(source, "poison/%FF%FE.txt", 1, "e"), expect: dlq("bad-key-encoding") },
    { name: "non-utf8-latin1", body: latin1Garbage(512), expect: dlq("not-json") },
    { name: "replacement-chars", body: Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0xfe, 0x7d]).toString("utf8"), expect: dlq("not-json") },
    { name: "lone-surrogate", body: '{"Records":["\ud800"]}', expect: { kind: "refused" } },
    { name: "nul-byte", body: '{"Records":[]}\u0000', expect: { kind: "refused" } },
    { name: "huge-not-json", body: "x".repeat(SQS_MAX_BODY_BYTES - 16), expect: dlq("not-json") },
    { name: "huge-records-broken", body: s3EventBodyOf([...manyRecords, brokenRecord]), expect: dlq("bad-record") },
    // JSON.parse may refuse this depth (RangeError) or return an array: either way not a notification.
    { name: "deep-nesting", body: `${"[".repeat(100_000)}${"]".repeat(100_000)}`, expect: dlq("not-json", "not-an-object") },
    { name: "sns-not-json", body: snsEnvelope("not json {"), expect: dlq("bad-sns-envelope") },
    { name: "sns-in-sns", body: snsEnvelope(snsEnvelope(valid)), expect: dlq("bad-sns-envelope") },
    {
      name: "sns-subscription",
      body: JSON.stringify({ Type: "SubscriptionConfirmation", Token: "t", TopicArn: "arn:aws:sns:us-east-1:1:t" }),
      expect: dlq("unknown-shape"),
    },
    { name: "test-event", body: s3TestEventBody(source), expect: { kind: "dropped", outcome: "test-event" } },
    { name: "sns-test-event", body: snsEnvelope(s3TestEventBody(source)), expect: { kind: "dropped", outcome: "test-event" } },
    { name: "other-bucket", body: s3EventBody("someone-elses-bucket", "a.txt", 5, "e"), expect: ignored("other-bucket") },
    { name: "output-bucket", body: s3EventBody(output, "a.txt.json", 5, "e"), expect: ignored("output-bucket") },
    { name: "sns-other-bucket", body: snsEnvelope(s3EventBody("someone-elses-bucket", "b.txt", 5, "e")), expect: ignored("other-bucket") },
    { name: "eventbridge-other", body: eventBridgeBody({ bucket: "someone-elses-bucket", key: "c.txt", size: 5 }), expect: ignored("other-bucket") },
    {
      name: "object-removed",
      body: s3EventBodyOf([s3Record({ bucket: source, rawKey: "poison/gone.txt", eventName: "ObjectRemoved:Delete" })]),
      expect: ignored("not-object-created"),
    },
    {
      name: "event-version-3",
      body: s3EventBodyOf([s3Record({ bucket: source, rawKey: "poison/v3.txt", size: 1, eTag: "e", eventVersion: "3.0" })]),
      expect: ignored("unsupported-event-version"),
    },
    { name: "empty-records", body: JSON.stringify({ Records: [] }), expect: ignored() },
    { name: "huge-ignored", body: s3EventBodyOf([padded]), expect: ignored("other-bucket") },
  ];
}
