/**
 * The messages whose documents are in the pipeline: runs each message's documents, keeps it under the heartbeat
 * until they settle, then carries out the acknowledgement decision (delete, back off, redrive, release). It also
 * holds the one abandon routine the stop path uses, so a message handed back early never races its heartbeat.
 */
import type { DocumentRef } from "../domain/document.js";
import { DocumentError, OutcomeCode } from "../errors/document.js";
import { errorMessage } from "../errors/message.js";
import type { Logger } from "../logging/logger.js";
import type { Outcome } from "../pipeline/outcome.js";
import type { DocumentPipeline } from "../pipeline/types.js";
import { decideAck, type AckDecision } from "./ack.js";
import type { DeleteBatcher } from "./delete-batcher.js";
import type { Emit } from "./events.js";
import type { Beat, Heartbeat } from "./heartbeat.js";
import { failureFields } from "./log-fields.js";
import type { Handle } from "./sqs-calls.js";
import type { Visibility } from "./visibility.js";

/** Messages taken out of tracking by detach(), held (and extended) until handBack(). */
export type Detached = readonly Beat[];

/** A message whose documents are in the pipeline. */
interface Tracked extends Beat {
  readonly receivedAt: number;
  readonly controller: AbortController;
  /** running: documents in the pipeline; settling: outcomes known, acknowledging; abandoned: released by stop. */
  phase: "running" | "settling" | "done" | "abandoned";
  /** Whether any of its documents left the wait for a slot (only unstarted messages are released at once on stop). */
  started: boolean;
  abortCause: "cap" | "shutdown" | undefined;
}

export interface InFlightDeps {
  pipeline: DocumentPipeline;
  heartbeat: Pick<Heartbeat, "watch" | "startCap" | "stop">;
  visibility: Pick<Visibility, "change" | "release">;
  deletes: Pick<DeleteBatcher, "enqueue">;
  log: Logger;
  emit: Emit;
  clock: () => number;
  random: () => number;
  /** For the cap's log line and abort reason (the heartbeat keeps the time). */
  maxProcessingSeconds: number;
  /** A tracked message reached a decision: its delete finished (or failed for good), or it was backed off. */
  onSettled: () => void;
  /** How long an abandon waits for extensions in flight before releasing anyway. @default ABANDON_EXTENSION_WAIT_MS */
  extensionWaitMs?: number;
}

/**
 * An extension call can hang up to the clients' request timeout (60 s), longer than the unit leaves the stop for the
 * hand-back (TimeoutStopSec = drain + 15 s). Past this wait the release goes out anyway: at worst a late extension
 * hides the message until its visibility timeout, which loses nothing.
 */
export const ABANDON_EXTENSION_WAIT_MS = 5_000;

export class InFlight {
  private readonly messages = new Map<Tracked, Promise<void>>();

  constructor(private readonly deps: InFlightDeps) {}

  /** Messages tracked now (running or being acknowledged). */
  get size(): number {
    return this.messages.size;
  }

  /** Messages whose documents are still running. */
  get running(): number {
    return this.inPhase("running").length;
  }

  track(handle: Handle, receiveCount: number, documents: DocumentRef[]): void {
    const tracked: Tracked = {
      messageId: handle.messageId,
      receiptHandle: handle.receiptHandle,
      receiveCount,
      receivedAt: this.deps.clock(),
      controller: new AbortController(),
      phase: "running",
      started: false,
      abortCause: undefined,
    };
    // Watched before its documents are submitted: one may start (and start the cap) during submit().
    this.deps.heartbeat.watch(tracked, () => this.capReached(tracked));
    const done = this.run(tracked, documents)
      .catch((err: unknown) => {
        this.deps.log.error({ err, messageId: tracked.messageId }, "bug: message handling failed");
      })
      .finally(() => {
        this.messages.delete(tracked);
        // A detached message stays extended until handBack() releases it (its documents settle first, aborted).
        if (tracked.phase === "abandoned") return undefined;
        // Normally stopped already; after a bug it must not go on extending a message nobody acknowledges.
        return this.deps.heartbeat.stop(tracked, "settled");
      });
    this.messages.set(tracked, done);
  }

  /** Whether every tracked message settled within `ms`. */
  async settledWithin(ms: number): Promise<boolean> {
    if (this.messages.size === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    try {
      return await Promise.race([this.settled().then(() => true), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves once every message tracked now has settled. */
  async settled(): Promise<void> {
    await Promise.all(this.messages.values());
  }

  /** Aborts the documents of every running message because the consumer is shutting down. */
  abortRunning(reason: string): void {
    for (const tracked of this.inPhase("running")) {
      tracked.abortCause ??= "shutdown";
      tracked.controller.abort(new DocumentError(OutcomeCode.aborted, reason));
    }
  }

  /**
   * Hands running messages back to the queue (visibility 0, in batches) and forgets them: `which` "unstarted" takes
   * the ones still waiting for a slot, "running" all of them. detach() then handBack(). Returns how many were released.
   */
  async abandon(which: "unstarted" | "running", why: string, abortReason: string): Promise<number> {
    return this.handBack(this.detach(which, abortReason), why);
  }

  /**
   * Forgets running messages (see abandon) and aborts their documents (`abortReason`), so none of them starts or
   * finishes now; each stays extended by the heartbeat, still held, until handBack(). A late outcome of a detached
   * message changes nothing.
   */
  detach(which: "unstarted" | "running", abortReason: string): Detached {
    const chosen = this.inPhase("running").filter((t) => which === "running" || !t.started);
    for (const tracked of chosen) {
      tracked.phase = "abandoned";
      tracked.abortCause ??= "shutdown";
      this.messages.delete(tracked);
      tracked.controller.abort(new DocumentError(OutcomeCode.aborted, abortReason));
    }
    return chosen;
  }

  /**
   * Releases detached messages (visibility 0, in batches) once their heartbeat has stopped: the release waits for
   * an extension in flight, since one landing after it would hide the message again. Returns how many were released
   * (a failed one returns when its visibility ends; Visibility logs it).
   */
  async handBack(detached: Detached, why: string): Promise<number> {
    const chosen = detached as readonly Tracked[];
    if (chosen.length === 0) return 0;
    const landed = chosen.map((tracked) => this.deps.heartbeat.stop(tracked, "abandoned"));
    await within(Promise.all(landed), this.deps.extensionWaitMs ?? ABANDON_EXTENSION_WAIT_MS);
    return this.deps.visibility.release(chosen, why);
  }

  private inPhase(phase: Tracked["phase"]): Tracked[] {
    return [...this.messages.keys()].filter((t) => t.phase === phase);
  }

  private async run(tracked: Tracked, documents: DocumentRef[]): Promise<void> {
    const { log } = this.deps;
    const ctx = {
      messageId: tracked.messageId,
      receiveCount: tracked.receiveCount,
      signal: tracked.controller.signal,
      onStart: () => this.started(tracked),
    };
    const outcomes = await Promise.all(
      documents.map(async (doc): Promise<Outcome> => {
        try {
          return await this.deps.pipeline.submit(doc, ctx);
        } catch (err) {
          // The pipeline promises never to reject; if it does, keep the message (retry), never lose it.
          return { status: "retry", code: OutcomeCode.internal, reason: `pipeline rejected: ${errorMessage(err)}` };
        }
      }),
    );
    if (tracked.phase === "abandoned") {
      log.debug({ messageId: tracked.messageId }, "documents settled after the message was released");
      return;
    }
    tracked.phase = "settling";
    // An extension landing after the delete or the backoff would fail or undo it.
    await this.deps.heartbeat.stop(tracked, "settled");
    const decision = decideAck({
      documents,
      outcomes,
      receiveCount: tracked.receiveCount,
      abortedByShutdown: tracked.abortCause === "shutdown",
      random: this.deps.random,
    });
    await this.apply(tracked, decision, documents.length);
    tracked.phase = "done";
  }

  private async apply(tracked: Tracked, decision: AckDecision, documents: number): Promise<void> {
    const { log, emit } = this.deps;
    const base = {
      messageId: tracked.messageId,
      receiveCount: tracked.receiveCount,
      documents,
      durationMs: this.deps.clock() - tracked.receivedAt,
    };
    switch (decision.kind) {
      case "delete":
        // The "document" lines already say each outcome: at info this would be a second line per document.
        log.debug({ ...base, outcome: "done" }, "message processed");
        await this.deps.deletes.enqueue(tracked);
        this.deps.onSettled();
        return;
      case "release":
        log.info(
          { ...base, outcome: "released", ...failureFields(decision.failures) },
          "message aborted by shutdown; released",
        );
        await this.deps.visibility.release([tracked], "aborted by shutdown");
        return;
      case "back-off":
      case "redrive": {
        const { status, visibilityTimeout } = decision;
        log.warn(
          { ...base, outcome: status, ...failureFields(decision.failures), visibilityTimeout },
          decision.kind === "redrive"
            ? "message can never be processed as is; made visible at once for the redrive policy (DLQ)"
            : "message not acknowledged; backing off",
        );
        const [result] = await this.deps.visibility.change([tracked], visibilityTimeout);
        if (result !== undefined && !result.ok) {
          log.warn(
            { messageId: tracked.messageId, code: result.code, detail: result.message },
            "could not set the backoff; the message returns when its current visibility ends",
          );
          emit({ type: "error", operation: "ChangeMessageVisibility", error: result.error, messageIds: [tracked.messageId] });
        }
        this.deps.onSettled();
        emit({ type: "returned", messageId: tracked.messageId, status, visibilityTimeout });
        return;
      }
    }
  }

  /** The heartbeat reports the cap passed: abort the message's documents (their outcomes then drive the message). */
  private capReached(tracked: Tracked): void {
    const { maxProcessingSeconds } = this.deps;
    tracked.abortCause ??= "cap";
    this.deps.log.warn(
      { messageId: tracked.messageId, receiveCount: tracked.receiveCount, maxProcessingSeconds },
      "processing cap reached; aborting the message's documents and no longer extending its visibility",
    );
    tracked.controller.abort(new DocumentError(OutcomeCode.aborted, `processing exceeded ${maxProcessingSeconds} s`));
    this.deps.emit({ type: "capped", messageId: tracked.messageId });
  }

  private started(tracked: Tracked): void {
    if (tracked.started) return;
    tracked.started = true;
    this.deps.heartbeat.startCap(tracked);
  }
}

/** Waits for `promise`, or `ms` at most; never rejects (an extension's failure is the heartbeat's to report). */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([promise.catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
