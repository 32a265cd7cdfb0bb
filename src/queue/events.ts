/**
 * What the consumer tells the rest of the daemon: its events (the one feed of the metrics and the watchdog) and the
 * result of a stop. Types only, so the consumer's parts and their listeners share them without importing each other.
 */
import type { SqsOperation } from "./sqs-calls.js";

export type ConsumerEvent =
  /**
   * One loop iteration completed: a receive returned (possibly empty), the pipeline stayed full for waitTimeSeconds,
   * or a failed receive's backoff ended. The loop is alive; this is where the systemd watchdog is fed.
   */
  | { type: "cycle"; result: "received" | "full" | "receive-failed"; received: number }
  | { type: "deleted"; count: number }
  /** A failed message was given a backoff visibility timeout. */
  | { type: "returned"; messageId: string; status: "retry" | "rejected"; visibilityTimeout: number }
  /** Messages made visible again at once (visibility 0) because the consumer is stopping. */
  | { type: "released"; count: number }
  | { type: "extended"; count: number }
  /** A message reached maxProcessingSeconds: its documents were aborted and its visibility is no longer extended. */
  | { type: "capped"; messageId: string }
  | { type: "malformed"; messageId: string; reason: string }
  /**
   * An SQS call failed for these messages. For DeleteMessage(Batch) it is emitted only once the delete failed for
   * good (after its retry): the message will be redelivered.
   */
  | { type: "error"; operation: SqsOperation; error: unknown; messageIds: string[] };

/** How the consumer's parts report events; the consumer guards the listener (a throw is logged, not propagated). */
export type Emit = (event: ConsumerEvent) => void;

/** What only the consumer can tell; the counters live in Metrics, fed by the events above. */
export interface ConsumerStats {
  /** Messages with documents currently tracked (running or being acknowledged). */
  inFlight: number;
}

export interface StopResult {
  /** Messages in flight at stop() that reached a decision (deleted or backed off) during the drain. */
  completed: number;
  /** Messages made visible again with visibility 0 (received during stop, aborted or abandoned at the deadline). */
  released: number;
  /** Whether the drain deadline passed with documents still running. */
  timedOut: boolean;
}
