// The per-document line's policy: its level by outcome, and a reason of any length kept to MAX_REASON_CHARS so the
// line keeps its figures under the log-line bound.
import { describe, expect, it } from "vitest";
import { MAX_LOG_LINE_BYTES } from "../../../src/logging/log-bounds.js";
import { createLogger, unredactedChild, type Logger } from "../../../src/logging/logger.js";
import { MAX_REASON_CHARS, documentLine, documentLogLevel, logDocument } from "../../../src/observability/document-log.js";
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

describe("the document line without the redaction pass", () => {
  function capture(): { log: Logger; lines: Record<string, unknown>[] } {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({
      level: "info",
      destination: {
        write: (line: string) => {
          const parsed = JSON.parse(line) as Record<string, unknown>;
          delete parsed["time"];
          lines.push(parsed);
        },
      },
    });
    return { log, lines };
  }

  // Values a hostile document or a careless processor could put in a key, a reason or an output name.
  const secretish = 'sessionToken=AQoD... {"secretAccessKey":"x"} authorization: AWS4-HMAC-SHA256';
  const outcomes: Outcome[] = [
    { status: "done", outputs: [secretish, "out/a.json"], bytesIn: 1, bytesOut: 2 },
    { status: "superseded", reason: secretish },
    { status: "retry", code: "SOURCE_READ_FAILED", reason: secretish },
    { status: "rejected", code: "OBJECT_TOO_LARGE", reason: secretish },
    { status: "failed-permanently", code: "CORRUPT", reason: secretish, outputs: [secretish] },
  ];

  it("writes exactly what the redacting logger writes, for every outcome", () => {
    const redacting = capture();
    const plain = capture();
    const hostileFacts = { ...facts, doc: { key: secretish, bucket: "src", size: 1 }, messageId: secretish };
    for (const outcome of outcomes) {
      logDocument(redacting.log, hostileFacts, outcome);
      logDocument(unredactedChild(plain.log), hostileFacts, outcome);
    }
    expect(plain.lines).toHaveLength(outcomes.length);
    expect(plain.lines).toEqual(redacting.lines);
  });

  it("holds only primitives and lists of strings (where a redact path could match nothing)", () => {
    for (const outcome of outcomes) {
      for (const [name, value] of Object.entries(documentLine(facts, outcome))) {
        const ok = value === undefined || typeof value !== "object" || (Array.isArray(value) && value.every((v) => typeof v === "string"));
        expect(ok, `${outcome.status}.${name}`).toBe(true);
      }
    }
  });

  it("is a real bypass: a nested secret the redacting logger hides stays visible in the child (so it is kept for fixed fields)", () => {
    const redacting = capture();
    const plain = capture();
    redacting.log.info({ detail: { sessionToken: "s3cr3t" } }, "x");
    unredactedChild(plain.log).info({ detail: { sessionToken: "s3cr3t" } }, "x");
    expect(redacting.lines[0]).toMatchObject({ detail: { sessionToken: "[redacted]" } });
    expect(plain.lines[0]).toMatchObject({ detail: { sessionToken: "s3cr3t" } });
  });
});
