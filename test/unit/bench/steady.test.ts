// The bench's steady-state arithmetic (test/bench/steady.ts): which documents are warm-up, the rates over the rest,
// the ratios, and the t2.micro baseline conversion, checked on exact numbers so a changed formula fails here.
import { describe, expect, it } from "vitest";
import {
  T2_MICRO_BASELINE_CPU_MS_PER_HOUR,
  formatT2MicroLine,
  ratio,
  steadyFigures,
  t2MicroDocsPerHour,
  warmupDocuments,
} from "../../bench/steady.js";

describe("warmupDocuments", () => {
  it("leaves out 20% of the documents, rounded up", () => {
    expect(warmupDocuments(200)).toBe(40);
    expect(warmupDocuments(2000)).toBe(400);
    expect(warmupDocuments(201)).toBe(41);
  });

  it("leaves out at least 20", () => {
    expect(warmupDocuments(40)).toBe(20);
    expect(warmupDocuments(99)).toBe(20);
    expect(warmupDocuments(101)).toBe(21);
  });

  it("gives no window when fewer than 20 documents would remain after it", () => {
    expect(warmupDocuments(39)).toBeNull();
    expect(warmupDocuments(8)).toBeNull();
    expect(warmupDocuments(0)).toBeNull();
  });
});

describe("steadyFigures", () => {
  it("measures from the warm-up's last document to the last one", () => {
    // 200 documents, 40 warm-up: 160 documents in 2 s (1000 ms -> 3000 ms), 240 ms CPU (760 -> 1000).
    expect(steadyFigures(200, 40, { at: 1000, cpuMs: 760 }, { at: 3000, cpuMs: 1000 })).toEqual({
      warmupDocuments: 40,
      documents: 160,
      seconds: 2,
      docsPerSecond: 80,
      cpuMsPerDoc: 1.5,
    });
  });

  it("keeps the rate without CPU when /proc was unreadable at either end", () => {
    const figures = steadyFigures(100, 20, { at: 0, cpuMs: undefined }, { at: 4000, cpuMs: 500 });
    expect(figures?.docsPerSecond).toBe(20);
    expect(figures?.cpuMsPerDoc).toBeNull();
  });

  it("is null for an empty window or one without time", () => {
    expect(steadyFigures(20, 20, { at: 0, cpuMs: 0 }, { at: 10, cpuMs: 10 })).toBeNull();
    expect(steadyFigures(50, 20, { at: 10, cpuMs: 0 }, { at: 10, cpuMs: 10 })).toBeNull();
  });
});

describe("ratio", () => {
  it("divides, and is null when the divisor is missing, zero or not finite", () => {
    expect(ratio(80, 100)).toBe(0.8);
    expect(ratio(80, 0)).toBeNull();
    expect(ratio(80, null)).toBeNull();
    expect(ratio(null, 100)).toBeNull();
    expect(ratio(80, Number.POSITIVE_INFINITY)).toBeNull();
  });
});

describe("t2.micro baseline", () => {
  it("is 6 credits an hour: 10% of one vCPU, 360 CPU-seconds", () => {
    expect(T2_MICRO_BASELINE_CPU_MS_PER_HOUR).toBe(360_000);
  });

  it("turns CPU ms per document into documents per hour", () => {
    expect(t2MicroDocsPerHour(1)).toBe(360_000);
    expect(t2MicroDocsPerHour(1.5)).toBe(240_000);
    expect(t2MicroDocsPerHour(1000)).toBe(360);
    expect(t2MicroDocsPerHour(0)).toBeNull();
    expect(t2MicroDocsPerHour(null)).toBeNull();
  });

  it("prints each contender's figure, rounded to two significant figures, with the assumption", () => {
    const line = formatT2MicroLine([
      { name: "daemon", cpuMsPerDoc: 0.73 },
      { name: "raw SDK loop", cpuMsPerDoc: 1.5 },
      { name: "shell", cpuMsPerDoc: 1300 },
      { name: "sqs-consumer", cpuMsPerDoc: null },
    ]);
    expect(line).toBe(
      "t2.micro baseline (6 credits/h = 10% of 1 vCPU = 360 CPU-s/h, steady CPU ms/doc, this machine's CPU): " +
        "daemon ~490,000 docs/h, raw SDK loop ~240,000 docs/h, shell ~280 docs/h, sqs-consumer n/a",
    );
  });
});
