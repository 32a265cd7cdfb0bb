import type {
  NotifiedDocument,
  IgnoredRecord,
  IgnoreReason,
  MalformedReason,
  ParsedNotification,
  ParseOptions,
} from "./records.js";

/**
 * SQS message body -> typed notification. Pure and total: never throws for any string.
 *
 * Shapes, detected in this order on the parsed object:
 *   1. `Records` present        -> S3 event notification (also SNS raw message delivery).
 *   2. `Type: "Notification"`   -> SNS envelope; its `Message` (a JSON string) is parsed as 1, 3 or 4.
 *   3. `Event: "s3:TestEvent"`  -> test event (acknowledge and drop).
 *   4. `source: "aws.s3"` with `detail-type` -> EventBridge event.
 *
 * Policy: validate only the fields we use (strict schemas break on real payloads), but never process a record we could
 * not fully understand: one bad record makes the whole message malformed, so the redrive policy, not us, decides.
 * A record that is understood but not for us (other bucket, output bucket, not a creation, unknown major version) is
 * ignored with a reason and the message can be acknowledged.
 * Null counts as present for `size` (a non-number) but as absent for optional strings: AWS documents versionId as
 * "null" for unversioned buckets. Empty optional strings are treated as absent (an empty IfMatch would be wrong).
 * The "under-output-prefix" reason is not produced: config refuses source == output bucket, and the output-bucket
 * rule already ignores every record of that bucket, whatever the prefix.
 */
export function parseNotification(body: string, options: ParseOptions): ParsedNotification {
  // The SDK types Body as optional; the consumer should pass "" but a stray undefined must not throw.
  if (typeof body !== "string" || body.trim() === "") {
    return malformed("empty", "message body is empty");
  }
  const parsed = parseJson(body);
  if (!parsed.ok) {
    return malformed("not-json", `message body is not JSON (${body.length} chars)`);
  }
  if (!isObject(parsed.value)) {
    return malformed("not-an-object", `message body is JSON ${describe(parsed.value)}, not an object`);
  }
  const root = parsed.value;
  if (has(root, "Records")) return parseS3Event(root, options, "");
  if (has(root, "Type")) return parseSnsEnvelope(root, options);
  return parseInner(root, options, "");
}

/** Shapes that may appear directly or as the Message of an SNS envelope. */
function parseInner(obj: JsonObject, options: ParseOptions, where: string): ParsedNotification {
  if (has(obj, "Records")) return parseS3Event(obj, options, where);
  if (obj["Event"] === "s3:TestEvent") return { kind: "test-event" };
  if (obj["source"] === "aws.s3" && has(obj, "detail-type")) return parseEventBridge(obj, options, where);
  const keys = Object.keys(obj)
    .slice(0, 5)
    .map((k) => quote(k, 24))
    .join(", ");
  return malformed("unknown-shape", `${where}unrecognised notification object (keys: ${keys || "none"})`);
}

function parseSnsEnvelope(env: JsonObject, options: ParseOptions): ParsedNotification {
  const type = env["Type"];
  if (type !== "Notification") {
    // SubscriptionConfirmation and friends are not document events; leave them for a human via the DLQ.
    return malformed("unknown-shape", `SNS message Type is ${describe(type)}, not "Notification"`);
  }
  const message = env["Message"];
  if (typeof message !== "string") {
    return malformed("bad-sns-envelope", `SNS Message is ${describe(message)}, expected a JSON string`);
  }
  const inner = parseJson(message);
  if (!inner.ok) {
    return malformed("bad-sns-envelope", `SNS Message is not JSON (${message.length} chars)`);
  }
  if (!isObject(inner.value)) {
    return malformed("bad-sns-envelope", `SNS Message is JSON ${describe(inner.value)}, not an object`);
  }
  if (inner.value["Type"] === "Notification") {
    return malformed("bad-sns-envelope", "SNS Message is itself an SNS envelope");
  }
  return parseInner(inner.value, options, "SNS Message: ");
}

// ---------------------------------------------------------------------------------------------------------------
// S3 event notification

function parseS3Event(event: JsonObject, options: ParseOptions, where: string): ParsedNotification {
  const records = event["Records"];
  if (!Array.isArray(records)) {
    return malformed("bad-record", `${where}Records is ${describe(records)}, expected an array`);
  }
  const documents: NotifiedDocument[] = [];
  const ignored: IgnoredRecord[] = [];
  for (const [index, record] of records.entries()) {
    const result = parseS3Record(record, `${where}record ${index}: `);
    if (result.kind === "malformed") return result;
    if (result.kind === "ignored") {
      ignored.push(result.record);
      continue;
    }
    const decision = classify(result.doc, options, `${where}record ${index}: `);
    if (decision) ignored.push(decision);
    else documents.push(result.doc);
  }
  // An empty Records array is valid but carries nothing: acknowledge it as "ignored" with no reasons.
  return documents.length > 0 ? { kind: "documents", documents, ignored } : { kind: "ignored", ignored };
}

type RecordResult =
  | { kind: "doc"; doc: NotifiedDocument }
  | { kind: "ignored"; record: IgnoredRecord }
  | Extract<ParsedNotification, { kind: "malformed" }>;

function parseS3Record(record: unknown, at: string): RecordResult {
  if (!isObject(record)) return malformed("bad-record", `${at}record is ${describe(record)}, expected an object`);

  const version = record["eventVersion"];
  if (typeof version !== "string") return malformed("bad-record", `${at}eventVersion is ${describe(version)}`);
  const major = /^(\d+)(?:\.\d+)*$/.exec(version)?.[1];
  if (major === undefined) return malformed("bad-record", `${at}eventVersion ${quote(version)} is not a version`);
  if (major !== "2") {
    // Another major version may change the structure, so nothing else in the record is read.
    return ignoreRecord("unsupported-event-version", `${at}eventVersion ${quote(version)} is not 2.x`);
  }

  const source = record["eventSource"];
  if (source !== "aws:s3") return malformed("bad-record", `${at}eventSource is ${describe(source)}, not "aws:s3"`);
  const eventName = record["eventName"];
  if (typeof eventName !== "string" || eventName === "") {
    return malformed("bad-record", `${at}eventName is ${describe(eventName)}`);
  }

  const s3 = record["s3"];
  if (!isObject(s3)) return malformed("bad-record", `${at}s3 is ${describe(s3)}, expected an object`);
  const bucket = nonEmptyString(child(s3, "bucket", "name"));
  if (bucket === undefined) return malformed("bad-record", `${at}s3.bucket.name is missing or not a string`);
  const object = s3["object"];
  if (!isObject(object)) return malformed("bad-record", `${at}s3.object is ${describe(object)}, expected an object`);
  const rawKey = nonEmptyString(object["key"]);
  if (rawKey === undefined) return malformed("bad-record", `${at}s3.object.key is ${describe(object["key"])}`);

  const fields = optionalFields(
    {
      size: object["size"],
      eTag: object["eTag"],
      versionId: object["versionId"],
      sequencer: object["sequencer"],
      eventTime: record["eventTime"],
    },
    {
      size: "s3.object.size",
      eTag: "s3.object.eTag",
      versionId: "s3.object.versionId",
      sequencer: "s3.object.sequencer",
      eventTime: "eventTime",
    },
    at,
  );
  if ("kind" in fields) return fields;

  const key = decodeS3Key(rawKey);
  if (key === undefined) {
    return malformed("bad-key-encoding", `${at}s3.object.key ${quote(rawKey)} has invalid percent-encoding`);
  }
  return { kind: "doc", doc: { bucket, key, rawKey, eventName, ...fields } };
}

/**
 * S3 event records carry the key form-encoded (space -> '+', '+' -> '%2B', non-ASCII as UTF-8 %XX). Decode exactly
 * once: '+' first (decodeURIComponent keeps it), then percent-decoding. Undefined when the encoding is invalid: a
 * guessed key would fetch, or fail to fetch, the wrong object.
 */
export function decodeS3Key(rawKey: string): string | undefined {
  try {
    return decodeURIComponent(rawKey.replace(/\+/g, " "));
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// EventBridge

function parseEventBridge(event: JsonObject, options: ParseOptions, where: string): ParsedNotification {
  const at = `${where}EventBridge event: `;
  const detailType = event["detail-type"];
  if (typeof detailType !== "string" || detailType === "") {
    return malformed("bad-record", `${at}detail-type is ${describe(detailType)}`);
  }
  const detail = event["detail"];
  if (!isObject(detail)) return malformed("bad-record", `${at}detail is ${describe(detail)}, expected an object`);
  const bucket = nonEmptyString(child(detail, "bucket", "name"));
  if (bucket === undefined) return malformed("bad-record", `${at}detail.bucket.name is missing or not a string`);
  const object = detail["object"];
  if (!isObject(object)) {
    return malformed("bad-record", `${at}detail.object is ${describe(object)}, expected an object`);
  }
  const key = nonEmptyString(object["key"]);
  if (key === undefined) return malformed("bad-record", `${at}detail.object.key is ${describe(object["key"])}`);

  const fields = optionalFields(
    {
      size: object["size"],
      eTag: object["etag"],
      versionId: object["version-id"],
      sequencer: object["sequencer"],
      eventTime: event["time"],
    },
    {
      size: "detail.object.size",
      eTag: "detail.object.etag",
      versionId: "detail.object.version-id",
      sequencer: "detail.object.sequencer",
      eventTime: "time",
    },
    at,
  );
  if ("kind" in fields) return fields;

  // Assumption (not confirmed by our sources; pin it with a recorded event): S3's EventBridge events carry the plain
  // key, not the form-encoded one of S3 event notifications, so it is used as is. Decoding it would corrupt keys
  // containing '+' or '%'. The decode rule is therefore per envelope, not per body.
  const doc: NotifiedDocument = { bucket, key, rawKey: key, eventName: detailType, ...fields };
  const decision = classify(doc, options, at);
  return decision ? { kind: "ignored", ignored: [decision] } : { kind: "documents", documents: [doc], ignored: [] };
}

// ---------------------------------------------------------------------------------------------------------------
// Shared rules

/** The recursion guard and event filter. Undefined means "process it". */
function classify(doc: NotifiedDocument, options: ParseOptions, at: string): IgnoredRecord | undefined {
  const where = `(bucket ${quote(doc.bucket, 40)}, key ${quote(doc.rawKey, 40)})`;
  // Output bucket first: processing its objects would write more of them, forever.
  if (doc.bucket === options.outputBucket) return ignored("output-bucket", `${at}event for the output bucket ${where}`);
  if (doc.bucket !== options.sourceBucket) return ignored("other-bucket", `${at}event for another bucket ${where}`);
  if (!isObjectCreated(doc.eventName)) {
    return ignored("not-object-created", `${at}${quote(doc.eventName, 40)} is not an object creation ${where}`);
  }
  return undefined;
}

function isObjectCreated(eventName: string): boolean {
  // S3 event records: "ObjectCreated:Put|Post|Copy|CompleteMultipartUpload"; EventBridge: "Object Created".
  return eventName.startsWith("ObjectCreated:") || eventName === "Object Created";
}

type OptionalDocFields = Pick<NotifiedDocument, "size" | "eTag" | "versionId" | "sequencer" | "eventTime">;
type RawOptional = Record<keyof OptionalDocFields, unknown>;

function optionalFields(
  raw: RawOptional,
  names: Record<keyof OptionalDocFields, string>,
  at: string,
): OptionalDocFields | Extract<ParsedNotification, { kind: "malformed" }> {
  const out: OptionalDocFields = {};
  if (raw.size !== undefined) {
    if (typeof raw.size !== "number" || !Number.isSafeInteger(raw.size) || raw.size < 0) {
      return malformed("bad-record", `${at}${names.size} is ${describe(raw.size)}, expected a non-negative integer`);
    }
    out.size = raw.size;
  }
  for (const field of ["eTag", "versionId", "sequencer", "eventTime"] as const) {
    const value = raw[field];
    if (value === undefined || value === null || value === "") continue;
    if (typeof value !== "string") return malformed("bad-record", `${at}${names[field]} is ${describe(value)}`);
    out[field] = value;
  }
  if (out.eTag !== undefined) {
    // S3 event records usually carry the bare hash, but some producers keep the HTTP quotes; IfMatch wants it bare.
    const bare = /^"(.*)"$/s.exec(out.eTag)?.[1] ?? out.eTag;
    if (bare === "") delete out.eTag;
    else out.eTag = bare;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

type JsonObject = Record<string, unknown>;

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    // SyntaxError, or RangeError on absurd nesting: either way not a body we understand.
    return { ok: false };
  }
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Own properties only, so a key like "constructor" never reads the prototype. */
function has(obj: JsonObject, key: string): boolean {
  return Object.hasOwn(obj, key);
}

function child(obj: JsonObject, key: string, sub: string): unknown {
  const value = Object.hasOwn(obj, key) ? obj[key] : undefined;
  return isObject(value) && Object.hasOwn(value, sub) ? value[sub] : undefined;
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** A short description of a JSON value for a log line; never the whole value (bodies may be 256 KiB). */
function describe(value: unknown): string {
  if (value === undefined) return "missing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  if (typeof value === "string") return value === "" ? "an empty string" : `the string ${quote(value, 40)}`;
  if (typeof value === "number" || typeof value === "boolean") return `${typeof value} ${String(value).slice(0, 40)}`;
  return typeof value;
}

/** JSON-quoted and truncated, so control characters and huge keys stay harmless in logs. */
function quote(value: string, max = 60): string {
  return JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value);
}

const MAX_DETAIL = 200;

function malformed(reason: MalformedReason, detail: string): Extract<ParsedNotification, { kind: "malformed" }> {
  return { kind: "malformed", reason, detail: cap(detail) };
}

function ignored(reason: IgnoreReason, detail: string): IgnoredRecord {
  return { reason, detail: cap(detail) };
}

function ignoreRecord(reason: IgnoreReason, detail: string): RecordResult {
  return { kind: "ignored", record: ignored(reason, detail) };
}

function cap(detail: string): string {
  return detail.length > MAX_DETAIL ? `${detail.slice(0, MAX_DETAIL - 1)}…` : detail;
}
