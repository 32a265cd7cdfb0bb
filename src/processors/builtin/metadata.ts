/**
 * The built-in `metadata` processor: one pass over the object computing sha256, size, the content type sniffed from
 * the bytes and, for text, line and word counts. Memory stays flat whatever the size: only a 4100-byte sample and
 * the counters are kept. Writes `<outputPrefix><key>.json`.
 */
import { createHash } from "node:crypto";
import { fileTypeFromBuffer } from "file-type";
import { sourceLineage, type Processor, type ProcessorContext, type ProcessorOutput, type SourceLineage } from "../types.js";

export const METADATA_PROCESSOR_NAME = "metadata";
export const METADATA_PROCESSOR_VERSION = "1.0.0";

/** file-type's own "reasonable detection size": most formats are recognised within it. */
export const SNIFF_BYTES = 4100;

export interface MetadataDocument {
  source: SourceLineage;
  sha256: string;
  bytes: number;
  detectedType: { mime: string; ext?: string };
  text?: { lines: number; words: number };
  processor: { name: string; version: string };
}

/**
 * Whether a sample looks like UTF-8 text: no NUL and valid UTF-8. When the sample is a prefix of a longer object
 * (`complete` false), a multi-byte character cut at its end is allowed.
 */
export function looksLikeText(sample: Uint8Array, complete: boolean): boolean {
  if (sample.includes(0)) return false;
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(sample, { stream: !complete });
    return true;
  } catch {
    return false;
  }
}

/** The characters JavaScript's \s matches: what separates words, in any script (shared with the text processor). */
export function isWhitespace(c: number): boolean {
  return (
    (c >= 0x09 && c <= 0x0d) ||
    c === 0x20 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

/** The smallest code point each UTF-8 sequence length may encode; anything below is an overlong (invalid) form. */
const MIN_CODE_POINT = [0, 0, 0x80, 0x800, 0x10000] as const;
const REPLACEMENT = 0xfffd;
const [WORD, SPACE, NEWLINE] = [0, 1, 2] as const;
/** What each ASCII byte is to the counter: part of a word, a space, or a newline (also a space). */
const ASCII_KIND = Uint8Array.from({ length: 0x80 }, (_, b) => (b === 0x0a ? NEWLINE : isWhitespace(b) ? SPACE : WORD));

/**
 * Line and word counts fed chunk by chunk, read straight from the UTF-8 bytes: decoding every chunk to a string first
 * cost as much CPU as everything else the processor does. State carries across chunks, so a word, a line or a
 * multi-byte character split between two chunks counts once. Invalid bytes count as a non-space character (as the
 * U+FFFD a decoder would give). Lines are `\n`-terminated, plus a last line without one.
 */
export class TextStats {
  lines = 0;
  words = 0;
  #inWord = false;
  /** The last character counted; a newline before any (so empty input has no line). */
  #last = 0x0a;
  /** A byte order mark is skipped only as the very first character, as a decoder does. */
  #atStart = true;
  /** Continuation bytes still expected, the code point so far, and the length of the sequence being read. */
  #need = 0;
  #cp = 0;
  #length = 0;

  push(chunk: Uint8Array): void {
    const n = chunk.length;
    let { words, lines } = this;
    let inWord = this.#inWord;
    let last = this.#last;
    let atStart = this.#atStart;
    let need = this.#need;
    let cp = this.#cp;
    let length = this.#length;
    for (let i = 0; i < n; i++) {
      if (need === 0 && chunk[i]! < 0x80) {
        // The common case, kept tight: a run of ASCII bytes, one table lookup each, no branches on the counts.
        for (; i < n; i++) {
          const b = chunk[i]!;
          if (b >= 0x80) break;
          const kind = ASCII_KIND[b]!;
          words += kind === WORD && !inWord ? 1 : 0;
          inWord = kind === WORD;
          lines += kind === NEWLINE ? 1 : 0;
        }
        last = chunk[i - 1]!;
        atStart = false;
        if (i === n) break;
      }
      const b = chunk[i]!;
      let c: number;
      if (need > 0 && (b & 0xc0) === 0x80) {
        cp = (cp << 6) | (b & 0x3f);
        if (--need > 0) continue;
        c = cp < MIN_CODE_POINT[length]! || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ? REPLACEMENT : cp;
        if (atStart && c === 0xfeff) {
          atStart = false;
          continue;
        }
      } else {
        if (need > 0) {
          // A sequence cut short: one non-space character, then this byte starts afresh.
          need = 0;
          if (!inWord) {
            inWord = true;
            words++;
          }
          last = REPLACEMENT;
          atStart = false;
        }
        if (b < 0x80) {
          c = b;
          if (b === 0x0a) lines++;
        } else {
          length = b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
          if (length > 0) {
            cp = b & (0xff >> (length + 1));
            need = length - 1;
            continue;
          }
          c = REPLACEMENT; // a stray continuation byte or a byte that never starts a sequence
        }
      }
      atStart = false;
      last = c;
      if (isWhitespace(c)) inWord = false;
      else if (!inWord) {
        inWord = true;
        words++;
      }
    }
    this.words = words;
    this.lines = lines;
    this.#inWord = inWord;
    this.#last = last;
    this.#atStart = atStart;
    this.#need = need;
    this.#cp = cp;
    this.#length = length;
  }

  end(): { lines: number; words: number } {
    if (this.#need > 0) {
      // Cut off at the end: one last non-space character.
      this.#need = 0;
      if (!this.#inWord) this.words++;
      this.#inWord = true;
      this.#last = REPLACEMENT;
    }
    return { lines: this.lines + (this.#last === 0x0a ? 0 : 1), words: this.words };
  }
}

async function sniff(sample: Uint8Array, isText: boolean): Promise<{ mime: string; ext?: string }> {
  let found;
  try {
    found = await fileTypeFromBuffer(sample);
  } catch {
    // A truncated container can make a detector throw; the fallback below still describes the bytes.
    found = undefined;
  }
  if (found !== undefined) return { mime: found.mime, ext: found.ext };
  return isText ? { mime: "text/plain", ext: "txt" } : { mime: "application/octet-stream" };
}

async function describe(ctx: ProcessorContext): Promise<MetadataDocument> {
  const { input, source, signal } = ctx;
  const hash = createHash("sha256");
  const sample = new Uint8Array(SNIFF_BYTES);
  let sampled = 0;
  let bytes = 0;
  let isText: boolean | undefined;
  const stats = new TextStats();

  const onAbort = (): void => {
    input.destroy(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
  };
  if (signal.aborted) onAbort();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const raw of input) {
      const chunk: Uint8Array = typeof raw === "string" ? Buffer.from(raw) : (raw as Uint8Array);
      hash.update(chunk);
      bytes += chunk.length;
      if (sampled < SNIFF_BYTES) {
        const take = Math.min(SNIFF_BYTES - sampled, chunk.length);
        sample.set(chunk.subarray(0, take), sampled);
        sampled += take;
        if (sampled === SNIFF_BYTES) isText = looksLikeText(sample, false);
      }
      // Until the sample decides, count anyway; once it says binary, spare the CPU.
      if (isText !== false) stats.push(chunk);
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    // for-await destroys the stream on a throw; this covers a break or an early return added later.
    if (!input.readableEnded) input.destroy();
  }
  signal.throwIfAborted();

  const head = sample.subarray(0, sampled);
  isText ??= looksLikeText(head, true);
  const doc: MetadataDocument = {
    source: sourceLineage(source),
    sha256: hash.digest("hex"),
    bytes,
    detectedType: await sniff(head, isText),
    ...(isText ? { text: stats.end() } : {}),
    processor: { name: METADATA_PROCESSOR_NAME, version: METADATA_PROCESSOR_VERSION },
  };
  return doc;
}

export function createMetadataProcessor(): Processor {
  return {
    name: METADATA_PROCESSOR_NAME,
    version: METADATA_PROCESSOR_VERSION,
    async process(ctx: ProcessorContext): Promise<ProcessorOutput[]> {
      const doc = await describe(ctx);
      ctx.log.debug({ bytes: doc.bytes, mime: doc.detectedType.mime }, "metadata computed");
      return [{ suffix: ".json", body: `${JSON.stringify(doc, null, 2)}\n`, contentType: "application/json" }];
    },
  };
}
