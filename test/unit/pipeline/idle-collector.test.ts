// The idle-time full collection, wired to a real pipeline as src/app.ts wires it: only once enough bytes have
// settled, only when nothing is in flight, once per idle moment, however the last documents end (one at a time, all
// in one tick, or aborted before they ran), and nothing without a runtime collection.
import { setImmediate as tick } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import type { DocumentRef } from "../../../src/domain/document.js";
import type { Outcome } from "../../../src/pipeline/outcome.js";
import { IdleCollector, exposedGc } from "../../../src/pipeline/idle-collector.js";
import { createPipeline } from "../../../src/pipeline/pipeline.js";
import type { DocumentPipeline } from "../../../src/pipeline/types.js";

const MiB = 1024 * 1024;
const done: Outcome = { status: "done", bytesIn: 0, bytesOut: 0, outputs: [] };

interface Rig {
  pipeline: DocumentPipeline;
  collector: IdleCollector;
  calls: () => number;
  /** Submits a document whose run ends when `until` resolves; returns its abort controller and settled outcome. */
  submit: (size: number, until: Promise<unknown>) => { abort: AbortController; outcome: Promise<Outcome> };
}

function rig(opts: { thresholdBytes?: number; concurrency?: number; withGc?: boolean } = {}): Rig {
  let calls = 0;
  const ends = new Map<string, Promise<unknown>>();
  const pipeline = createPipeline({
    concurrency: opts.concurrency ?? 4,
    prefetch: 4,
    maxInFlightBytes: 1024 * MiB,
    // As src/app.ts: the collector hears of each document that ran, as it settles.
    run: (doc) => ends.get(doc.key)!.then(() => done).finally(() => collector.settled(doc.size ?? 0)),
  });
  const collector = new IdleCollector({
    thresholdBytes: opts.thresholdBytes ?? MiB,
    inFlight: () => pipeline.inFlight,
    idle: () => pipeline.onIdle(),
    collect: (opts.withGc ?? true) ? () => void calls++ : undefined,
  });
  let n = 0;
  const submit: Rig["submit"] = (size, until) => {
    const key = `doc-${n++}`;
    ends.set(key, until);
    const abort = new AbortController();
    const doc: DocumentRef = { bucket: "b", key, size };
    return { abort, outcome: pipeline.submit(doc, { messageId: key, receiveCount: 1, signal: abort.signal }) };
  };
  return { pipeline, collector, calls: () => calls, submit };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await tick();
}

describe("IdleCollector", () => {
  it("collects once the settled bytes reach the threshold and the pipeline is idle, then counts again from zero", async () => {
    const r = rig();
    await r.submit(MiB / 2, Promise.resolve()).outcome;
    await settle();
    expect(r.calls()).toBe(0);
    await r.submit(MiB / 2, Promise.resolve()).outcome;
    await settle();
    expect(r.calls()).toBe(1);
    await r.submit(MiB - 1, Promise.resolve()).outcome;
    await settle();
    expect([r.calls(), r.collector.collections]).toEqual([1, 1]);
  });

  it("waits while documents are in flight, and collects once, when the last one ends", async () => {
    const r = rig();
    let endSecond!: () => void;
    const first = r.submit(2 * MiB, Promise.resolve());
    const second = r.submit(MiB, new Promise<void>((resolve) => (endSecond = resolve)));
    await first.outcome;
    await settle();
    expect(r.calls()).toBe(0);
    endSecond();
    await second.outcome;
    await settle();
    expect(r.calls()).toBe(1);
  });

  it("collects when the last documents end in the same tick (one shared resolution)", async () => {
    const r = rig();
    let end!: () => void;
    const shared = new Promise<void>((resolve) => (end = resolve));
    const a = r.submit(5 * MiB, shared);
    const b = r.submit(5 * MiB, shared);
    end();
    await Promise.all([a.outcome, b.outcome]);
    await settle();
    expect(r.calls()).toBe(1);
  });

  it("collects when the last document in flight was aborted while waiting for a slot (it never ran)", async () => {
    const r = rig({ concurrency: 1 });
    let end!: () => void;
    const running = r.submit(5 * MiB, new Promise<void>((resolve) => (end = resolve)));
    const waiting = r.submit(5 * MiB, new Promise<void>(() => undefined));
    await tick();
    // Aborted while it waits for the slot: it will leave without running, after the running one settles.
    waiting.abort.abort();
    end();
    await running.outcome;
    expect((await waiting.outcome).status).toBe("retry");
    await settle();
    expect(r.calls()).toBe(1);
  });

  it("waits again when traffic resumes between the idle moment and the collection", async () => {
    const r = rig();
    await r.submit(2 * MiB, Promise.resolve()).outcome;
    // Idle now, and the collection is due after this tick: a new document arrives first.
    let end!: () => void;
    const next = r.submit(1, new Promise<void>((resolve) => (end = resolve)));
    await settle();
    expect(r.calls()).toBe(0);
    end();
    await next.outcome;
    await settle();
    expect(r.calls()).toBe(1);
  });

  it("does nothing where the runtime offers no collection", async () => {
    const r = rig({ withGc: false });
    await r.submit(100 * MiB, Promise.resolve()).outcome;
    await settle();
    expect(r.collector.collections).toBe(0);
  });

  it("finds V8's collection only when the process has --expose-gc", () => {
    const had = (globalThis as { gc?: unknown }).gc;
    expect(exposedGc() === undefined).toBe(typeof had !== "function");
  });
});
