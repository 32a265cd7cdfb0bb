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
  /** Documents in flight now (the pipeline's count, which still includes a document while it settles). */
  inFlight: () => number;
  /** The full collection, or undefined where the runtime does not offer one. */
  collect: (() => void) | undefined;
}

export class IdleCollector {
  #since = 0;
  #pending = false;
  #collections = 0;

  constructor(private readonly options: IdleCollectorOptions) {}

  /** Collections run so far. */
  get collections(): number {
    return this.#collections;
  }

  /** A document of `bytes` settled; once the pipeline is idle (after this tick), collect if enough has passed. */
  settled(bytes: number): void {
    this.#since += bytes;
    if (this.#pending || this.options.collect === undefined || this.#since < this.options.thresholdBytes) return;
    // Others still in flight: no idle moment follows this one, and the last of them asks again. Without this check a
    // busy daemon scheduled a callback for every document once the threshold was passed.
    if (this.options.inFlight() > 1) return;
    this.#pending = true;
    // After this tick: the settling document's own frames and the pipeline's count are done with by then.
    setImmediate(() => {
      this.#pending = false;
      if (this.options.inFlight() !== 0) return; // the next settled document asks again
      this.#since = 0;
      this.#collections++;
      this.options.collect?.();
    }).unref();
  }
}

/** V8's full collection when the process was started with --expose-gc, else undefined. */
export function exposedGc(): (() => void) | undefined {
  const gc: unknown = (globalThis as { gc?: unknown }).gc;
  return typeof gc === "function" ? () => void (gc as () => unknown)() : undefined;
}
