/** A processor's input read chunk by chunk, hashed and counted as it goes (the text and OCR processors' records). */
import { createHash, type Hash } from "node:crypto";
import type { Readable } from "node:stream";

/** Reads the processor's input chunk by chunk, hashing and counting what goes by. */
export class SourceReader {
  readonly hash: Hash = createHash("sha256");
  bytes = 0;
  readonly #input: Readable;
  readonly #chunks: AsyncIterator<unknown>;

  constructor(input: Readable) {
    this.#input = input;
    this.#chunks = input[Symbol.asyncIterator]();
  }

  async next(): Promise<Buffer | undefined> {
    const r = await this.#chunks.next();
    if (r.done === true) return undefined;
    const chunk = typeof r.value === "string" ? Buffer.from(r.value) : (r.value as Buffer);
    this.hash.update(chunk);
    this.bytes += chunk.length;
    return chunk;
  }

  /** At least `n` bytes, unless the object is shorter (`complete`: it is all there is). */
  async head(n: number): Promise<{ bytes: Buffer; complete: boolean }> {
    const parts: Buffer[] = [];
    let length = 0;
    while (length < n) {
      const chunk = await this.next();
      if (chunk === undefined) return { bytes: Buffer.concat(parts), complete: true };
      parts.push(chunk);
      length += chunk.length;
    }
    return { bytes: Buffer.concat(parts), complete: false };
  }

  destroy(): void {
    if (!this.#input.destroyed) this.#input.destroy();
  }
}
