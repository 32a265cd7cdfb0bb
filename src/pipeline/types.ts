import type { DocumentRef } from "../queue/records.js";
import type { Outcome } from "./outcome.js";

/** Per-document context the consumer passes in. */
export interface SubmitContext {
  messageId: string;
  /** ApproximateReceiveCount of the carrying message (1 on first delivery). */
  receiveCount: number;
  /** Aborted by the consumer when the heartbeat cap is reached or on a forced shutdown. */
  signal: AbortSignal;
}

/**
 * What the consumer needs from the pipeline: room to know how many messages to receive, and a task per document
 * that always resolves to an Outcome (never rejects).
 */
export interface DocumentPipeline {
  /** How many more documents could start now (0 when the concurrency or the in-flight byte budget is used up). */
  freeSlots(): number;
  /** Resolves once freeSlots() > 0, or when `signal` aborts (then it resolves too; the caller checks the signal). */
  waitForRoom(signal: AbortSignal): Promise<void>;
  /** Queue one document. Resolves to its Outcome; never rejects. */
  submit(doc: DocumentRef, ctx: SubmitContext): Promise<Outcome>;
  /** Resolves when nothing is running or queued. */
  onIdle(): Promise<void>;
  /** Documents running or queued. */
  readonly inFlight: number;
}
