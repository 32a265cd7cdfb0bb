// The idle-time full collection: only once enough bytes have settled, only when nothing is in flight, at most one
// pending, and nothing without a runtime collection.
import { setImmediate as tick } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { IdleCollector, exposedGc } from "../../../src/pipeline/idle-collector.js";

function rig(thresholdBytes: number, withGc = true): { collector: IdleCollector; calls: () => number; setInFlight: (n: number) => void } {
  let calls = 0;
  let inFlight = 0;
  const collector = new IdleCollector({ thresholdBytes, inFlight: () => inFlight, collect: withGc ? () => void calls++ : undefined });
  return { collector, calls: () => calls, setInFlight: (n) => (inFlight = n) };
}

describe("IdleCollector", () => {
  it("collects once the settled bytes reach the threshold and the pipeline is idle", async () => {
    const { collector, calls } = rig(1000);
    collector.settled(400);
    collector.settled(500);
    await tick();
    expect(calls()).toBe(0);
    collector.settled(100);
    await tick();
    expect(calls()).toBe(1);
    // The count starts over.
    collector.settled(999);
    await tick();
    expect(calls()).toBe(1);
  });

  it("waits while documents are in flight, and the next settled one asks again", async () => {
    const { collector, calls, setInFlight } = rig(10);
    setInFlight(2);
    collector.settled(50);
    await tick();
    expect(calls()).toBe(0);
    setInFlight(0);
    collector.settled(1);
    await tick();
    expect(calls()).toBe(1);
    expect(collector.collections).toBe(1);
  });

  it("schedules nothing while others are in flight: the last one to settle (counted while it settles) asks", async () => {
    const { collector, calls, setInFlight } = rig(10);
    setInFlight(3);
    collector.settled(50);
    // Idle by the next tick, but this one settled among others: it left the asking to them.
    setInFlight(0);
    await tick();
    expect(calls()).toBe(0);
    setInFlight(1);
    collector.settled(0);
    setInFlight(0);
    await tick();
    expect(calls()).toBe(1);
  });

  it("runs one collection for documents settling in the same tick", async () => {
    const { collector, calls } = rig(10);
    for (let i = 0; i < 5; i++) collector.settled(100);
    await tick();
    expect(calls()).toBe(1);
  });

  it("does nothing where the runtime offers no collection", async () => {
    const { collector } = rig(1, false);
    collector.settled(1_000_000);
    await tick();
    expect(collector.collections).toBe(0);
  });

  it("finds V8's collection only when the process has --expose-gc", () => {
    const had = (globalThis as { gc?: unknown }).gc;
    expect(exposedGc() === undefined).toBe(typeof had !== "function");
  });
});
