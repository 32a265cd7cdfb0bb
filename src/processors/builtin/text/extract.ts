/**
 * One extraction job, whatever the format: what the extraction child process runs for each request, and what tests
 * run in-process.
 */
import type { DetectedType } from "../../../domain/document.js";
import { isPermanentDocumentError } from "../../../errors/document.js";
import { extractDocx } from "./docx.js";
import type { TextEncodingName } from "./encoding.js";
import type { ExtractLimits, ExtractedText } from "./extracted.js";
import { extractHtml } from "./html.js";
import { extractPdf } from "./pdf.js";

/** The text child's kinds, and the OCR child's (processors/builtin/ocr): one protocol, two entries. */
export type ExtractionKind = "pdf" | "docx" | "html" | "ocr-image" | "ocr-pdf";

/** What an OCR job needs besides the document (the OCR processor's settings). */
export interface OcrJobOptions {
  /** Tesseract language codes with their traineddata (gzipped) files, in the order given to Tesseract. */
  languages: { code: string; path: string }[];
  /** PDF pages without a text layer that may be recognised; more is TOO_MANY_PAGES before any is. */
  maxPages: number;
  /** Largest page image, in pixels: a PDF page is rendered smaller to fit it. */
  maxPixels: number;
  /** Resolution PDF pages are rendered at. */
  dpi: number;
  /** ocr-image of a TIFF: each page's directory offset, all recognised (else the image is one page). */
  tiffDirectories?: number[];
}

export interface ExtractionJob {
  kind: ExtractionKind;
  /** The whole document; written to the child as it is (no copy in the daemon). */
  data: Uint8Array;
  /** For html. */
  encoding?: TextEncodingName;
  limits: ExtractLimits;
  /** PDF.js's log level (1: warnings, which the child collects). */
  verbosity?: number;
  /** For ocr-image and ocr-pdf. */
  ocr?: OcrJobOptions;
}

export interface ExtractionRequest extends ExtractionJob {
  id: number;
}

export type ExtractionReply =
  | { id: number; ok: true; result: ExtractedText }
  /** The document's fault: the same bytes fail the same way every time. */
  | { id: number; ok: false; permanent: true; code: string; message: string; detectedType?: DetectedType }
  /** Not known to be the document's fault (a bug, a missing module): worth a retry. */
  | { id: number; ok: false; permanent: false; message: string };

export async function runExtraction(job: ExtractionJob): Promise<ExtractedText> {
  switch (job.kind) {
    case "pdf":
      return extractPdf(job.data, job.limits, { verbosity: job.verbosity ?? 0 });
    case "docx":
      return extractDocx(job.data, job.limits);
    case "html":
      return extractHtml(job.data, job.encoding ?? "utf-8", job.limits);
    case "ocr-image":
    case "ocr-pdf":
      // Only the OCR child (processors/builtin/ocr/ocr-child.ts) loads an OCR engine.
      throw new Error(`the text extractor does not run ${job.kind} jobs`);
  }
}

/** The reply for a request, never throwing; `run` is the entry's own dispatcher (the OCR child has its own). */
export async function reply(
  request: ExtractionRequest,
  run: (job: ExtractionJob) => Promise<ExtractedText> = runExtraction,
): Promise<ExtractionReply> {
  try {
    return { id: request.id, ok: true, result: await run(request) };
  } catch (err) {
    if (isPermanentDocumentError(err)) {
      const { code, message, detectedType } = err;
      return { id: request.id, ok: false, permanent: true, code, message, ...(detectedType === undefined ? {} : { detectedType }) };
    }
    return { id: request.id, ok: false, permanent: false, message: err instanceof Error ? err.message : String(err) };
  }
}
