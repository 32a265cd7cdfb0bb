// S3 conditional writes (If-Match / If-None-Match on PutObject, CopyObject and CompleteMultipartUpload), which fauxqs
// ignores: the gateway evaluates them against the key's current object and never forwards a write whose condition
// fails. Pure: the caller looks the object up and holds the key's write lock (key-lock.ts) across lookup and write.
//
// Behaviour as documented in the S3 User Guide, "How to prevent object overwrites with conditional writes"
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html), section "Conditional write
// behavior":
// - If-None-Match expects "*": no object under the key, the write succeeds; an object, 412 Precondition Failed.
// - If-Match expects an ETag: an object with that ETag, the write succeeds; another ETag, 412; no object under the
//   key, "the operation fails with a 404 Not Found error" (NoSuchKey).
// - If-Match needs s3:GetObject as well as s3:PutObject (checked with the other IAM checks, in s3-operations.ts).
// The 409 ConditionalRequestConflict of concurrent writes has no counterpart: writes to one key are serialized here.
import { AwsError } from "./errors.js";

export interface WriteConditions {
  /** Entity tags from If-Match (unquoted), or "*" for any existing object; undefined when absent. */
  ifMatch?: string[] | "*";
  /** If-None-Match: * was sent. */
  ifNoneMatch: boolean;
}

const PRECONDITION_FAILED = "At least one of the pre-conditions you specified did not hold";

/** Strong comparison as S3 makes it: quotes (and a weak prefix) are not part of the tag. */
export function normalizeEtag(value: string): string {
  return value.trim().replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

/**
 * The conditions of a write request (header names lower-case), undefined when it has none, or the error S3 answers
 * for a header it does not accept on a write: If-None-Match with an entity tag is NotImplemented, never ignored (the
 * caller asked not to overwrite; a silent overwrite is the bug this module exists to prevent).
 */
export function parseWriteConditions(headers: ReadonlyMap<string, string>): WriteConditions | AwsError | undefined {
  const match = headers.get("if-match");
  const noneMatch = headers.get("if-none-match");
  if (match === undefined && noneMatch === undefined) return undefined;
  if (noneMatch !== undefined && noneMatch.trim() !== "*") {
    return new AwsError("NotImplemented", "A header you provided implies functionality that is not implemented", 501, undefined, {
      Header: "If-None-Match",
    });
  }
  const conditions: WriteConditions = { ifNoneMatch: noneMatch !== undefined };
  if (match !== undefined) {
    const tags = match
      .split(",")
      .map(normalizeEtag)
      .filter((t) => t !== "");
    // An empty If-Match can match nothing: kept as a list with no tag, so it fails rather than being dropped.
    conditions.ifMatch = tags.includes("*") ? "*" : tags;
  }
  return conditions;
}

/**
 * The error that stops the write, or undefined when it may proceed. `current` is the key's object now (its ETag), or
 * undefined when there is none. If-Match is evaluated first, as RFC 7232 section 6 orders them.
 */
export function evaluateWriteConditions(conditions: WriteConditions, current: { eTag: string } | undefined, key: string): AwsError | undefined {
  if (conditions.ifMatch !== undefined) {
    if (current === undefined) return new AwsError("NoSuchKey", "The specified key does not exist.", 404, undefined, { Key: key });
    const eTag = normalizeEtag(current.eTag);
    if (conditions.ifMatch !== "*" && !conditions.ifMatch.includes(eTag)) {
      return new AwsError("PreconditionFailed", PRECONDITION_FAILED, 412, undefined, { Condition: "If-Match" });
    }
  }
  if (conditions.ifNoneMatch && current !== undefined) {
    return new AwsError("PreconditionFailed", PRECONDITION_FAILED, 412, undefined, { Condition: "If-None-Match" });
  }
  return undefined;
}
