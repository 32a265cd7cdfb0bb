/**
 * A full garbage collection when the pipeline goes idle after large documents. Their bytes (stream chunks; the
 * buffered copies the text and OCR processors hand to their child process, up to twice maxBufferedBytes) are memory
 * outside V8's heap that is returned only at V8's next major collection, and an idle daemon allocates too little to
 * reach one: RSS stayed 15-30 MB up until traffic resumed (reliability scenario hostile-ocr). Idle means no document
 * waits on it, so the pause (milliseconds) costs nothing; below the threshold nothing happens, so streams of small
 * documents never pay for it. The collection needs --expose-gc (the unit passes it); without it this does nothing.
 */
export interface IdleCollectorOptions {
  /** Bytes of documents settled since the last collection that make an idle moment worth one. */
  thresholdBytes: number;
  /** Documents in flight now (the pipeline's count). */
  inFlight: () => number;
  /** Resolves when nothing is in flight (the pipeline's onIdle): documents that never ran included. */
  idle: () => Promise<void>;
  /** The full collection, or undefined where the runtime does not offer one. */
  collect: (() => void) | undefined;
}

export class IdleCollector {
  #since = 0;
  #waiting = false;
  #collections = 0;

  constructor(private readonly options: IdleCollectorOptions) {}

  /** Collections run so far. */
  get collections(): number {
    return this.#collections;
  }

  /**
   * A document of `bytes` settled; once enough have, wait for the pipeline to go idle and collect then. One wait per
   * burst, not a check per document: a busy daemon pays nothing per document, and the idle moment is found however
   * the last documents end (together in one tick, or aborted before they ran, calling nothing here).
   */
  settled(bytes: number): void {
    this.#since += bytes;
    if (this.#waiting || this.options.collect === undefined || this.#since < this.options.thresholdBytes) return;
    this.#waiting = true;
    this.options.idle().then(
      // After this tick: the settling documents' own frames are done with by then.
      () =>
        setImmediate(() => {
          this.#waiting = false;
          // Traffic resumed in between: wait for the next idle moment.
          if (this.options.inFlight() !== 0) {
            this.settled(0);
            return;
          }
          this.#since = 0;
          this.#collections++;
          this.options.collect?.();
        }).unref(),
      () => {
        this.#waiting = false;
      },
    );
  }
}

/** V8's full collection when the process was started with --expose-gc, else undefined. */
export function exposedGc(): (() => void) | undefined {
  const gc: unknown = (globalThis as { gc?: unknown }).gc;
  return typeof gc === "function" ? () => void (gc as () => unknown)() : undefined;
}
