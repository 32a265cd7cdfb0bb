/**
 * Scheduling of documents: at most `concurrency` run at once (p-queue), up to `prefetch` more wait for a slot (so the
 * consumer can receive full batches), and the sizes of the documents in flight stay within `maxInFlightBytes`.
 * Admission is first in, first out: a document that does not fit yet holds back the ones behind it, so a large one is
 * never starved by a stream of small ones. A document larger than the whole budget is admitted only when nothing else
 * is, and then runs alone.
 */
import PQueue from "p-queue";
import { OutcomeCode } from "../errors/document.js";
import { errorMessage } from "../errors/message.js";
import type { DocumentRef } from "../domain/document.js";
import type { Outcome } from "./outcome.js";
import type { DocumentPipeline, SubmitContext } from "./types.js";

const MiB = 1024 * 1024;

export interface PipelineOptions {
  /** Documents running at once. */
  concurrency: number;
  /** Documents that may wait for a slot beyond `concurrency`. @default 0 */
  prefetch?: number;
  /** Budget for the sum of the sizes of documents in flight (queued or running). */
  maxInFlightBytes: number;
  /** Processes one document; should not reject (a rejection becomes a retry Outcome with code INTERNAL). */
  run: (doc: DocumentRef, ctx: SubmitContext) => Promise<Outcome>;
  /**
   * Charged against the budget for a document whose event carried no size: not 0, so that many such documents
   * still count, and small, because the size is checked again against maxObjectBytes once S3 answers.
   * @default 1 MiB
   */
  unknownSizeBytes?: number;
}

interface GateEntry {
  charge: number;
  admit: () => void;
}

const abortedOutcome = (where: string): Outcome => ({
  status: "retry",
  code: OutcomeCode.aborted,
  reason: `aborted ${where}`,
});

class BudgetedPipeline implements DocumentPipeline {
  readonly #queue: PQueue;
  readonly #concurrency: number;
  readonly #capacity: number;
  readonly #maxBytes: number;
  readonly #unknownSize: number;
  readonly #run: PipelineOptions["run"];
  /** Submitted documents waiting for byte budget, oldest first. */
  readonly #gate: GateEntry[] = [];
  /** Admitted: handed to p-queue, queued there or running. */
  #admittedCount = 0;
  #admittedBytes = 0;
  /** Submitted and not settled (gate + admitted). */
  #inFlight = 0;
  #inFlightBytes = 0;
  readonly #roomWaiters = new Set<{ atLeast: number; wake: () => void }>();
  readonly #idleWaiters = new Set<() => void>();

  constructor(opts: PipelineOptions) {
    if (!(Number.isSafeInteger(opts.maxInFlightBytes) && opts.maxInFlightBytes > 0)) {
      throw new TypeError(`Expected maxInFlightBytes to be a positive integer, got ${String(opts.maxInFlightBytes)}`);
    }
    this.#queue = new PQueue({ concurrency: opts.concurrency });
    this.#concurrency = opts.concurrency;
    this.#capacity = opts.concurrency + (opts.prefetch ?? 0);
    this.#maxBytes = opts.maxInFlightBytes;
    this.#unknownSize = opts.unknownSizeBytes ?? MiB;
    this.#run = opts.run;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get capacity(): number {
    return this.#capacity;
  }

  freeSlots(): number {
    if (this.#inFlightBytes >= this.#maxBytes) return 0;
    return Math.max(0, this.#capacity - this.#inFlight);
  }

  idleWorkers(): number {
    return Math.max(0, this.#concurrency - this.#inFlight);
  }

  #hasRoom(atLeast: number): boolean {
    const free = this.freeSlots();
    return free >= atLeast || (free > 0 && this.idleWorkers() > 0);
  }

  waitForRoom(signal: AbortSignal, atLeast = 1): Promise<void> {
    if (signal.aborted || this.#hasRoom(atLeast)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        signal.removeEventListener("abort", done);
        this.#roomWaiters.delete(waiter);
        resolve();
      };
      const waiter = { atLeast, wake: done };
      signal.addEventListener("abort", done, { once: true });
      this.#roomWaiters.add(waiter);
    });
  }

  onIdle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.add(resolve));
  }

  submit(doc: DocumentRef, ctx: SubmitContext): Promise<Outcome> {
    const size = doc.size;
    const charge = size !== undefined && Number.isFinite(size) && size >= 0 ? size : this.#unknownSize;
    this.#inFlight++;
    this.#inFlightBytes += charge;
    return this.#admitAndRun(doc, ctx, charge).finally(() => {
      this.#inFlight--;
      this.#inFlightBytes -= charge;
      this.#notify();
    });
  }

  async #admitAndRun(doc: DocumentRef, ctx: SubmitContext, charge: number): Promise<Outcome> {
    if (!(await this.#admit(charge, ctx.signal))) return abortedOutcome("while waiting for byte budget");
    try {
      return await this.#queue.add(() => this.#runSafely(doc, ctx));
    } catch (err) {
      // Not expected: p-queue rejects only when the task does, and #runSafely does not.
      return { status: "retry", code: OutcomeCode.internal, reason: `pipeline error: ${errorMessage(err)}` };
    } finally {
      this.#admittedCount--;
      this.#admittedBytes -= charge;
      this.#pump();
    }
  }

  async #runSafely(doc: DocumentRef, ctx: SubmitContext): Promise<Outcome> {
    // Aborted while queued for a slot: nothing has started, nothing to clean up.
    if (ctx.signal.aborted) return abortedOutcome("while waiting for a slot");
    try {
      ctx.onStart?.();
      return await this.#run(doc, ctx);
    } catch (err) {
      return { status: "retry", code: OutcomeCode.internal, reason: `unexpected error: ${errorMessage(err)}` };
    }
  }

  #fits(charge: number): boolean {
    return this.#admittedCount === 0 || this.#admittedBytes + charge <= this.#maxBytes;
  }

  #take(charge: number): void {
    this.#admittedCount++;
    this.#admittedBytes += charge;
  }

  /** Resolves true once admitted, false when `signal` aborts first (the entry leaves the gate). */
  #admit(charge: number, signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    if (this.#gate.length === 0 && this.#fits(charge)) {
      this.#take(charge);
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const entry: GateEntry = {
        charge,
        admit: () => {
          signal.removeEventListener("abort", onAbort);
          this.#take(charge);
          resolve(true);
        },
      };
      const onAbort = (): void => {
        const i = this.#gate.indexOf(entry);
        if (i >= 0) this.#gate.splice(i, 1);
        resolve(false);
        // The head may have changed.
        this.#pump();
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#gate.push(entry);
    });
  }

  /** Admits from the head of the gate while the head fits. */
  #pump(): void {
    for (let head = this.#gate[0]; head !== undefined && this.#fits(head.charge); head = this.#gate[0]) {
      this.#gate.shift();
      head.admit();
    }
  }

  #notify(): void {
    for (const waiter of [...this.#roomWaiters]) if (this.#hasRoom(waiter.atLeast)) waiter.wake();
    if (this.#inFlight === 0) {
      const idle = [...this.#idleWaiters];
      this.#idleWaiters.clear();
      for (const resolve of idle) resolve();
    }
  }
}

export function createPipeline(opts: PipelineOptions): DocumentPipeline {
  return new BudgetedPipeline(opts);
}
