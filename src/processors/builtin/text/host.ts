/**
 * Runs extraction jobs (PDF, DOCX, HTML) in a worker thread, one at a time, each bounded in time and memory:
 * - time: past `timeoutMs` the worker is terminated, which stops it even inside a synchronous parse (TIMEOUT);
 * - memory: the worker's V8 heap is capped (resourceLimits), but ArrayBuffers are not part of that heap, and a Flate
 *   bomb in a PDF grows exactly those. So the process's RSS is also sampled while a job runs, and the worker is
 *   terminated once RSS has grown by more than the limit since the job started (MEMORY_LIMIT). Jobs run one at a
 *   time so that the growth is this job's (and a t2.micro has one vCPU: parallel parses would only share it).
 * An abort of the caller's signal terminates the worker too, but is not the document's fault (the caller's reason is
 * rethrown). The worker is reused between jobs, replaced after a termination, and stopped when idle.
 */
import { Worker } from "node:worker_threads";
import { PermanentDocumentError, type DetectedType } from "../../types.js";
import type { ExtractedText } from "./extracted.js";
import type { ExtractionJob, ExtractionReply, ExtractionRequest, WorkerReady } from "./extract.js";
import { abortReason, Budget } from "./limits.js";

const MiB = 1024 * 1024;

export interface ExtractionHostOptions {
  /** The worker entry (worker.js next to this module once built). */
  workerUrl: URL;
  /** Memory one job may add: the worker's heap limit, and the most the process RSS may grow while it runs. */
  memoryLimitBytes: number;
  /** RSS sampling period while a job runs. @default 20 */
  sampleIntervalMs?: number;
  /** An idle worker is stopped after this long, giving its memory back. @default 60000 */
  idleTimeoutMs?: number;
  /** How long a new worker may take to load its parsers. @default 60000 */
  startTimeoutMs?: number;
}

export interface ExtractionRun {
  result: ExtractedText;
  /** Largest RSS growth seen while the job ran (sampled, so a lower bound). */
  peakRssGrowthBytes: number;
}

export interface RunOptions {
  signal: AbortSignal;
  timeoutMs: number;
  /** Recorded in the TIMEOUT and MEMORY_LIMIT errors. */
  detectedType?: DetectedType;
}

type Settled = { reply: ExtractionReply } | { error: unknown };

/** Whether the view covers its whole ArrayBuffer, so the buffer can be transferred instead of copied. */
function ownsBuffer(data: Uint8Array): boolean {
  return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
}

function detectedTypeOption(type: DetectedType | undefined): { detectedType?: DetectedType } {
  return type === undefined ? {} : { detectedType: type };
}

export class ExtractionHost {
  readonly #options: Required<ExtractionHostOptions>;
  readonly #slot = new Budget(1);
  #worker: Worker | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #nextId = 1;
  #closed = false;

  constructor(options: ExtractionHostOptions) {
    this.#options = { sampleIntervalMs: 20, idleTimeoutMs: 60_000, startTimeoutMs: 60_000, ...options };
  }

  /** Whether a worker is running now (idle or busy). */
  get hasWorker(): boolean {
    return this.#worker !== undefined;
  }

  async run(job: ExtractionJob, options: RunOptions): Promise<ExtractionRun> {
    const release = await this.#slot.acquire(1, options.signal);
    try {
      return await this.#runAlone(job, options);
    } finally {
      release();
    }
  }

  /** Stops the worker; later runs start a new one. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#clearIdle();
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker !== undefined) await worker.terminate();
  }

  async #runAlone(job: ExtractionJob, { signal, timeoutMs, detectedType }: RunOptions): Promise<ExtractionRun> {
    signal.throwIfAborted();
    if (this.#closed) throw new Error("the extraction host is closed");
    this.#clearIdle();
    const worker = this.#worker ?? (await this.#start(signal));
    worker.ref();
    const id = this.#nextId++;
    const { memoryLimitBytes, sampleIntervalMs } = this.#options;
    const baseline = process.memoryUsage.rss();
    let peak = 0;

    const settled = await new Promise<Settled>((resolve) => {
      const settle = (value: Settled): void => {
        clearTimeout(timer);
        clearInterval(sampler);
        signal.removeEventListener("abort", onAbort);
        worker.off("message", onMessage);
        worker.off("error", onError);
        worker.off("exit", onExit);
        resolve(value);
      };
      const onMessage = (reply: ExtractionReply): void => {
        if (reply.id === id) settle({ reply });
      };
      const onError = (err: Error): void => {
        if ((err as { code?: unknown }).code === "ERR_WORKER_OUT_OF_MEMORY") {
          const message = `parsing needed more than the ${Math.round(memoryLimitBytes / MiB)} MiB heap one document may use`;
          settle({ error: new PermanentDocumentError("MEMORY_LIMIT", message, detectedTypeOption(detectedType)) });
        } else {
          settle({ error: new Error(`the extraction worker failed: ${err.message}`, { cause: err }) });
        }
      };
      const onExit = (code: number): void => {
        settle({ error: new Error(`the extraction worker exited (code ${code}) before answering`) });
      };
      const onAbort = (): void => settle({ error: abortReason(signal) });
      const timer = setTimeout(() => {
        const message = `extracting the text took longer than the ${timeoutMs / 1000} s allowed for one document`;
        settle({ error: new PermanentDocumentError("TIMEOUT", message, detectedTypeOption(detectedType)) });
      }, timeoutMs);
      const sampler = setInterval(() => {
        const growth = process.memoryUsage.rss() - baseline;
        if (growth > peak) peak = growth;
        if (growth > memoryLimitBytes) {
          const message =
            `parsing grew the process by ${Math.round(growth / MiB)} MiB, above the ` +
            `${Math.round(memoryLimitBytes / MiB)} MiB one document may use`;
          settle({ error: new PermanentDocumentError("MEMORY_LIMIT", message, detectedTypeOption(detectedType)) });
        }
      }, sampleIntervalMs);
      signal.addEventListener("abort", onAbort, { once: true });
      worker.on("message", onMessage);
      worker.on("error", onError);
      worker.on("exit", onExit);
      const request: ExtractionRequest = { ...job, id };
      worker.postMessage(request, ownsBuffer(job.data) ? [job.data.buffer as ArrayBuffer] : []);
    });

    if ("error" in settled) {
      // The worker may be in the middle of anything: never reuse it.
      if (this.#worker === worker) this.#worker = undefined;
      await worker.terminate();
      throw settled.error;
    }
    this.#idle(worker);
    const { reply } = settled;
    if (reply.ok) return { result: reply.result, peakRssGrowthBytes: peak };
    if (reply.permanent) {
      throw new PermanentDocumentError(reply.code, reply.message, detectedTypeOption(reply.detectedType ?? detectedType));
    }
    throw new Error(`text extraction failed: ${reply.message}`);
  }

  /**
   * A new worker, once it has loaded its parsers. Failing to start is never the document's fault (a broken install,
   * a missing file): the error is a plain one, so the document is retried rather than refused.
   */
  async #start(signal: AbortSignal): Promise<Worker> {
    const worker = this.#spawn();
    try {
      await new Promise<void>((resolve, reject) => {
        const done = (err?: Error): void => {
          clearTimeout(timer);
          signal.removeEventListener("abort", onAbort);
          worker.off("message", onMessage);
          worker.off("error", onError);
          worker.off("exit", onExit);
          if (err === undefined) resolve();
          else reject(err);
        };
        const onMessage = (m: Partial<WorkerReady>): void => {
          if (m.ready === true) done();
        };
        const onError = (err: Error): void => {
          done(new Error(`the extraction worker could not start: ${err.message}`, { cause: err }));
        };
        const onExit = (code: number): void => {
          done(new Error(`the extraction worker exited (code ${code}) while starting`));
        };
        const onAbort = (): void => done(abortReason(signal));
        const timer = setTimeout(
          () => done(new Error(`the extraction worker did not start within ${this.#options.startTimeoutMs} ms`)),
          this.#options.startTimeoutMs,
        );
        signal.addEventListener("abort", onAbort, { once: true });
        worker.on("message", onMessage);
        worker.on("error", onError);
        worker.on("exit", onExit);
      });
    } catch (err) {
      if (this.#worker === worker) this.#worker = undefined;
      await worker.terminate();
      throw err;
    }
    return worker;
  }

  #spawn(): Worker {
    const worker = new Worker(this.#options.workerUrl, {
      resourceLimits: { maxOldGenerationSizeMb: Math.max(32, Math.ceil(this.#options.memoryLimitBytes / MiB)) },
      // The worker's console is captured as warnings; anything else it prints must not reach the JSON log stream.
      stdout: true,
      stderr: true,
    });
    worker.stdout.resume();
    worker.stderr.resume();
    // Errors while a job runs are handled by the job; an idle worker's error only means it is gone.
    worker.on("error", () => undefined);
    worker.once("exit", () => {
      if (this.#worker === worker) this.#worker = undefined;
    });
    this.#worker = worker;
    return worker;
  }

  #idle(worker: Worker): void {
    worker.unref();
    this.#clearIdle();
    this.#idleTimer = setTimeout(() => {
      if (this.#worker === worker) this.#worker = undefined;
      void worker.terminate();
    }, this.#options.idleTimeoutMs);
    this.#idleTimer.unref();
  }

  #clearIdle(): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }
}
