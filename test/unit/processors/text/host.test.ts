// The extraction worker for real: time and memory limits, aborts, restarts. The hostile documents would take
// seconds (slowPdf) or gigabytes (flateBombPdf) unchecked; the assertions are on how the run ends and on memory.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExtractionJob } from "../../../../src/processors/builtin/text/extract.js";
import { ExtractionHost } from "../../../../src/processors/builtin/text/host.js";
import { PermanentDocumentError } from "../../../../src/processors/types.js";
import { flateBombPdf, makeDocx, makePdf, slowPdf, zipBombDocx } from "../../../fixtures/documents/build.js";
import { buildWorker } from "./helpers.js";

const MiB = 1024 * 1024;
const limits = { maxTextBytes: 16 * MiB, maxUncompressedBytes: 256 * MiB };
const pdfJob = (data: Buffer): ExtractionJob => ({ kind: "pdf", data: new Uint8Array(data), limits });
const live = (): AbortSignal => new AbortController().signal;

let workerUrl: URL;
let cleanup: () => void;
beforeAll(() => {
  ({ workerUrl, cleanup } = buildWorker());
});
afterAll(() => cleanup());

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected a failure");
    },
    (e: unknown) => e,
  );
}

/** Samples this process's RSS growth until `promise` settles (the worker is a thread of this process). */
async function peakRssGrowth<T>(promise: Promise<T>): Promise<number> {
  const baseline = process.memoryUsage.rss();
  let peak = 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss() - baseline);
  }, 5);
  try {
    await promise.catch(() => undefined);
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, process.memoryUsage.rss() - baseline);
}

describe("ExtractionHost", () => {
  it("extracts in the worker and reuses it for the next job", async () => {
    const host = new ExtractionHost({ workerUrl, memoryLimitBytes: 256 * MiB });
    try {
      const first = await host.run(pdfJob(makePdf(["one"])), { signal: live(), timeoutMs: 30_000 });
      expect(first.result).toMatchObject({ text: "one\n", pages: 1 });
      expect(host.hasWorker).toBe(true);
      const docx = await host.run(
        { kind: "docx", data: new Uint8Array(makeDocx(["two"])), limits },
        { signal: live(), timeoutMs: 30_000 },
      );
      expect(docx.result.text).toBe("two\n\n");
    } finally {
      await host.close();
    }
    expect(host.hasWorker).toBe(false);
  });

  it("collects PDF.js's console warnings about a document it had to repair", async () => {
    const host = new ExtractionHost({ workerUrl, memoryLimitBytes: 256 * MiB });
    try {
      // A wrong startxref offset: PDF.js rebuilds the cross-reference table by scanning, and says so.
      const pdf = Buffer.from(makePdf(["repaired"]).toString("latin1").replace(/startxref\n\d+/, "startxref\n12"), "latin1");
      const run = await host.run(pdfJob(pdf), { signal: live(), timeoutMs: 30_000 });
      expect(run.result.text).toBe("repaired\n");
      expect(run.result.warnings.length).toBeGreaterThan(0);
      expect(run.result.warnings.join("\n")).toMatch(/xref|Indexing/i);
    } finally {
      await host.close();
    }
  });

  it("transfers the document instead of copying it", async () => {
    const host = new ExtractionHost({ workerUrl, memoryLimitBytes: 256 * MiB });
    try {
      const data = new Uint8Array(makePdf(["moved"]));
      await host.run({ kind: "pdf", data, limits }, { signal: live(), timeoutMs: 30_000 });
      expect(data.byteLength).toBe(0); // detached: the bytes now belong to the worker
    } finally {
      await host.close();
    }
  });

  it("passes the document's permanent errors on, keeping the worker", async () => {
    const host = new ExtractionHost({ workerUrl, memoryLimitBytes: 256 * MiB });
    try {
      const err = await failure(
        host.run({ kind: "docx", data: new Uint8Array(zipBombDocx(64 * MiB)), limits }, { signal: live(), timeoutMs: 30_000 }),
      );
      expect(err).toBeInstanceOf(PermanentDocumentError);
      expect(err).toMatchObject({ code: "UNSAFE_ARCHIVE", detectedType: { ext: "docx" } });
      expect(host.hasWorker).toBe(true);
    } finally {
      await host.close();
    }
  });

  it("stops a parse that runs past the time limit (TIMEOUT), and the next job gets a fresh worker", async () => {
    const host = new ExtractionHost({ workerUrl, memoryLimitBytes: 1024 * MiB });
    try {
      // 64 MiB of "q Q " operators: many seconds of synchronous PDF.js work, stopped at one second.
      const err = await failure(
        host.run(pdfJob(slowPdf(64)), {
          signal: live(),
          timeoutMs: 1_000,
          detectedType: { mime: "application/pdf", ext: "pdf" },
        }),
      );
      expect(err).toBeInstanceOf(PermanentDocumentError);
      expect(err).toMatchObject({ code: "TIMEOUT", detectedType: { mime: "application/pdf" } });
      expect(host.hasWorker).toBe(false);
      const next = await host.run(pdfJob(makePdf(["after"])), { signal: live(), timeoutMs: 30_000 });
      expect(next.result.text).toBe("after\n");
    } finally {
      await host.close();
    }
  });

  it("stops a Flate bomb at the memory limit (MEMORY_LIMIT): growth stays near the limit, not at the bomb's 2 GiB", async () => {
    const limit = 128 * MiB;
    const host = new ExtractionHost({ workerUrl, memoryLimitBytes: limit });
    try {
      // Start the worker first, so the sampled growth below is the job's alone.
      await host.run(pdfJob(makePdf(["warm"])), { signal: live(), timeoutMs: 30_000 });
      const run = host.run(pdfJob(flateBombPdf(2048 * MiB)), { signal: live(), timeoutMs: 120_000 });
      const peak = await peakRssGrowth(run);
      const err = await failure(run);
      expect(err).toBeInstanceOf(PermanentDocumentError);
      expect(err).toMatchObject({ code: "MEMORY_LIMIT" });
      // Sampling every 20 ms lets one growth step overshoot (PDF.js doubles its buffer), never run away.
      expect(peak).toBeLessThan(limit * 4);
      expect(host.hasWorker).toBe(false);
    } finally {
      await host.close();
    }
  });

  it("stops the worker on abort and rethrows the caller's reason, which is not the document's fault", async () => {
    const host = new ExtractionHost({ workerUrl, memoryLimitBytes: 1024 * MiB });
    try {
      await host.run(pdfJob(makePdf(["warm"])), { signal: live(), timeoutMs: 30_000 });
      const ac = new AbortController();
      const run = host.run(pdfJob(slowPdf(64)), { signal: ac.signal, timeoutMs: 120_000 });
      // Past the microtasks that hand the job to the (started) worker: the abort lands mid-parse.
      await new Promise(setImmediate);
      ac.abort(new Error("shutting down"));
      const err = await failure(run);
      expect(err).not.toBeInstanceOf(PermanentDocumentError);
      expect((err as Error).message).toBe("shutting down");
      expect(host.hasWorker).toBe(false);
    } finally {
      await host.close();
    }
  });

  it("queues jobs one at a time; a job aborted while waiting never runs", async () => {
    const host = new ExtractionHost({ workerUrl, memoryLimitBytes: 256 * MiB });
    try {
      const first = host.run(pdfJob(makePdf(["first"])), { signal: live(), timeoutMs: 30_000 });
      const ac = new AbortController();
      const second = host.run(pdfJob(makePdf(["second"])), { signal: ac.signal, timeoutMs: 30_000 });
      ac.abort(new Error("gone"));
      await expect(second).rejects.toThrow("gone");
      await expect(first).resolves.toMatchObject({ result: { text: "first\n" } });
    } finally {
      await host.close();
    }
  });

  it("reports a worker that cannot start as a plain (retryable) error", async () => {
    const host = new ExtractionHost({ workerUrl: new URL("./does-not-exist.js", workerUrl), memoryLimitBytes: 64 * MiB });
    const err = await failure(host.run(pdfJob(makePdf(["x"])), { signal: live(), timeoutMs: 30_000 }));
    expect(err).not.toBeInstanceOf(PermanentDocumentError);
    expect((err as Error).message).toMatch(/could not start/);
    expect(host.hasWorker).toBe(false);
    await host.close();
  });
});
