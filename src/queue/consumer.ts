/**
 * The SQS consumer: receives full batches as the pipeline's room allows (running plus a few waiting for a slot), keeps
 * held messages invisible with a visibility heartbeat (hard-capped from when processing starts), deletes acknowledged
 * messages in batches, backs off failed ones by their receive count, and on stop aborts the long poll, releases the
 * messages that never started at once, drains the rest, and releases what it could not finish.
 *
 * SQS calls used, all inside the role's policy: ReceiveMessage, DeleteMessage(Batch), ChangeMessageVisibility(Batch).
 */
import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  ReceiveMessageCommand,
  type Message,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { DocumentRef } from "../domain/document.js";
import { awsErrorInfo } from "../errors/aws.js";
import { DocumentError, OutcomeCode } from "../errors/document.js";
import { errorMessage } from "../errors/message.js";
import type { Logger } from "../observability/logger.js";
import { isAcknowledgeable, type Outcome } from "../pipeline/outcome.js";
import type { DocumentPipeline } from "../pipeline/types.js";
import { failedMessageVisibilitySeconds, heartbeatIntervalMs, parseReceiveCount, receiveBackoffMs } from "./backoff.js";
import { DeleteBatcher } from "./delete-batcher.js";
import { failureFields, ignoredFields } from "./log-fields.js";
import type { ParsedNotification } from "./records.js";
import {
  SQS_BATCH_MAX,
  batchResults,
  call,
  chunks,
  failure,
  handleOf,
  isReceiptHandleGone,
  type CallResult,
  type Handle,
  type SqsOperation,
} from "./sqs-calls.js";

export { isReceiptHandleGone, type SqsOperation } from "./sqs-calls.js";

/** Messages whose extension falls due within this window of a heartbeat tick share one batch call. */
const HEARTBEAT_COALESCE_MS = 1_000;
/** Pause after the pipeline reports room but has none, so a misbehaving pipeline cannot make the loop spin. */
const SPURIOUS_WAKE_DELAY_MS = 100;
/** After a failed (non-fatal) extension, try again after at most this long rather than a full interval. */
const HEARTBEAT_RETRY_MS = 5_000;
/**
 * How long an acknowledged message waits for nine others to share its DeleteMessageBatch. Long enough to fill
 * batches at tens of documents per second; short against any visibility timeout (>= 10 s, at least half of it left when
 * a message settles), so waiting adds no redelivery risk beyond a crash in that window (the output is idempotent).
 */
export const DEFAULT_DELETE_LINGER_MS = 500;
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;
/** At the drain deadline, how long aborted documents get to settle before their messages are released anyway. */
export const DEFAULT_ABORT_GRACE_MS = 2_000;

export interface ConsumerOptions {
  sqs: SQSClient;
  queueUrl: string;
  pipeline: DocumentPipeline;
  /** The notification parser (pure); injected so the consumer does not depend on its options. */
  parse: (body: string) => ParsedNotification;
  log: Logger;
  /** Requested on ReceiveMessage, and the value each heartbeat extends to. */
  visibilityTimeoutSeconds: number;
  /** Heartbeat hard cap per message, counted from when its first document starts; then its documents are aborted. */
  maxProcessingSeconds: number;
  /** Long-poll wait (1..20). */
  waitTimeSeconds: number;
  /** How long a delete waits for others to share its DeleteMessageBatch. Default 500 ms. */
  deleteBatchLingerMs?: number;
  /** At the drain deadline, how long aborted documents get to settle before release. Default 2,000 ms. */
  abortGraceMs?: number;
  /** Milliseconds clock; defaults to Date.now. */
  clock?: () => number;
  /** Source of jitter in [0, 1); defaults to Math.random. */
  random?: () => number;
  /** Observability hook (watchdog, counters). Called synchronously; a throwing listener is logged, not propagated. */
  onEvent?: (event: ConsumerEvent) => void;
}


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
  | { type: "error"; operation: SqsOperation; error: unknown; messageIds: string[] };

export interface ConsumerStats {
  received: number;
  deleted: number;
  returned: number;
  released: number;
  malformed: number;
  extended: number;
  receiveErrors: number;
  /** Deletes that failed for good: the message will be redelivered (duplicate risk, not a loss). */
  deleteFailures: number;
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

type ConsumerState =
  | { kind: "created" }
  | { kind: "running"; poll: AbortController; loop: Promise<void> }
  | { kind: "stopping"; result: Promise<StopResult> }
  | { kind: "stopped"; result: Promise<StopResult> };

type Heartbeat =
  /** capAt: infinite while the message waits for a slot, then its start + maxProcessingSeconds. */
  | { kind: "active"; nextAt: number; capAt: number }
  | { kind: "off"; reason: "settled" | "cap" | "handle-invalid" | "abandoned" };

/** A message whose documents are in the pipeline. */
interface Tracked {
  readonly messageId: string;
  readonly receiptHandle: string;
  readonly receiveCount: number;
  readonly receivedAt: number;
  readonly controller: AbortController;
  /** running: documents in the pipeline; settling: outcomes known, acknowledging; abandoned: released by stop. */
  phase: "running" | "settling" | "done" | "abandoned";
  /** Whether any of its documents left the wait for a slot (only unstarted messages are released at once on stop). */
  started: boolean;
  heartbeat: Heartbeat;
  abortCause: "cap" | "shutdown" | undefined;
  /** The extension call in flight for this message, awaited before the final delete or visibility change. */
  pendingExtension: Promise<void> | undefined;
}


export class Consumer {
  private state: ConsumerState = { kind: "created" };
  private readonly inFlight = new Map<Tracked, Promise<void>>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly deletes: DeleteBatcher;
  private readonly counters: Omit<ConsumerStats, "inFlight"> & { settled: number } = {
    received: 0,
    deleted: 0,
    returned: 0,
    released: 0,
    malformed: 0,
    extended: 0,
    receiveErrors: 0,
    deleteFailures: 0,
    settled: 0,
  };
  private readonly clock: () => number;
  private readonly random: () => number;

  constructor(private readonly options: ConsumerOptions) {
    this.clock = options.clock ?? Date.now;
    this.random = options.random ?? Math.random;
    this.deletes = new DeleteBatcher({
      sqs: options.sqs,
      queueUrl: options.queueUrl,
      lingerMs: options.deleteBatchLingerMs ?? DEFAULT_DELETE_LINGER_MS,
      log: options.log,
      onDeleted: (count) => {
        this.counters.deleted += count;
        this.emit({ type: "deleted", count });
      },
      onFailed: (entry, failure, operation) => {
        this.counters.deleteFailures += 1;
        this.emit({ type: "error", operation, error: failure.error, messageIds: [entry.messageId] });
      },
    });
  }

  /** Runs the receive loop. Resolves when the loop has ended after stop(); rejects only on a bug. */
  start(): Promise<void> {
    switch (this.state.kind) {
      case "created": {
        const poll = new AbortController();
        const loop = this.runLoop(poll.signal);
        this.state = { kind: "running", poll, loop };
        return loop;
      }
      case "running":
        return this.state.loop;
      case "stopping":
      case "stopped":
        return Promise.reject(new Error("consumer was stopped; create a new one to consume again"));
    }
  }

  /**
   * Stops receiving at once (aborting the long poll), waits up to drainTimeoutMs for in-flight messages (heartbeats
   * keep running), then aborts what is left and releases those messages with visibility 0. Idempotent.
   */
  stop(opts?: { drainTimeoutMs?: number }): Promise<StopResult> {
    switch (this.state.kind) {
      case "created": {
        const result = Promise.resolve<StopResult>({ completed: 0, released: 0, timedOut: false });
        this.state = { kind: "stopped", result };
        return result;
      }
      case "running": {
        const result: Promise<StopResult> = this.shutdown(
          this.state,
          opts?.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS,
        ).finally(() => {
          this.state = { kind: "stopped", result };
        });
        this.state = { kind: "stopping", result };
        return result;
      }
      case "stopping":
      case "stopped":
        return this.state.result;
    }
  }

  stats(): ConsumerStats {
    const { settled: _settled, ...rest } = this.counters;
    return { ...rest, inFlight: this.inFlight.size };
  }

  // ---- receive loop ----

  private async runLoop(poll: AbortSignal): Promise<void> {
    let failures = 0;
    while (!poll.aborted) {
      const room = await this.waitForRoom(poll);
      if (poll.aborted) break;
      if (room <= 0) {
        this.emit({ type: "cycle", result: "full", received: 0 });
        continue;
      }
      let messages: Message[];
      try {
        const out = await this.options.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: this.options.queueUrl,
            // Never more than the pipeline has room for: held messages are covered by the heartbeat.
            MaxNumberOfMessages: room,
            WaitTimeSeconds: this.options.waitTimeSeconds,
            VisibilityTimeout: this.options.visibilityTimeoutSeconds,
            MessageSystemAttributeNames: ["ApproximateReceiveCount", "SentTimestamp"],
          }),
          { abortSignal: poll },
        );
        messages = out.Messages ?? [];
      } catch (err) {
        if (poll.aborted) break;
        failures += 1;
        this.counters.receiveErrors += 1;
        const retryInMs = receiveBackoffMs(failures, this.random);
        const { name: code, status } = awsErrorInfo(err);
        this.options.log.warn(
          { err, code, status, consecutiveFailures: failures, retryInMs },
          "ReceiveMessage failed; backing off",
        );
        this.emit({ type: "error", operation: "ReceiveMessage", error: err, messageIds: [] });
        await abortableDelay(retryInMs, poll);
        if (!poll.aborted) this.emit({ type: "cycle", result: "receive-failed", received: 0 });
        continue;
      }
      failures = 0;
      if (poll.aborted) {
        // The long poll answered as stop() began: these were never started, so hand them straight back.
        await this.releaseNow(messages.flatMap((m) => handleOf(m) ?? []), "received while stopping");
        break;
      }
      for (const message of messages) this.accept(message);
      this.emit({ type: "cycle", result: "received", received: messages.length });
    }
  }

  /**
   * How many messages to receive, once the pipeline has room for a full batch (or a worker would otherwise idle);
   * 0 after waitTimeSeconds without such room (so the loop still reports a cycle while busy), or when `poll` aborts.
   */
  private async waitForRoom(poll: AbortSignal): Promise<number> {
    const { pipeline } = this.options;
    const batch = Math.min(SQS_BATCH_MAX, pipeline.capacity);
    const now = receiveSize(pipeline.freeSlots(), pipeline.idleWorkers(), batch);
    if (now > 0) return now;
    const wake = new AbortController();
    const onAbort = (): void => wake.abort();
    poll.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(onAbort, this.options.waitTimeSeconds * 1000);
    try {
      await pipeline.waitForRoom(wake.signal, batch);
      const after = receiveSize(pipeline.freeSlots(), pipeline.idleWorkers(), batch);
      // A wake-up without room (not per the contract) must not turn the loop into a busy spin.
      if (after <= 0 && !wake.signal.aborted) await abortableDelay(SPURIOUS_WAKE_DELAY_MS, wake.signal);
      return after;
    } finally {
      clearTimeout(timer);
      poll.removeEventListener("abort", onAbort);
    }
  }

  // ---- per message ----

  private accept(message: Message): void {
    const { log } = this.options;
    const handle = handleOf(message);
    if (handle === undefined) {
      log.error({ messageId: message.MessageId }, "message without MessageId or ReceiptHandle; skipped");
      return;
    }
    const { messageId } = handle;
    const receiveCount = parseReceiveCount(message.Attributes?.ApproximateReceiveCount);
    this.counters.received += 1;

    let parsed: ParsedNotification;
    try {
      parsed = this.options.parse(message.Body ?? "");
    } catch (err) {
      // A parser bug: treat like a malformed body (never delete), but say it loudly.
      this.counters.malformed += 1;
      log.error(
        { messageId, receiveCount, outcome: "malformed", err },
        "notification parser threw; message left for the redrive policy",
      );
      this.emit({ type: "malformed", messageId, reason: "parser-error" });
      return;
    }

    switch (parsed.kind) {
      case "malformed":
        // Not deleted and its visibility left alone: retrying cannot help, a shorter visibility would spin on a
        // queue without redrive, and the redrive policy moves it to the DLQ after maxReceiveCount receives.
        this.counters.malformed += 1;
        log.warn(
          { messageId, receiveCount, outcome: "malformed", reason: parsed.reason, detail: parsed.detail },
          "malformed notification; left for the redrive policy",
        );
        this.emit({ type: "malformed", messageId, reason: parsed.reason });
        return;
      case "test-event":
        log.info({ messageId, receiveCount, outcome: "test-event" }, "s3:TestEvent acknowledged");
        void this.deletes.enqueue(handle);
        return;
      case "ignored":
        log.info(
          { messageId, receiveCount, outcome: "ignored", ...ignoredFields(parsed.ignored) },
          "nothing to process; acknowledged",
        );
        void this.deletes.enqueue(handle);
        return;
      case "documents":
        if (parsed.ignored.length > 0) {
          log.info({ messageId, receiveCount, ...ignoredFields(parsed.ignored) }, "some records of the message are skipped");
        }
        if (parsed.documents.length === 0) {
          log.info({ messageId, receiveCount, outcome: "ignored" }, "nothing to process; acknowledged");
          void this.deletes.enqueue(handle);
          return;
        }
        this.track(handle, receiveCount, parsed.documents);
        return;
    }
  }

  private track(handle: Handle, receiveCount: number, documents: DocumentRef[]): void {
    const receivedAt = this.clock();
    const tracked: Tracked = {
      ...handle,
      receiveCount,
      receivedAt,
      controller: new AbortController(),
      phase: "running",
      started: false,
      heartbeat: {
        kind: "active",
        nextAt: receivedAt + heartbeatIntervalMs(this.options.visibilityTimeoutSeconds),
        // No cap while waiting for a slot (the documents ahead are capped themselves): set when one starts.
        capAt: Number.POSITIVE_INFINITY,
      },
      abortCause: undefined,
      pendingExtension: undefined,
    };
    const done = this.runDocuments(tracked, documents)
      .catch((err: unknown) => {
        this.options.log.error({ err, messageId: tracked.messageId }, "bug: message handling failed");
      })
      .finally(() => {
        this.inFlight.delete(tracked);
        this.armHeartbeat();
      });
    this.inFlight.set(tracked, done);
    this.armHeartbeat();
  }

  private async runDocuments(tracked: Tracked, documents: DocumentRef[]): Promise<void> {
    const ctx = {
      messageId: tracked.messageId,
      receiveCount: tracked.receiveCount,
      signal: tracked.controller.signal,
      onStart: () => this.started(tracked),
    };
    const outcomes = await Promise.all(
      documents.map(async (doc): Promise<Outcome> => {
        try {
          return await this.options.pipeline.submit(doc, ctx);
        } catch (err) {
          // The pipeline promises never to reject; if it does, keep the message (retry), never lose it.
          return { status: "retry", code: OutcomeCode.internal, reason: `pipeline rejected: ${errorMessage(err)}` };
        }
      }),
    );
    if (tracked.phase === "abandoned") {
      this.options.log.debug({ messageId: tracked.messageId }, "documents settled after the message was released");
      return;
    }
    tracked.phase = "settling";
    tracked.heartbeat = { kind: "off", reason: "settled" };
    // A heartbeat landing after the delete or the backoff would fail or undo it.
    await tracked.pendingExtension;

    const { log } = this.options;
    const base = {
      messageId: tracked.messageId,
      receiveCount: tracked.receiveCount,
      documents: documents.length,
      durationMs: this.clock() - tracked.receivedAt,
    };
    if (outcomes.every(isAcknowledgeable)) {
      // The "document" lines already say each outcome: at info this would be a second line per document.
      log.debug({ ...base, outcome: "done" }, "message processed");
      await this.deletes.enqueue(tracked);
      this.counters.settled += 1;
      tracked.phase = "done";
      return;
    }

    const failures = outcomes.flatMap((o, i) =>
      o.status === "retry" || o.status === "rejected"
        ? [{ key: documents[i]?.key, status: o.status, code: o.code, reason: o.reason }]
        : [],
    );
    const status = failures.some((f) => f.status === "retry") ? "retry" : "rejected";
    if (tracked.abortCause === "shutdown") {
      log.info({ ...base, outcome: "released", ...failureFields(failures) }, "message aborted by shutdown; released");
      await this.releaseNow([tracked], "aborted by shutdown");
      tracked.phase = "done";
      return;
    }
    const visibilityTimeout = failedMessageVisibilitySeconds(failures, tracked.receiveCount, this.random);
    log.warn(
      { ...base, outcome: status, ...failureFields(failures), visibilityTimeout },
      visibilityTimeout === 0
        ? "message can never be processed as is; made visible at once for the redrive policy (DLQ)"
        : "message not acknowledged; backing off",
    );
    const [result] = await this.changeVisibility([tracked], visibilityTimeout);
    if (result !== undefined && !result.ok) {
      log.warn(
        { messageId: tracked.messageId, code: result.code, detail: result.message },
        "could not set the backoff; the message returns when its current visibility ends",
      );
      this.emit({
        type: "error",
        operation: "ChangeMessageVisibility",
        error: result.error,
        messageIds: [tracked.messageId],
      });
    }
    this.counters.returned += 1;
    this.counters.settled += 1;
    this.emit({ type: "returned", messageId: tracked.messageId, status, visibilityTimeout });
    tracked.phase = "done";
  }

  /** The first document of the message starts: the processing cap counts from now, not from the wait for a slot. */
  private started(tracked: Tracked): void {
    if (tracked.started) return;
    tracked.started = true;
    const hb = tracked.heartbeat;
    if (hb.kind !== "active") return;
    hb.capAt = this.clock() + this.options.maxProcessingSeconds * 1000;
    this.armHeartbeat();
  }

  // ---- heartbeat ----

  /** One timer for all messages, set to the earliest extension or cap; re-armed after every change. */
  private armHeartbeat(): void {
    if (this.heartbeatTimer !== undefined) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    let next = Number.POSITIVE_INFINITY;
    for (const tracked of this.inFlight.keys()) {
      const hb = tracked.heartbeat;
      if (hb.kind === "active") next = Math.min(next, hb.nextAt, hb.capAt);
    }
    if (next === Number.POSITIVE_INFINITY) return;
    this.heartbeatTimer = setTimeout(() => this.heartbeatTick(), Math.max(0, next - this.clock()));
  }

  private heartbeatTick(): void {
    this.heartbeatTimer = undefined;
    const now = this.clock();
    const interval = heartbeatIntervalMs(this.options.visibilityTimeoutSeconds);
    const due: Tracked[] = [];
    for (const tracked of this.inFlight.keys()) {
      const hb = tracked.heartbeat;
      if (hb.kind !== "active") continue;
      if (now >= hb.capAt) {
        this.capReached(tracked);
      } else if (now + HEARTBEAT_COALESCE_MS >= hb.nextAt) {
        hb.nextAt = now + interval;
        due.push(tracked);
      }
    }
    for (const chunk of chunks(due, SQS_BATCH_MAX)) {
      const pending = this.extend(chunk).catch((err: unknown) => {
        this.options.log.error({ err }, "bug: visibility extension handling failed");
      });
      for (const tracked of chunk) tracked.pendingExtension = pending;
    }
    this.armHeartbeat();
  }

  private capReached(tracked: Tracked): void {
    tracked.heartbeat = { kind: "off", reason: "cap" };
    tracked.abortCause ??= "cap";
    this.options.log.warn(
      {
        messageId: tracked.messageId,
        receiveCount: tracked.receiveCount,
        maxProcessingSeconds: this.options.maxProcessingSeconds,
      },
      "processing cap reached; aborting the message's documents and no longer extending its visibility",
    );
    tracked.controller.abort(
      new DocumentError(OutcomeCode.aborted, `processing exceeded ${this.options.maxProcessingSeconds} s`),
    );
    this.emit({ type: "capped", messageId: tracked.messageId });
  }

  private async extend(chunk: Tracked[]): Promise<void> {
    const results = await this.changeVisibility(chunk, this.options.visibilityTimeoutSeconds);
    let extended = 0;
    chunk.forEach((tracked, i) => {
      const result = results[i];
      if (result === undefined || result.ok) {
        extended += 1;
        return;
      }
      const hb = tracked.heartbeat;
      // Settled (or released) meanwhile: the outcome path owns the message now.
      if (tracked.phase !== "running" || hb.kind !== "active") return;
      const fields = {
        messageId: tracked.messageId,
        receiveCount: tracked.receiveCount,
        code: result.code,
        detail: result.message,
      };
      if (isReceiptHandleGone(result.code)) {
        tracked.heartbeat = { kind: "off", reason: "handle-invalid" };
        this.options.log.warn(
          fields,
          "receipt handle no longer valid; stopped extending visibility: the message may be redelivered " +
            "while it runs (duplicate risk; the output write is idempotent)",
        );
      } else {
        hb.nextAt = Math.min(hb.nextAt, this.clock() + HEARTBEAT_RETRY_MS);
        this.options.log.warn(fields, "visibility extension failed; retrying soon");
      }
      this.emit({
        type: "error",
        operation: chunk.length === 1 ? "ChangeMessageVisibility" : "ChangeMessageVisibilityBatch",
        error: result.error,
        messageIds: [tracked.messageId],
      });
    });
    if (extended > 0) {
      this.counters.extended += extended;
      this.emit({ type: "extended", count: extended });
    }
    this.armHeartbeat();
  }

  // ---- visibility calls ----

  /** ChangeMessageVisibility for one, ChangeMessageVisibilityBatch for several; a result per handle; never rejects. */
  private async changeVisibility(handles: readonly Handle[], seconds: number): Promise<CallResult[]> {
    const { sqs, queueUrl } = this.options;
    const results: CallResult[] = [];
    for (const chunk of chunks(handles, SQS_BATCH_MAX)) {
      const [only] = chunk;
      if (chunk.length === 1 && only !== undefined) {
        results.push(
          await call(() =>
            sqs.send(
              new ChangeMessageVisibilityCommand({
                QueueUrl: queueUrl,
                ReceiptHandle: only.receiptHandle,
                VisibilityTimeout: seconds,
              }),
            ),
          ),
        );
        continue;
      }
      try {
        const out = await sqs.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: queueUrl,
            // Index ids: the same message can appear twice (duplicate delivery) and ids must be distinct.
            Entries: chunk.map((h, i) => ({ Id: `m${i}`, ReceiptHandle: h.receiptHandle, VisibilityTimeout: seconds })),
          }),
        );
        results.push(...batchResults(chunk.length, out.Failed));
      } catch (err) {
        const failed = failure(err);
        results.push(...chunk.map(() => failed));
      }
    }
    return results;
  }

  /** Visibility 0: the messages are visible to any consumer at once. */
  private async releaseNow(handles: readonly Handle[], why: string): Promise<void> {
    if (handles.length === 0) return;
    const results = await this.changeVisibility(handles, 0);
    let released = 0;
    handles.forEach((h, i) => {
      const result = results[i];
      if (result === undefined || result.ok) {
        released += 1;
        return;
      }
      this.options.log.warn(
        { messageId: h.messageId, code: result.code, detail: result.message, why },
        "could not release the message; it returns when its current visibility ends",
      );
      this.emit({
        type: "error",
        operation: handles.length === 1 ? "ChangeMessageVisibility" : "ChangeMessageVisibilityBatch",
        error: result.error,
        messageIds: [h.messageId],
      });
    });
    if (released > 0) {
      this.counters.released += released;
      this.emit({ type: "released", count: released });
    }
  }

  // ---- stop ----

  private async shutdown(
    running: { poll: AbortController; loop: Promise<void> },
    drainTimeoutMs: number,
  ): Promise<StopResult> {
    const { log } = this.options;
    const start = { settled: this.counters.settled, released: this.counters.released };
    const deadline = this.clock() + Math.max(0, drainTimeoutMs);
    running.poll.abort();
    // A loop that failed reported it through start(); stopping still drains what it received.
    await running.loop.catch(() => undefined);

    const unstarted = await this.releaseUnstarted();
    log.info(
      { inFlight: this.inFlight.size, releasedUnstarted: unstarted, drainTimeoutMs },
      "consumer stopping: receiving stopped, draining",
    );
    let timedOut = false;
    if (!(await this.settleWithin(Math.max(0, deadline - this.clock())))) {
      timedOut = true;
      const unfinished = this.trackedIn("running");
      log.warn({ messages: unfinished.length }, "drain deadline reached; aborting in-flight documents");
      for (const tracked of unfinished) {
        tracked.abortCause ??= "shutdown";
        tracked.controller.abort(new DocumentError(OutcomeCode.aborted, "shutting down"));
      }
      await this.settleWithin(this.options.abortGraceMs ?? DEFAULT_ABORT_GRACE_MS);
      const stuck = this.trackedIn("running");
      for (const tracked of stuck) {
        tracked.phase = "abandoned";
        tracked.heartbeat = { kind: "off", reason: "abandoned" };
        this.inFlight.delete(tracked);
      }
      this.armHeartbeat();
      await this.releaseNow(stuck, "still running at the drain deadline");
      // Whatever is acknowledging still finishes; abandoned ones are no longer in the map.
      await Promise.all(this.inFlight.values());
    }
    await this.deletes.drain();
    if (this.heartbeatTimer !== undefined) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;

    const result: StopResult = {
      completed: this.counters.settled - start.settled,
      released: this.counters.released - start.released,
      timedOut,
    };
    log.info({ ...result }, "consumer stopped");
    return result;
  }

  /**
   * Messages still waiting for a slot go back to the queue at once (visibility 0, in batches): another consumer can
   * start them now rather than after the drain. Their documents are aborted before they start. Returns how many.
   */
  private async releaseUnstarted(): Promise<number> {
    const waiting = this.trackedIn("running").filter((t) => !t.started);
    if (waiting.length === 0) return 0;
    for (const tracked of waiting) {
      tracked.phase = "abandoned";
      tracked.heartbeat = { kind: "off", reason: "abandoned" };
      tracked.abortCause = "shutdown";
      this.inFlight.delete(tracked);
      tracked.controller.abort(new DocumentError(OutcomeCode.aborted, "shutting down before it started"));
    }
    this.armHeartbeat();
    // An extension landing after the release would hide the message again.
    await Promise.all(waiting.flatMap((t) => t.pendingExtension ?? []));
    await this.releaseNow(waiting, "not started before shutdown");
    return waiting.length;
  }

  /** Whether every tracked message settled within `ms`. */
  private async settleWithin(ms: number): Promise<boolean> {
    if (this.inFlight.size === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    try {
      return await Promise.race([Promise.all(this.inFlight.values()).then(() => true), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private trackedIn(phase: Tracked["phase"]): Tracked[] {
    return [...this.inFlight.keys()].filter((t) => t.phase === phase);
  }

  private emit(event: ConsumerEvent): void {
    const listener = this.options.onEvent;
    if (listener === undefined) return;
    try {
      listener(event);
    } catch (err) {
      this.options.log.error({ err, event: event.type }, "consumer event listener threw");
    }
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Messages to ask for: a full batch (`batch`, at most 10) once there is room for one, so each receive is worth its
 * request; fewer only when a worker would otherwise idle; 0 to wait.
 */
export function receiveSize(free: number, idleWorkers: number, batch: number): number {
  if (free <= 0) return 0;
  if (free >= batch || idleWorkers > 0) return Math.min(SQS_BATCH_MAX, free);
  return 0;
}
