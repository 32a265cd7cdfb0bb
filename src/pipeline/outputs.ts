/**
 * Pure checks on what a processor hands back: a user module can return anything, so its outputs, their keys and its
 * refusals are checked here, as data, before the chain writes or records anything.
 */
import type { Readable } from "node:stream";
import type { DetectedType } from "../domain/document.js";
import { OutcomeCode, OutputKeyTooLongError, type PermanentDocumentError } from "../errors/document.js";
import { errorMessage } from "../errors/message.js";
import { outputKey } from "../storage/keys.js";
import { ERROR_RECORD_SUFFIX, type ProcessorOutput } from "../processors/types.js";
import type { Outcome } from "./outcome.js";

/** An outcome that ends the chain: a retry or a rejection (the first one wins). */
export type Failure = Extract<Outcome, { status: "retry" | "rejected" }>;

/** One processor's refusal of the document (a PermanentDocumentError). */
export interface Refusal {
  processor: { name: string; version: string };
  code: string;
  reason: string;
  detectedType?: DetectedType;
}

export function isReadable(v: unknown): v is Readable {
  return typeof v === "object" && v !== null && typeof (v as Readable).pipe === "function";
}

/** Destroys the Readable bodies among `outputs` (whatever they are), so no stream is left holding its source. */
export function destroyOutputs(outputs: unknown): void {
  if (!Array.isArray(outputs)) return;
  for (const o of outputs as unknown[]) {
    const body = (o as { body?: unknown } | null)?.body;
    if (isReadable(body)) body.destroy();
  }
}

/** The processor's return value, checked; a string says what is wrong with it. */
export function checkOutputs(value: unknown, name: string): ProcessorOutput[] | string {
  if (!Array.isArray(value)) return `processor ${name} returned ${typeof value}, not an array of outputs`;
  for (const [i, o] of (value as unknown[]).entries()) {
    const bad = `processor ${name} returned an invalid output at index ${i} (needs suffix, contentType, body)`;
    if (typeof o !== "object" || o === null) return bad;
    const out = o as Partial<ProcessorOutput>;
    const bodyOk = typeof out.body === "string" || out.body instanceof Uint8Array || isReadable(out.body);
    const lengthOk =
      out.contentLength === undefined || (Number.isSafeInteger(out.contentLength) && out.contentLength >= 0);
    if (typeof out.suffix !== "string" || typeof out.contentType !== "string" || out.contentType === "") return bad;
    if (!bodyOk || !lengthOk) return bad;
  }
  return value as ProcessorOutput[];
}

/** A user module's error may carry anything as its detected type: keep only a well-formed one. */
function checkedType(value: unknown): DetectedType | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { mime, ext } = value as { mime?: unknown; ext?: unknown };
  if (typeof mime !== "string") return undefined;
  return typeof ext === "string" ? { mime, ext } : { mime };
}

export function refusalOf(processor: { name: string; version: string }, err: PermanentDocumentError): Refusal {
  const detectedType = checkedType(err.detectedType);
  return {
    processor: { name: processor.name, version: processor.version },
    code: err.code,
    reason: err.message,
    ...(detectedType === undefined ? {} : { detectedType }),
  };
}

/** The failure of a key that cannot be built: too long is a rejection of its own kind, anything else a write failure. */
export function keyFailure(err: unknown): Failure {
  const code = err instanceof OutputKeyTooLongError ? err.code : OutcomeCode.sinkWriteFailed;
  return { status: "rejected", code, reason: errorMessage(err) };
}

/**
 * Where one output goes: its key, or why it may not be written (a key over S3's limit, the reserved error-record
 * suffix, or a key another output of the same document already took).
 */
export function planOutput(
  outputPrefix: string,
  sourceKey: string,
  processorName: string,
  suffix: string,
  taken: ReadonlySet<string>,
): { ok: true; key: string } | { ok: false; failure: Failure; err?: unknown } {
  let key: string;
  try {
    key = outputKey(outputPrefix, sourceKey, suffix);
  } catch (err) {
    return { ok: false, failure: keyFailure(err), err };
  }
  if (suffix === ERROR_RECORD_SUFFIX) {
    const reason = `processor ${processorName} wrote the suffix "${suffix}", reserved for error records`;
    return { ok: false, failure: { status: "rejected", code: OutcomeCode.processorFailed, reason } };
  }
  if (taken.has(key)) {
    const reason = `two outputs map to the same key ${key} (processor ${processorName}, suffix "${suffix}")`;
    return { ok: false, failure: { status: "rejected", code: OutcomeCode.processorFailed, reason } };
  }
  return { ok: true, key };
}
