/**
 * The acknowledgement decision for a message whose documents have all settled: delete it, back it off, make it
 * visible at once for the redrive policy, or release it because shutdown aborted it. Pure (the jitter source is
 * passed in), so every branch is testable without SQS or timers.
 */
import { isAcknowledgeable, type Outcome } from "../pipeline/outcome.js";
import { failedMessageVisibilitySeconds } from "./backoff.js";
import type { DocumentFailure } from "./log-fields.js";

export type AckDecision =
  /** Every document is done, superseded or failed permanently (with its error record): delete the message. */
  | { kind: "delete" }
  /** Shutdown aborted it before it could finish: visibility 0, so another consumer picks it up at once. */
  | { kind: "release"; failures: DocumentFailure[] }
  /** Not acknowledged: hidden for `visibilityTimeout` seconds (> 0) by its receive count, then redelivered. */
  | { kind: "back-off"; status: DocumentFailure["status"]; failures: DocumentFailure[]; visibilityTimeout: number }
  /** Can never succeed as is: visible at once (0), so the redrive policy moves it to the DLQ after a few receives. */
  | { kind: "redrive"; status: DocumentFailure["status"]; failures: DocumentFailure[]; visibilityTimeout: 0 };

export interface AckInput {
  /** The message's documents, in the order of `outcomes`. */
  documents: readonly { key: string }[];
  outcomes: readonly Outcome[];
  receiveCount: number;
  /** Whether the consumer aborted the message's documents because it is shutting down. */
  abortedByShutdown: boolean;
  /** Jitter source in [0, 1) for the backoff. */
  random: () => number;
}

export function decideAck(input: AckInput): AckDecision {
  const { documents, outcomes } = input;
  if (outcomes.every(isAcknowledgeable)) return { kind: "delete" };
  const failures = outcomes.flatMap((o, i): DocumentFailure[] =>
    o.status === "retry" || o.status === "rejected"
      ? [{ key: documents[i]?.key, status: o.status, code: o.code, reason: o.reason }]
      : [],
  );
  if (input.abortedByShutdown) return { kind: "release", failures };
  const status = failures.some((f) => f.status === "retry") ? "retry" : "rejected";
  const visibilityTimeout = failedMessageVisibilitySeconds(failures, input.receiveCount, input.random);
  return visibilityTimeout === 0
    ? { kind: "redrive", status, failures, visibilityTimeout }
    : { kind: "back-off", status, failures, visibilityTimeout };
}
