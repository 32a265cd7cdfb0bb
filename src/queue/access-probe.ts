/**
 * Proof that the role can consume the queue, without touching a message: ChangeMessageVisibility and DeleteMessage
 * with a receipt handle that cannot exist. SQS authorizes a call before it looks at the handle, so an allowed call is
 * answered ReceiptHandleIsInvalid (or InvalidParameterValue, MessageNotInflight, InvalidIdFormat: the documented
 * answers for a handle that was never issued), a denied one AccessDenied. No ReceiveMessage: it would hide whatever
 * it got and raise its ApproximateReceiveCount, moving real notifications toward the DLQ.
 * Used by `check` and by `run` before READY. Only probeQueue does I/O; the decisions are pure.
 */
import { ChangeMessageVisibilityCommand, DeleteMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { QueueLocation } from "../config/queue-url.js";
import { awsErrorInfo, awsErrorLabel } from "../errors/aws.js";
import { ErrorCode } from "../errors/fatal.js";
import { errorMessage } from "../errors/message.js";

export const IMPOSSIBLE_RECEIPT_HANDLE = "doc-processor-check-not-a-receipt-handle";

/** What one probe call did: answered, or failed with this error. */
export type ProbeResult = { ok: true } | { ok: false; error: unknown };

export interface QueueProbes {
  changeMessageVisibility: ProbeResult;
  deleteMessage: ProbeResult;
}

export async function probeQueue(sqs: SQSClient, queueUrl: string, signal?: AbortSignal): Promise<QueueProbes> {
  const attempt = async (send: () => Promise<unknown>): Promise<ProbeResult> => {
    try {
      await send();
      return { ok: true };
    } catch (error) {
      return { ok: false, error };
    }
  };
  // Side by side: an unreachable endpoint costs one round of retries, not two.
  const [changeMessageVisibility, deleteMessage] = await Promise.all([
    attempt(() =>
      sqs.send(
        new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: IMPOSSIBLE_RECEIPT_HANDLE, VisibilityTimeout: 0 }),
        { abortSignal: signal },
      ),
    ),
    attempt(() =>
      sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: IMPOSSIBLE_RECEIPT_HANDLE }), { abortSignal: signal }),
    ),
  ]);
  return { changeMessageVisibility, deleteMessage };
}

/** What one answer proves. */
export type ProbeClass = "authorized" | "denied" | "not-found" | "unavailable" | "unexpected";

// SQS's answers for a receipt handle that was never issued, given only once the call is authorized.
const INVALID_HANDLE = new Set(["ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight", "InvalidIdFormat"]);
// The policy (or, for a queue in another account, its queue policy) refuses the role; InvalidClientTokenId is what
// another partition's endpoint (China) answers for these credentials.
const DENIED = new Set(["AccessDenied", "AccessDeniedException", "InvalidClientTokenId", "UnrecognizedClientException"]);
// "The specified queue does not exist or you do not have access to it": SQS answers both alike.
const NOT_FOUND = new Set(["QueueDoesNotExist", "NonExistentQueue", "QueueDeletedRecently"]);
// Answers that may pass on their own.
const TEMPORARY = new Set([
  "RequestThrottled",
  "ThrottlingException",
  "Throttling",
  "TooManyRequestsException",
  "ServiceUnavailable",
  "InternalFailure",
  "InternalError",
  "RequestTimeout",
  "RequestTimeoutException",
  "ExpiredToken",
  "ExpiredTokenException",
  "TimeoutError",
]);

/** The error's name and its query-protocol code (the x-amzn-query-error header), without SQS's legacy prefix. */
function codesOf(error: unknown): string[] {
  const e = (typeof error === "object" && error !== null ? error : {}) as { Code?: unknown; Error?: { Code?: unknown } };
  return [awsErrorInfo(error).name, e.Code, e.Error?.Code]
    .filter((c): c is string => typeof c === "string" && c !== "")
    .map((c) => c.replace(/^AWS\.SimpleQueueService\./, ""));
}

export function classifyProbe(result: ProbeResult): ProbeClass {
  if (result.ok) return "authorized";
  const codes = codesOf(result.error);
  const { status } = awsErrorInfo(result.error);
  const any = (set: Set<string>) => codes.some((c) => set.has(c));
  if (any(INVALID_HANDLE)) return "authorized";
  if (any(DENIED)) return "denied";
  if (any(NOT_FOUND)) return "not-found";
  // No HTTP answer at all (refused, reset, timed out, DNS) or a server-side one: SQS could not be asked.
  if (any(TEMPORARY) || status === undefined || status >= 500 || status === 429) return "unavailable";
  return "unexpected";
}

const ACTIONS = { changeMessageVisibility: "sqs:ChangeMessageVisibility", deleteMessage: "sqs:DeleteMessage" } as const;

export interface ProbeFailure {
  action: string;
  error: unknown;
}

export type QueueAccess =
  | { kind: "allowed" }
  | { kind: Exclude<ProbeClass, "authorized">; failures: ProbeFailure[] };

// One refusal decides, whatever the other call met; an unanswered call only means "not proven yet".
const PRECEDENCE: readonly Exclude<ProbeClass, "authorized">[] = ["denied", "not-found", "unexpected", "unavailable"];

export function decideQueueAccess(probes: QueueProbes): QueueAccess {
  const classified = (Object.keys(ACTIONS) as (keyof QueueProbes)[]).map((key) => ({
    action: ACTIONS[key],
    result: probes[key],
    kind: classifyProbe(probes[key]),
  }));
  for (const kind of PRECEDENCE) {
    const failures = classified
      .filter((c) => c.kind === kind)
      .map((c) => ({ action: c.action, error: c.result.ok ? undefined : c.result.error }));
    if (failures.length > 0) return { kind, failures };
  }
  return { kind: "allowed" };
}

export interface RefusalContext {
  queue: QueueLocation;
  /** The region the SQS client signs for (the queue URL's, else `region`, else the instance's). */
  region: string;
  roleArn: string;
  instance: { accountId: string; region: string };
}

export interface QueueRefusal {
  code: typeof ErrorCode.queueAccessDenied | typeof ErrorCode.queueUnavailable;
  message: string;
}

/** `sqs:A and sqs:B: AccessDenied 403 ("…")`: the actions per kind of answer, and the first answer's words. */
function summarize(failures: readonly ProbeFailure[]): string {
  const groups = new Map<string, string[]>();
  for (const f of failures) {
    const key = awsErrorLabel(f.error);
    groups.set(key, [...(groups.get(key) ?? []), f.action]);
  }
  const kinds = [...groups].map(([key, actions]) => `${actions.join(" and ")}: ${key}`).join("; ");
  return `${kinds} ("${errorMessage(failures[0]?.error)}")`;
}

/** The start-up refusal for a queue that could not be proven consumable: what was found, and the fix. */
export function queueRefusal(access: Exclude<QueueAccess, { kind: "allowed" }>, ctx: RefusalContext): QueueRefusal {
  const { queue } = ctx;
  const region = queue.region ?? ctx.region;
  const partition = ctx.roleArn.split(":")[1] || "aws";
  const arn = `arn:${partition}:sqs:${region}:${queue.account}:${queue.name}`;
  const where = `the queue ${queue.name} (account ${queue.account}, region ${region})`;
  const answers = summarize(access.failures);
  const elsewhere = [
    queue.account !== ctx.instance.accountId ? "another account" : undefined,
    region !== ctx.instance.region ? "another region" : undefined,
  ].filter((s) => s !== undefined);
  const instanceLine =
    `This instance runs as ${ctx.roleArn}, in account ${ctx.instance.accountId}, region ${ctx.instance.region}` +
    (elsewhere.length > 0 ? `: the queue is in ${elsewhere.join(" and ")}.` : ".");
  const policyFix =
    "the role's policy (DocumentProcessorS3Access, statement ConsumeNotifications) must allow sqs:ReceiveMessage, " +
    `sqs:DeleteMessage and sqs:ChangeMessageVisibility on ${arn}` +
    (queue.account !== ctx.instance.accountId ? `, and that queue's own policy must allow this role (account ${queue.account} owns it)` : "");

  switch (access.kind) {
    case "denied":
      return {
        code: ErrorCode.queueAccessDenied,
        message: [
          `refusing to start: the role may not consume ${where}: ${answers}.`,
          instanceLine,
          `Fix: ${policyFix}; or, if the source bucket notifies another queue, set queueUrl to that one (now ${queue.url}).`,
        ].join("\n"),
      };
    case "not-found":
      return {
        code: ErrorCode.queueAccessDenied,
        message: [
          `refusing to start: SQS says ${where} does not exist or this role may not see it (it answers both alike): ${answers}.`,
          instanceLine,
          `Fix: check queueUrl (${queue.url}) against the queue's URL in the SQS console of account ${queue.account}, ` +
            `region ${region} (aws sqs get-queue-url --queue-name ${queue.name}); ${policyFix}.`,
        ].join("\n"),
      };
    case "unavailable":
      return {
        code: ErrorCode.queueUnavailable,
        message:
          `cannot reach SQS at ${queue.endpoint} to prove the role can consume ${where}: ${answers}. ` +
          "Temporary: the service is restarted and tries again.",
      };
    case "unexpected":
      return {
        code: ErrorCode.queueUnavailable,
        message:
          `SQS answered the start-up probe of ${where} in a way that proves nothing: ${answers}. Not starting without ` +
          "proof that the queue can be consumed; the service is restarted and tries again (`doc-processor check` shows the details).",
      };
  }
}
