// The reliability runner's bookkeeping: a wrong verdict here would let a lost document pass as processed, or blame a
// duplicate on the wrong cause.
import { describe, expect, it } from "vitest";
import { CAUSE_TEXT, auditDocuments, explainDuplicates, summarizeCauses, type DaemonFacts, type DoneLine } from "./lib/accounting.js";
import { Report, scenarioLine, summaryLine } from "./lib/report.js";

const doc = (key: string) => ({ key, sha256: `sha-${key}`, size: key.length });
const output = (key: string, over: Partial<{ sha256: string; bytes: number; sourceKey: string }> = {}) => ({
  sourceKey: key,
  sha256: `sha-${key}`,
  bytes: key.length,
  ...over,
});
const line = (key: string, daemon: number, messageId: string, time: number): DoneLine => ({ key, daemon, messageId, receiveCount: 1, time });
const facts = (end: DaemonFacts["end"], deleteFailed: string[] = [], visibilityLost: string[] = []): DaemonFacts => ({
  end,
  deleteFailed: new Set(deleteFailed),
  visibilityLost: new Set(visibilityLost),
});

describe("auditDocuments", () => {
  it("tells processed, wrong, waiting (still queued) and lost documents apart", () => {
    const docs = ["ok", "bad-sha", "bad-size", "other-source", "queued", "gone"].map(doc);
    const outputs = new Map([
      ["ok", output("ok")],
      ["bad-sha", output("bad-sha", { sha256: "nope" })],
      ["bad-size", output("bad-size", { bytes: 1 })],
      ["other-source", output("other-source", { sourceKey: "ok" })],
      ["queued", undefined],
    ]);
    const audit = auditDocuments(docs, outputs, new Set(["queued", "bad-size"]), []);
    expect(audit).toEqual({
      uploaded: 6,
      correct: 1,
      wrong: ["bad-sha", "bad-size", "other-source"],
      waiting: ["bad-size", "queued"],
      lost: ["bad-sha", "other-source", "gone"],
      duplicates: 0,
    });
  });

  it("counts every processing beyond the first, for uploaded keys only", () => {
    const done = [line("a", 0, "m1", 1), line("a", 1, "m1", 2), line("a", 2, "m1", 3), line("b", 0, "m2", 1), line("x", 0, "m3", 1), line("x", 0, "m3", 2)];
    const audit = auditDocuments([doc("a"), doc("b")], new Map([["a", output("a")], ["b", output("b")]]), new Set(), done);
    expect(audit.duplicates).toBe(2);
    expect(audit.correct).toBe(2);
  });
});

describe("explainDuplicates", () => {
  it("names the cause of each repeat from the previous processing's message and daemon", () => {
    const done = [
      // Two events for one object: different message ids.
      line("two-events", 0, "e1", 10),
      line("two-events", 0, "e2", 11),
      // Killed after the write: same message, the first daemon was SIGKILLed.
      line("killed", 0, "k1", 10),
      line("killed", 1, "k1", 30),
      // The delete failed in a daemon that was later killed too: the delete failure is the cause.
      line("delete", 0, "d1", 10),
      line("delete", 1, "d1", 30),
      line("lapsed", 2, "v1", 10),
      line("lapsed", 2, "v1", 40),
      line("plain", 2, "p1", 10),
      line("plain", 2, "p1", 40),
      line("once", 2, "o1", 10),
    ];
    const daemons = [facts("sigkill", ["d1"]), facts("sigterm"), facts("other", [], ["v1"])];
    const explained = explainDuplicates(done, daemons);
    expect(Object.fromEntries(explained.map((e) => [e.key, e.causes]))).toEqual({
      "two-events": ["second-event"],
      killed: ["killed-before-delete"],
      delete: ["delete-failed"],
      lapsed: ["visibility-lapsed"],
      plain: ["redelivered"],
    });
    // One of each cause, in the order the keys were first seen (ties keep that order).
    expect(summarizeCauses(explained)).toEqual([
      ["second-event", 1],
      ["killed-before-delete", 1],
      ["delete-failed", 1],
      ["visibility-lapsed", 1],
      ["redelivered", 1],
    ]);
  });

  it("summarizeCauses counts each cause over all keys, the most frequent first", () => {
    const done = [
      line("a", 0, "m1", 1),
      line("a", 1, "m1", 2),
      line("a", 1, "m2", 3),
      line("b", 0, "m3", 1),
      line("b", 1, "m3", 2),
      line("c", 0, "m4", 1),
      line("c", 0, "m5", 2),
      line("c", 0, "m6", 3),
    ];
    const explained = explainDuplicates(done, [facts("sigkill"), facts("sigterm")]);
    expect(summarizeCauses(explained)).toEqual([
      ["second-event", 3],
      ["killed-before-delete", 2],
    ]);
  });

  it("orders each key's processings by time, whatever order the daemons' logs were read in", () => {
    const done = [line("k", 1, "m", 50), line("k", 0, "m", 10), line("k", 2, "m2", 60)];
    const [only] = explainDuplicates(done, [facts("sigkill"), facts("sigterm"), facts("other")]);
    expect(only).toEqual({ key: "k", count: 3, causes: ["killed-before-delete", "second-event"] });
  });
});

describe("report lines", () => {
  it("fails a scenario that lost a document and prints lost= on its line", () => {
    const report = new Report();
    const audit = auditDocuments([doc("a"), doc("b")], new Map([["a", output("a")]]), new Set(), []);
    report.documents(audit, [], { allProcessed: true });
    expect(report.failures).toEqual(['1 document(s) lost (no output, no message): "b"']);
    expect(scenarioLine("kill-9", report, 1234)).toBe("FAIL kill-9       uploaded=2 processed=1 lost=1 duplicates=0 wall=1.2s");
  });

  it("fails a document still waiting in the queue only when the scenario requires everything processed", () => {
    const audit = auditDocuments([doc("a")], new Map(), new Set(["a"]), []);
    const strict = new Report();
    strict.documents(audit, [], { allProcessed: true });
    const lenient = new Report();
    lenient.documents(audit, [], { allProcessed: false });
    expect(strict.failures).toEqual(['1 document(s) not processed, their message still queued or in the DLQ: "a"']);
    expect(lenient.failures).toEqual([]);
    expect(scenarioLine("x", lenient, 0)).toContain("lost=0");
  });

  it("explains duplicates under the scenario line: counts per cause, what each means, then each key", () => {
    const done = [line("a", 0, "m1", 1), line("a", 1, "m1", 2), line("b", 0, "m2", 1), line("b", 0, "m3", 2)];
    const duplicates = explainDuplicates(done, [facts("sigkill"), facts("sigterm")]);
    const report = new Report();
    report.documents(auditDocuments([doc("a"), doc("b")], new Map([["a", output("a")], ["b", output("b")]]), new Set(), done), duplicates, {
      allProcessed: true,
    });
    expect(report.failures).toEqual([]);
    expect(report.details).toEqual([
      "duplicates (expected: delivery is at least once and the output write is idempotent): 1 killed-before-delete, 1 second-event",
      `  killed-before-delete: ${CAUSE_TEXT["killed-before-delete"]}`,
      `  second-event: ${CAUSE_TEXT["second-event"]}`,
      '  "a" processed 2x: killed-before-delete',
      '  "b" processed 2x: second-event',
    ]);
    expect(scenarioLine("dup", report, 0)).toBe("PASS dup          uploaded=2 processed=2 lost=0 duplicates=2 wall=0.0s");
  });

  it("ends a run with the exact summary line", () => {
    expect(summaryLine(4, 1)).toBe("4 passed, 1 failed");
  });
});
