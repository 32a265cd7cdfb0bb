import { describe, expect, it } from "vitest";
import { boundLine, LIST_SAMPLE, MAX_LOG_LINE_BYTES, summarize, truncate } from "../../../src/logging/log-bounds.js";
import { createLogger } from "../../../src/logging/logger.js";

const bytes = (s: string) => Buffer.byteLength(s);

describe("truncate", () => {
  it("leaves short strings alone and says how much it cut from long ones", () => {
    expect(truncate("abc", 5)).toBe("abc");
    expect(truncate("abcdefgh", 5)).toBe("abcde… (3 more characters)");
  });

  it("never splits a surrogate pair", () => {
    const cut = truncate("ab😀cd", 3);
    expect(cut.startsWith("ab…")).toBe(true);
    expect(cut).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });
});

describe("summarize", () => {
  it("keeps the first few entries (strings truncated), counts them all and per reason", () => {
    const items = Array.from({ length: 1000 }, (_, i) => ({ reason: i % 10 === 0 ? "output-bucket" : "other-bucket", detail: `record ${i}: ${"k".repeat(2000)}` }));
    const s = summarize(items, (r) => r.reason);
    expect(s.count).toBe(1000);
    expect(s.byReason).toEqual({ "output-bucket": 100, "other-bucket": 900 });
    expect(s.sample).toHaveLength(LIST_SAMPLE);
    expect(s.sample[0]?.detail).toMatch(/^record 0: k+… \(\d+ more characters\)$/);
    expect(JSON.stringify(s).length).toBeLessThan(4_000);
  });

  it("a small list is logged as it is", () => {
    const items = [{ reason: "other-bucket", detail: "bucket elsewhere" }];
    expect(summarize(items, (r) => r.reason)).toEqual({ sample: items, count: 1, byReason: { "other-bucket": 1 } });
  });

  it("bounds hostile reasons too", () => {
    const s = summarize([{ code: "x".repeat(10_000) }], (f) => f.code);
    expect(Object.keys(s.byReason)[0]!.length).toBeLessThan(100);
  });
});

describe("boundLine (the logger's last resort)", () => {
  it("passes lines under the limit through untouched", () => {
    const line = `${JSON.stringify({ level: "info", msg: "document", key: "é".repeat(3000) })}\n`;
    expect(boundLine(line)).toBe(line);
  });

  it("cuts a long line down to valid JSON under the limit that keeps level, time, msg and says what it cut", () => {
    const line = `${JSON.stringify({ level: "warn", time: "2026-11-29T12:00:00.000Z", service: "doc-processor", msg: "nothing to process", messageId: "m-1", ignored: Array.from({ length: 1000 }, (_, i) => ({ reason: "other-bucket", detail: `record ${i}` })), small: 1 })}\n`;
    expect(bytes(line)).toBeGreaterThan(MAX_LOG_LINE_BYTES);
    const out = boundLine(line);
    expect(bytes(out)).toBeLessThanOrEqual(MAX_LOG_LINE_BYTES);
    expect(out.endsWith("\n")).toBe(true);
    const parsed = JSON.parse(out) as Record<string, unknown>;
    expect(parsed).toMatchObject({ level: "warn", time: "2026-11-29T12:00:00.000Z", msg: "nothing to process", messageId: "m-1", small: 1 });
    expect(parsed["logTruncated"]).toEqual({ bytes: bytes(line), limit: MAX_LOG_LINE_BYTES, fields: ["ignored"] });
    expect(parsed["ignored"]).toMatch(/^\[\{"reason":"other-bucket".*… \(\d+ more characters\)$/);
  });

  it("with many mid-sized fields, keeps only what identifies the line", () => {
    const fields = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`f${i}`, "x".repeat(900)]));
    const line = `${JSON.stringify({ level: "info", time: "t", msg: "many", ...fields })}\n`;
    const out = boundLine(line);
    expect(bytes(out)).toBeLessThanOrEqual(MAX_LOG_LINE_BYTES);
    const parsed = JSON.parse(out) as { msg: string; logTruncated: { fields: string[] } };
    expect(parsed.msg).toBe("many");
    expect(parsed.logTruncated.fields).toContain("f0");
  });

  it("multi-byte and escaped content stays under the limit", () => {
    const line = `${JSON.stringify({ level: "info", msg: "\u0001".repeat(20_000), key: "日".repeat(20_000) })}\n`;
    const out = boundLine(line);
    expect(bytes(out)).toBeLessThanOrEqual(MAX_LOG_LINE_BYTES);
    expect(() => JSON.parse(out) as unknown).not.toThrow();
  });

  it("a line that is not JSON is replaced by one that is", () => {
    const out = boundLine(`${"not json ".repeat(5_000)}\n`);
    expect(bytes(out)).toBeLessThanOrEqual(MAX_LOG_LINE_BYTES);
    expect(JSON.parse(out)).toMatchObject({ level: "error", msg: "log line too long to write" });
  });
});

describe("createLogger: every line bounded", () => {
  it("writes an oversized line cut down, after redaction", () => {
    const lines: string[] = [];
    const log = createLogger({ level: "info", destination: { write: (line: string) => void lines.push(line) } });
    log.child({ component: "test" }).warn({ secretAccessKey: "do-not-log", causes: Array.from({ length: 2000 }, (_, i) => `cause ${i}`) }, "big");
    expect(lines).toHaveLength(1);
    expect(bytes(lines[0]!)).toBeLessThanOrEqual(MAX_LOG_LINE_BYTES);
    const parsed = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(parsed).toMatchObject({ level: "warn", msg: "big", component: "test", secretAccessKey: "[redacted]" });
    expect(parsed["logTruncated"]).toMatchObject({ fields: ["causes"] });
    expect(lines[0]).not.toContain("do-not-log");
  });
});
