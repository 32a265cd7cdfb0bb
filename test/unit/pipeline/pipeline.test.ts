import { describe, expect, it } from "vitest";
import type { Outcome } from "../../../src/pipeline/outcome.js";
import { createPipeline } from "../../../src/pipeline/pipeline.js";
import type { DocumentPipeline } from "../../../src/pipeline/types.js";
import type { DocumentRef } from "../../../src/domain/document.js";
import { deferred, docRef, submitContext, type Deferred } from "./helpers.js";

const done: Outcome = { status: "done", outputs: [], bytesIn: 0, bytesOut: 0 };

/**
 * A pipeline whose `run` blocks until the test releases each document by key; `running` lists the keys running now
 * and `started` every key that ever started, in order.
 */
function harness(opts: { concurrency: number; maxInFlightBytes: number; unknownSizeBytes?: number; prefetch?: number }) {
  const gates = new Map<string, Deferred<Outcome>>();
  const startedSignals = new Map<string, Deferred<void>>();
  const running = new Set<string>();
  const started: string[] = [];
  let maxRunning = 0;
  const gate = (key: string): Deferred<Outcome> => {
    let g = gates.get(key);
    if (g === undefined) gates.set(key, (g = deferred<Outcome>()));
    return g;
  };
  const startSignal = (key: string): Deferred<void> => {
    let s = startedSignals.get(key);
    if (s === undefined) startedSignals.set(key, (s = deferred()));
    return s;
  };
  const pipeline = createPipeline({
    ...opts,
    run: async (doc: DocumentRef) => {
      running.add(doc.key);
      started.push(doc.key);
      maxRunning = Math.max(maxRunning, running.size);
      startSignal(doc.key).resolve();
      try {
        return await gate(doc.key).promise;
      } finally {
        running.delete(doc.key);
      }
    },
  });
  return {
    pipeline,
    running,
    started,
    get maxRunning() {
      return maxRunning;
    },
    submit: (key: string, size?: number, signal?: AbortSignal) =>
      pipeline.submit(docRef({ key, size }), submitContext(signal)),
    finish: (key: string, outcome: Outcome = done) => gate(key).resolve(outcome),
    fail: (key: string, err: unknown) => gate(key).reject(err),
    hasStarted: (key: string) => startSignal(key).promise,
  };
}

/** Lets every pending promise callback run (p-queue starts tasks in microtasks). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

async function roomState(p: DocumentPipeline, atLeast?: number): Promise<"room" | "waiting"> {
  const ac = new AbortController();
  let resolved = false;
  void p.waitForRoom(ac.signal, atLeast).then(() => (resolved = true));
  await settle();
  ac.abort();
  return resolved ? "room" : "waiting";
}

describe("createPipeline: concurrency", () => {
  it("never runs more than `concurrency` documents at once, and runs them all", async () => {
    const h = harness({ concurrency: 2, maxInFlightBytes: 1_000_000 });
    const results = ["a", "b", "c", "d", "e"].map((k) => h.submit(k, 1));
    await settle();
    expect([...h.running]).toEqual(["a", "b"]);
    h.finish("a");
    await h.hasStarted("c");
    expect(h.running.size).toBe(2);
    for (const k of ["b", "c", "d", "e"]) h.finish(k);
    await expect(Promise.all(results)).resolves.toHaveLength(5);
    expect(h.maxRunning).toBe(2);
    expect(h.started).toEqual(["a", "b", "c", "d", "e"]);
  });

  it("counts queued and running documents in inFlight and freeSlots", async () => {
    const h = harness({ concurrency: 3, maxInFlightBytes: 1_000_000 });
    expect(h.pipeline.freeSlots()).toBe(3);
    expect(h.pipeline.inFlight).toBe(0);
    const all = ["a", "b", "c", "d"].map((k) => h.submit(k, 1));
    await settle();
    expect(h.pipeline.inFlight).toBe(4);
    expect(h.pipeline.freeSlots()).toBe(0);
    for (const k of ["a", "b", "c"]) h.finish(k);
    await h.hasStarted("d");
    await settle();
    expect(h.pipeline.inFlight).toBe(1);
    expect(h.pipeline.freeSlots()).toBe(2);
    h.finish("d");
    await Promise.all(all);
    expect(h.pipeline.inFlight).toBe(0);
  });
});

describe("createPipeline: byte budget", () => {
  it("holds a document back while its size does not fit in the remaining budget", async () => {
    const h = harness({ concurrency: 10, maxInFlightBytes: 100 });
    const a = h.submit("a", 60);
    const b = h.submit("b", 60);
    await settle();
    expect([...h.running]).toEqual(["a"]);
    expect(h.pipeline.freeSlots()).toBe(0); // 120 bytes in flight >= 100
    h.finish("a");
    await h.hasStarted("b");
    expect([...h.running]).toEqual(["b"]);
    h.finish("b");
    await Promise.all([a, b]);
    expect(h.maxRunning).toBe(1);
  });

  it("runs documents that fit together", async () => {
    const h = harness({ concurrency: 10, maxInFlightBytes: 100 });
    const all = ["a", "b", "c"].map((k) => h.submit(k, 30));
    await settle();
    expect(h.running.size).toBe(3);
    expect(h.pipeline.freeSlots()).toBe(7);
    for (const k of ["a", "b", "c"]) h.finish(k);
    await Promise.all(all);
  });

  it("runs a document larger than the whole budget alone, and holds later ones behind it (no starvation)", async () => {
    const h = harness({ concurrency: 10, maxInFlightBytes: 100 });
    const small1 = h.submit("small1", 10);
    const big = h.submit("big", 500);
    const small2 = h.submit("small2", 10);
    await settle();
    expect([...h.running]).toEqual(["small1"]); // big waits for small1; small2 waits behind big
    h.finish("small1");
    await h.hasStarted("big");
    await settle();
    expect([...h.running]).toEqual(["big"]);
    h.finish("big");
    await h.hasStarted("small2");
    h.finish("small2");
    await Promise.all([small1, big, small2]);
    expect(h.started).toEqual(["small1", "big", "small2"]);
    expect(h.maxRunning).toBe(1);
  });

  it("charges a document without a size as unknownSizeBytes", async () => {
    const h = harness({ concurrency: 10, maxInFlightBytes: 100, unknownSizeBytes: 60 });
    const a = h.submit("a");
    const b = h.submit("b");
    await settle();
    expect([...h.running]).toEqual(["a"]);
    h.finish("a");
    await h.hasStarted("b");
    h.finish("b");
    await Promise.all([a, b]);
  });
});

describe("createPipeline: prefetch", () => {
  it("holds up to concurrency + prefetch documents, running only `concurrency`, and counts idle workers", async () => {
    const h = harness({ concurrency: 2, prefetch: 3, maxInFlightBytes: 1_000_000 });
    expect(h.pipeline.capacity).toBe(5);
    expect([h.pipeline.freeSlots(), h.pipeline.idleWorkers()]).toEqual([5, 2]);
    const a = h.submit("a", 1);
    expect([h.pipeline.freeSlots(), h.pipeline.idleWorkers()]).toEqual([4, 1]);
    const rest = ["b", "c", "d", "e"].map((k) => h.submit(k, 1));
    await settle();
    expect([...h.running]).toEqual(["a", "b"]);
    expect([h.pipeline.freeSlots(), h.pipeline.idleWorkers()]).toEqual([0, 0]);
    for (const k of ["a", "b", "c", "d", "e"]) {
      h.finish(k);
      await settle();
    }
    await Promise.all([a, ...rest]);
    expect(h.started).toEqual(["a", "b", "c", "d", "e"]);
    expect(h.maxRunning).toBe(2);
  });

  it("waitForRoom(atLeast) waits for that much room while every worker is busy, and not once one idles", async () => {
    const h = harness({ concurrency: 2, prefetch: 10, maxInFlightBytes: 1_000_000 });
    const keys = Array.from({ length: 12 }, (_, i) => `k${i}`);
    const all = keys.map((k) => h.submit(k, 1));
    await settle();
    expect(await roomState(h.pipeline, 10)).toBe("waiting");
    // 9 of 12 finish one by one: room 9, still 3 in flight (2 running, 1 waiting): no full batch yet.
    for (const k of keys.slice(0, 9)) h.finish(k);
    await settle();
    expect(h.pipeline.freeSlots()).toBe(9);
    expect(await roomState(h.pipeline, 10)).toBe("waiting");
    h.finish("k9"); // room 10
    await settle();
    expect(await roomState(h.pipeline, 10)).toBe("room");
    await Promise.all(all.slice(0, 10));
    // With a larger ask than the room, an idle worker still counts as room: the pipeline never starves for a batch.
    h.finish("k10");
    await settle();
    expect(h.pipeline.idleWorkers()).toBe(1);
    expect(await roomState(h.pipeline, 100)).toBe("room");
    h.finish("k11");
    await Promise.all(all);
  });

  it("calls the context's onStart when a document starts, not when it is aborted while waiting", async () => {
    const starts: string[] = [];
    const pipeline = createPipeline({ concurrency: 1, maxInFlightBytes: 100, run: async () => done });
    const ac = new AbortController();
    ac.abort();
    await pipeline.submit(docRef({ key: "a" }), { ...submitContext(), onStart: () => starts.push("a") });
    await pipeline.submit(docRef({ key: "b" }), { ...submitContext(ac.signal), onStart: () => starts.push("b") });
    expect(starts).toEqual(["a"]);
  });
});

describe("createPipeline: waiting", () => {
  it("waitForRoom resolves at once when there is room", async () => {
    const h = harness({ concurrency: 1, maxInFlightBytes: 100 });
    expect(await roomState(h.pipeline)).toBe("room");
  });

  it("waitForRoom waits while full and resolves when a document settles", async () => {
    const h = harness({ concurrency: 1, maxInFlightBytes: 100 });
    const a = h.submit("a", 1);
    expect(await roomState(h.pipeline)).toBe("waiting");
    const room = h.pipeline.waitForRoom(new AbortController().signal);
    h.finish("a");
    await room;
    expect(h.pipeline.freeSlots()).toBe(1);
    await a;
  });

  it("waitForRoom waits while the byte budget is used up even with free slots", async () => {
    const h = harness({ concurrency: 5, maxInFlightBytes: 100 });
    const a = h.submit("a", 100);
    expect(await roomState(h.pipeline)).toBe("waiting");
    h.finish("a");
    await a;
    expect(await roomState(h.pipeline)).toBe("room");
  });

  it("waitForRoom resolves when its signal aborts", async () => {
    const h = harness({ concurrency: 1, maxInFlightBytes: 100 });
    const a = h.submit("a", 1);
    const ac = new AbortController();
    const room = h.pipeline.waitForRoom(ac.signal);
    ac.abort();
    await room;
    expect(h.pipeline.freeSlots()).toBe(0);
    h.finish("a");
    await a;
  });

  it("onIdle resolves at once when idle, and only after every document settled otherwise", async () => {
    const h = harness({ concurrency: 1, maxInFlightBytes: 100 });
    await h.pipeline.onIdle();
    const a = h.submit("a", 1);
    const b = h.submit("b", 1);
    let idle = false;
    void h.pipeline.onIdle().then(() => (idle = true));
    h.finish("a");
    await a;
    await settle();
    expect(idle).toBe(false);
    h.finish("b");
    await b;
    await settle();
    expect(idle).toBe(true);
  });
});

describe("createPipeline: outcomes", () => {
  it("resolves to the run's Outcome", async () => {
    const h = harness({ concurrency: 1, maxInFlightBytes: 100 });
    const a = h.submit("a", 1);
    const outcome: Outcome = { status: "superseded", reason: "newer" };
    h.finish("a", outcome);
    await expect(a).resolves.toEqual(outcome);
  });

  it("turns a rejecting run into a retry with code INTERNAL instead of rejecting", async () => {
    const h = harness({ concurrency: 1, maxInFlightBytes: 100 });
    const a = h.submit("a", 1);
    h.fail("a", new Error("boom"));
    await expect(a).resolves.toMatchObject({ status: "retry", code: "INTERNAL", reason: expect.stringContaining("boom") as unknown });
    expect(h.pipeline.inFlight).toBe(0);
  });

  it("a document aborted while waiting for budget resolves ABORTED without running, and lets the next one in", async () => {
    const h = harness({ concurrency: 10, maxInFlightBytes: 100 });
    const a = h.submit("a", 90);
    const ac = new AbortController();
    const big = h.submit("big", 500, ac.signal);
    const c = h.submit("c", 5);
    await settle();
    expect([...h.running]).toEqual(["a"]);
    ac.abort();
    await expect(big).resolves.toMatchObject({ status: "retry", code: "ABORTED" });
    await h.hasStarted("c"); // 90 + 5 fits once big left the head of the line
    expect(h.started).toEqual(["a", "c"]);
    h.finish("a");
    h.finish("c");
    await Promise.all([a, c]);
    expect(h.pipeline.inFlight).toBe(0);
  });

  it("a document aborted while waiting for a slot resolves ABORTED without running", async () => {
    const h = harness({ concurrency: 1, maxInFlightBytes: 100 });
    const a = h.submit("a", 1);
    const ac = new AbortController();
    const b = h.submit("b", 1, ac.signal);
    await settle();
    ac.abort();
    h.finish("a");
    await expect(b).resolves.toMatchObject({ status: "retry", code: "ABORTED" });
    expect(h.started).toEqual(["a"]);
    await a;
  });

  it("refuses a budget that is not a positive integer", () => {
    expect(() => createPipeline({ concurrency: 1, maxInFlightBytes: 0, run: async () => done })).toThrow(TypeError);
  });
});
