import type { DocumentRef } from "../domain/document.js";
import type { Outcome } from "./outcome.js";

/** Per-document context the consumer passes in. */
export interface SubmitContext {
  messageId: string;
  /** ApproximateReceiveCount of the carrying message (1 on first delivery). */
  receiveCount: number;
  /** Aborted by the consumer when the heartbeat cap is reached or on a forced shutdown. */
  signal: AbortSignal;
  /** Called once when the document leaves the wait for a slot and starts running (not called when aborted first). */
  onStart?: () => void;
}

/**
 * What the consumer needs from the pipeline: room to know how many messages to receive, and a task per document
 * that always resolves to an Outcome (never rejects).
 */
export interface DocumentPipeline {
  /** Documents that may be in flight at once: running (concurrency) plus waiting for a slot (prefetch). */
  readonly capacity: number;
  /**
   * How many more documents may be submitted now: capacity minus documents in flight, 0 when the in-flight byte
   * budget is used up.
   */
  freeSlots(): number;
  /** Slots with no document to run, counting waiting ones: concurrency minus documents in flight, at least 0. */
  idleWorkers(): number;
  /**
   * Resolves once freeSlots() >= atLeast (default 1), or once freeSlots() > 0 while a worker is idle (a starving
   * pipeline never waits for a full batch's room), or when `signal` aborts (then it resolves too; the caller checks).
   */
  waitForRoom(signal: AbortSignal, atLeast?: number): Promise<void>;
  /** Queue one document. Resolves to its Outcome; never rejects. */
  submit(doc: DocumentRef, ctx: SubmitContext): Promise<Outcome>;
  /** Resolves when nothing is running or queued. */
  onIdle(): Promise<void>;
  /** Documents running or queued. */
  readonly inFlight: number;
}
