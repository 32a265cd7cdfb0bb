/**
 * The consumer's per-message lists as bounded log fields: a message can carry a thousand records (or documents),
 * and each used to become an entry of one log line. The first few entries keep their shape (`ignored`, `failures`),
 * so a small message logs as before; counts say how many there were in all and per reason. Pure.
 */
import { summarize } from "../logging/log-bounds.js";
import type { IgnoredRecord } from "./records.js";

export function ignoredFields(ignored: readonly IgnoredRecord[]) {
  const s = summarize(ignored, (r) => r.reason);
  return { ignored: s.sample, ignoredCount: s.count, ignoredByReason: s.byReason };
}

export interface DocumentFailure {
  key: string | undefined;
  status: "retry" | "rejected";
  code: string;
  reason: string;
}

export function failureFields(failures: readonly DocumentFailure[]) {
  const s = summarize(failures, (f) => f.code);
  return { failures: s.sample, failureCount: s.count, failuresByCode: s.byReason };
}
