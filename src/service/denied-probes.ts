/**
 * `check`'s probes of the denied side: S3 requests the role must be refused, chosen so that they change nothing even
 * when the role is allowed to make them (an over-granted role). Each probe answers one of three ways: refused (✓),
 * authorized (✗, naming the extra permission and the fix), or something that proves neither (✗ "could not check").
 * Only runDeniedProbe does I/O; the probes' table and the judgement are pure.
 *
 * Why each probe is harmless, and how an allow and a deny differ (AWS documentation):
 * - S3 authorizes every request before it acts on it; a refused request returns 403 AccessDenied and does nothing
 *   ("How Amazon S3 authorizes a request", https://docs.aws.amazon.com/AmazonS3/latest/userguide/how-s3-evaluates-access-control.html:
 *   "When Amazon S3 receives a request ... it first verifies that the requester has the necessary permissions";
 *   "If the Amazon S3 permission check fails ... an Access Denied (403 Forbidden) ... error is returned").
 * - listing: ListObjectsV2 needs s3:ListBucket on the bucket
 *   (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html, "Permissions"). It only reads, and with
 *   max-keys 0 and a prefix no key has it returns no key at all. Allowed: 200 (empty); denied: 403.
 * - reading the output: GetObject needs s3:GetObject; for a key that does not exist the answer depends on
 *   s3:ListBucket as well (404 with it, 403 without: https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html,
 *   "Permissions"), so the probe reads check's own probe object, which the line "write to output works" has just
 *   written: allowed, 206 (one byte, Range bytes=0-0); denied, 403. A read changes nothing.
 * - deleting: DeleteObject needs s3:DeleteObject (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObject.html).
 *   The key is new on every run (…/.doc-processor-check/never-<uuid>) and never written; "If there isn't a null version,
 *   Amazon S3 does not remove any objects but will still respond that the command was successful" (same page), so an
 *   allowed delete answers 204 and removes nothing; denied, 403. No If-Match: the existence check is not relied on.
 *   On a versioning-enabled bucket an allowed delete would add a delete marker under that never-used key (the
 *   template's buckets are not versioned; the source's notifications are ObjectCreated only, so no event either).
 * Not probed, because no request can show the permission without using it: sqs:SendMessage, sqs:PurgeQueue,
 * sqs:SetQueueAttributes, s3:PutBucketPolicy and IAM writes; `npm run audit` checks those with the deployer's
 * credentials.
 */
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { awsErrorInfo, awsErrorLabel, describeAwsError } from "../errors/aws.js";
import type { ProbeResult } from "../queue/access-probe.js";

/** A passed check's detail, or a failure's reason (exit 1). */
export type DeniedVerdict = { ok: true; detail: string } | { ok: false; reason: string };

export type DeniedProbeKind = "listBucket" | "getObject" | "deleteObject";

export interface DeniedProbe {
  kind: DeniedProbeKind;
  /** The checklist line. */
  name: string;
  /** The IAM action that must be denied, and the resource it is asked on. */
  permission: string;
  resource: string;
  /** The grant the fix names: the bucket's ARN, or its objects' (bucket/*), which covers any key's. */
  grant: string;
  bucket: string;
  key: string;
  /** What the probe sends, as the operator reads it. */
  request: string;
}

export interface DeniedProbeTargets {
  sourceBucket: string;
  outputBucket: string;
  outputPrefix: string;
  /** check's own probe object in the output bucket (written by "write to output works"). */
  outputProbeKey: string;
  /** Unique per run: the never-written keys and the listing prefix. */
  nonce: string;
  /** "aws", "aws-cn", "aws-us-gov": from the caller's ARN. */
  partition: string;
}

/** Folder of the probe objects, under outputPrefix in the output bucket (and the refused ones in the source bucket). */
export const PROBE_FOLDER = ".doc-processor-check";

/** The probes in checklist order. */
export function deniedProbes(t: DeniedProbeTargets): DeniedProbe[] {
  const objectArn = (bucket: string, key: string) => `arn:${t.partition}:s3:::${bucket}/${key}`;
  const bucketArn = (bucket: string) => `arn:${t.partition}:s3:::${bucket}`;
  const never = (prefix: string) => `${prefix}${PROBE_FOLDER}/never-${t.nonce}`;
  const sourceNever = never("");
  const outputNever = never(t.outputPrefix);
  return [
    {
      kind: "getObject",
      name: "reading the output is denied (s3:GetObject)",
      permission: "s3:GetObject",
      resource: objectArn(t.outputBucket, t.outputProbeKey),
      grant: objectArn(t.outputBucket, "*"),
      bucket: t.outputBucket,
      key: t.outputProbeKey,
      request: `GetObject s3://${t.outputBucket}/${t.outputProbeKey} (Range bytes=0-0, check's own probe object)`,
    },
    {
      kind: "deleteObject",
      name: "deleting in the source is denied (s3:DeleteObject)",
      permission: "s3:DeleteObject",
      resource: objectArn(t.sourceBucket, sourceNever),
      grant: objectArn(t.sourceBucket, "*"),
      bucket: t.sourceBucket,
      key: sourceNever,
      request: `DeleteObject s3://${t.sourceBucket}/${sourceNever} (a key never written)`,
    },
    {
      kind: "deleteObject",
      name: "deleting in the output is denied (s3:DeleteObject)",
      permission: "s3:DeleteObject",
      resource: objectArn(t.outputBucket, outputNever),
      grant: objectArn(t.outputBucket, "*"),
      bucket: t.outputBucket,
      key: outputNever,
      request: `DeleteObject s3://${t.outputBucket}/${outputNever} (a key never written)`,
    },
    {
      kind: "listBucket",
      name: "listing the source bucket is denied (s3:ListBucket)",
      permission: "s3:ListBucket",
      resource: bucketArn(t.sourceBucket),
      grant: bucketArn(t.sourceBucket),
      bucket: t.sourceBucket,
      key: sourceNever,
      request: `ListObjectsV2 s3://${t.sourceBucket} (max-keys 0, prefix ${sourceNever})`,
    },
    {
      kind: "listBucket",
      name: "listing the output bucket is denied (s3:ListBucket)",
      permission: "s3:ListBucket",
      resource: bucketArn(t.outputBucket),
      grant: bucketArn(t.outputBucket),
      bucket: t.outputBucket,
      key: outputNever,
      request: `ListObjectsV2 s3://${t.outputBucket} (max-keys 0, prefix ${outputNever})`,
    },
  ];
}

/** Sends the probe; any answer, even an error, is the result. */
export async function runDeniedProbe(s3: S3Client, probe: DeniedProbe): Promise<ProbeResult> {
  try {
    switch (probe.kind) {
      case "listBucket":
        await s3.send(new ListObjectsV2Command({ Bucket: probe.bucket, Prefix: probe.key, MaxKeys: 0 }));
        break;
      case "getObject": {
        const got = await s3.send(new GetObjectCommand({ Bucket: probe.bucket, Key: probe.key, Range: "bytes=0-0" }));
        // Drain the one byte so the socket goes back to the pool.
        await got.Body?.transformToByteArray();
        break;
      }
      case "deleteObject":
        await s3.send(new DeleteObjectCommand({ Bucket: probe.bucket, Key: probe.key }));
        break;
    }
    return { ok: true };
  } catch (error) {
    return { ok: false, error };
  }
}

export type DeniedAnswer = "allowed" | "denied" | "unknown";

// Errors S3 gives only once it has authorized the request: for a GetObject, the range, a key it may reveal as missing
// (with s3:ListBucket), a precondition; for a DeleteObject, a missing key on stores that report one.
const AUTHORIZED_ERRORS: Record<DeniedProbeKind, ReadonlySet<string>> = {
  listBucket: new Set<string>(),
  getObject: new Set(["InvalidRange", "NoSuchKey", "PreconditionFailed", "NotModified"]),
  deleteObject: new Set(["NoSuchKey"]),
};
const AUTHORIZED_STATUSES: Record<DeniedProbeKind, ReadonlySet<number>> = {
  listBucket: new Set<number>(),
  getObject: new Set([304, 404, 412, 416]),
  deleteObject: new Set<number>(),
};
// Answers given before any permission is evaluated: a missing bucket or another region, and the 403s of
// authentication (the request was not signed acceptably), which say nothing about the policy.
const NOT_ANSWERING = new Set([
  "NoSuchBucket",
  "PermanentRedirect",
  "AuthorizationHeaderMalformed",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "RequestTimeTooSkewed",
  "InvalidToken",
  "ExpiredToken",
  "TokenRefreshRequired",
]);

export function classifyDeniedProbe(kind: DeniedProbeKind, result: ProbeResult): DeniedAnswer {
  if (result.ok) return "allowed";
  const { name, status } = awsErrorInfo(result.error);
  if (NOT_ANSWERING.has(name)) return "unknown";
  if (name === "AccessDenied" || status === 403) return "denied";
  if (AUTHORIZED_ERRORS[kind].has(name) || (status !== undefined && AUTHORIZED_STATUSES[kind].has(status))) return "allowed";
  return "unknown";
}

const HARMLESS: Record<DeniedProbeKind, string> = {
  listBucket: "max-keys 0: nothing was listed",
  getObject: "one byte of check's own probe object was read",
  deleteObject: "the key was never written: nothing was deleted",
};

export function judgeDeniedProbe(probe: DeniedProbe, result: ProbeResult): DeniedVerdict {
  const answer = classifyDeniedProbe(probe.kind, result);
  if (answer === "denied") {
    return { ok: true, detail: `${awsErrorLabel(result.ok ? undefined : result.error)}, as it must be` };
  }
  if (answer === "allowed") {
    const how = result.ok ? "it succeeded" : `S3 authorized it (${describeAwsError(result.error)})`;
    return {
      ok: false,
      reason:
        `the role may use ${probe.permission} on ${probe.resource}: ${probe.request} was not refused, ${how} ` +
        `(${HARMLESS[probe.kind]}).\nFix: remove ${probe.permission} on ${probe.grant} (or whichever resource pattern ` +
        "covers it) from the role's policies: " +
        "EC2DocumentProcessorRole needs only DocumentProcessorS3Access as shipped (s3:GetObject on the source's objects, " +
        "s3:PutObject on the output's); npm run audit, with the deployer's credentials, names the statement.",
    };
  }
  const error = result.ok ? undefined : result.error;
  const { status } = awsErrorInfo(error);
  const cause =
    status === undefined
      ? `S3 did not answer (${describeAwsError(error)})`
      : `S3 answered ${describeAwsError(error)}, which shows neither an allow nor a deny`;
  return {
    ok: false,
    reason:
      `could not check: ${probe.request}: ${cause}; expected AccessDenied.\n` +
      "Run check again; if this persists, npm run audit (with the deployer's credentials) shows the role's permissions.",
  };
}
