/**
 * The framing between the daemon and its extraction child process, on a private socket pair: each frame is
 * [header length: u32 LE][payload length: u32 LE][header: UTF-8 JSON][payload: raw bytes]. Raw bytes rather than
 * Node's IPC ("advanced" serialization): a document arrives once in the child (IPC held three copies of it there,
 * and one more in the daemon), and the reader decides how much it accepts before it allocates: the child is
 * untrusted (it parses hostile documents), so the daemon never buffers more than a reply may carry.
 */

export const FRAME_PREFIX_BYTES = 8;
/** What a header can be: JSON, and never large (a job's settings; a reply's counts, warnings and message). */
export const MAX_HEADER_BYTES = 1024 * 1024;

export interface Frame {
  header: Record<string, unknown>;
  payload: Buffer;
}

export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

/** A frame as the chunks to write: the prefix with the header, then the payload as it is (never copied). */
export function encodeFrame(header: object, payload?: Uint8Array): Uint8Array[] {
  const json = Buffer.from(JSON.stringify(header), "utf8");
  if (json.length > MAX_HEADER_BYTES) throw new FrameError(`a frame header of ${json.length} bytes is too large`);
  const length = payload?.byteLength ?? 0;
  if (length > 0xffff_ffff) throw new FrameError(`a frame payload of ${length} bytes is too large`);
  const head = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + json.length);
  head.writeUInt32LE(json.length, 0);
  head.writeUInt32LE(length, 4);
  json.copy(head, FRAME_PREFIX_BYTES);
  return payload === undefined || length === 0 ? [head] : [head, payload];
}

/**
 * Cuts a byte stream into frames. The payload limit may change between frames (the daemon allows a reply's text
 * only while a job runs); a frame over a limit, or a header that is not a JSON object, throws FrameError and leaves
 * the decoder unusable: the stream can no longer be trusted to be in step.
 */
export class FrameDecoder {
  maxPayloadBytes: number;
  readonly #maxHeaderBytes: number;
  #prefix = Buffer.alloc(FRAME_PREFIX_BYTES);
  #prefixFilled = 0;
  #headerBytes: Buffer | undefined;
  #headerFilled = 0;
  #header: Record<string, unknown> | undefined;
  #payload: Buffer | undefined;
  #payloadFilled = 0;
  #broken: FrameError | undefined;

  constructor(options: { maxPayloadBytes: number; maxHeaderBytes?: number }) {
    this.maxPayloadBytes = options.maxPayloadBytes;
    this.#maxHeaderBytes = options.maxHeaderBytes ?? MAX_HEADER_BYTES;
  }

  /** The frames this chunk completes, in order. */
  push(chunk: Uint8Array): Frame[] {
    if (this.#broken !== undefined) throw this.#broken;
    try {
      return this.#push(chunk);
    } catch (err) {
      this.#broken = err instanceof FrameError ? err : new FrameError(String(err));
      throw this.#broken;
    }
  }

  #push(chunk: Uint8Array): Frame[] {
    const frames: Frame[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      if (this.#prefixFilled < FRAME_PREFIX_BYTES) {
        const n = Math.min(FRAME_PREFIX_BYTES - this.#prefixFilled, chunk.length - pos);
        this.#prefix.set(chunk.subarray(pos, pos + n), this.#prefixFilled);
        this.#prefixFilled += n;
        pos += n;
        if (this.#prefixFilled < FRAME_PREFIX_BYTES) break;
        this.#begin();
      }
      if (this.#header === undefined) {
        const headerBytes = this.#headerBytes!;
        const n = Math.min(headerBytes.length - this.#headerFilled, chunk.length - pos);
        headerBytes.set(chunk.subarray(pos, pos + n), this.#headerFilled);
        this.#headerFilled += n;
        pos += n;
        if (this.#headerFilled < headerBytes.length) break;
        this.#header = parseHeader(headerBytes);
      }
      const payload = this.#payload!;
      const n = Math.min(payload.length - this.#payloadFilled, chunk.length - pos);
      if (n > 0) payload.set(chunk.subarray(pos, pos + n), this.#payloadFilled);
      this.#payloadFilled += n;
      pos += n;
      if (this.#payloadFilled < payload.length) break;
      frames.push({ header: this.#header, payload });
      this.#reset();
    }
    return frames;
  }

  /** The prefix is complete: check both lengths before allocating anything for them. */
  #begin(): void {
    const headerLength = this.#prefix.readUInt32LE(0);
    const payloadLength = this.#prefix.readUInt32LE(4);
    if (headerLength === 0 || headerLength > this.#maxHeaderBytes) {
      throw new FrameError(`a frame header of ${headerLength} bytes (at most ${this.#maxHeaderBytes})`);
    }
    if (payloadLength > this.maxPayloadBytes) {
      throw new FrameError(`a frame payload of ${payloadLength} bytes (at most ${this.maxPayloadBytes} now)`);
    }
    this.#headerBytes = Buffer.alloc(headerLength);
    this.#headerFilled = 0;
    this.#payload = Buffer.alloc(payloadLength);
    this.#payloadFilled = 0;
  }

  #reset(): void {
    this.#prefixFilled = 0;
    this.#headerBytes = undefined;
    this.#header = undefined;
    this.#payload = undefined;
    this.#payloadFilled = 0;
  }
}

function parseHeader(bytes: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw new FrameError("a frame header that is not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new FrameError("a frame header that is not a JSON object");
  }
  return value as Record<string, unknown>;
}
