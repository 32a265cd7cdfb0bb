/**
 * DOCX text with mammoth's extractRawText (paragraphs separated by a blank line). The archive is checked for zip
 * bombs first (checkArchive), because mammoth inflates every part it reads into memory. Runs in the extraction child process.
 */
import type { DetectedType } from "../../../domain/document.js";
import { PermanentDocumentError } from "../../../errors/document.js";
import { DOCX_MIME } from "./detect.js";
import { WarningList, type ExtractLimits, type ExtractedText } from "./extracted.js";
import { checkArchive } from "./zip.js";

const DOCX_TYPE: DetectedType = { mime: DOCX_MIME, ext: "docx" };

/** Largest compression ratio of one part: XML compresses 5-20:1, repetitive tables maybe 100:1, bombs 1000:1. */
export const MAX_DOCX_RATIO = 200;
export const MAX_DOCX_ENTRIES = 10_000;

export async function extractDocx(data: Uint8Array, limits: ExtractLimits): Promise<ExtractedText> {
  await checkArchive(
    data,
    { maxUncompressedBytes: limits.maxUncompressedBytes, maxRatio: MAX_DOCX_RATIO, maxEntries: MAX_DOCX_ENTRIES },
    DOCX_TYPE,
  );
  const { default: mammoth } = await import("mammoth");
  let result: Awaited<ReturnType<typeof mammoth.extractRawText>>;
  try {
    result = await mammoth.extractRawText({ buffer: Buffer.from(data.buffer, data.byteOffset, data.byteLength) });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new PermanentDocumentError("CORRUPT", `the DOCX cannot be read: ${message}`, { detectedType: DOCX_TYPE, cause: err });
  }
  const text = result.value;
  if (Buffer.byteLength(text, "utf8") > limits.maxTextBytes) {
    throw new PermanentDocumentError("TOO_LARGE", `the extracted text is larger than ${limits.maxTextBytes} bytes`, {
      detectedType: DOCX_TYPE,
    });
  }
  const warnings = new WarningList();
  for (const m of result.messages) warnings.add(`${m.type}: ${m.message}`);
  return { text, warnings: warnings.toArray() };
}
