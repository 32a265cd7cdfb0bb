/**
 * The visibility heartbeat: keeps each held message invisible by extending it every half visibility timeout
 * (messages due within a second share one batch call), and reports a message whose processing cap passed. It owns
 * its per-message state and its one timer: callers watch a message, start its cap, and stop it; only this module
 * writes the state or arms the timer. stop() waits for an extension in flight, since one landing after a delete or a
 * release would fail or undo it.
 */
import type { Logger } from "../logging/logger.js";
import { heartbeatIntervalMs } from "./backoff.js";
import type { Emit } from "./events.js";
import { SQS_BATCH_MAX, chunks, isReceiptHandleGone, type Handle } from "./sqs-calls.js";
import { visibilityFailure, type Visibility } from "./visibility.js";

/** Messages whose extension falls due within this window of a tick share one batch call. */
const HEARTBEAT_COALESCE_MS = 1_000;
/** After a failed (non-fatal) extension, try again after at most this long rather than a full interval. */
const HEARTBEAT_RETRY_MS = 5_000;

/** The message a caller asks to keep invisible; the caller's own object is the key. */
export interface Beat extends Handle {
  readonly receiveCount: number;
}

export type StopReason = "settled" | "abandoned";

type State =
  /** capAt: infinite while the message waits for a slot, then its start + maxProcessingSeconds. */
  | { kind: "active"; nextAt: number; capAt: number }
  | { kind: "off"; reason: StopReason | "cap" | "handle-invalid" };

interface Entry {
  readonly beat: Beat;
  readonly onCap: () => void;
  state: State;
  /** The extension call in flight for this message (possibly shared with others of its batch). */
  pending: Promise<void> | undefined;
}

export interface HeartbeatDeps {
  visibility: Pick<Visibility, "change">;
  log: Logger;
  emit: Emit;
  clock: () => number;
  /** The value each extension sets; extensions go out every half of it. */
  visibilityTimeoutSeconds: number;
  /** Per message, counted from startCap(). */
  maxProcessingSeconds: number;
}

export class Heartbeat {
  /** Every watched message, until stop(); only the active ones take part in the timer. */
  private readonly entries = new Map<Beat, Entry>();
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires (infinite when none). */
  private timerAt = Number.POSITIVE_INFINITY;

  constructor(private readonly deps: HeartbeatDeps) {}

  /** Extends `beat` from one interval from now; no cap until startCap(). `onCap` runs once if the cap passes. */
  watch(beat: Beat, onCap: () => void): void {
    const nextAt = this.deps.clock() + heartbeatIntervalMs(this.deps.visibilityTimeoutSeconds);
    // No cap while waiting for a slot (the documents ahead are capped themselves): set when one starts.
    const state: State = { kind: "active", nextAt, capAt: Number.POSITIVE_INFINITY };
    this.entries.set(beat, { beat, onCap, state, pending: undefined });
    this.armFor(nextAt);
  }

  /** The message's first document starts: its processing cap counts from now, not from the wait for a slot. */
  startCap(beat: Beat): void {
    const state = this.entries.get(beat)?.state;
    if (state?.kind !== "active") return;
    state.capAt = this.deps.clock() + this.deps.maxProcessingSeconds * 1000;
    this.armFor(state.capAt);
  }

  /** No more extensions for `beat`; resolves once an extension already in flight for it has landed. Never rejects. */
  async stop(beat: Beat, reason: StopReason): Promise<void> {
    const entry = this.entries.get(beat);
    if (entry === undefined) return;
    if (entry.state.kind === "active") entry.state = { kind: "off", reason };
    this.entries.delete(beat);
    // The armed timer may now fire early: its tick finds nothing due and re-arms. With no message left, none at all.
    if (this.entries.size === 0) this.close();
    await entry.pending;
  }

  /** Cancels the timer (the consumer has stopped and holds no message). */
  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  /**
   * A new deadline: re-arms only when it comes before the armed timer. Every message watched, started and stopped
   * re-armed the timer (a timer-list insertion, about 2% of the daemon's CPU on small documents), while the new
   * deadlines are almost always later than the armed one.
   */
  private armFor(deadline: number): void {
    if (this.timer !== undefined && this.timerAt <= deadline) return;
    this.arm();
  }

  /** The one place the timer is set: to the earliest extension or cap of the active messages. */
  private arm(): void {
    this.close();
    let next = Number.POSITIVE_INFINITY;
    for (const { state } of this.entries.values()) {
      if (state.kind === "active") next = Math.min(next, state.nextAt, state.capAt);
    }
    if (next === Number.POSITIVE_INFINITY) return;
    this.timerAt = next;
    this.timer = setTimeout(() => this.tick(), Math.max(0, next - this.deps.clock()));
  }

  private tick(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = this.deps.clock();
    const interval = heartbeatIntervalMs(this.deps.visibilityTimeoutSeconds);
    const due: Entry[] = [];
    const capped: Entry[] = [];
    for (const entry of this.entries.values()) {
      const { state } = entry;
      if (state.kind !== "active") continue;
      if (now >= state.capAt) {
        entry.state = { kind: "off", reason: "cap" };
        capped.push(entry);
      } else if (now + HEARTBEAT_COALESCE_MS >= state.nextAt) {
        state.nextAt = now + interval;
        due.push(entry);
      }
    }
    for (const entry of capped) entry.onCap();
    for (const chunk of chunks(due, SQS_BATCH_MAX)) {
      const pending = this.extend(chunk).catch((err: unknown) => {
        this.deps.log.error({ err }, "bug: visibility extension handling failed");
      });
      for (const entry of chunk) entry.pending = pending;
    }
    this.arm();
  }

  private async extend(chunk: Entry[]): Promise<void> {
    const { visibility, log, emit } = this.deps;
    const results = await visibility.change(
      chunk.map((e) => e.beat),
      this.deps.visibilityTimeoutSeconds,
    );
    let extended = 0;
    chunk.forEach((entry, i) => {
      const result = results[i];
      if (result === undefined || result.ok) {
        extended += 1;
        return;
      }
      const { state, beat } = entry;
      // Stopped (settled or released) or capped meanwhile: the owner's path decides what happens to the message.
      if (state.kind !== "active") return;
      const fields = { messageId: beat.messageId, receiveCount: beat.receiveCount, code: result.code, detail: result.message };
      if (isReceiptHandleGone(result.code)) {
        entry.state = { kind: "off", reason: "handle-invalid" };
        log.warn(
          fields,
          "receipt handle no longer valid; stopped extending visibility: the message may be redelivered " +
            "while it runs (duplicate risk; the output write is idempotent)",
        );
      } else {
        state.nextAt = Math.min(state.nextAt, this.deps.clock() + HEARTBEAT_RETRY_MS);
        log.warn(fields, "visibility extension failed; retrying soon");
      }
      emit(visibilityFailure(chunk.length, result.error, beat.messageId));
    });
    if (extended > 0) emit({ type: "extended", count: extended });
    this.arm();
  }
}
