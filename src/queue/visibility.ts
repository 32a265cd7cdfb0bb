/**
 * The visibility calls: ChangeMessageVisibility for one message, ChangeMessageVisibilityBatch for several (chunks of
 * ten), and the release (visibility 0) with its logging. One place that talks to SQS about visibility, so the
 * heartbeat, the backoff and the stop path share one result shape and one failure report.
 */
import type { QueueTransport } from "../aws/transport.js";
import type { Logger } from "../logging/logger.js";
import type { ConsumerEvent, Emit } from "./events.js";
import { SQS_BATCH_MAX, batchEntries, batchResults, call, chunks, failure, type CallResult, type Handle } from "./sqs-calls.js";

/** The event for one message whose visibility change failed, named after the call that carried it. */
export function visibilityFailure(callSize: number, error: unknown, messageId: string): ConsumerEvent {
  return {
    type: "error",
    operation: callSize === 1 ? "ChangeMessageVisibility" : "ChangeMessageVisibilityBatch",
    error,
    messageIds: [messageId],
  };
}

export interface VisibilityDeps {
  queue: QueueTransport;
  queueUrl: string;
  log: Logger;
  emit: Emit;
}

export class Visibility {
  constructor(private readonly deps: VisibilityDeps) {}

  /** ChangeMessageVisibility for one, ChangeMessageVisibilityBatch for several; a result per handle; never rejects. */
  async change(handles: readonly Handle[], seconds: number): Promise<CallResult[]> {
    const { queue, queueUrl } = this.deps;
    const results: CallResult[] = [];
    for (const chunk of chunks(handles, SQS_BATCH_MAX)) {
      const [only] = chunk;
      if (chunk.length === 1 && only !== undefined) {
        results.push(await call(() => queue.changeVisibility(queueUrl, only.receiptHandle, seconds)));
        continue;
      }
      try {
        const failed = await queue.changeVisibilityBatch(queueUrl, batchEntries(chunk), seconds);
        results.push(...batchResults(chunk.length, failed));
      } catch (err) {
        const failed = failure(err);
        results.push(...chunk.map(() => failed));
      }
    }
    return results;
  }

  /**
   * Visibility 0: the messages are visible to any consumer at once. A failure is logged; the rest count released.
   * Returns how many were released.
   */
  async release(handles: readonly Handle[], why: string): Promise<number> {
    if (handles.length === 0) return 0;
    const { log, emit } = this.deps;
    const results = await this.change(handles, 0);
    let released = 0;
    handles.forEach((h, i) => {
      const result = results[i];
      if (result === undefined || result.ok) {
        released += 1;
        return;
      }
      log.warn(
        { messageId: h.messageId, code: result.code, detail: result.message, why },
        "could not release the message; it returns when its current visibility ends",
      );
      emit(visibilityFailure(handles.length, result.error, h.messageId));
    });
    if (released > 0) emit({ type: "released", count: released });
    return released;
  }
}
