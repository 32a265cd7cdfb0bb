/**
 * The receive loop: waits until the pipeline has room for a full batch (or a worker would idle), long-polls for that
 * many messages, hands each one on, and backs off after a failed receive. It ends when `stop` aborts: no new receive
 * starts, but a long poll already sent runs on until it answers (or `request` aborts it), and what it returns was
 * never started and goes to `releaseLate`.
 *
 * Why a poll is not cut short: SQS keeps a long poll open after its client has gone and hands it the next messages
 * that become visible, which then stay hidden for the visibility timeout (aws/aws-sdk-js#2350,
 * aws/aws-sdk-java-v2#1395, aws/aws-sdk-go-v2#2068). On stop those would be the very messages the drain hands back.
 */
import type { Message, QueueTransport } from "../aws/transport.js";
import { awsErrorInfo } from "../errors/aws.js";
import type { Logger } from "../logging/logger.js";
import type { DocumentPipeline } from "../pipeline/types.js";
import { receiveBackoffMs } from "./backoff.js";
import type { Emit } from "./events.js";
import { SQS_BATCH_MAX, handleOf, receiveRefusalHint, type Handle } from "./sqs-calls.js";

const SYSTEM_ATTRIBUTES = ["ApproximateReceiveCount", "SentTimestamp"] as const;

const ROOM_WAIT_OVER = Symbol("room wait over");

/** Pause after the pipeline reports room but has none, so a misbehaving pipeline cannot make the loop spin. */
const SPURIOUS_WAKE_DELAY_MS = 100;

export interface ReceiveLoopDeps {
  queue: QueueTransport;
  queueUrl: string;
  pipeline: DocumentPipeline;
  /** Long-poll wait (1..20); also how long the loop waits for room before it reports a "full" cycle. */
  waitTimeSeconds: number;
  /** Requested on ReceiveMessage. */
  visibilityTimeoutSeconds: number;
  log: Logger;
  emit: Emit;
  random: () => number;
  /** Each message received while running. */
  accept: (message: Message) => void;
  /** Messages a long poll returned after `stop` aborted. */
  releaseLate: (handles: Handle[]) => Promise<void>;
  /** Told when a receive is sent, and when it has answered or failed (aborted included). */
  onPoll?: (event: PollEvent) => void;
}

/**
 * A receive sent, answered, or failed; `network`: failed without an HTTP answer (a reset, a timeout) and not by our
 * abort, so SQS may still hold the poll open for up to its wait time. (A failure before anything was sent, such as
 * the credentials provider's, counts too: the consumer then only waits when it need not.)
 */
export type PollEvent = { kind: "sent" } | { kind: "answered" } | { kind: "failed"; network: boolean };

export interface ReceiveLoopSignals {
  /** No further receive: ends the loop once the one in flight has answered or failed. */
  stop: AbortSignal;
  /** Aborts the receive in flight (its messages may then stay hidden for the visibility timeout; see above). */
  request: AbortSignal;
}

/** Runs until `stop` aborts. Never rejects on an SQS failure (those back off); only a bug rejects. */
export async function runReceiveLoop(deps: ReceiveLoopDeps, signals: ReceiveLoopSignals): Promise<void> {
  const { log, emit } = deps;
  const { stop, request } = signals;
  let failures = 0;
  while (!stop.aborted) {
    const room = await waitForRoom(deps, stop);
    if (stop.aborted) break;
    if (room <= 0) {
      emit({ type: "cycle", result: "full", received: 0 });
      continue;
    }
    let messages: Message[];
    deps.onPoll?.({ kind: "sent" });
    try {
      messages = await deps.queue.receiveMessages(
        {
          queueUrl: deps.queueUrl,
          // Never more than the pipeline has room for: held messages are covered by the heartbeat.
          maxMessages: room,
          waitTimeSeconds: deps.waitTimeSeconds,
          visibilityTimeoutSeconds: deps.visibilityTimeoutSeconds,
          systemAttributes: SYSTEM_ATTRIBUTES,
        },
        request,
      );
    } catch (err) {
      const { name: code, status } = awsErrorInfo(err);
      deps.onPoll?.({ kind: "failed", network: status === undefined && !request.aborted });
      if (stop.aborted) break;
      failures += 1;
      const retryInMs = receiveBackoffMs(failures, deps.random);
      const fix = receiveRefusalHint(code);
      const fields = { err, code, status, consecutiveFailures: failures, retryInMs };
      // Refused for good: an error that says what to change (the daemon keeps trying: a policy may be fixed live).
      if (fix !== undefined) log.error({ ...fields, fix }, `ReceiveMessage refused: ${fix}; retrying with backoff`);
      else log.warn(fields, "ReceiveMessage failed; backing off");
      emit({ type: "error", operation: "ReceiveMessage", error: err, messageIds: [] });
      await abortableDelay(retryInMs, stop);
      if (!stop.aborted) emit({ type: "cycle", result: "receive-failed", received: 0 });
      continue;
    }
    deps.onPoll?.({ kind: "answered" });
    failures = 0;
    if (stop.aborted) {
      // The long poll answered after stop() began: these were never started, so hand them straight back.
      await deps.releaseLate(messages.flatMap((m) => handleOf(m) ?? []));
      break;
    }
    for (const message of messages) deps.accept(message);
    emit({ type: "cycle", result: "received", received: messages.length });
  }
}

/**
 * How many messages to receive, once the pipeline has room for a full batch (or a worker would otherwise idle);
 * 0 after waitTimeSeconds without such room (so the loop still reports a cycle while busy), or when `stop` aborts.
 */
async function waitForRoom(deps: ReceiveLoopDeps, stop: AbortSignal): Promise<number> {
  const { pipeline } = deps;
  const batch = Math.min(SQS_BATCH_MAX, pipeline.capacity);
  const now = receiveSize(pipeline.freeSlots(), pipeline.idleWorkers(), batch);
  if (now > 0) return now;
  const wake = new AbortController();
  // A reason of our own: abort() without one builds a DOMException (with its stack) on every wait.
  const onAbort = (): void => wake.abort(ROOM_WAIT_OVER);
  stop.addEventListener("abort", onAbort, { once: true });
  const timer = setTimeout(onAbort, deps.waitTimeSeconds * 1000);
  try {
    await pipeline.waitForRoom(wake.signal, batch);
    const after = receiveSize(pipeline.freeSlots(), pipeline.idleWorkers(), batch);
    // A wake-up without room (not per the contract) must not turn the loop into a busy spin.
    if (after <= 0 && !wake.signal.aborted) await abortableDelay(SPURIOUS_WAKE_DELAY_MS, wake.signal);
    return after;
  } finally {
    clearTimeout(timer);
    stop.removeEventListener("abort", onAbort);
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
