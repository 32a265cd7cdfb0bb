/**
 * The per-document log policy: one "document" line per document with its outcome and figures, at info when the
 * document is done or superseded and at warn otherwise. A permanent failure is the document's problem, not the
 * daemon's: reported, recorded, acknowledged. Pure (line and level), so the policy is tested without a logger.
 */
import { truncate } from "../logging/log-bounds.js";
import type { Logger } from "../logging/logger.js";
import type { Outcome } from "../pipeline/outcome.js";

/**
 * A reason is built from what failed, sometimes from a processor's or a parser's own message, which a hostile
 * document can make as long as it likes; the whole line would then be cut by the line bound and lose its figures.
 */
export const MAX_REASON_CHARS = 2_000;

export interface DocumentLogFacts {
  doc: { key: string; bucket: string; size?: number | undefined };
  messageId: string;
  receiveCount: number;
  durationMs: number;
}

/** The fields of the "document" line, outcome-specific ones last. */
export function documentLine(facts: DocumentLogFacts, outcome: Outcome): Record<string, unknown> {
  const { doc } = facts;
  const reason = "reason" in outcome ? truncate(outcome.reason, MAX_REASON_CHARS) : undefined;
  return {
    outcome: outcome.status,
    key: doc.key,
    bucket: doc.bucket,
    messageId: facts.messageId,
    receiveCount: facts.receiveCount,
    durationMs: facts.durationMs,
    size: doc.size,
    ...(outcome.status === "done"
      ? { bytesIn: outcome.bytesIn, bytesOut: outcome.bytesOut, outputs: outcome.outputs }
      : outcome.status === "superseded"
        ? { reason }
        : outcome.status === "failed-permanently"
          ? { code: outcome.code, reason, outputs: outcome.outputs }
          : { code: outcome.code, reason }),
  };
}

export function documentLogLevel(outcome: Outcome): "info" | "warn" {
  return outcome.status === "done" || outcome.status === "superseded" ? "info" : "warn";
}

/**
 * Writes the "document" line. `log` should be an unredactedChild: the line's fields are primitives and lists of
 * strings under fixed names, which no redact path matches, so the redaction pass would only cost CPU.
 */
export function logDocument(log: Logger, facts: DocumentLogFacts, outcome: Outcome): void {
  log[documentLogLevel(outcome)](documentLine(facts, outcome), "document");
}
