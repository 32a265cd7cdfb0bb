// The per-document line's policy: its level by outcome, and a reason of any length kept to MAX_REASON_CHARS so the
// line keeps its figures under the log-line bound.
import { describe, expect, it } from "vitest";
import { MAX_LOG_LINE_BYTES } from "../../../src/logging/log-bounds.js";
import { MAX_REASON_CHARS, documentLine, documentLogLevel } from "../../../src/observability/document-log.js";
import type { Outcome } from "../../../src/pipeline/outcome.js";

const facts = { doc: { key: "in/a.pdf", bucket: "src", size: 10 }, messageId: "m1", receiveCount: 1, durationMs: 7 };

describe("the document line", () => {
  it("is info for done and superseded, warn otherwise", () => {
    const outcomes: [Outcome, "info" | "warn"][] = [
      [{ status: "done", outputs: ["a"], bytesIn: 1, bytesOut: 1 }, "info"],
      [{ status: "superseded", reason: "newer" }, "info"],
      [{ status: "retry", code: "SOURCE_READ_FAILED", reason: "r" }, "warn"],
      [{ status: "rejected", code: "OBJECT_TOO_LARGE", reason: "r" }, "warn"],
      [{ status: "failed-permanently", code: "CORRUPT", reason: "r", outputs: [] }, "warn"],
    ];
    for (const [outcome, level] of outcomes) expect(documentLogLevel(outcome), outcome.status).toBe(level);
  });

  it("keeps a short reason whole and cuts a long one, saying how much was left out", () => {
    expect(documentLine(facts, { status: "retry", code: "SOURCE_READ_FAILED", reason: "reset" })).toMatchObject({
      outcome: "retry",
      key: "in/a.pdf",
      code: "SOURCE_READ_FAILED",
      reason: "reset",
    });
    const long = "x".repeat(MAX_LOG_LINE_BYTES * 4);
    const line = documentLine(facts, { status: "failed-permanently", code: "CORRUPT", reason: long, outputs: ["in/a.pdf.error.json"] });
    const reason = line["reason"] as string;
    expect(reason.length).toBeLessThan(MAX_REASON_CHARS + 60);
    expect(reason).toMatch(new RegExp(`… \\(${long.length - MAX_REASON_CHARS} more characters\\)$`));
    expect(JSON.stringify(line).length).toBeLessThan(MAX_LOG_LINE_BYTES);
    expect(line).toMatchObject({ durationMs: 7, receiveCount: 1, outputs: ["in/a.pdf.error.json"] });
  });
});
