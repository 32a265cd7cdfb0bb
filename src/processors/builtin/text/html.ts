/**
 * HTML text with html-to-text: no wrapping, headings as written, links without their URLs, images and scripts left
 * out. The bytes are decoded with the encoding found by detection (invalid bytes replaced and counted); a
 * `<meta charset>` naming a legacy encoding is not followed. Runs in the extraction child process: a hostile page (deep
 * nesting) can take minutes to parse.
 */
import type { HtmlToTextOptions } from "html-to-text";
import type { DetectedType } from "../../../domain/document.js";
import { PermanentDocumentError } from "../../../errors/document.js";
import { CountingDecoder, type TextEncodingName } from "./encoding.js";
import { WarningList, type ExtractLimits, type ExtractedText } from "./extracted.js";

const HTML_TYPE: DetectedType = { mime: "text/html", ext: "html" };

/** Deeper elements are replaced by "...": html-to-text recurses and overflows the stack near 10,000 levels. */
export const MAX_HTML_DEPTH = 512;

const HEADINGS = ["h1", "h2", "h3", "h4", "h5", "h6"];

function options(inputLength: number): HtmlToTextOptions {
  return {
    wordwrap: false,
    selectors: [
      { selector: "a", options: { ignoreHref: true } },
      { selector: "img", format: "skip" },
      ...HEADINGS.map((selector) => ({ selector, options: { uppercase: false } })),
      { selector: "table", format: "dataTable", options: { uppercaseHeaderCells: false } },
    ],
    // The input is already capped by maxBufferedBytes: never truncate it silently.
    limits: { maxInputLength: inputLength, maxDepth: MAX_HTML_DEPTH },
  };
}

export async function extractHtml(data: Uint8Array, encoding: TextEncodingName, limits: ExtractLimits): Promise<ExtractedText> {
  const { convert } = await import("html-to-text");
  const decoder = new CountingDecoder(encoding);
  const html = decoder.decode(data) + decoder.end();
  const warnings = new WarningList();
  if (decoder.replacements > 0) {
    warnings.add(`${decoder.replacements} invalid ${encoding} byte sequence(s) replaced with U+FFFD`);
  }
  let text: string;
  try {
    text = convert(html, options(html.length));
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new PermanentDocumentError("CORRUPT", `the HTML cannot be converted: ${message}`, {
      detectedType: HTML_TYPE,
      cause: err,
    });
  }
  if (Buffer.byteLength(text, "utf8") > limits.maxTextBytes) {
    throw new PermanentDocumentError("TOO_LARGE", `the extracted text is larger than ${limits.maxTextBytes} bytes`, {
      detectedType: HTML_TYPE,
    });
  }
  return {
    text: text.length === 0 || text.endsWith("\n") ? text : `${text}\n`,
    replacements: decoder.replacements,
    warnings: warnings.toArray(),
  };
}
