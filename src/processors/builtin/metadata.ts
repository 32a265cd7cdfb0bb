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

/**
 * Line and word counts fed chunk by chunk. State carries across chunks, so a word, a line or a multi-byte character
 * split between two chunks counts once. Lines are `\n`-terminated, plus a last line without one.
 */
export class TextStats {
  lines = 0;
  words = 0;
  #inWord = false;
  #endsWithNewline = true;
  // Not fatal: text is decided on the sample; a stray invalid byte later must not lose the counts.
  readonly #decoder = new TextDecoder("utf-8");

  push(chunk: Uint8Array): void {
    this.#count(this.#decoder.decode(chunk, { stream: true }));
  }

  end(): { lines: number; words: number } {
    this.#count(this.#decoder.decode());
    return { lines: this.lines + (this.#endsWithNewline ? 0 : 1), words: this.words };
  }

  #count(s: string): void {
    if (s.length === 0) return;
    let { words, lines } = this;
    let inWord = this.#inWord;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === 0x0a) lines++;
      if (isWhitespace(c)) {
        inWord = false;
      } else if (!inWord) {
        inWord = true;
        words++;
      }
    }
    this.words = words;
    this.lines = lines;
    this.#inWord = inWord;
    this.#endsWithNewline = s.charCodeAt(s.length - 1) === 0x0a;
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
