/**
 * An OCR job in the OCR child: an image recognised as it is, or a PDF read page by page, its text layer where it
 * has one and Tesseract where it has none. A PDF is read twice: first every page's text layer (cheap), counting the
 * pages without one, so a PDF of 5,000 scanned pages is refused (TOO_MANY_PAGES) before the first is rendered; then
 * those pages rendered and recognised one at a time, each announced to the daemon (`onPage`), which holds each page
 * to its own time limit.
 */
import type { DetectedType } from "../../../domain/document.js";
import { PermanentDocumentError } from "../../../errors/document.js";
import type { ExtractionJob, OcrJobOptions } from "../text/extract.js";
import { TextBudget, WarningList, type ExtractedText, type PageRecord } from "../text/extracted.js";
import { classify, openPdf, pageText, tooLarge } from "../text/pdf.js";
import { countWords, UnreadableImageError, type OcrEngine } from "./engine.js";
import { renderPage } from "./render.js";

/**
 * A page whose text layer has fewer non-blank characters than this is recognised instead: a scan often carries a
 * stamped page number or a header and nothing else.
 */
export const MIN_TEXT_LAYER_CHARS = 16;
/** Below this resolution (a page rendered smaller to fit ocrMaxPixels) Tesseract reads little: worth a warning. */
const LOW_DPI = 150;
const PDF_TYPE: DetectedType = { mime: "application/pdf", ext: "pdf" };
const CLEANUP_EVERY_PAGES = 100;
/**
 * Most pages of one PDF, whatever their kind: the reply lists a record per page in its header, which may hold 1 MiB,
 * and 8,000 of the longest records (121 bytes) fit. Past it the OCR process could not send its reply at all and the
 * document failed as the daemon's fault, to be retried.
 */
export const MAX_PDF_PAGES = 8_000;

function nonBlank(text: string): number {
  let n = 0;
  for (const _ of text.matchAll(/\S/g)) n++;
  return n;
}

const elapsed = (since: number): number => Math.round(performance.now() - since);

/** A full collection where the child was started with --expose-gc (the OCR child is); a no-op elsewhere (tests). */
function collect(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

export async function runOcr(job: ExtractionJob, engine: OcrEngine, onPage: () => void): Promise<ExtractedText> {
  const options = job.ocr;
  if (options === undefined) throw new Error(`an ${job.kind} job without its OCR settings`);
  engine.use(options.languages);
  switch (job.kind) {
    case "ocr-image":
      return ocrImage(job.data, options.tiffDirectories, engine, onPage);
    case "ocr-pdf":
      return ocrPdf(job, options, engine, onPage);
    default:
      throw new Error(`the OCR extractor does not run ${job.kind} jobs`);
  }
}

/**
 * An image, or each page of a TIFF: TIFF offsets are absolute, so the header pointed at a page's directory makes
 * the same bytes read as that page (the engine's image library reads a TIFF's first page only).
 */
function ocrImage(data: Uint8Array, tiffDirectories: number[] | undefined, engine: OcrEngine, onPage: () => void): ExtractedText {
  const texts: string[] = [];
  const records: PageRecord[] = [];
  const directories = tiffDirectories ?? [undefined];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const little = data[0] === 0x49;
  directories.forEach((directory, i) => {
    onPage();
    const started = performance.now();
    if (directory !== undefined) view.setUint32(4, directory, little);
    let found;
    try {
      found = engine.recognize(data);
    } catch (err) {
      if (err instanceof UnreadableImageError) {
        const which = directories.length > 1 ? ` (page ${i + 1})` : "";
        throw new PermanentDocumentError("CORRUPT", `${err.message}${which}`, { cause: err });
      }
      throw err;
    }
    texts.push(found.text.trimEnd());
    records.push({ page: i + 1, source: "ocr", confidence: found.confidence, words: found.words, durationMs: elapsed(started) });
  });
  return { text: texts.map((t) => `${t}\n`).join("\f"), pages: texts.length, warnings: [], pageRecords: records, engine: engine.version };
}

async function ocrPdf(job: ExtractionJob, options: OcrJobOptions, engine: OcrEngine, onPage: () => void): Promise<ExtractedText> {
  const warnings = new WarningList();
  const task = await openPdf(job.data, { verbosity: job.verbosity ?? 0 });
  try {
    const doc = await task.promise;
    if (doc.numPages > MAX_PDF_PAGES) {
      throw new PermanentDocumentError(
        "TOO_MANY_PAGES",
        `a PDF of ${doc.numPages} pages: the OCR processor reads at most ${MAX_PDF_PAGES} pages of one document (its record lists every page)`,
        { detectedType: PDF_TYPE },
      );
    }
    // Pass 1: every text layer, and which pages have none.
    const texts: string[] = [];
    const records: PageRecord[] = [];
    const scanned: number[] = [];
    for (let n = 1; n <= doc.numPages; n++) {
      const started = performance.now();
      let text = "";
      let opened = true;
      try {
        const page = await doc.getPage(n);
        text = (await pageText(page)).trimEnd();
        page.cleanup();
      } catch (err) {
        // A page PDF.js cannot open is skipped with a warning, as the text processor does; rendering it would fail
        // the same way and take the other pages with it.
        opened = false;
        warnings.add(`page ${n}: ${err instanceof Error ? err.message : String(err)}`);
      }
      texts.push(text);
      records.push({ page: n, source: "text-layer", confidence: null, words: countWords(text), durationMs: elapsed(started) });
      if (opened && nonBlank(text) < MIN_TEXT_LAYER_CHARS) scanned.push(n);
      if (n % CLEANUP_EVERY_PAGES === 0) await doc.cleanup();
    }
    if (scanned.length > options.maxPages) {
      throw new PermanentDocumentError(
        "TOO_MANY_PAGES",
        `${scanned.length} of the PDF's ${doc.numPages} pages have no text layer: the OCR processor recognises at most ` +
          `ocrMaxPages (${options.maxPages}) pages of one document`,
        { detectedType: PDF_TYPE },
      );
    }
    await doc.cleanup();
    // Pass 2: the pages without a text layer, one at a time.
    for (const n of scanned) {
      onPage();
      const started = performance.now();
      let image;
      let page;
      try {
        page = await doc.getPage(n);
        image = await renderPage(doc, page, options.dpi, options.maxPixels);
      } catch (err) {
        warnings.add(`page ${n} could not be rendered: ${err instanceof Error ? err.message : String(err)}`);
        continue;
      } finally {
        page?.cleanup();
      }
      if (image.dpi < LOW_DPI) {
        warnings.add(`page ${n} is large: rendered at ${image.dpi} dpi to stay within ocrMaxPixels, too low to read well`);
      }
      const { pgm, width, height, dpi } = image;
      image = undefined;
      // The canvas and PDF.js's decoded image are garbage now: collected before Tesseract allocates, they do not add
      // to its peak (tens of ms, against seconds of recognition).
      collect();
      let found;
      try {
        found = engine.recognize(pgm, dpi);
      } catch (err) {
        if (!(err instanceof UnreadableImageError)) throw err;
        warnings.add(`page ${n}: the rendered page could not be read back`);
        continue;
      }
      texts[n - 1] = found.text.trimEnd();
      records[n - 1] = { page: n, source: "ocr", confidence: found.confidence, words: found.words, durationMs: elapsed(started), width, height, dpi };
    }
    const budget = new TextBudget(job.limits.maxTextBytes, tooLarge);
    for (const t of texts) budget.add(t);
    return {
      text: texts.map((t) => `${t}\n`).join("\f"),
      pages: doc.numPages,
      warnings: warnings.toArray(),
      pageRecords: records,
      engine: engine.version,
    };
  } catch (err) {
    throw classify(err);
  } finally {
    await task.destroy();
  }
}
