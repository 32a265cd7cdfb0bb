/** What every extractor returns, and the limits it is given. */

export interface ExtractedText {
  text: string;
  /** Pages, for formats that have them (PDF). */
  pages?: number;
  /** Invalid byte sequences replaced with U+FFFD while decoding (HTML). */
  replacements?: number;
  /** Things worth knowing that did not stop the extraction (recovered errors, replaced bytes). */
  warnings: string[];
  /** OCR jobs: how each page's text was obtained, in page order. */
  pageRecords?: PageRecord[];
  /** OCR jobs: the engine that read the pages (its own version string). */
  engine?: string;
}

/** One page of an OCR job: from the PDF's text layer, or recognised from its image. */
export interface PageRecord {
  page: number;
  source: "text-layer" | "ocr";
  /** Tesseract's mean word confidence (0-100); null for a text-layer page. */
  confidence: number | null;
  words: number;
  durationMs: number;
  /** The image recognised, in pixels, and the resolution it was rendered at (PDF pages). */
  width?: number;
  height?: number;
  dpi?: number;
}

export interface ExtractLimits {
  /** Largest extracted text, in UTF-8 bytes; more is refused (TOO_LARGE) rather than truncated. */
  maxTextBytes: number;
  /** For archives (DOCX): the sum of the entries' uncompressed sizes. */
  maxUncompressedBytes: number;
}

/** Warnings are for people: a bounded, deduplicated list of short lines. */
export class WarningList {
  static readonly MAX = 20;
  static readonly MAX_LENGTH = 300;
  readonly #items = new Set<string>();
  #dropped = 0;

  add(message: string): void {
    const line = message.length > WarningList.MAX_LENGTH ? `${message.slice(0, WarningList.MAX_LENGTH - 1)}…` : message;
    if (this.#items.has(line)) return;
    if (this.#items.size >= WarningList.MAX) this.#dropped++;
    else this.#items.add(line);
  }

  toArray(): string[] {
    const out = [...this.#items];
    if (this.#dropped > 0) out.push(`${this.#dropped} more warning(s) not shown`);
    return out;
  }
}

/** Throws once the text passes the limit, checked as it grows so memory stays near the limit. */
export class TextBudget {
  #bytes = 0;
  readonly #limit: number;
  readonly #onOver: (limit: number) => Error;

  constructor(limit: number, onOver: (limit: number) => Error) {
    this.#limit = limit;
    this.#onOver = onOver;
  }

  add(s: string): void {
    this.#bytes += Buffer.byteLength(s, "utf8");
    if (this.#bytes > this.#limit) throw this.#onOver(this.#limit);
  }
}
