/**
 * PDF text with PDF.js (pdfjs-dist's legacy build, the one meant for Node): text per page, pages separated by a form
 * feed as pdftotext does. Runs in the extraction child process: PDF.js parses synchronously in long stretches and
 * can be made to allocate a lot, and only a separate process can be stopped in the middle of that and give all its
 * memory back.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { PDFDocumentLoadingTask, PDFPageProxy } from "pdfjs-dist/legacy/build/pdf.mjs";
import type { DetectedType } from "../../../domain/document.js";
import { PermanentDocumentError } from "../../../errors/document.js";
import { TextBudget, WarningList, type ExtractLimits, type ExtractedText } from "./extracted.js";

const PDF_TYPE: DetectedType = { mime: "application/pdf", ext: "pdf" };
const CLEANUP_EVERY_PAGES = 100;

/** Where pdfjs-dist keeps the standard fonts and CMaps (read from disk in Node; both need a trailing slash). */
function pdfjsData(): { standardFontDataUrl: string; cMapUrl: string } {
  const root = dirname(createRequire(import.meta.url).resolve("pdfjs-dist/package.json"));
  return { standardFontDataUrl: `${join(root, "standard_fonts")}/`, cMapUrl: `${join(root, "cmaps")}/` };
}

export function tooLarge(limit: number): PermanentDocumentError {
  return new PermanentDocumentError("TOO_LARGE", `the extracted text is larger than ${limit} bytes`, {
    detectedType: PDF_TYPE,
  });
}

/** Maps PDF.js's errors: a password, a broken structure; anything else it throws on these bytes is corrupt too. */
export function classify(err: unknown): PermanentDocumentError {
  if (err instanceof PermanentDocumentError) return err;
  const name = err instanceof Error ? err.name : "";
  const message = err instanceof Error ? err.message : String(err);
  if (name === "PasswordException") {
    return new PermanentDocumentError("ENCRYPTED", `the PDF is password-protected (${message})`, {
      detectedType: PDF_TYPE,
      cause: err,
    });
  }
  const what = name === "InvalidPDFException" ? "not a readable PDF (truncated or damaged)" : "the PDF cannot be parsed";
  return new PermanentDocumentError("CORRUPT", `${what}: ${name === "" ? "" : `${name}: `}${message}`, {
    detectedType: PDF_TYPE,
    cause: err,
  });
}

export interface PdfOptions {
  /** PDF.js's log level: 0 errors, 1 warnings (which it prints with console.log; the extraction child collects them). */
  verbosity?: number;
}

/** Opens a PDF as every extractor here does (`data` is handed to PDF.js, which may detach it). */
export async function openPdf(data: Uint8Array, options: PdfOptions = {}): Promise<PDFDocumentLoadingTask> {
  const { getDocument } = await import("pdfjs-dist/legacy/build/pdf.mjs");
  return getDocument({
    data,
    ...pdfjsData(),
    cMapPacked: true,
    // Text only: no font loading, no system fonts, no XFA forms, everything from `data` (PDF.js 5 never evals).
    disableFontFace: true,
    useSystemFonts: false,
    enableXfa: false,
    disableRange: true,
    disableStream: true,
    disableAutoFetch: true,
    verbosity: options.verbosity ?? 0,
  });
}

/** A page's text layer, lines as PDF.js marks them. */
export async function pageText(page: PDFPageProxy): Promise<string> {
  let text = "";
  const content = await page.getTextContent();
  for (const item of content.items) {
    if ("str" in item) text += item.hasEOL ? `${item.str}\n` : item.str;
  }
  return text;
}

/** `data` is handed to PDF.js, which may detach it. */
export async function extractPdf(data: Uint8Array, limits: ExtractLimits, options: PdfOptions = {}): Promise<ExtractedText> {
  const warnings = new WarningList();
  const budget = new TextBudget(limits.maxTextBytes, tooLarge);
  const task = await openPdf(data, options);
  try {
    const doc = await task.promise;
    const pages: string[] = [];
    for (let n = 1; n <= doc.numPages; n++) {
      let text = "";
      try {
        const page = await doc.getPage(n);
        text = await pageText(page);
        page.cleanup();
      } catch (err) {
        // One bad page does not lose the others; the structure-level errors surface in getDocument above.
        warnings.add(`page ${n}: ${err instanceof Error ? err.message : String(err)}`);
      }
      text = text.trimEnd();
      budget.add(text);
      pages.push(text);
      // PDF.js keeps every page it loaded (about 50 KB each for a text page): without this, a few thousand pages
      // exhaust the extractor's heap.
      if (n % CLEANUP_EVERY_PAGES === 0) await doc.cleanup();
    }
    return { text: pages.map((p) => `${p}\n`).join("\f"), pages: doc.numPages, warnings: warnings.toArray() };
  } catch (err) {
    throw classify(err);
  } finally {
    await task.destroy();
  }
}
