// The drain's order of steps alone, against fakes: hand back the unstarted (detached by the stop), wait to the
// deadline, then abort, grace, release the stuck, and only then flush deletes and close the heartbeat.
import { describe, expect, it } from "vitest";
import { createLogger } from "../../../src/logging/logger.js";
import { drain, type DrainDeps } from "../../../src/queue/drain.js";

const UNSTARTED = [{ messageId: "u", receiptHandle: "rh-u", receiveCount: 1 }];

function setup(settles: boolean[]) {
  const steps: string[] = [];
  const log = createLogger({ level: "debug", destination: { write: () => undefined } });
  const deps: DrainDeps = {
    inFlight: {
      size: 3,
      running: 2,
      abandon: async (which) => {
        steps.push(`abandon ${which}`);
        return 1;
      },
      handBack: async (detached, why) => {
        steps.push(`hand back ${detached.length}: ${why}`);
        return detached.length;
      },
      settledWithin: async (ms) => {
        steps.push(`settledWithin ${ms}`);
        return settles.shift() ?? true;
      },
      abortRunning: (reason) => {
        steps.push(`abort: ${reason}`);
      },
      settled: async () => {
        steps.push("settled");
      },
    },
    deletes: {
      drain: async () => {
        steps.push("deletes drained");
      },
    },
    heartbeat: { close: () => steps.push("heartbeat closed") },
    log,
    clock: () => 1_000,
    abortGraceMs: 250,
  };
  return { deps, steps };
}

describe("drain", () => {
  it("releases the unstarted, waits until the deadline, flushes deletes and closes the heartbeat", async () => {
    const { deps, steps } = setup([true]);
    await expect(drain(deps, UNSTARTED, 5_000, 4_000)).resolves.toEqual({ timedOut: false });
    expect(steps).toEqual([
      "hand back 1: not started before shutdown",
      "settledWithin 4000",
      "deletes drained",
      "heartbeat closed",
    ]);
  });

  it("at the deadline aborts, grants the grace, releases what still runs, and waits for the acknowledging", async () => {
    const { deps, steps } = setup([false, false]);
    await expect(drain(deps, UNSTARTED, 500, 0)).resolves.toEqual({ timedOut: true });
    expect(steps).toEqual([
      "hand back 1: not started before shutdown",
      "settledWithin 0",
      "abort: shutting down",
      "settledWithin 250",
      "abandon running",
      "settled",
      "deletes drained",
      "heartbeat closed",
    ]);
  });
});
