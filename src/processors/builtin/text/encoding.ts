/**
 * Encoding of plain text, from its first bytes: a byte order mark, else the shape of UTF-16 (Latin-script UTF-16 has
 * a zero in every other byte), else UTF-8. Decoding never fails: invalid bytes become U+FFFD and are counted.
 */
import { TextDecoder } from "node:util";

export type TextEncodingName = "utf-8" | "utf-16le" | "utf-16be";

export interface EncodingGuess {
  encoding: TextEncodingName;
  bom: boolean;
}

/** The encoding a byte order mark at the start of `head` announces, if any. */
export function bomEncoding(head: Uint8Array): TextEncodingName | undefined {
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return "utf-8";
  if (head[0] === 0xff && head[1] === 0xfe) return "utf-16le";
  if (head[0] === 0xfe && head[1] === 0xff) return "utf-16be";
  return undefined;
}

/**
 * UTF-16 without a BOM, recognised only when most code units have a zero high byte (text in a Latin script): a zero
 * in at least 40% of the odd bytes (little endian) or even bytes (big endian), and almost none on the other side.
 * Text in other scripts has no such pattern and cannot be told from binary without a BOM.
 */
export function utf16Shape(head: Uint8Array): "utf-16le" | "utf-16be" | undefined {
  const units = Math.floor(head.length / 2);
  if (units < 2) return undefined;
  let zeroEven = 0;
  let zeroOdd = 0;
  for (let i = 0; i < units * 2; i += 2) {
    if (head[i] === 0) zeroEven++;
    if (head[i + 1] === 0) zeroOdd++;
  }
  if (zeroOdd >= units * 0.4 && zeroEven <= units * 0.05) return "utf-16le";
  if (zeroEven >= units * 0.4 && zeroOdd <= units * 0.05) return "utf-16be";
  return undefined;
}

export function detectEncoding(head: Uint8Array): EncodingGuess {
  const bom = bomEncoding(head);
  if (bom !== undefined) return { encoding: bom, bom: true };
  return { encoding: utf16Shape(head) ?? "utf-8", bom: false };
}

/**
 * Streaming decoder that counts the U+FFFD it had to insert. TextDecoder does not report them, so the count is the
 * U+FFFD in the output minus those validly encoded in the input (EF BF BD in UTF-8, the unit FFFD in UTF-16): those
 * byte patterns decode to U+FFFD wherever they appear, since none of their bytes can continue another sequence.
 */
export class CountingDecoder {
  readonly encoding: TextEncodingName;
  /** Invalid byte sequences replaced with U+FFFD so far. */
  replacements = 0;
  readonly #decoder: TextDecoder;
  #fffdOut = 0;
  #fffdIn = 0;
  // UTF-8: the last two bytes seen, so an encoded U+FFFD split across chunks is still recognised.
  #prev1 = -1;
  #prev2 = -1;
  // UTF-16: the first byte of a unit cut at the end of the previous chunk.
  #pending: number | undefined;

  constructor(encoding: TextEncodingName) {
    this.encoding = encoding;
    // Not fatal: replacing is the point. A BOM is dropped (ignoreBOM false): the output is UTF-8 without one.
    this.#decoder = new TextDecoder(encoding);
  }

  decode(chunk: Uint8Array): string {
    if (this.encoding === "utf-8") this.#scanUtf8(chunk);
    else this.#scanUtf16(chunk);
    return this.#count(this.#decoder.decode(chunk, { stream: true }));
  }

  end(): string {
    return this.#count(this.#decoder.decode());
  }

  #count(s: string): string {
    for (let i = s.indexOf("\ufffd"); i !== -1; i = s.indexOf("\ufffd", i + 1)) this.#fffdOut++;
    this.replacements = Math.max(0, this.#fffdOut - this.#fffdIn);
    return s;
  }

  #scanUtf8(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    for (let i = chunk.indexOf(0xbd); i !== -1; i = chunk.indexOf(0xbd, i + 1)) {
      const p1 = i >= 1 ? chunk[i - 1] : this.#prev1;
      const p2 = i >= 2 ? chunk[i - 2] : i === 1 ? this.#prev1 : this.#prev2;
      if (p1 === 0xbf && p2 === 0xef) this.#fffdIn++;
    }
    this.#prev2 = chunk.length >= 2 ? chunk[chunk.length - 2]! : this.#prev1;
    this.#prev1 = chunk[chunk.length - 1]!;
  }

  #scanUtf16(chunk: Uint8Array): void {
    // U+FFFD as laid out in the stream: FD FF little endian, FF FD big endian.
    const [b0, b1] = this.encoding === "utf-16le" ? [0xfd, 0xff] : [0xff, 0xfd];
    let i = 0;
    if (this.#pending !== undefined && chunk.length > 0) {
      if (this.#pending === b0 && chunk[0] === b1) this.#fffdIn++;
      this.#pending = undefined;
      i = 1;
    }
    for (; i + 1 < chunk.length; i += 2) if (chunk[i] === b0 && chunk[i + 1] === b1) this.#fffdIn++;
    if (i < chunk.length) this.#pending = chunk[i];
  }
}
