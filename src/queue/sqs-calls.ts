/** Small shared pieces of the SQS calls: receipt handles, per-entry results of batch calls, error classification. */
import type { BatchEntryFailure, Message } from "../aws/transport.js";
import { awsErrorInfo } from "../errors/aws.js";
import { errorMessage } from "../errors/message.js";

/** SQS batch APIs take at most 10 entries; ReceiveMessage returns at most 10 messages. */
export const SQS_BATCH_MAX = 10;

export type SqsOperation =
  | "ReceiveMessage"
  | "DeleteMessage"
  | "DeleteMessageBatch"
  | "ChangeMessageVisibility"
  | "ChangeMessageVisibilityBatch";

export interface Handle {
  readonly messageId: string;
  readonly receiptHandle: string;
}

export type CallResult = { ok: true } | { ok: false; code: string; message: string; error: unknown };

export function handleOf(message: Message): Handle | undefined {
  const { MessageId: messageId, ReceiptHandle: receiptHandle } = message;
  return messageId && receiptHandle ? { messageId, receiptHandle } : undefined;
}

/**
 * The receipt handle can no longer act on the message: it expired (the visibility lapsed, "InvalidParameterValue"),
 * is invalid, or the message is no longer in flight. Retrying with the same handle cannot succeed.
 */
export function isReceiptHandleGone(code: string): boolean {
  const bare = code.replace(/^AWS\.SimpleQueueService\./, "");
  return bare === "ReceiptHandleIsInvalid" || bare === "InvalidParameterValue" || bare === "MessageNotInflight";
}

export async function call(send: () => Promise<unknown>): Promise<CallResult> {
  try {
    await send();
    return { ok: true };
  } catch (err) {
    return failure(err);
  }
}

export function failure(err: unknown): Extract<CallResult, { ok: false }> {
  return { ok: false, code: awsErrorInfo(err).name, message: errorMessage(err), error: err };
}

/** Batch entry ids: `m<index>`, so the same message twice in one call (duplicate delivery) still gets distinct ids. */
export function batchEntries(handles: readonly Handle[]): { id: string; receiptHandle: string }[] {
  return handles.map((h, i) => ({ id: `m${i}`, receiptHandle: h.receiptHandle }));
}

export function batchResults(count: number, failed: readonly BatchEntryFailure[]): CallResult[] {
  const byId = new Map(failed.map((f) => [f.id, f]));
  return Array.from({ length: count }, (_, i): CallResult => {
    const f = byId.get(`m${i}`);
    if (f === undefined) return { ok: true };
    return { ok: false, code: f.code, message: f.message, error: Object.assign(new Error(f.message), { name: f.code }) };
  });
}

export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * What to fix when ReceiveMessage is refused for good (the start-up probe proves the visibility and delete calls, not
 * this one: a receive would take messages). Undefined for an answer that may pass on its own.
 */
export function receiveRefusalHint(code: string): string | undefined {
  switch (code) {
    case "AccessDenied":
    case "AccessDeniedException":
      return (
        "the role may not sqs:ReceiveMessage on this queue: allow it in the role's policy " +
        "(scripts/iam/DocumentProcessorS3Access.json) and, if the queue has a policy, check that it does not deny it"
      );
    case "KmsAccessDenied":
    case "KMS.AccessDeniedException":
      return (
        "the queue is encrypted with a KMS key the role may not use: allow kms:Decrypt on that key to the role, " +
        "or encrypt the queue with SSE-SQS (no key permission needed)"
      );
    case "KmsDisabled":
    case "KmsNotFound":
    case "KmsInvalidState":
      return "the queue's KMS key is disabled, missing or pending deletion: fix the key or the queue's encryption";
    default:
      return undefined;
  }
}
