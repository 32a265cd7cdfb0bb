import type { DocumentErrorCode, OutcomeCode } from "../errors/document.js";

/**
 * How one document ended. Every pipeline task resolves to an Outcome (never rejects), so the consumer decides
 * acknowledgement from data, not from exceptions.
 * - done: the output is written; the message may be deleted.
 * - superseded: the object changed after the event (412 on IfMatch); a newer event follows, so delete.
 * - retry: a transient or unknown failure; keep the message, back off its visibility, let redrive decide.
 * - rejected: can never succeed as is (too large, ...); keep the message so the redrive policy moves it to the DLQ.
 * - failed-permanently: a processor found the document unprocessable (corrupt, encrypted, unsupported, over a limit);
 *   `<key>.error.json` says why (it is the last of `outputs`), so the message may be deleted.
 */
export type Outcome =
  | { status: "done"; outputs: string[]; bytesIn: number; bytesOut: number }
  | { status: "superseded"; reason: string }
  | { status: "retry"; code: OutcomeCode; reason: string }
  | { status: "rejected"; code: OutcomeCode; reason: string }
  | { status: "failed-permanently"; code: DocumentErrorCode; reason: string; outputs: string[] };

export type OutcomeStatus = Outcome["status"];

/** Whether the message that carried this document can be deleted. */
export function isAcknowledgeable(outcome: Outcome): boolean {
  return outcome.status === "done" || outcome.status === "superseded" || outcome.status === "failed-permanently";
}
