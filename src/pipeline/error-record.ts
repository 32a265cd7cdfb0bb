/**
 * `<key>.error.json`: the record of a document that one or more processors refused for good. What it says is pure
 * (errorRecord); writing it is the chain's last step, once every processor is done.
 */
import type { DetectedType, SourceObjectInfo } from "../domain/document.js";
import { describeAwsError } from "../errors/aws.js";
import { OutcomeCode } from "../errors/document.js";
import { errorMessage } from "../errors/message.js";
import { ERROR_RECORD_SUFFIX, sourceLineage, type SourceLineage } from "../processors/types.js";
import { outputKey } from "../storage/keys.js";
import { writeOutput, type SinkTarget } from "../storage/sink.js";
import type { Outcome } from "./outcome.js";
import { keyFailure, type Refusal } from "./outputs.js";

/** The body of `<key>.error.json`. */
export interface ErrorRecord {
  status: "failed-permanently";
  code: string;
  reason: string;
  detectedType?: DetectedType;
  source: SourceLineage;
  /** The processor that refused the document (the first one, when several did). */
  processor: { name: string; version: string };
  /** Further refusals by other processors of the chain. */
  others?: Refusal[];
  /** What the rest of the chain wrote for this same document. */
  outputs: string[];
}

/** Pure: the error record of a document refused by `refusals[0]` (and possibly others). */
export function errorRecord(
  source: SourceObjectInfo,
  refusals: readonly Refusal[],
  outputs: readonly string[],
): ErrorRecord {
  const [first, ...others] = refusals;
  if (first === undefined) throw new Error("errorRecord needs at least one refusal");
  return {
    status: "failed-permanently",
    code: first.code,
    reason: first.reason,
    ...(first.detectedType === undefined ? {} : { detectedType: first.detectedType }),
    source: sourceLineage(source),
    processor: first.processor,
    ...(others.length === 0 ? {} : { others }),
    outputs: [...outputs],
  };
}

/** Writes the error record after the chain's own outputs; the outcome says the document failed permanently. */
export async function writeErrorRecord(
  sink: SinkTarget,
  outputPrefix: string,
  info: SourceObjectInfo,
  refusals: readonly Refusal[],
  written: readonly string[],
  signal: AbortSignal,
): Promise<Outcome> {
  const record = errorRecord(info, refusals, written);
  let key: string;
  try {
    key = outputKey(outputPrefix, info.key, ERROR_RECORD_SUFFIX);
  } catch (err) {
    // Nowhere to record the refusal: rejected, so the message goes to the DLQ (with the refusal in its reason).
    const { code } = keyFailure(err);
    return { status: "rejected", code, reason: `${record.code}: ${record.reason}; and ${errorMessage(err)}` };
  }
  const body = `${JSON.stringify(record, null, 2)}\n`;
  try {
    const output = { body, contentType: "application/json" };
    await writeOutput(sink, key, output, { source: info, processor: record.processor }, signal);
  } catch (err) {
    const reason = `writing ${key} failed: ${describeAwsError(err)}`;
    return { status: "retry", code: OutcomeCode.sinkWriteFailed, reason };
  }
  return { status: "failed-permanently", code: record.code, reason: record.reason, outputs: [...written, key] };
}
