import type { ErrorCode } from "../errors.js";

/**
 * How one document ended. Every pipeline task resolves to an Outcome (never rejects), so the consumer decides
 * acknowledgement from data, not from exceptions.
 * - done: the output is written; the message may be deleted.
 * - superseded: the object changed after the event (412 on IfMatch); a newer event follows, so delete.
 * - retry: a transient or unknown failure; keep the message, back off its visibility, let redrive decide.
 * - rejected: can never succeed as is (too large, ...); keep the message so the redrive policy moves it to the DLQ.
 */
export type Outcome =
  | { status: "done"; outputs: string[]; bytesIn: number; bytesOut: number }
  | { status: "superseded"; reason: string }
  | { status: "retry"; code: ErrorCode; reason: string }
  | { status: "rejected"; code: ErrorCode; reason: string };

export type OutcomeStatus = Outcome["status"];

/** Whether the message that carried this document can be deleted. */
export function isAcknowledgeable(outcome: Outcome): boolean {
  return outcome.status === "done" || outcome.status === "superseded";
}
