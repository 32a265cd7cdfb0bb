/**
 * The messages between the daemon and its extraction child, as frames (frames.ts):
 *   daemon -> child   job        {type, id, kind, encoding?, limits, verbosity?} + the document
 *                     collect    after a job that left the child big: collect your garbage
 *   child -> daemon   ready      once its parsers are loaded
 *                     page       (OCR) a page is about to be recognised: the per-page time limit starts again
 *                     reply      {type, id, ok, ...} + the text (UTF-8) when ok
 *                     collected  the garbage is collected (the daemon reads its memory again)
 * The daemon checks every message from the child as untrusted input: a malformed one means the child is not in a
 * state to be believed, and it is replaced.
 */
import type { DetectedType } from "../../../domain/document.js";
import type { TextEncodingName } from "./encoding.js";
import type { ExtractionJob, ExtractionKind, ExtractionReply, ExtractionRequest, OcrJobOptions } from "./extract.js";
import { WarningList, type PageRecord } from "./extracted.js";
import { encodeFrame, FrameError, type Frame } from "./frames.js";

/** The file descriptor of the socket pair in the child (after stdin, stdout, stderr). */
export const CHANNEL_FD = 3;

export type ChildMessage =
  | { type: "ready" }
  | { type: "collected" }
  | { type: "page" }
  | { type: "reply"; reply: ExtractionReply };
export type DaemonMessage = { type: "job"; request: ExtractionRequest } | { type: "collect" };

const KINDS: readonly ExtractionKind[] = ["pdf", "docx", "html", "ocr-image", "ocr-pdf"];
/** More page records than this in one reply is a broken child (the OCR processor's page limits are far below). */
const MAX_PAGE_RECORDS = 100_000;
const ENCODINGS: readonly TextEncodingName[] = ["utf-8", "utf-16le", "utf-16be"];
const MAX_MESSAGE_CHARS = 2_000;
const CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

// --- daemon side -----------------------------------------------------------------------------------------------

export function jobFrame(id: number, job: ExtractionJob): Uint8Array[] {
  const { kind, encoding, limits, verbosity, ocr } = job;
  return encodeFrame({ type: "job", id, kind, encoding, limits, verbosity, ocr }, job.data);
}

export function collectFrame(): Uint8Array[] {
  return encodeFrame({ type: "collect" });
}

/** A message from the child, checked; throws FrameError for anything else. */
export function parseChildFrame({ header, payload }: Frame): ChildMessage {
  const type = header["type"];
  if ((type === "ready" || type === "collected" || type === "page") && payload.length === 0) return { type };
  if (type !== "reply") throw new FrameError(`an unexpected message from the extractor (${describe(type)})`);
  const id = header["id"];
  if (!Number.isSafeInteger(id)) throw new FrameError("a reply without an id");
  return { type, reply: parseReply(id as number, header, payload) };
}

function parseReply(id: number, header: Record<string, unknown>, payload: Buffer): ExtractionReply {
  const ok = header["ok"];
  if (ok === true) {
    const warnings = header["warnings"];
    const pages = header["pages"];
    const replacements = header["replacements"];
    if (!Array.isArray(warnings) || !warnings.every((w) => typeof w === "string")) {
      throw new FrameError("a reply whose warnings are not strings");
    }
    if (pages !== undefined && !isCount(pages)) throw new FrameError("a reply with an invalid page count");
    if (replacements !== undefined && !isCount(replacements)) throw new FrameError("a reply with an invalid count");
    const pageRecords = parsePageRecords(header["pageRecords"]);
    const engine = header["engine"];
    if (engine !== undefined && (typeof engine !== "string" || engine.length > 100)) {
      throw new FrameError("a reply with an invalid engine");
    }
    return {
      id,
      ok: true,
      result: {
        text: payload.toString("utf8"),
        ...(pages === undefined ? {} : { pages: pages as number }),
        ...(replacements === undefined ? {} : { replacements: replacements as number }),
        // Bounded here as well as in the child: what goes into a record must not depend on the child behaving.
        warnings: warnings.slice(0, WarningList.MAX + 1).map((w) => clip(w, WarningList.MAX_LENGTH)),
        ...(pageRecords === undefined ? {} : { pageRecords }),
        ...(engine === undefined ? {} : { engine: engine }),
      },
    };
  }
  if (ok !== false || payload.length > 0) throw new FrameError("a reply that is neither a result nor an error");
  const message = header["message"];
  if (typeof message !== "string") throw new FrameError("an error reply without a message");
  const text = clip(message, MAX_MESSAGE_CHARS);
  if (header["permanent"] !== true) return { id, ok: false, permanent: false, message: text };
  const code = header["code"];
  if (typeof code !== "string" || !CODE.test(code)) throw new FrameError("an error reply with an invalid code");
  const detectedType = parseDetectedType(header["detectedType"]);
  return { id, ok: false, permanent: true, code, message: text, ...(detectedType === undefined ? {} : { detectedType }) };
}

/** An OCR reply's page records, each checked field by field and rebuilt (nothing else of the child's is kept). */
function parsePageRecords(value: unknown): PageRecord[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length > MAX_PAGE_RECORDS) throw new FrameError("a reply with invalid page records");
  return value.map((item: unknown): PageRecord => {
    const r = item as Record<string, unknown> | null;
    if (typeof r !== "object" || r === null) throw new FrameError("a reply with an invalid page record");
    const { page, source, confidence, words, durationMs, width, height, dpi } = r;
    const finite = (v: unknown, max: number): boolean => typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= max;
    const optionalCount = (v: unknown): boolean => v === undefined || isCount(v);
    if (
      !isCount(page) ||
      (source !== "ocr" && source !== "text-layer") ||
      !(confidence === null || finite(confidence, 100)) ||
      !isCount(words) ||
      !finite(durationMs, 1e9) ||
      !optionalCount(width) ||
      !optionalCount(height) ||
      !optionalCount(dpi)
    ) {
      throw new FrameError("a reply with an invalid page record");
    }
    return {
      page: page as number,
      source,
      confidence: confidence as number | null,
      words: words as number,
      durationMs: durationMs as number,
      ...(width === undefined ? {} : { width: width as number }),
      ...(height === undefined ? {} : { height: height as number }),
      ...(dpi === undefined ? {} : { dpi: dpi as number }),
    };
  });
}

function parseDetectedType(value: unknown): DetectedType | undefined {
  if (value === undefined) return undefined;
  const v = value as Record<string, unknown> | null;
  const short = (s: unknown): s is string => typeof s === "string" && s.length > 0 && s.length <= 100;
  if (typeof v !== "object" || v === null || !short(v["mime"]) || (v["ext"] !== undefined && !short(v["ext"]))) {
    throw new FrameError("an error reply with an invalid detected type");
  }
  return { mime: v["mime"], ...(v["ext"] === undefined ? {} : { ext: v["ext"] }) };
}

function clip(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

function isCount(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function describe(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value.slice(0, 40)) : typeof value;
}

// --- child side ------------------------------------------------------------------------------------------------

/** A message from the daemon (trusted: it is the daemon's own, checked only for its shape). */
export function parseDaemonFrame(frame: Frame): DaemonMessage {
  if (frame.header["type"] === "collect") return { type: "collect" };
  return { type: "job", request: parseJobFrame(frame) };
}

function parseJobFrame({ header, payload }: Frame): ExtractionRequest {
  const { type, id, kind, encoding, limits, verbosity, ocr } = header;
  if (type !== "job" || !Number.isSafeInteger(id) || !KINDS.includes(kind as ExtractionKind)) {
    throw new FrameError("neither a job nor a collect");
  }
  if (encoding !== undefined && !ENCODINGS.includes(encoding as TextEncodingName)) throw new FrameError("a bad encoding");
  const l = limits as Record<string, unknown> | undefined;
  if (typeof l?.["maxTextBytes"] !== "number" || typeof l["maxUncompressedBytes"] !== "number") {
    throw new FrameError("a job without its limits");
  }
  return {
    id: id as number,
    kind: kind as ExtractionKind,
    data: new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength),
    ...(encoding === undefined ? {} : { encoding: encoding as TextEncodingName }),
    limits: { maxTextBytes: l["maxTextBytes"], maxUncompressedBytes: l["maxUncompressedBytes"] },
    ...(typeof verbosity === "number" ? { verbosity } : {}),
    // The daemon's own settings: trusted, passed on as they are.
    ...(typeof ocr === "object" && ocr !== null ? { ocr: ocr as OcrJobOptions } : {}),
  };
}

export function replyFrame(reply: ExtractionReply): Uint8Array[] {
  if (!reply.ok) return encodeFrame({ type: "reply", ...reply });
  const { text, pages, replacements, warnings, pageRecords, engine } = reply.result;
  return encodeFrame(
    { type: "reply", id: reply.id, ok: true, pages, replacements, warnings, pageRecords, engine },
    Buffer.from(text, "utf8"),
  );
}

export function signalFrame(type: "ready" | "collected" | "page"): Uint8Array[] {
  return encodeFrame({ type });
}
