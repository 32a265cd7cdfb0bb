// The bench's rounds (report.ts medianOfRounds): each contender's median round as one row, the highest peak RSS of
// all rounds, every round's pace listed, and the first-seen order of contenders.
import { describe, expect, it } from "vitest";
import { formatReport, medianOfRounds, type ContenderResult } from "../../bench/report.js";

function run(name: string, steadyDocsPerSecond: number | null, peakRssMb: number | null, cpuMsPerDoc = 1): ContenderResult {
  return {
    name,
    documents: 100,
    duplicates: 0,
    failures: 0,
    seconds: 1,
    docsPerSecond: 100,
    mbPerSecond: 0,
    cpuMsPerDoc,
    cpuMsTotal: 100,
    requestsPerDoc: 2.2,
    requestsByAction: {},
    peakRssMb,
    readyMs: 500,
    pinned: true,
    exit: 0,
    steady: steadyDocsPerSecond === null ? null : { warmupDocuments: 20, documents: 80, seconds: 1, docsPerSecond: steadyDocsPerSecond, cpuMsPerDoc },
  };
}

describe("medianOfRounds", () => {
  it("keeps the median round whole, takes the highest RSS, and lists every round", () => {
    const combined = medianOfRounds([
      [run("daemon", 700, 85, 1.4), run("raw", 400, 92, 2.5)],
      [run("daemon", 800, 88, 1.2), run("raw", 300, 90, 3.3)],
      [run("daemon", 600, 86, 1.6), run("raw", 380, 91, 2.6)],
    ]);
    expect(combined.map((r) => r.name)).toEqual(["daemon", "raw"]);
    const [daemon, raw] = combined;
    expect([daemon!.steady?.docsPerSecond, daemon!.steady?.cpuMsPerDoc, daemon!.peakRssMb, daemon!.rounds?.map((r) => r.docsPerSecond)]).toEqual([700, 1.4, 88, [700, 800, 600]]);
    expect(daemon!.rounds?.map((r) => r.cpuMsPerDoc)).toEqual([1.4, 1.2, 1.6]);
    expect([raw!.steady?.docsPerSecond, raw!.cpuMsPerDoc, raw!.peakRssMb]).toEqual([380, 2.6, 92]);
  });

  it("takes the slower middle round of an even count, and ranks a run without steady figures by its whole-run pace", () => {
    const even = medianOfRounds([[run("a", 500, 1)], [run("a", 900, 1)], [run("a", 700, 1)], [run("a", 800, 1)]]);
    expect(even[0]!.steady?.docsPerSecond).toBe(700);
    const shell = medianOfRounds([[{ ...run("shell", null, null), docsPerSecond: 3 }], [{ ...run("shell", null, null), docsPerSecond: 1 }], [{ ...run("shell", null, null), docsPerSecond: 2 }]]);
    expect([shell[0]!.docsPerSecond, shell[0]!.peakRssMb]).toEqual([2, null]);
  });

  it("passes a single round through unchanged, and the report lists rounds only when there were several", () => {
    const one = run("daemon", 700, 85);
    expect(medianOfRounds([[one]])).toEqual([one]);
    expect(formatReport([one], [])).not.toContain("Rounds");
    const three = medianOfRounds([[run("daemon", 700, 85)], [run("daemon", 650, 85)], [run("daemon", 720, 85)]]);
    expect(formatReport(three, [])).toContain("  daemon: 700 (1.00) / 650 (1.00) / 720 (1.00)");
  });
});
