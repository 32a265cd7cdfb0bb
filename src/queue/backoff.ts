/**
 * Pure timing rules for the consumer: how long a failed message stays hidden, how long the loop waits after a
 * failed receive, and how often a running message's visibility is extended.
 */
import { OutcomeCode } from "../errors/document.js";

/** First failure hides the message for up to this long. */
export const FAILURE_VISIBILITY_BASE_SECONDS = 10;
/** Cap on a failed message's visibility timeout (SQS allows 43,200; longer only delays the DLQ). */
export const FAILURE_VISIBILITY_MAX_SECONDS = 900;

export const RECEIVE_BACKOFF_BASE_MS = 1_000;
export const RECEIVE_BACKOFF_MAX_MS = 30_000;

/**
 * Visibility timeout (seconds) for a message whose documents did not all succeed ("retry" or "rejected"), from its
 * ApproximateReceiveCount n: ceiling = min(900, 10 * 2^(n-1)), jittered into [ceiling/2, ceiling] so messages that
 * failed together (an outage) do not all come back together.
 *   n=1 -> 5..10 s, n=2 -> 10..20 s, n=3 -> 20..40 s, n=4 -> 40..80 s, ... n>=8 -> 450..900 s.
 * "rejected" uses the same curve rather than 0: a queue without a redrive policy would otherwise redeliver a poison
 * message in a tight loop; with maxReceiveCount 5 the curve still reaches the DLQ within about 2.5 minutes.
 */
export function failureVisibilitySeconds(receiveCount: number, random: () => number = Math.random): number {
  const n = Number.isFinite(receiveCount) && receiveCount >= 1 ? Math.floor(receiveCount) : 1;
  // Exponent bounded so 2^k stays finite for absurd counts.
  const ceiling = Math.min(FAILURE_VISIBILITY_MAX_SECONDS, FAILURE_VISIBILITY_BASE_SECONDS * 2 ** Math.min(n - 1, 30));
  return Math.max(1, Math.round(halfJitter(ceiling, random)));
}

/**
 * Rejections that no redelivery can change and that leave no error record (the object is over maxObjectBytes, or its
 * output key would be over S3's 1,024 bytes): the message is made visible again at once, so the redrive policy
 * moves it to the DLQ after maxReceiveCount quick receives instead of minutes of backoff.
 */
export const RETURNED_AT_ONCE: ReadonlySet<string> = new Set([OutcomeCode.objectTooLarge, OutcomeCode.outputKeyTooLong]);
/**
 * Past this many receives such a message backs off like any other: a queue without a redrive policy (or with a
 * higher maxReceiveCount) would otherwise hand it back in a tight loop.
 */
export const RETURNED_AT_ONCE_MAX_RECEIVES = 10;

/**
 * Visibility timeout (seconds) for a message whose documents did not all succeed: 0 when every failure is a
 * rejection in RETURNED_AT_ONCE (for its first RETURNED_AT_ONCE_MAX_RECEIVES receives), else the backoff curve.
 */
export function failedMessageVisibilitySeconds(
  failures: readonly { status: "retry" | "rejected"; code: string }[],
  receiveCount: number,
  random: () => number = Math.random,
): number {
  const hopeless = failures.length > 0 && failures.every((f) => f.status === "rejected" && RETURNED_AT_ONCE.has(f.code));
  if (hopeless && receiveCount < RETURNED_AT_ONCE_MAX_RECEIVES) return 0;
  return failureVisibilitySeconds(receiveCount, random);
}

/**
 * Delay (ms) before the next ReceiveMessage after `failures` consecutive failed receives (1 on the first failure):
 * ceiling = min(30 s, 1 s * 2^(failures-1)), jittered into [ceiling/2, ceiling]. The caller resets `failures`
 * after a successful receive.
 */
export function receiveBackoffMs(failures: number, random: () => number = Math.random): number {
  const n = Number.isFinite(failures) && failures >= 1 ? Math.floor(failures) : 1;
  const ceiling = Math.min(RECEIVE_BACKOFF_MAX_MS, RECEIVE_BACKOFF_BASE_MS * 2 ** Math.min(n - 1, 30));
  return Math.round(halfJitter(ceiling, random));
}

/** Extend a running message's visibility every half of the timeout, so one lost extension still leaves time. */
export function heartbeatIntervalMs(visibilityTimeoutSeconds: number): number {
  return visibilityTimeoutSeconds * 500;
}

/** ApproximateReceiveCount as a number; 1 when missing or unreadable (the first delivery). */
export function parseReceiveCount(value: string | undefined): number {
  const n = value === undefined ? Number.NaN : Number.parseInt(value, 10);
  return Number.isFinite(n) && n >= 1 ? n : 1;
}

function halfJitter(ceiling: number, random: () => number): number {
  const r = Math.min(1, Math.max(0, random()));
  return ceiling / 2 + (ceiling / 2) * r;
}
