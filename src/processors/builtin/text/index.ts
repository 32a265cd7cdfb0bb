/**
 * The built-in `text` processor: the document's text as `<key>.txt` (UTF-8) and a record of it as
 * `<key>.text.json` (type, pages, counts, sha256, lineage, duration, warnings). `.text.json` rather than `.json`, so
 * it runs in one chain with `metadata`, which owns `<key>.json`.
 *
 * The type comes from the first bytes (detect.ts). Plain text (and Markdown, CSV, JSON, XML) is streamed: decoded
 * chunk by chunk, memory stays flat whatever the size. PDF, DOCX and HTML parsers need the whole document: those are
 * refused above maxBufferedBytes before anything more is read, buffered within a shared byte budget, and parsed in
 * the extraction child process under a time limit and a memory ceiling (host.ts). Documents that can never be read throw a
 * PermanentDocumentError, which the pipeline turns into `<key>.error.json`.
 */
import { existsSync } from "node:fs";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { fileTypeFromBuffer } from "file-type";
import type { DetectedType, SourceObjectInfo } from "../../../domain/document.js";
import { PermanentDocumentError } from "../../../errors/document.js";
import { sourceLineage, type Processor, type ProcessorContext, type ProcessorOutput, type SourceLineage } from "../../types.js";
import { detectDocument, type Detection } from "./detect.js";
import { bomEncoding, CountingDecoder } from "./encoding.js";
import type { ExtractionKind } from "./extract.js";
import type { ExtractedText } from "./extracted.js";
import { ExtractionHost } from "./host.js";
import { Budget } from "./limits.js";
import { SourceReader } from "./source-reader.js";
import { countText, TextCounter, type TextCounts } from "./stats.js";

export const TEXT_PROCESSOR_NAME = "text";
export const TEXT_PROCESSOR_VERSION = "1.0.0";
export const TEXT_SUFFIX = ".txt";
export const TEXT_RECORD_SUFFIX = ".text.json";

const MiB = 1024 * 1024;
/** file-type's "reasonable detection size"; the first chunk usually holds more and all of it is used. */
const SNIFF_BYTES = 4100;

export interface TextProcessorOptions {
  /**
   * Largest PDF, DOCX or HTML document (buffered to be parsed), and largest text extracted from one. Up to twice
   * this is buffered at once across documents (one parsing, the next downloading).
   */
  maxBufferedBytes: number;
  /** Time one document's parse may take in the extractor; past it the document is refused (TIMEOUT). */
  extractionTimeoutMs: number;
  /**
   * Ceiling on the extraction child process's private resident memory, its parsers included; past it the document
   * is refused (MEMORY_LIMIT).
   */
  extractionMemoryBytes: number;
  /** The extractor's entry. Default: extract-child.js next to this module (the build output). */
  extractorUrl: URL;
  /** An idle extractor is stopped after this long. */
  extractorIdleTimeoutMs: number;
}

/**
 * Sized for a t2.micro under the shipped unit (MemoryMax=512M): the daemon (~100 MiB resident), two 32 MiB buffers
 * and an extractor of at most 256 MiB of its own memory (about 52 MiB idle, the rest for one document: the largest PDF
 * allowed, 32 MiB of dense text, peaks near 235 MiB) stay under MemoryHigh (448M). The config keys of the same names
 * set them.
 */
export const TEXT_PROCESSOR_DEFAULTS: Readonly<Omit<TextProcessorOptions, "extractorUrl">> = {
  maxBufferedBytes: 32 * MiB,
  extractionTimeoutMs: 120_000,
  extractionMemoryBytes: 256 * MiB,
  extractorIdleTimeoutMs: 60_000,
};

/** The body of `<key>.text.json`. */
export interface TextRecord {
  source: SourceLineage;
  detectedType: DetectedType & { encoding?: string };
  /** PDF only; null for formats without pages. */
  pages: number | null;
  characters: number;
  words: number;
  lines: number;
  /** Size of `<key>.txt`. */
  textBytes: number;
  /** Invalid byte sequences replaced with U+FFFD (text and HTML). */
  replacementCharacters: number;
  /** Of the source object's bytes. */
  sha256: string;
  bytes: number;
  processor: { name: string; version: string };
  durationMs: number;
  warnings: string[];
}

export type TextProcessor = Processor & {
  /**
   * Kills the extraction child (tests; the daemon just exits: an idle child does not hold it, and every child is
   * killed when the daemon's process exits).
   */
  close(): Promise<void>;
};

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

function recordOf(
  source: SourceObjectInfo,
  detection: Detection,
  counts: TextCounts & { textBytes: number; pages: number | null; replacements: number },
  reader: SourceReader,
  started: number,
  warnings: string[],
): TextRecord {
  return {
    source: sourceLineage(source),
    detectedType: {
      ...detection.type,
      ...(detection.encoding === undefined ? {} : { encoding: detection.encoding }),
    },
    pages: counts.pages,
    characters: counts.characters,
    words: counts.words,
    lines: counts.lines,
    textBytes: counts.textBytes,
    replacementCharacters: counts.replacements,
    sha256: reader.hash.digest("hex"),
    bytes: reader.bytes,
    processor: { name: TEXT_PROCESSOR_NAME, version: TEXT_PROCESSOR_VERSION },
    durationMs: Math.round(performance.now() - started),
    warnings,
  };
}

const TEXT_CONTENT_TYPE = "text/plain; charset=utf-8";

/**
 * Plain text, streamed: `<key>.txt` is the decoded input as it arrives, and `<key>.text.json` is produced once that
 * stream has ended (outputs are written in order, so the record is always written after the text).
 */
function streamedOutputs(
  reader: SourceReader,
  head: Buffer,
  source: SourceObjectInfo,
  detection: Detection,
  started: number,
): ProcessorOutput[] {
  const encoding = detection.encoding ?? "utf-8";
  const decoder = new CountingDecoder(encoding);
  const counter = new TextCounter();
  let finish!: () => void;
  let abandon!: (err: Error) => void;
  const finished = new Promise<void>((resolve, reject) => {
    finish = resolve;
    abandon = reject;
  });
  // Read only by the record's stream, which may be destroyed before it reads it.
  finished.catch(() => undefined);

  const emit = (s: string): Buffer | undefined => {
    if (s.length === 0) return undefined;
    counter.push(s);
    return Buffer.from(s, "utf8");
  };
  async function* text(): AsyncGenerator<Buffer> {
    let done = false;
    try {
      const first = emit(decoder.decode(head));
      if (first !== undefined) yield first;
      for (let chunk = await reader.next(); chunk !== undefined; chunk = await reader.next()) {
        const out = emit(decoder.decode(chunk));
        if (out !== undefined) yield out;
      }
      const last = emit(decoder.end());
      if (last !== undefined) yield last;
      done = true;
      finish();
    } finally {
      if (!done) {
        abandon(new Error("the text output ended before the source did"));
        reader.destroy();
      }
    }
  }
  async function* record(): AsyncGenerator<Buffer> {
    await finished;
    const warnings: string[] = [];
    if (decoder.replacements > 0) {
      warnings.push(`${decoder.replacements} invalid ${encoding} byte sequence(s) replaced with U+FFFD`);
    }
    if (encoding !== "utf-8" && bomEncoding(head) === undefined) {
      warnings.push(`no byte order mark: ${encoding} was recognised from the pattern of zero bytes`);
    }
    const counts = { ...counter.counts(), textBytes: counter.bytes, pages: null, replacements: decoder.replacements };
    yield Buffer.from(json(recordOf(source, detection, counts, reader, started, warnings)));
  }
  return [
    { suffix: TEXT_SUFFIX, body: Readable.from(text(), { objectMode: false }), contentType: TEXT_CONTENT_TYPE },
    {
      suffix: TEXT_RECORD_SUFFIX,
      body: Readable.from(record(), { objectMode: false }),
      contentType: "application/json",
    },
  ];
}

export function createTextProcessor(options: Partial<TextProcessorOptions> = {}): TextProcessor {
  const settings: TextProcessorOptions = {
    ...TEXT_PROCESSOR_DEFAULTS,
    extractorUrl: new URL("./extract-child.js", import.meta.url),
    ...options,
  };
  // At start-up rather than on every document: without its extractor the processor can only fail.
  if (settings.extractorUrl.protocol !== "file:" || !existsSync(fileURLToPath(settings.extractorUrl))) {
    throw new Error(`the text processor's extractor is missing: ${settings.extractorUrl.href} (run the build)`);
  }
  const host = new ExtractionHost({
    extractorUrl: settings.extractorUrl,
    memoryLimitBytes: settings.extractionMemoryBytes,
    idleTimeoutMs: settings.extractorIdleTimeoutMs,
  });
  // One document parsing and the next one downloading, at most.
  const buffers = new Budget(2 * settings.maxBufferedBytes);

  /** PDF, DOCX, HTML: the size checked before buffering, the buffer within the budget, the parse in the extractor. */
  async function buffered(
    ctx: ProcessorContext,
    reader: SourceReader,
    head: Buffer,
    detection: Detection,
    kind: ExtractionKind,
    started: number,
  ): Promise<ProcessorOutput[]> {
    const { source, signal, log } = ctx;
    const size = source.size;
    if (size > settings.maxBufferedBytes) {
      throw new PermanentDocumentError(
        "TOO_LARGE",
        `a ${detection.type.ext ?? detection.type.mime} of ${size} bytes: the text processor parses at most ` +
          `maxBufferedBytes (${settings.maxBufferedBytes}) of PDF, DOCX or HTML`,
        { detectedType: detection.type },
      );
    }
    const release = await buffers.acquire(size, signal);
    let extracted: ExtractedText;
    try {
      const data = new Uint8Array(size);
      let offset = 0;
      for (let chunk: Buffer | undefined = head; chunk !== undefined; chunk = await reader.next()) {
        if (offset + chunk.length > size) throw new Error(`the source object is longer than its size (${size} bytes)`);
        data.set(chunk, offset);
        offset += chunk.length;
      }
      if (offset !== size) throw new Error(`the source ended after ${offset} of ${size} bytes`);
      if (detection.provisional === true) await confirmDocx(data);
      const run = await host.run(
        {
          kind,
          data,
          ...(detection.encoding === undefined ? {} : { encoding: detection.encoding }),
          limits: { maxTextBytes: settings.maxBufferedBytes, maxUncompressedBytes: settings.extractionMemoryBytes },
        },
        { signal, timeoutMs: settings.extractionTimeoutMs, detectedType: detection.type },
      );
      extracted = run.result;
      log.debug(
        { key: source.key, kind, bytes: size, extractorPeakRssBytes: run.peakRssBytes },
        "text extracted",
      );
    } finally {
      release();
    }
    const counts = countText(extracted.text);
    const warnings = [...extracted.warnings];
    if (counts.characters === 0 || counts.words === 0) {
      warnings.push(
        kind === "pdf"
          ? "no text found: a scanned PDF without a text layer needs OCR, which this processor does not do"
          : "no text found",
      );
    }
    const textBytes = Buffer.byteLength(extracted.text, "utf8");
    const record = recordOf(
      source,
      detection,
      { ...counts, textBytes, pages: extracted.pages ?? null, replacements: extracted.replacements ?? 0 },
      reader,
      started,
      warnings,
    );
    return [
      { suffix: TEXT_SUFFIX, body: extracted.text, contentType: TEXT_CONTENT_TYPE },
      { suffix: TEXT_RECORD_SUFFIX, body: json(record), contentType: "application/json" },
    ];
  }

  return {
    name: TEXT_PROCESSOR_NAME,
    version: TEXT_PROCESSOR_VERSION,
    outputSuffixes: [TEXT_SUFFIX, TEXT_RECORD_SUFFIX],
    async process(ctx: ProcessorContext): Promise<ProcessorOutput[]> {
      const started = performance.now();
      const { input, signal } = ctx;
      const reader = new SourceReader(input);
      const onAbort = (): void => {
        input.destroy(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
      };
      if (signal.aborted) onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      let streaming = false;
      try {
        const head = await reader.head(SNIFF_BYTES);
        const detection = await detectDocument(head.bytes, ctx.source.key, head.complete);
        if (detection.kind === "text") {
          streaming = true;
          return streamedOutputs(reader, head.bytes, ctx.source, detection, started);
        }
        return await buffered(ctx, reader, head.bytes, detection, detection.kind, started);
      } finally {
        signal.removeEventListener("abort", onAbort);
        // The streamed text reads the rest while it is written; everything else is finished with the input here.
        if (!streaming) reader.destroy();
      }
    },
    close: () => host.close(),
  };
}

/** A zip named .docx whose first entries were not conclusive: the whole archive must say DOCX. */
async function confirmDocx(data: Uint8Array): Promise<void> {
  let found;
  try {
    found = await fileTypeFromBuffer(data);
  } catch {
    found = undefined;
  }
  if (found?.ext === "docx") return;
  const type: DetectedType = { mime: found?.mime ?? "application/zip", ext: found?.ext ?? "zip" };
  const what = type.ext === "zip" ? "a zip archive without a Word document in it" : `a ${type.ext} file`;
  throw new PermanentDocumentError("UNSUPPORTED_TYPE", `named .docx but ${what}`, { detectedType: type });
}
