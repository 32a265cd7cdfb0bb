/**
 * The built-in `ocr` processor (opt-in): text from scans, on the instance, with Tesseract. Images (PNG, JPEG, TIFF
 * with all its pages, WebP, BMP, GIF's first frame) are recognised; a PDF gets its text layer where a page has one
 * and Tesseract where it has none. It writes `<key>.txt` as `text` does (pages separated by form feeds) and
 * `<key>.ocr.json`: per-page source, confidence, words and durations, the engine's and the language data's versions.
 * It reads only images and PDFs (anything else is UNSUPPORTED_TYPE) and replaces `text` in a chain rather than
 * joining it: both would write `<key>.txt`, and the chain is refused at start-up.
 *
 * Every limit that can be checked from the bytes is checked in the daemon before the OCR process sees them: the
 * size (maxBufferedBytes), an image's pixels (ocrMaxPixels) and a TIFF's pages (ocrMaxPages), from the headers. The
 * recognition runs in a child process like the text extractor's (text/child.ts, text/host.ts: no environment,
 * Node's permission model, a memory ceiling, killed on a limit) with a time limit per page and per document.
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type { DetectedType } from "../../../domain/document.js";
import { PermanentDocumentError } from "../../../errors/document.js";
import { sourceLineage, type Processor, type ProcessorContext, type ProcessorOutput, type SourceLineage } from "../../types.js";
import type { ExtractionKind, OcrJobOptions } from "../text/extract.js";
import type { ExtractedText, PageRecord } from "../text/extracted.js";
import { ExtractionHost } from "../text/host.js";
import { Budget } from "../text/limits.js";
import { SourceReader } from "../text/source-reader.js";
import { countText } from "../text/stats.js";
import { declaredSize, IMAGE_TYPES, imageFormatOf, readImageInfo, type ImageFormat } from "./image-header.js";
import { resolveLanguages, type LanguageData } from "./languages.js";

export const OCR_PROCESSOR_NAME = "ocr";
export const OCR_PROCESSOR_VERSION = "1.0.0";
export const OCR_TEXT_SUFFIX = ".txt";
export const OCR_RECORD_SUFFIX = ".ocr.json";

const MiB = 1024 * 1024;
const SNIFF_BYTES = 4100;
const PDF_TYPE: DetectedType = { mime: "application/pdf", ext: "pdf" };

export interface OcrProcessorOptions {
  /** Tesseract language codes joined by "+"; each needs its @tesseract.js-data/<code> package. */
  languages: string;
  /** Largest image or PDF (buffered to be read); also the largest text. */
  maxBufferedBytes: number;
  /** Most pages recognised in one document (PDF pages without a text layer, TIFF pages); more is TOO_MANY_PAGES. */
  maxPages: number;
  /** Largest image, in pixels: a larger image is TOO_LARGE, a larger PDF page is rendered at a lower resolution. */
  maxPixels: number;
  /** Resolution PDF pages are rendered at. */
  dpi: number;
  /** One page's recognition; past it, TIMEOUT. */
  pageTimeoutMs: number;
  /** One document's; past it, TIMEOUT. */
  timeoutMs: number;
  /** Ceiling on the OCR process's private resident memory; past it, MEMORY_LIMIT. */
  memoryBytes: number;
  /** The OCR process's entry. Default: ocr-child.js next to this module (the build output). */
  extractorUrl: URL;
  extractorIdleTimeoutMs: number;
}

/**
 * Sized for a t2.micro under the shipped unit (MemoryMax=512M, MemoryHigh=448M): the daemon (~100 MiB), two 32 MiB
 * buffers and an OCR process of at most 280 MiB stay under MemoryHigh (444 MiB). The OCR process measured about
 * 75 MiB idle, 197-208 MiB for a 12-megapixel JPEG and 251-259 MiB for scanned PDFs of dense 300-dpi pages
 * (Tesseract's WebAssembly memory keeps the first page's size while the next one is rendered). 12 million pixels
 * takes a 12-megapixel photo of a letter. The config keys ocr* (and maxBufferedBytes) set them.
 */
export const OCR_PROCESSOR_DEFAULTS: Readonly<Omit<OcrProcessorOptions, "extractorUrl">> = {
  languages: "eng",
  maxBufferedBytes: 32 * MiB,
  maxPages: 50,
  maxPixels: 12_000_000,
  dpi: 300,
  pageTimeoutMs: 120_000,
  timeoutMs: 600_000,
  memoryBytes: 280 * MiB,
  extractorIdleTimeoutMs: 60_000,
};

/** The body of `<key>.ocr.json`. */
export interface OcrRecord {
  source: SourceLineage;
  detectedType: DetectedType;
  pages: number;
  /** Pages recognised by Tesseract (the others came from the PDF's text layer). */
  ocrPages: number;
  characters: number;
  words: number;
  textBytes: number;
  /** Mean of the recognised pages' confidences weighted by their words; null when no page was recognised. */
  meanConfidence: number | null;
  engine: { name: "tesseract"; version: string; build: string };
  languages: { code: string; package: string; version: string; model: string }[];
  pageRecords: PageRecord[];
  sha256: string;
  bytes: number;
  processor: { name: string; version: string };
  durationMs: number;
  warnings: string[];
}

export type OcrProcessor = Processor & { close(): Promise<void> };

/** tesseract.js-core's version, as installed (the WebAssembly build of Tesseract the child runs). */
function engineBuild(): string {
  const require = createRequire(import.meta.url);
  const manifest = JSON.parse(readFileSync(require.resolve("tesseract.js-core/package.json"), "utf8")) as { version?: string };
  return `tesseract.js-core ${manifest.version ?? "unknown"}`;
}

function unsupported(type: DetectedType | undefined): PermanentDocumentError {
  return new PermanentDocumentError(
    "UNSUPPORTED_TYPE",
    "the ocr processor reads images (PNG, JPEG, TIFF, WebP, BMP, GIF) and PDF; DOCX, HTML and plain text are the " +
      "text processor's, which cannot run in the same chain (both write <key>.txt)",
    type === undefined ? undefined : { detectedType: type },
  );
}

/** A PDF's header may come after up to 1 KiB of anything (as PDF readers allow). */
function isPdf(head: Uint8Array): boolean {
  return Buffer.from(head.subarray(0, 1024)).includes("%PDF-");
}

function meanConfidence(pages: readonly PageRecord[]): number | null {
  const read = pages.filter((p) => p.source === "ocr" && p.confidence !== null);
  const words = read.reduce((sum, p) => sum + p.words, 0);
  if (read.length === 0) return null;
  if (words === 0) return 0;
  return Math.round((read.reduce((sum, p) => sum + p.confidence! * p.words, 0) / words) * 10) / 10;
}

export function createOcrProcessor(options: Partial<OcrProcessorOptions> = {}): OcrProcessor {
  const settings: OcrProcessorOptions = {
    ...OCR_PROCESSOR_DEFAULTS,
    extractorUrl: new URL("./ocr-child.js", import.meta.url),
    ...options,
  };
  // At start-up: without its language data or its child the processor can only fail.
  const languages: LanguageData[] = resolveLanguages(settings.languages);
  if (settings.extractorUrl.protocol !== "file:" || !existsSync(fileURLToPath(settings.extractorUrl))) {
    throw new Error(`the ocr processor's child is missing: ${settings.extractorUrl.href} (run the build)`);
  }
  const build = engineBuild();
  const host = new ExtractionHost({
    extractorUrl: settings.extractorUrl,
    memoryLimitBytes: settings.memoryBytes,
    idleTimeoutMs: settings.extractorIdleTimeoutMs,
  });
  const buffers = new Budget(2 * settings.maxBufferedBytes);
  const jobOptions: OcrJobOptions = {
    languages: languages.map(({ code, path }) => ({ code, path })),
    maxPages: settings.maxPages,
    maxPixels: settings.maxPixels,
    dpi: settings.dpi,
  };

  /** The whole object, within the shared buffer budget (released by the caller). */
  async function readAll(reader: SourceReader, head: Buffer, size: number): Promise<Uint8Array> {
    const data = new Uint8Array(size);
    let offset = 0;
    for (let chunk: Buffer | undefined = head; chunk !== undefined; chunk = await reader.next()) {
      if (offset + chunk.length > size) throw new Error(`the source object is longer than its size (${size} bytes)`);
      data.set(chunk, offset);
      offset += chunk.length;
    }
    if (offset !== size) throw new Error(`the source ended after ${offset} of ${size} bytes`);
    return data;
  }

  /** The limit an image's headers can be held to before it goes anywhere (its pages are counted when read). */
  function checkImage(info: { format: ImageFormat; width: number; height: number; pixels?: number }): void {
    const pixels = info.pixels ?? info.width * info.height;
    if (pixels > settings.maxPixels) {
      throw new PermanentDocumentError(
        "TOO_LARGE",
        `a ${info.width} x ${info.height} ${info.format.toUpperCase()} image (${pixels} pixels to decode): the ocr processor reads ` +
          `at most ocrMaxPixels (${settings.maxPixels})`,
        { detectedType: IMAGE_TYPES[info.format] },
      );
    }
  }

  async function recognise(
    ctx: ProcessorContext,
    kind: ExtractionKind,
    data: Uint8Array,
    type: DetectedType,
    tiffDirectories?: number[],
  ): Promise<ExtractedText> {
    const run = await host.run(
      {
        kind,
        data,
        limits: { maxTextBytes: settings.maxBufferedBytes, maxUncompressedBytes: settings.memoryBytes },
        ocr: { ...jobOptions, ...(tiffDirectories === undefined ? {} : { tiffDirectories }) },
      },
      { signal: ctx.signal, timeoutMs: settings.timeoutMs, pageTimeoutMs: settings.pageTimeoutMs, detectedType: type },
    );
    ctx.log.debug({ key: ctx.source.key, kind, bytes: data.length, ocrPeakRssBytes: run.peakRssBytes }, "ocr done");
    return run.result;
  }

  async function processBuffered(ctx: ProcessorContext, reader: SourceReader, head: Buffer, started: number): Promise<ProcessorOutput[]> {
    const format = imageFormatOf(head);
    const type = format !== undefined ? IMAGE_TYPES[format] : isPdf(head) ? PDF_TYPE : undefined;
    if (type === undefined) throw unsupported(undefined);
    const size = ctx.source.size;
    if (size > settings.maxBufferedBytes) {
      throw new PermanentDocumentError(
        "TOO_LARGE",
        `a ${type.ext ?? type.mime} of ${size} bytes: the ocr processor reads at most maxBufferedBytes (${settings.maxBufferedBytes})`,
        { detectedType: type },
      );
    }
    // From the first bytes where they say: a dimension bomb is refused before it is buffered.
    const declared = declaredSize(head);
    if (declared !== undefined) checkImage(declared);
    const release = await buffers.acquire(size, ctx.signal);
    let extracted: ExtractedText;
    const warnings: string[] = [];
    try {
      const data = await readAll(reader, head, size);
      if (format !== undefined) {
        const info = readImageInfo(data, settings.maxPages);
        checkImage(info);
        extracted = await recognise(ctx, "ocr-image", data, type, info.directories);
      } else {
        extracted = await recognise(ctx, "ocr-pdf", data, type);
      }
    } finally {
      release();
    }
    const pageRecords = extracted.pageRecords ?? [];
    const counts = countText(extracted.text);
    warnings.push(...extracted.warnings);
    if (counts.words === 0) warnings.push("no text found");
    const record: OcrRecord = {
      source: sourceLineage(ctx.source),
      detectedType: type,
      pages: extracted.pages ?? pageRecords.length,
      ocrPages: pageRecords.filter((p) => p.source === "ocr").length,
      characters: counts.characters,
      words: counts.words,
      textBytes: Buffer.byteLength(extracted.text, "utf8"),
      meanConfidence: meanConfidence(pageRecords),
      engine: { name: "tesseract", version: extracted.engine ?? "unknown", build },
      languages: languages.map(({ code, package: pkg, version, model }) => ({ code, package: pkg, version, model })),
      pageRecords,
      sha256: reader.hash.digest("hex"),
      bytes: reader.bytes,
      processor: { name: OCR_PROCESSOR_NAME, version: OCR_PROCESSOR_VERSION },
      durationMs: Math.round(performance.now() - started),
      warnings,
    };
    return [
      { suffix: OCR_TEXT_SUFFIX, body: extracted.text, contentType: "text/plain; charset=utf-8" },
      { suffix: OCR_RECORD_SUFFIX, body: `${JSON.stringify(record, null, 2)}\n`, contentType: "application/json" },
    ];
  }

  return {
    name: OCR_PROCESSOR_NAME,
    version: OCR_PROCESSOR_VERSION,
    outputSuffixes: [OCR_TEXT_SUFFIX, OCR_RECORD_SUFFIX],
    async process(ctx: ProcessorContext): Promise<ProcessorOutput[]> {
      const started = performance.now();
      const { input, signal } = ctx;
      const reader = new SourceReader(input);
      const onAbort = (): void => {
        input.destroy(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
      };
      if (signal.aborted) onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        const head = await reader.head(SNIFF_BYTES);
        if (head.complete && head.bytes.length === 0) {
          throw new PermanentDocumentError("EMPTY", "the object is empty: there is nothing to read", {
            detectedType: { mime: "inode/x-empty" },
          });
        }
        return await processBuffered(ctx, reader, head.bytes, started);
      } finally {
        signal.removeEventListener("abort", onAbort);
        reader.destroy();
      }
    },
    close: () => host.close(),
  };
}
