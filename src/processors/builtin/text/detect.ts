/**
 * What a document is, from its first bytes: file-type's signatures first, then the text encoding and whether the
 * bytes look like text at all. The key's extension only breaks ties the bytes cannot settle: which kind of text
 * (plain, Markdown, CSV, JSON, HTML) and a zip archive whose first entries were not enough to call it a DOCX.
 */
import { extname } from "node:path/posix";
import { fileTypeFromBuffer } from "file-type";
import type { DetectedType } from "../../../domain/document.js";
import { PermanentDocumentError } from "../../../errors/document.js";
import { bomEncoding, detectEncoding, type TextEncodingName } from "./encoding.js";

export const DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/** How the text processor handles a document: streamed (text) or buffered and parsed in the extraction child process. */
export type DocumentKind = "pdf" | "docx" | "html" | "text";

export interface Detection {
  kind: DocumentKind;
  type: DetectedType;
  /** For html and text. */
  encoding?: TextEncodingName;
  /** A zip that only the whole archive can confirm as a DOCX (checked once buffered). */
  provisional?: boolean;
}

/** Text types by extension, when the bytes say "text" and no more. */
const TEXT_TYPES: Readonly<Record<string, DetectedType>> = {
  md: { mime: "text/markdown", ext: "md" },
  markdown: { mime: "text/markdown", ext: "md" },
  csv: { mime: "text/csv", ext: "csv" },
  tsv: { mime: "text/tab-separated-values", ext: "tsv" },
  json: { mime: "application/json", ext: "json" },
  ndjson: { mime: "application/x-ndjson", ext: "ndjson" },
  xml: { mime: "application/xml", ext: "xml" },
};
const HTML_EXTENSIONS = new Set(["html", "htm", "xhtml"]);
const HTML_TYPE: DetectedType = { mime: "text/html", ext: "html" };
const PLAIN_TYPE: DetectedType = { mime: "text/plain", ext: "txt" };

/** The key's last extension, lower case, without the dot ("" when none). */
export function extensionOf(key: string): string {
  return extname(key).slice(1).toLowerCase();
}

/**
 * Whether a sample is binary rather than text in some encoding: a NUL byte, or more than 5% C0 control bytes other
 * than tab, line breaks, form feed, escape and the DOS end-of-file mark.
 */
export function looksBinary(sample: Uint8Array): boolean {
  if (sample.length === 0) return false;
  let controls = 0;
  for (const b of sample) {
    if (b === 0) return true;
    if (b < 0x20 && !(b >= 0x09 && b <= 0x0d) && b !== 0x1a && b !== 0x1b) controls++;
  }
  return controls > sample.length * 0.05;
}

/** An HTML document by its first markup: a doctype or an <html> element, after a BOM, blanks and comments. */
export function looksLikeHtml(text: string): boolean {
  return /^\ufeff?\s*(?:<!--[\s\S]*?-->\s*)*(?:<\?xml[^>]*>\s*)?<(?:!doctype\s+html|html[\s>])/i.test(text.slice(0, 4096));
}

async function sniff(head: Uint8Array): Promise<DetectedType | undefined> {
  try {
    const found = await fileTypeFromBuffer(head);
    return found === undefined ? undefined : { mime: found.mime, ext: found.ext };
  } catch {
    // A truncated container can make a detector throw: the bytes are then judged as text or binary below.
    return undefined;
  }
}

function textDetection(head: Uint8Array, key: string, encoding: TextEncodingName, sniffed?: DetectedType): Detection {
  const ext = extensionOf(key);
  const prefix = new TextDecoder(encoding).decode(head.subarray(0, 4096));
  if (HTML_EXTENSIONS.has(ext) || looksLikeHtml(prefix)) return { kind: "html", type: HTML_TYPE, encoding };
  const type = TEXT_TYPES[ext] ?? sniffed ?? PLAIN_TYPE;
  return { kind: "text", type, encoding };
}

function unsupported(type: DetectedType, what: string): PermanentDocumentError {
  return new PermanentDocumentError(
    "UNSUPPORTED_TYPE",
    `${what} (${type.mime}): the text processor reads PDF, DOCX, HTML and plain text (including Markdown, CSV and JSON)`,
    { detectedType: type },
  );
}

/**
 * Classifies a document from `head`, its first bytes (`complete` when that is the whole object). Throws a
 * PermanentDocumentError for an empty object and for types the text processor does not read.
 */
export async function detectDocument(head: Uint8Array, key: string, complete: boolean): Promise<Detection> {
  if (complete && head.length === 0) {
    throw new PermanentDocumentError("EMPTY", "the object is empty: there is no text to extract", {
      detectedType: { mime: "inode/x-empty" },
    });
  }
  const bom = bomEncoding(head);
  if (bom !== undefined) return textDetection(head, key, bom);

  const ext = extensionOf(key);
  const sniffed = await sniff(head);
  if (sniffed !== undefined) {
    switch (sniffed.ext) {
      case "pdf":
        return { kind: "pdf", type: sniffed };
      case "docx":
        return { kind: "docx", type: sniffed };
      case "zip":
        // file-type decides from the first entries; a DOCX written by another tool may list them later.
        if (ext === "docx") return { kind: "docx", type: { mime: DOCX_MIME, ext: "docx" }, provisional: true };
        throw unsupported(sniffed, "a zip archive");
      case "cfb":
        // Word stores a password-protected .docx as an OLE compound file around the encrypted package.
        if (ext === "docx") {
          throw new PermanentDocumentError(
            "ENCRYPTED",
            "an OLE compound file named .docx: a password-protected Word document, which cannot be read without the password",
            { detectedType: sniffed },
          );
        }
        throw unsupported(sniffed, "an OLE compound file (legacy Office format)");
      case "xml":
        return textDetection(head, key, "utf-8", sniffed);
      default:
        throw unsupported(sniffed, `${sniffed.ext ?? "binary"} data`);
    }
  }
  const { encoding } = detectEncoding(head);
  if (encoding === "utf-8" && looksBinary(head)) {
    throw unsupported({ mime: "application/octet-stream" }, "binary data of no known type");
  }
  return textDetection(head, key, encoding);
}
