import type { QueueTransport } from "../aws/transport.js";
import type { Logger } from "../logging/logger.js";
import { SQS_BATCH_MAX, batchEntries, batchResults, call, failure, isReceiptHandleGone, type CallResult, type Handle, type SqsOperation } from "./sqs-calls.js";

interface DeleteEntry extends Handle {
  readonly resolve: (deleted: boolean) => void;
}

export interface DeleteBatcherDeps {
  queue: QueueTransport;
  queueUrl: string;
  lingerMs: number;
  log: Logger;
  onDeleted: (count: number) => void;
  onFailed: (entry: Handle, failure: Extract<CallResult, { ok: false }>, operation: SqsOperation) => void;
}

/**
 * Collects deletes for up to `lingerMs` (or 10 entries) into one DeleteMessageBatch. A 200 answer can still list
 * Failed entries: those get one individual retry unless the receipt handle is gone, then are logged as a duplicate
 * risk (the message is redelivered; the output write is idempotent).
 */
export class DeleteBatcher {
  private pending: DeleteEntry[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly sending = new Set<Promise<void>>();

  constructor(private readonly deps: DeleteBatcherDeps) {}

  /** Resolves true once deleted, false once it failed for good. Never rejects. */
  enqueue(handle: Handle): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      this.pending.push({ messageId: handle.messageId, receiptHandle: handle.receiptHandle, resolve });
      if (this.pending.length >= SQS_BATCH_MAX) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.deps.lingerMs);
    });
  }

  /** Sends everything pending now and waits for every delete in flight. */
  async drain(): Promise<void> {
    this.flush();
    while (this.sending.size > 0) {
      await Promise.all(this.sending);
      this.flush();
    }
  }

  private flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, SQS_BATCH_MAX);
      const sent: Promise<void> = this.send(batch).finally(() => this.sending.delete(sent));
      this.sending.add(sent);
    }
  }

  private async send(batch: DeleteEntry[]): Promise<void> {
    const [only] = batch;
    if (batch.length === 1 && only !== undefined) {
      const first = await this.deleteOne(only);
      const result = first.ok || isReceiptHandleGone(first.code) ? first : await this.deleteOne(only);
      await this.finish(only, result, "DeleteMessage");
      return;
    }
    let results: CallResult[];
    try {
      const failed = await this.deps.queue.deleteMessageBatch(this.deps.queueUrl, batchEntries(batch));
      results = batchResults(batch.length, failed);
    } catch (err) {
      const failed = failure(err);
      results = batch.map(() => failed);
    }
    let deleted = 0;
    const retries: Promise<void>[] = [];
    batch.forEach((entry, i) => {
      const result = results[i] ?? { ok: true };
      if (result.ok) {
        deleted += 1;
        entry.resolve(true);
      } else if (isReceiptHandleGone(result.code)) {
        this.fail(entry, result, "DeleteMessageBatch");
      } else {
        this.deps.log.debug(
          { messageId: entry.messageId, code: result.code },
          "batch delete entry failed; retrying it alone",
        );
        retries.push(this.deleteOne(entry).then((retry) => this.finish(entry, retry, "DeleteMessage")));
      }
    });
    if (deleted > 0) this.deps.onDeleted(deleted);
    await Promise.all(retries);
  }

  private deleteOne(entry: DeleteEntry): Promise<CallResult> {
    const { queue, queueUrl } = this.deps;
    return call(() => queue.deleteMessage(queueUrl, entry.receiptHandle));
  }

  private async finish(entry: DeleteEntry, result: CallResult, operation: SqsOperation): Promise<void> {
    if (result.ok) {
      this.deps.onDeleted(1);
      entry.resolve(true);
    } else {
      this.fail(entry, result, operation);
    }
  }

  private fail(entry: DeleteEntry, result: Extract<CallResult, { ok: false }>, operation: SqsOperation): void {
    this.deps.log.warn(
      { messageId: entry.messageId, code: result.code, detail: result.message },
      "delete failed; the message will be redelivered (duplicate risk, not a loss: the output write is idempotent)",
    );
    this.deps.onFailed(entry, result, operation);
    entry.resolve(false);
  }
}
