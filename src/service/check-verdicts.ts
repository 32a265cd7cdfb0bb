/**
 * The judgements behind `check`'s lines: which answers prove a check and which fail it, with the reason and the fix
 * an operator needs. Pure: each takes what a probe got back and returns a Verdict.
 */
import type { AwsCredentialIdentity } from "@smithy/types";
import { realExpiration } from "../aws/credentials.js";
import { awsErrorInfo, describeAwsError } from "../errors/aws.js";
import { ExitCode } from "../errors/fatal.js";
import { classifyProbe, type ProbeResult, type QueueProbes } from "../queue/access-probe.js";
import type { Verdict } from "./checklist.js";

export type { ProbeResult } from "../queue/access-probe.js";
export type { Verdict } from "./checklist.js";

export function judgeTokenlessStatus(status: number): Verdict {
  if (status === 401) return { ok: true, detail: "HTTP 401 without a token" };
  if (status >= 200 && status < 300) {
    return {
      ok: false,
      exitCode: ExitCode.noPerm,
      reason:
        `IMDS answered a request without a token (HTTP ${status}): IMDSv1 is enabled, so any process on the instance ` +
        "(or a request forgery through it) can read the role's credentials with a plain GET.\n" +
        "Fix: aws ec2 modify-instance-metadata-options --instance-id <id> --http-tokens required --http-endpoint enabled",
    };
  }
  return { ok: false, reason: `IMDS answered a request without a token with HTTP ${status}, expected 401` };
}

/**
 * The credentials' real expiry. After an IMDS outage (ExpiredToken) the SDK keeps signing with the old keys and
 * stretches their `expiration`; the real one is then `originalExpiration`, which is what the operator needs.
 */
export function expiryDetail(creds: AwsCredentialIdentity, now: number): string {
  const { expiration, extended } = realExpiration(creds);
  if (expiration === undefined) return "no expiry";
  const at = Number.isFinite(expiration.getTime()) ? expiration.toISOString() : "an invalid date";
  if (!extended) return `expire ${at}`;
  const when = expiration.getTime() <= now ? "expired" : "expire";
  return `${when} ${at} (IMDS could not renew them; reused until it can)`;
}

/** Bytes from "bytes 0-0/1234". */
export function sizeFromContentRange(range: string | undefined): number | undefined {
  const m = range === undefined ? null : /\/(\d+)$/.exec(range);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

export function judgeSourceRead(result: ProbeResult & { size?: number | undefined }, where: string): Verdict {
  if (result.ok) return { ok: true, detail: `read ${where}${result.size === undefined ? "" : ` (${result.size} bytes)`}` };
  const { name, status } = awsErrorInfo(result.error);
  if (name === "InvalidRange" || status === 416) return { ok: true, detail: `read ${where} (empty)` };
  if (name === "AccessDenied" || status === 403) {
    return {
      ok: false,
      reason:
        `AccessDenied on ${where}: the key does not exist or the role may not read it (without s3:ListBucket S3 ` +
        "answers both with 403).\nFix: give --source-key an object that exists; if it does, the role's policy needs " +
        "s3:GetObject on the source bucket's objects (statement ReadFromSource).",
    };
  }
  return { ok: false, reason: `GetObject ${where} failed: ${describeAwsError(result.error)}` };
}

export function judgeSourceWrite(result: ProbeResult, where: string): Verdict {
  if (result.ok) {
    return {
      ok: false,
      reason:
        `the write to ${where} SUCCEEDED: the role may write to the source bucket, which its policy must not allow ` +
        "(delete that object).\nFix: grant only s3:GetObject on the source bucket (DocumentProcessorS3Access).",
    };
  }
  const { name, status } = awsErrorInfo(result.error);
  if (name === "AccessDenied" || status === 403) return { ok: true, detail: "AccessDenied, as it must be" };
  if (name === "NoSuchBucket") return { ok: false, reason: `the source bucket does not exist (${describeAwsError(result.error)})` };
  if (name === "PreconditionFailed" || name === "NoSuchKey" || status === 412 || status === 404 || status === 409) {
    return {
      ok: false,
      reason:
        `S3 authorized s3:PutObject on ${where} (only the If-Match guard stopped the write, so nothing was written): ` +
        "the role may write to the source bucket.\nFix: grant only s3:GetObject on the source bucket (DocumentProcessorS3Access).",
    };
  }
  return { ok: false, reason: `expected AccessDenied, got ${describeAwsError(result.error)}` };
}

export function judgeOtherServiceCall(result: ProbeResult): Verdict {
  if (result.ok) {
    return {
      ok: false,
      reason:
        "sts:GetAccessKeyInfo SUCCEEDED: the role has permissions beyond its policy (a wildcard action or another " +
        "attached policy).\nFix: attach only DocumentProcessorS3Access to the role.",
    };
  }
  const { name, status } = awsErrorInfo(result.error);
  if (name === "AccessDenied" || name === "UnauthorizedOperation" || status === 403) {
    return { ok: true, detail: `${name}, as it must be` };
  }
  return { ok: false, reason: `expected AccessDenied, got ${describeAwsError(result.error)}` };
}

export function judgeQueueProbes(probes: QueueProbes, queueUrl: string): Verdict {
  const problems: string[] = [];
  for (const [action, result] of Object.entries(probes) as [keyof QueueProbes, ProbeResult][]) {
    const kind = classifyProbe(result);
    if (kind === "authorized" || result.ok) continue;
    if (kind === "denied") problems.push(`sqs:${capitalize(action)} is denied (${describeAwsError(result.error)})`);
    else problems.push(`sqs:${capitalize(action)} failed: ${describeAwsError(result.error)}`);
  }
  if (problems.length === 0) {
    return { ok: true, detail: "sqs:ChangeMessageVisibility and sqs:DeleteMessage authorized (no message touched)" };
  }
  return {
    ok: false,
    reason:
      `${problems.join("; ")} on ${queueUrl}.\nFix: the role's policy needs sqs:ReceiveMessage, sqs:DeleteMessage and ` +
      "sqs:ChangeMessageVisibility on the queue's ARN (statement ConsumeNotifications), and queueUrl must be that queue.",
  };
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
