// The bench's targets (issue 15) read the right contenders and the right figures: steady-state ratios for the
// daemon doing the raw loop's job and for the full daemon against sqs-consumer, whole-run ratios, requests and RSS.
import { describe, expect, it } from "vitest";
import { DAEMON_SHA256, RAW, SQS_CONSUMER, checkTargets, type ContenderResult } from "../../bench/report.js";

function contender(name: string, docsPerSecond: number, steady: { docsPerSecond: number; cpuMsPerDoc: number } | null, extra: Partial<ContenderResult> = {}): ContenderResult {
  return {
    name,
    documents: 200,
    duplicates: 0,
    failures: 0,
    seconds: 200 / docsPerSecond,
    docsPerSecond,
    mbPerSecond: 0,
    cpuMsPerDoc: 1,
    cpuMsTotal: 200,
    requestsPerDoc: 2.2,
    requestsByAction: {},
    peakRssMb: 90,
    readyMs: 500,
    pinned: true,
    exit: 0,
    steady: steady === null ? null : { warmupDocuments: 40, documents: 160, seconds: 1, ...steady },
    ...extra,
  };
}

const byTarget = (results: ContenderResult[]) => new Map(checkTargets(results).map((t) => [t.target.trim(), t]));

describe("checkTargets", () => {
  it("meets every target on figures that reach them, with the measured ratios", () => {
    const t = byTarget([
      contender("daemon", 400, { docsPerSecond: 450, cpuMsPerDoc: 2 }, { requestsPerDoc: 2.2, peakRssMb: 95 }),
      contender(DAEMON_SHA256, 500, { docsPerSecond: 600, cpuMsPerDoc: 1.5 }),
      contender(RAW, 300, { docsPerSecond: 300, cpuMsPerDoc: 3 }),
      contender(SQS_CONSUMER, 250, { docsPerSecond: 280, cpuMsPerDoc: 4 }),
    ]);
    expect(t.get("steady: raw loop's job >= 2.0x its docs/s")).toMatchObject({ value: 2, met: true });
    expect(t.get("steady: raw loop's job <= 0.5x its CPU/doc")).toMatchObject({ value: 0.5, met: true });
    expect(t.get("steady: daemon >= 1.5x sqs-consumer")?.value).toBeCloseTo(450 / 280);
    expect(t.get("whole run: raw loop's job >= 1.5x raw")).toMatchObject({ value: 500 / 300, met: true });
    expect(t.get("whole run: raw loop's job >= 1.5x sqs-consumer")).toMatchObject({ value: 2, met: true });
    expect(t.get("peak RSS <= 96 MB")).toMatchObject({ value: 95, met: true });
    expect([...t.values()].every((x) => x.met === true)).toBe(true);
  });

  it("misses and says by how much; a figure that is missing is 'not measured', never met", () => {
    const t = byTarget([
      contender("daemon", 200, null, { requestsPerDoc: 3.1, peakRssMb: 110 }),
      contender(DAEMON_SHA256, 300, { docsPerSecond: 330, cpuMsPerDoc: 2.4 }),
      contender(RAW, 300, { docsPerSecond: 300, cpuMsPerDoc: 3 }),
      contender(SQS_CONSUMER, 250, { docsPerSecond: 280, cpuMsPerDoc: 4 }),
    ]);
    expect(t.get("steady: raw loop's job >= 2.0x its docs/s")).toMatchObject({ value: 1.1, met: false, missedBy: "0.90x (45%)" });
    expect(t.get("steady: raw loop's job <= 0.5x its CPU/doc")).toMatchObject({ met: false });
    expect(t.get("steady: daemon >= 1.5x sqs-consumer")).toMatchObject({ value: null, met: null, missedBy: "not measured" });
    expect(t.get("<= 2.2 requests/document")).toMatchObject({ met: false });
    expect(t.get("peak RSS <= 96 MB")).toMatchObject({ met: false, missedBy: "14.0 MB (15%)" });
  });
});
