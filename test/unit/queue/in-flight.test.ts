// InFlight's abandon (the stop path): it waits for an extension in flight before releasing, but not for ever: an
// extension that hangs (up to the clients' 60 s request timeout) must not hold the stop past what the unit allows.
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../../src/logging/logger.js";
import type { DocumentPipeline } from "../../../src/pipeline/types.js";
import { ABANDON_EXTENSION_WAIT_MS, InFlight } from "../../../src/queue/in-flight.js";
import type { Handle } from "../../../src/queue/sqs-calls.js";

function setup(stop: () => Promise<void>, extensionWaitMs?: number) {
  const released: { ids: string[]; at: number }[] = [];
  // A pipeline that never finishes a document: the message stays running until it is abandoned.
  const pipeline = { submit: () => new Promise(() => undefined) } as unknown as DocumentPipeline;
  const inFlight = new InFlight({
    pipeline,
    heartbeat: { watch: () => undefined, startCap: () => undefined, stop },
    visibility: {
      change: () => Promise.resolve([]),
      release: (handles: readonly Handle[]) => {
        released.push({ ids: handles.map((h) => h.messageId), at: Date.now() });
        return Promise.resolve(handles.length);
      },
    },
    deletes: { enqueue: () => Promise.resolve() } as never,
    log: silentLogger(),
    emit: () => undefined,
    clock: Date.now,
    random: () => 0.5,
    maxProcessingSeconds: 300,
    onSettled: () => undefined,
    ...(extensionWaitMs === undefined ? {} : { extensionWaitMs }),
  });
  inFlight.track({ messageId: "m1", receiptHandle: "rh1" }, 1, [{ bucket: "b", key: "k" }]);
  return { inFlight, released };
}

describe("InFlight.abandon", () => {
  it("waits for an extension in flight before the release", async () => {
    let land!: () => void;
    const pending = new Promise<void>((resolve) => (land = resolve));
    const { inFlight, released } = setup(() => pending, 10_000);
    const abandoning = inFlight.abandon("running", "stopping", "shutting down");
    await new Promise((r) => setTimeout(r, 50));
    expect(released).toEqual([]);
    const landedAt = Date.now();
    land();
    await expect(abandoning).resolves.toBe(1);
    expect(released.map((r) => r.ids)).toEqual([["m1"]]);
    expect(released[0]!.at).toBeGreaterThanOrEqual(landedAt);
  });

  it("releases anyway once an extension has hung for extensionWaitMs", async () => {
    const { inFlight, released } = setup(() => new Promise(() => undefined), 100);
    const started = Date.now();
    await expect(inFlight.abandon("running", "stopping", "shutting down")).resolves.toBe(1);
    expect(released.map((r) => r.ids)).toEqual([["m1"]]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
  });

  it("waits at most a few seconds by default, well inside the unit's 15 s for the hand-back", () => {
    expect(ABANDON_EXTENSION_WAIT_MS).toBeGreaterThan(0);
    expect(ABANDON_EXTENSION_WAIT_MS).toBeLessThanOrEqual(5_000);
  });
});
