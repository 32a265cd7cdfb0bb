/**
 * Runs extraction jobs (PDF, DOCX, HTML) in a child process (child.ts, extract-child.ts), one at a time, each bounded
 * in time and memory. A process rather than a worker thread: a stopped thread's memory stays with the daemon (malloc
 * arenas, ArrayBuffers), while a killed process gives all of it back at once, so a refused document cannot leave the
 * daemon bigger than it was.
 * - memory: the child's private resident memory (RssAnon + RssShmem: its parsers included, the node binary's shared
 *   pages not) is sampled from /proc every 20 ms, and the child is killed with SIGKILL once it is above the ceiling
 *   (MEMORY_LIMIT). Its V8 heap limit is set below the ceiling, and a heap exhausted first is MEMORY_LIMIT too;
 * - time: past `timeoutMs` the child is killed, which stops it even inside a synchronous parse (TIMEOUT); with
 *   `pageTimeoutMs` (OCR), also once a page takes longer than that from the child's `page` message (TIMEOUT);
 * - an abort of the caller's signal kills it too, but is not the document's fault (the caller's reason is rethrown);
 * - a child that dies, or sends anything but the expected reply, fails that document transiently (retried).
 * The child is reused between jobs (loading PDF.js takes a few hundred ms), replaced after any kill, killed once a
 * job leaves it more than `keepBytes` above its size at start even after a full collection (so what a big document
 * needed goes back to the system now, not at the idle timeout), and killed when idle. Every run that fails has seen
 * its child reaped before it rejects.
 */
import { fileURLToPath } from "node:url";
import type { DetectedType } from "../../../domain/document.js";
import { PermanentDocumentError } from "../../../errors/document.js";
import { ExtractorChild } from "./child.js";
import type { ExtractedText } from "./extracted.js";
import type { ExtractionJob, ExtractionReply } from "./extract.js";
import type { Frame } from "./frames.js";
import { abortReason, Budget } from "./limits.js";
import { collectFrame, jobFrame, parseChildFrame, type ChildMessage } from "./protocol.js";

const MiB = 1024 * 1024;

export interface ExtractionHostOptions {
  /** The child's entry (extract-child.js next to this module once built). */
  extractorUrl: URL;
  /**
   * Ceiling on the child's private resident memory, its parsers included (about 52 MiB idle); above it the document
   * is refused (MEMORY_LIMIT).
   */
  memoryLimitBytes: number;
  /**
   * After a job, the child is killed (a new one starts with the next job) when its private memory is still more than
   * this above its size once ready, after a full collection. V8 and malloc keep most of what a parse freed, so
   * without this an idle child held 35-80 MiB of a finished document until the idle timeout, and the next document
   * started with less headroom. Ordinary documents leave 10-15 MiB (measured on the text-mix bench's documents).
   * @default 32 MiB
   */
  keepBytes?: number;
  /** The child's V8 semi-space, in MiB (the daemon's unit uses 2). @default 2 */
  semiSpaceMiB?: number;
  /** Resident-size sampling period. @default 20 */
  sampleIntervalMs?: number;
  /** An idle child is killed after this long. @default 60000 */
  idleTimeoutMs?: number;
  /** How long a new child may take to load its parsers. @default 60000 */
  startTimeoutMs?: number;
}

export interface ExtractionRun {
  result: ExtractedText;
  /** The child's largest private resident memory seen while the job ran (sampled, so a lower bound). */
  peakRssBytes: number;
}

export interface RunOptions {
  signal: AbortSignal;
  timeoutMs: number;
  /** Recorded in the TIMEOUT and MEMORY_LIMIT errors. */
  detectedType?: DetectedType;
  /**
   * Time one page may take, from each `page` message of the child (OCR: one page is seconds of CPU, a document may
   * be many pages). Unset: only `timeoutMs` applies.
   */
  pageTimeoutMs?: number;
}

/** A running child and what the host knows of it. */
interface Live {
  child: ExtractorChild;
  /** Its private resident memory once its parsers were loaded. */
  readyRss: number;
  /** False from a `collect` request to its answer (its memory then says what it keeps). */
  collected: boolean;
  whenCollected: Promise<void>;
  markCollected: () => void;
  /** Each resident-size sample, for the phase the child is in. */
  watch: (rss: number) => void;
  sampler: NodeJS.Timeout;
}

type Settled = { reply: ExtractionReply } | { error: unknown };

function detectedTypeOption(type: DetectedType | undefined): { detectedType?: DetectedType } {
  return type === undefined ? {} : { detectedType: type };
}

const mib = (bytes: number): number => Math.round(bytes / MiB);

/** Whether `promise` settles within `ms`; rejects with the signal's reason on abort. */
async function within(promise: Promise<void>, ms: number, signal: AbortSignal): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      promise.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
      new Promise<boolean>((_, reject) => {
        onAbort = () => reject(abortReason(signal));
        signal.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) signal.removeEventListener("abort", onAbort);
  }
}

export class ExtractionHost {
  readonly #options: Required<ExtractionHostOptions>;
  readonly #entry: string;
  readonly #slot = new Budget(1);
  #live: Live | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #nextId = 1;
  #closed = false;

  constructor(options: ExtractionHostOptions) {
    this.#options = {
      keepBytes: 32 * MiB,
      semiSpaceMiB: 2,
      sampleIntervalMs: 20,
      idleTimeoutMs: 60_000,
      startTimeoutMs: 60_000,
      ...options,
    };
    this.#entry = fileURLToPath(options.extractorUrl);
  }

  /** Whether a child is running now (idle or busy). */
  get hasChild(): boolean {
    return this.#live !== undefined;
  }

  /** The running child's pid (tests and diagnostics). */
  get childPid(): number | undefined {
    return this.#live?.child.pid;
  }

  async run(job: ExtractionJob, options: RunOptions): Promise<ExtractionRun> {
    const release = await this.#slot.acquire(1, options.signal);
    try {
      return await this.#runAlone(job, options);
    } finally {
      release();
    }
  }

  /** Kills the child (and waits until it is gone): a running job fails (transiently); later runs are refused. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#clearIdle();
    const live = this.#live;
    if (live === undefined) return;
    // Killed first, not silenced: a job in progress hears of it through its own failure handler.
    await live.child.kill();
    await this.#retire(live);
  }

  async #runAlone(job: ExtractionJob, { signal, timeoutMs, detectedType, pageTimeoutMs }: RunOptions): Promise<ExtractionRun> {
    signal.throwIfAborted();
    if (this.#closed) throw new Error("the extraction host is closed");
    this.#clearIdle();
    const live = await this.#ready(signal);
    if (signal.aborted) {
      // Aborted while the child was being readied: it never saw the job and stays for the next one.
      this.#idle(live, false);
      throw abortReason(signal);
    }
    // A new child was made idle once ready: it is busy now.
    this.#clearIdle();
    const { child } = live;
    const { memoryLimitBytes } = this.#options;
    const id = this.#nextId++;
    let peak = live.readyRss;
    child.ref();

    const settled = await new Promise<Settled>((resolve) => {
      let done = false;
      const settle = (value: Settled): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearTimeout(pageTimer);
        signal.removeEventListener("abort", onAbort);
        // At once: the next frame (`collected`) may be in the same chunk as the reply.
        if ("reply" in value) this.#idle(live, true);
        else this.#silence(live);
        resolve(value);
      };
      const memoryLimit = (message: string): void => {
        settle({ error: new PermanentDocumentError("MEMORY_LIMIT", message, detectedTypeOption(detectedType)) });
      };
      live.watch = (rss) => {
        if (rss > peak) peak = rss;
        if (rss > memoryLimitBytes) {
          memoryLimit(`parsing took the extractor to ${mib(rss)} MiB, above the ${mib(memoryLimitBytes)} MiB it may use`);
        }
      };
      child.onFrame = (frame) => {
        const message = this.#parse(live, frame);
        if (message === undefined) return;
        if (message.type === "reply" && message.reply.id === id) settle({ reply: message.reply });
        else if (message.type === "page" && pageTimeoutMs !== undefined) startPage(pageTimeoutMs);
        else child.fail(new Error(`the extractor sent "${message.type}" instead of the reply to job ${id}`));
      };
      child.onFailure = (err) => {
        if (child.outOfHeap) memoryLimit(`parsing needed more heap than the extractor may use (${mib(memoryLimitBytes)} MiB)`);
        else settle({ error: new Error(`text extraction failed: ${err.message}`, { cause: err }) });
      };
      const onAbort = (): void => settle({ error: abortReason(signal) });
      const timer = setTimeout(() => {
        const message = `extracting the text took longer than the ${timeoutMs / 1000} s allowed for one document`;
        settle({ error: new PermanentDocumentError("TIMEOUT", message, detectedTypeOption(detectedType)) });
      }, timeoutMs);
      let pageTimer: NodeJS.Timeout | undefined;
      let pages = 0;
      const startPage = (ms: number): void => {
        clearTimeout(pageTimer);
        pages++;
        pageTimer = setTimeout(() => {
          const message = `page ${pages} took longer than the ${ms / 1000} s allowed for one page`;
          settle({ error: new PermanentDocumentError("TIMEOUT", message, detectedTypeOption(detectedType)) });
        }, ms);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      child.maxPayloadBytes = job.limits.maxTextBytes;
      child.send(jobFrame(id, job));
    });

    if ("error" in settled) {
      // The child may be in the middle of anything: never reuse it, and be sure it is gone before answering.
      await this.#retire(live);
      throw settled.error;
    }
    const { reply } = settled;
    if (reply.ok) return { result: reply.result, peakRssBytes: peak };
    if (reply.permanent) {
      throw new PermanentDocumentError(reply.code, reply.message, detectedTypeOption(reply.detectedType ?? detectedType));
    }
    throw new Error(`text extraction failed: ${reply.message}`);
  }

  /** The child to run the next job in: the current one if it is fit for it, else a new one. */
  async #ready(signal: AbortSignal): Promise<Live> {
    const live = this.#live;
    if (live !== undefined) {
      // Usually long done: the next document had to be downloaded first.
      const collected = live.collected || (await within(live.whenCollected, 5_000, signal));
      if (collected && this.#live === live && !this.#bloated(live)) return live;
      await this.#retire(live);
    }
    return this.#start(signal);
  }

  /** Whether the child holds more than `keepBytes` over its size once ready. */
  #bloated(live: Live): boolean {
    const rss = live.child.residentBytes();
    if (rss === undefined) return !live.child.alive;
    return rss > live.readyRss + this.#options.keepBytes;
  }

  /**
   * A new child, once it has loaded its parsers. Failing to start is never the document's fault (a broken install,
   * a ceiling below what the parsers need): the error is a plain one, so the document is retried, not refused.
   */
  async #start(signal: AbortSignal): Promise<Live> {
    const { memoryLimitBytes, startTimeoutMs, sampleIntervalMs, semiSpaceMiB } = this.#options;
    let child: ExtractorChild;
    try {
      child = ExtractorChild.spawn({ entry: this.#entry, memoryLimitBytes, semiSpaceMiB });
    } catch (err) {
      throw new Error(`the extractor could not start: ${(err as Error).message}`, { cause: err });
    }
    const live: Live = {
      child,
      readyRss: 0,
      collected: true,
      whenCollected: Promise.resolve(),
      markCollected: () => undefined,
      watch: () => undefined,
      sampler: setInterval(() => {
        const rss = child.residentBytes();
        if (rss !== undefined) live.watch(rss);
      }, sampleIntervalMs),
    };
    live.sampler.unref();
    this.#live = live;
    child.ref();
    try {
      await new Promise<void>((resolve, reject) => {
        let finished = false;
        const done = (err?: Error): void => {
          if (finished) return;
          finished = true;
          clearTimeout(timer);
          signal.removeEventListener("abort", onAbort);
          if (err === undefined) {
            live.readyRss = child.residentBytes() ?? 0;
            this.#idle(live, false);
            resolve();
          } else {
            this.#silence(live);
            reject(err);
          }
        };
        const cannot = (why: string, cause?: Error): void => {
          done(new Error(`the extractor could not start: ${why}`, cause === undefined ? undefined : { cause }));
        };
        live.watch = (rss) => {
          if (rss > memoryLimitBytes) {
            cannot(
              `it holds ${mib(rss)} MiB before any document, more than the ${mib(memoryLimitBytes)} MiB ` +
                "extractionMemoryBytes allows",
            );
          }
        };
        child.onFrame = (frame) => {
          const message = this.#parse(live, frame);
          if (message?.type === "ready") done();
          else if (message !== undefined) child.fail(new Error(`it sent "${message.type}" before "ready"`));
        };
        child.onFailure = (err) => {
          if (!child.outOfHeap) cannot(err.message, err);
          else cannot(`its parsers need more heap than the ${mib(memoryLimitBytes)} MiB extractionMemoryBytes allows`, err);
        };
        const onAbort = (): void => done(abortReason(signal));
        const timer = setTimeout(() => cannot(`it did not load its parsers within ${startTimeoutMs} ms`), startTimeoutMs);
        signal.addEventListener("abort", onAbort, { once: true });
        if (signal.aborted) onAbort();
      });
    } catch (err) {
      await this.#retire(live);
      throw err;
    }
    return live;
  }

  /** A message from the child, or undefined when it was malformed (the child is then being killed). */
  #parse(live: Live, frame: Frame): ChildMessage | undefined {
    try {
      return parseChildFrame(frame);
    } catch (err) {
      live.child.fail(new Error(`the extractor broke the protocol: ${(err as Error).message}`));
      return undefined;
    }
  }

  /**
   * Between jobs: the child must stay under the ceiling and say nothing, except `collected` when asked; it is dropped
   * when it dies, and killed when idle too long. After a job that left it big, it is asked to collect its garbage,
   * and replaced if it is still big then (most jobs leave it small, and skip the collection's tens of ms).
   */
  #idle(live: Live, afterJob: boolean): void {
    const { child } = live;
    child.maxPayloadBytes = 0;
    child.unref();
    if (afterJob && this.#bloated(live)) {
      live.collected = false;
      live.whenCollected = new Promise((resolve) => (live.markCollected = resolve));
      child.send(collectFrame());
    }
    const { memoryLimitBytes, idleTimeoutMs } = this.#options;
    live.watch = (rss) => {
      if (rss > memoryLimitBytes) void this.#retire(live);
    };
    child.onFrame = (frame) => {
      const message = this.#parse(live, frame);
      if (message === undefined) return;
      if (message.type !== "collected" || live.collected) {
        child.fail(new Error(`the extractor sent "${message.type}" while idle`));
        return;
      }
      live.collected = true;
      live.markCollected();
      if (this.#bloated(live)) void this.#retire(live);
    };
    child.onFailure = () => {
      live.markCollected();
      void this.#retire(live);
    };
    this.#clearIdle();
    this.#idleTimer = setTimeout(() => void this.#retire(live), idleTimeoutMs);
    this.#idleTimer.unref();
  }

  /** Nothing the child does matters any more: it is about to be killed. */
  #silence(live: Live): void {
    live.watch = () => undefined;
    live.child.onFrame = () => undefined;
    live.child.onFailure = () => undefined;
  }

  /** Kills the child and forgets it; resolves once it is reaped. */
  async #retire(live: Live): Promise<void> {
    clearInterval(live.sampler);
    this.#silence(live);
    live.markCollected();
    if (this.#live === live) {
      this.#live = undefined;
      this.#clearIdle();
    }
    await live.child.kill();
  }

  #clearIdle(): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }
}
