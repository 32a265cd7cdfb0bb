// Receipt handles as SQS issues them: opaque, bound to one queue, and refused when forged or mangled. fauxqs hands
// out bare UUIDs and answers DeleteMessage with any string as a success, so the gateway wraps every handle it passes
// on (queue + fauxqs's handle, authenticated with a per-gateway key) and unwraps it on the way back. A handle that does
// not unwrap was never issued for this queue by this gateway: SQS's ReceiptHandleIsInvalid (API reference,
// DeleteMessage and ChangeMessageVisibility, "Errors": https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteMessage.html).
// Its HTTP status is 404, not 400: that is what SQS's service model gives it (awsQueryError "ReceiptHandleIsInvalid",
// 404, in the @aws-sdk/client-sqs this repository installs), and the SDK maps the error by code either way. The text
// is the one AWS's knowledge center quotes (https://repost.aws/knowledge-center/sqs-receipt-handle-error). A handle
// that unwraps but is no longer current (its message was deleted or received again) goes to fauxqs unchanged:
// DeleteMessage then succeeds, as the API reference says an old handle does.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { AwsError } from "./errors.js";

const VERSION = 1;
const MAC_BYTES = 16;
/** What a refused handle turns into upstream: no fauxqs handle looks like it (they are UUIDs). */
export const UNUSABLE_UPSTREAM_HANDLE = "stand-in-refused-receipt-handle";
const SHOWN_HANDLE_CHARS = 200;

export class ReceiptHandles {
  constructor(private readonly key: Buffer = randomBytes(32)) {}

  /** The handle callers see for fauxqs's `upstreamHandle` on queue `queue` (account/name). */
  wrap(queue: string, upstreamHandle: string): string {
    const payload = Buffer.from(`${queue}\n${upstreamHandle}`, "utf8");
    return Buffer.concat([Buffer.of(VERSION), this.mac(payload), payload]).toString("base64");
  }

  /** fauxqs's handle inside `handle`, or undefined when `handle` was not issued by this gateway for `queue`. */
  unwrap(queue: string, handle: unknown): string | undefined {
    if (typeof handle !== "string" || handle.length === 0) return undefined;
    const raw = Buffer.from(handle, "base64");
    // Node's base64 decoder skips what it does not understand: only a canonical encoding is a handle.
    if (raw.toString("base64") !== handle || raw.length <= 1 + MAC_BYTES || raw[0] !== VERSION) return undefined;
    const mac = raw.subarray(1, 1 + MAC_BYTES);
    const payload = raw.subarray(1 + MAC_BYTES);
    if (!timingSafeEqual(mac, this.mac(payload))) return undefined;
    const text = payload.toString("utf8");
    const newline = text.indexOf("\n");
    if (newline === -1 || text.slice(0, newline) !== queue) return undefined;
    return text.slice(newline + 1);
  }

  private mac(payload: Buffer): Buffer {
    return createHmac("sha256", this.key).update(payload).digest().subarray(0, MAC_BYTES);
  }
}

/** The text SQS puts in ReceiptHandleIsInvalid (a hostile handle is cut short: it is echoed back). */
export function invalidHandleMessage(handle: unknown): string {
  const text = typeof handle === "string" ? handle : JSON.stringify(handle) ?? String(handle);
  const shown = text.length > SHOWN_HANDLE_CHARS ? `${text.slice(0, SHOWN_HANDLE_CHARS)}…` : text;
  return `The input receipt handle "${shown}" is not a valid receipt handle.`;
}

export function invalidHandleError(handle: unknown): AwsError {
  return new AwsError("ReceiptHandleIsInvalid", invalidHandleMessage(handle), 404);
}

const SINGLE = new Set(["DeleteMessage", "ChangeMessageVisibility"]);
const BATCH = new Set(["DeleteMessageBatch", "ChangeMessageVisibilityBatch"]);

export interface UnwrappedRequest {
  /** The input with fauxqs's handles in place of the caller's. */
  input: Record<string, unknown>;
  /** The single call's handle, when this gateway did not issue it for the queue. */
  refused?: { handle: unknown };
  /** Batch entries (by Id) whose handle was refused, with that handle. */
  refusedEntries: Map<string, unknown>;
}

/**
 * The request as fauxqs must see it. A refused handle still goes upstream, as one that matches no message, so that
 * fauxqs's own checks (queue exists, batch shape) keep their order; its answer for that handle is then replaced.
 * An absent handle is left absent (fauxqs answers MissingParameter).
 */
export function unwrapRequest(handles: ReceiptHandles, operation: string, input: Record<string, unknown>, queue: string): UnwrappedRequest {
  const refusedEntries = new Map<string, unknown>();
  const unwrap = (handle: unknown): string | undefined => handles.unwrap(queue, handle);
  if (SINGLE.has(operation) && input["ReceiptHandle"] !== undefined) {
    const upstream = unwrap(input["ReceiptHandle"]);
    if (upstream !== undefined) return { input: { ...input, ReceiptHandle: upstream }, refusedEntries };
    return { input: { ...input, ReceiptHandle: UNUSABLE_UPSTREAM_HANDLE }, refused: { handle: input["ReceiptHandle"] }, refusedEntries };
  }
  if (BATCH.has(operation) && Array.isArray(input["Entries"])) {
    const entries = (input["Entries"] as unknown[]).map((entry) => {
      if (typeof entry !== "object" || entry === null) return entry;
      const fields = entry as Record<string, unknown>;
      if (fields["ReceiptHandle"] === undefined) return entry;
      const upstream = unwrap(fields["ReceiptHandle"]);
      if (upstream !== undefined) return { ...fields, ReceiptHandle: upstream };
      refusedEntries.set(String(fields["Id"]), fields["ReceiptHandle"]);
      return { ...fields, ReceiptHandle: UNUSABLE_UPSTREAM_HANDLE };
    });
    return { input: { ...input, Entries: entries }, refusedEntries };
  }
  return { input, refusedEntries };
}

/** A batch answer with every refused entry failed as ReceiptHandleIsInvalid, whatever fauxqs made of it. */
export function markRefusedEntries(output: Record<string, unknown>, refused: ReadonlyMap<string, unknown>): Record<string, unknown> {
  if (refused.size === 0) return output;
  const keep = (list: unknown) =>
    (Array.isArray(list) ? (list as unknown[]) : []).filter(
      (entry) => !(typeof entry === "object" && entry !== null && refused.has(String((entry as Record<string, unknown>)["Id"]))),
    );
  const failures = [...refused].map(([id, handle]) => ({
    Id: id,
    SenderFault: true,
    Code: "ReceiptHandleIsInvalid",
    Message: invalidHandleMessage(handle),
  }));
  return { ...output, Successful: keep(output["Successful"]), Failed: [...keep(output["Failed"]), ...failures] };
}

/** A ReceiveMessage answer with the callers' handles in place of fauxqs's. */
export function wrapReceived(handles: ReceiptHandles, output: Record<string, unknown>, queue: string): Record<string, unknown> {
  if (!Array.isArray(output["Messages"])) return output;
  const messages = (output["Messages"] as unknown[]).map((message) => {
    if (typeof message !== "object" || message === null) return message;
    const fields = message as Record<string, unknown>;
    const handle = fields["ReceiptHandle"];
    return typeof handle === "string" ? { ...fields, ReceiptHandle: handles.wrap(queue, handle) } : message;
  });
  return { ...output, Messages: messages };
}
