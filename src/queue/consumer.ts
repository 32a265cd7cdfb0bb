/**
 * The SQS consumer: composes the receive loop, the parse dispatch, the messages in flight (with their heartbeat and
 * acknowledgement), the delete batcher and the drain, and owns their lifecycle: start once, and a stop that ends
 * receiving (letting a long poll in flight answer while messages are held: see receive-loop.ts), then drains
 * (drain.ts) and reports what the stop did.
 *
 * SQS calls used, all inside the role's policy: ReceiveMessage, DeleteMessage(Batch), ChangeMessageVisibility(Batch).
 */
import type { QueueTransport } from "../aws/transport.js";
import type { Logger } from "../logging/logger.js";
import type { DocumentPipeline } from "../pipeline/types.js";
import { DeleteBatcher } from "./delete-batcher.js";
import { dispatch } from "./dispatch.js";
import { drain } from "./drain.js";
import type { ConsumerEvent, ConsumerStats, StopResult } from "./events.js";
import { Heartbeat } from "./heartbeat.js";
import { InFlight } from "./in-flight.js";
import { runReceiveLoop, type PollEvent } from "./receive-loop.js";
import type { ParsedNotification } from "./records.js";
import { Visibility } from "./visibility.js";

export type { ConsumerEvent, ConsumerStats, StopResult } from "./events.js";
export { receiveSize } from "./receive-loop.js";
export { isReceiptHandleGone, type SqsOperation } from "./sqs-calls.js";

/**
 * How long an acknowledged message waits for nine others to share its DeleteMessageBatch. Long enough to fill
 * batches at tens of documents per second; short against any visibility timeout (>= 10 s, at least half of it left when
 * a message settles), so waiting adds no redelivery risk beyond a crash in that window (the output is idempotent).
 */
export const DEFAULT_DELETE_LINGER_MS = 500;
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;
/** At the drain deadline, how long aborted documents get to settle before their messages are released anyway. */
export const DEFAULT_ABORT_GRACE_MS = 2_000;
/**
 * On stop, how long past its wait time a long poll in flight gets to answer before it is aborted anyway (a poll that
 * hangs, e.g. a stalled connection, must not hold the stop).
 */
export const LATE_POLL_GRACE_MS = 5_000;

export interface ConsumerOptions {
  /** The SQS calls (the configured transport). */
  queue: QueueTransport;
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
  /**
   * Observability hook (watchdog, Metrics: the one set of counters). Called synchronously; a throwing listener is
   * logged, not propagated.
   */
  onEvent?: (event: ConsumerEvent) => void;
}

/** stop: no further receive; request: abort the receive in flight. */
interface ReceiveControl {
  stop: AbortController;
  request: AbortController;
}

type ConsumerState =
  | { kind: "created" }
  | { kind: "running"; receiving: ReceiveControl; loop: Promise<void> }
  | { kind: "stopping"; result: Promise<StopResult> }
  | { kind: "stopped"; result: Promise<StopResult> };

export class Consumer {
  private state: ConsumerState = { kind: "created" };
  private readonly deletes: DeleteBatcher;
  private readonly visibility: Visibility;
  private readonly heartbeat: Heartbeat;
  private readonly inFlight: InFlight;
  /** What this stop has done so far, for its StopResult; undefined until stop() begins. */
  private drainTally: { completed: number; released: number } | undefined;
  /** The last ReceiveMessage: in flight ("sent"), or how it ended. */
  private poll: PollEvent | undefined;
  /** When the last ReceiveMessage was sent. */
  private pollSentAt = Number.NEGATIVE_INFINITY;
  /** When a ReceiveMessage that failed without an HTTP answer was sent: SQS may hold it for its wait time from then. */
  private lostPollSentAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: ConsumerOptions) {
    const { queue, queueUrl, log } = options;
    const clock = options.clock ?? Date.now;
    const emit = (event: ConsumerEvent): void => this.emit(event);
    this.deletes = new DeleteBatcher({
      queue,
      queueUrl,
      lingerMs: options.deleteBatchLingerMs ?? DEFAULT_DELETE_LINGER_MS,
      log,
      onDeleted: (count) => emit({ type: "deleted", count }),
      onFailed: (entry, failure, operation) =>
        emit({ type: "error", operation, error: failure.error, messageIds: [entry.messageId] }),
    });
    this.visibility = new Visibility({ queue, queueUrl, log, emit });
    this.heartbeat = new Heartbeat({
      visibility: this.visibility,
      log,
      emit,
      clock,
      visibilityTimeoutSeconds: options.visibilityTimeoutSeconds,
      maxProcessingSeconds: options.maxProcessingSeconds,
    });
    this.inFlight = new InFlight({
      pipeline: options.pipeline,
      heartbeat: this.heartbeat,
      visibility: this.visibility,
      deletes: this.deletes,
      log,
      emit,
      clock,
      random: options.random ?? Math.random,
      maxProcessingSeconds: options.maxProcessingSeconds,
      onSettled: () => {
        if (this.drainTally !== undefined) this.drainTally.completed += 1;
      },
    });
  }

  /** Runs the receive loop. Resolves when the loop has ended after stop(); rejects only on a bug. */
  start(): Promise<void> {
    switch (this.state.kind) {
      case "created": {
        const receiving = { stop: new AbortController(), request: new AbortController() };
        const loop = this.runLoop(receiving);
        this.state = { kind: "running", receiving, loop };
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
   * Stops receiving at once, waits up to drainTimeoutMs for in-flight messages (heartbeats keep running), then aborts
   * what is left and releases those messages with visibility 0. Idempotent. Messages not yet started are aborted at
   * once and released once no poll of ours can be open at SQS (endReceiving), so that no released message goes to it.
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
    return { inFlight: this.inFlight.size };
  }

  private runLoop(receiving: ReceiveControl): Promise<void> {
    const { options } = this;
    return runReceiveLoop(
      {
        queue: options.queue,
        queueUrl: options.queueUrl,
        pipeline: options.pipeline,
        waitTimeSeconds: options.waitTimeSeconds,
        visibilityTimeoutSeconds: options.visibilityTimeoutSeconds,
        log: options.log,
        emit: (event) => this.emit(event),
        random: options.random ?? Math.random,
        accept: (message) => {
          const accepted = dispatch(message, {
            parse: options.parse,
            log: options.log,
            emit: (event) => this.emit(event),
            deletes: this.deletes,
          });
          if (accepted !== undefined) this.inFlight.track(accepted.handle, accepted.receiveCount, accepted.documents);
        },
        releaseLate: async (handles) => {
          await this.visibility.release(handles, "received while stopping");
        },
        onPoll: (event) => {
          this.poll = event;
          if (event.kind === "sent") this.pollSentAt = (this.options.clock ?? Date.now)();
          else if (event.kind === "failed" && event.network) this.lostPollSentAt = this.pollSentAt;
        },
      },
      { stop: receiving.stop.signal, request: receiving.request.signal },
    );
  }

  private async shutdown(
    running: { receiving: ReceiveControl; loop: Promise<void> },
    drainTimeoutMs: number,
  ): Promise<StopResult> {
    const { log } = this.options;
    const clock = this.options.clock ?? Date.now;
    const tally = (this.drainTally = { completed: 0, released: 0 });
    const deadline = clock() + Math.max(0, drainTimeoutMs);
    const { stop, request } = running.receiving;
    stop.abort();
    // Waiting for a slot: they must not start now. Held (and extended) until no poll of ours can take them back.
    const unstarted = this.inFlight.detach("unstarted", "shutting down before it started");
    await this.endReceiving(running.loop, request, unstarted.length);
    const { timedOut } = await drain(
      {
        inFlight: this.inFlight,
        deletes: this.deletes,
        heartbeat: this.heartbeat,
        log,
        clock,
        abortGraceMs: this.options.abortGraceMs ?? DEFAULT_ABORT_GRACE_MS,
      },
      unstarted,
      deadline,
      drainTimeoutMs,
    );
    const result: StopResult = { ...tally, timedOut };
    log.info({ ...result }, "consumer stopped");
    return result;
  }

  /**
   * Ends the receive loop, and returns once no poll of ours can be open at SQS while there is anything to hand back:
   * SQS keeps a poll whose client has gone and gives it the next visible messages, hidden then for the visibility
   * timeout (receive-loop.ts). Every poll is one attempt (the loop retries, never the transport), so each one we
   * opened either answered, or failed without an answer (then it is open at SQS until its wait time passes, at most),
   * or is in flight. Holding messages with a poll in flight, that poll runs to its answer, and is aborted only at
   * waitTimeSeconds + 5 s after it was sent, when SQS has ended it too. Any wait ends early once nothing is left to hand
   * back (every held message settled, none detached). Holding nothing, the poll is aborted at once.
   */
  private async endReceiving(loop: Promise<void>, request: AbortController, detached: number): Promise<void> {
    const { log, waitTimeSeconds } = this.options;
    const clock = this.options.clock ?? Date.now;
    const openMs = waitTimeSeconds * 1000 + LATE_POLL_GRACE_MS;
    const holding = (): boolean => this.inFlight.size > 0 || detached > 0;
    // Resolves once nothing is left to hand back; never when messages were detached (they are handed back anyway).
    const nothingLeft = detached > 0 ? new Promise<void>(() => undefined) : this.inFlight.settled().catch(() => undefined);
    if (this.poll?.kind !== "sent" || !holding()) {
      request.abort();
    } else {
      log.info(
        { inFlight: this.inFlight.size, unstarted: detached, waitTimeSeconds },
        "consumer stopping: letting the long poll in flight answer before handing messages back",
      );
      const cap = setTimeout(() => request.abort(), Math.max(0, this.pollSentAt + openMs - clock()));
      void nothingLeft.then(() => request.abort());
      try {
        // A loop that failed reported it through start(); stopping still drains what it received.
        await loop.catch(() => undefined);
      } finally {
        clearTimeout(cap);
      }
    }
    await loop.catch(() => undefined);
    // A poll that failed on our side (a reset, a timeout), before the stop or while we waited, may still be open.
    const openUntil = this.lostPollSentAt + openMs;
    if (holding() && clock() < openUntil) {
      log.info(
        { inFlight: this.inFlight.size, unstarted: detached, waitMs: openUntil - clock() },
        "consumer stopping: a long poll failed without an answer and may still be open at SQS; handing back after it ends",
      );
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([nothingLeft, new Promise<void>((resolve) => (timer = setTimeout(resolve, openUntil - clock())))]);
      clearTimeout(timer);
    }
  }

  private emit(event: ConsumerEvent): void {
    if (event.type === "released" && this.drainTally !== undefined) this.drainTally.released += event.count;
    const listener = this.options.onEvent;
    if (listener === undefined) return;
    try {
      listener(event);
    } catch (err) {
      this.options.log.error({ err, event: event.type }, "consumer event listener threw");
    }
  }
}
