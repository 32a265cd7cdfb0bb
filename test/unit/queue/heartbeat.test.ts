// The heartbeat alone, against a fake visibility call and fake time: when it extends, how it batches, the cap, its
// failures, that its timer exists only while a message is watched, and that stop() waits for an extension in flight.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createLogger } from "../../../src/logging/logger.js";
import type { ConsumerEvent } from "../../../src/queue/events.js";
import { Heartbeat, type Beat } from "../../../src/queue/heartbeat.js";
import type { CallResult, Handle } from "../../../src/queue/sqs-calls.js";

interface Call {
  ids: string[];
  seconds: number;
  answer: (results: CallResult[]) => void;
}

function setup(opts: { maxProcessingSeconds?: number; autoAnswer?: boolean } = {}) {
  const calls: Call[] = [];
  const events: ConsumerEvent[] = [];
  const logs: Record<string, unknown>[] = [];
  const log = createLogger({
    level: "debug",
    destination: { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) },
  });
  const visibility = {
    change: (handles: readonly Handle[], seconds: number): Promise<CallResult[]> =>
      new Promise((resolve) => {
        calls.push({ ids: handles.map((h) => h.messageId), seconds, answer: resolve });
        if (opts.autoAnswer ?? true) resolve(handles.map(() => ({ ok: true })));
      }),
  };
  const heartbeat = new Heartbeat({
    visibility,
    log,
    emit: (e) => events.push(e),
    clock: Date.now,
    visibilityTimeoutSeconds: 20,
    maxProcessingSeconds: opts.maxProcessingSeconds ?? 300,
  });
  return { heartbeat, calls, events, logs };
}

const beat = (id: string): Beat => ({ messageId: id, receiptHandle: `rh-${id}`, receiveCount: 2 });
const failed = (code: string): CallResult => ({ ok: false, code, message: code, error: new Error(code) });

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("Heartbeat", () => {
  it("extends every half visibility timeout, one call for messages due within a second of each other", async () => {
    const h = setup();
    const a = beat("a");
    const b = beat("b");
    h.heartbeat.watch(a, () => undefined);
    await vi.advanceTimersByTimeAsync(800);
    h.heartbeat.watch(b, () => undefined);
    await vi.advanceTimersByTimeAsync(9_199);
    expect(h.calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1); // 10 s: a is due, b (due at 10.8 s) joins it
    expect(h.calls.map((c) => [c.ids, c.seconds])).toEqual([[["a", "b"], 20]]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(h.calls).toHaveLength(2);
    expect(h.events).toEqual([
      { type: "extended", count: 2 },
      { type: "extended", count: 2 },
    ]);
    await Promise.all([h.heartbeat.stop(a, "settled"), h.heartbeat.stop(b, "settled")]);
  });

  it("keeps a timer only while a message is watched and active", async () => {
    const h = setup();
    expect(vi.getTimerCount()).toBe(0);
    const a = beat("a");
    h.heartbeat.watch(a, () => undefined);
    expect(vi.getTimerCount()).toBe(1);
    await h.heartbeat.stop(a, "settled");
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(h.calls).toHaveLength(0);
  });

  it("re-arms only for an earlier deadline; a timer left early by a stopped message re-arms without a call", async () => {
    const h = setup({ maxProcessingSeconds: 3 });
    const a = beat("a");
    const b = beat("b");
    h.heartbeat.watch(a, () => undefined); // due at 10 s
    await vi.advanceTimersByTimeAsync(5_000);
    h.heartbeat.watch(b, () => undefined); // due at 15 s: later, the timer stays
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    await h.heartbeat.stop(a, "settled");
    await vi.advanceTimersByTimeAsync(4_000); // 10 s: the timer set for a fires, nothing is due
    expect(h.calls).toHaveLength(0);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(4_999);
    expect(h.calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1); // 15 s: b is due
    expect(h.calls.map((c) => c.ids)).toEqual([["b"]]);
    // An earlier deadline re-arms: b's cap (3 s from now) comes before its next extension.
    const capped = vi.fn();
    const c = beat("c");
    h.heartbeat.watch(c, capped);
    h.heartbeat.startCap(c);
    await vi.advanceTimersByTimeAsync(2_999);
    expect(capped).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(capped).toHaveBeenCalledTimes(1);
    await Promise.all([h.heartbeat.stop(b, "settled"), h.heartbeat.stop(c, "abandoned")]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("stop() resolves only once an extension in flight has landed, and no extension follows", async () => {
    const h = setup({ autoAnswer: false });
    const a = beat("a");
    h.heartbeat.watch(a, () => undefined);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(h.calls).toHaveLength(1);
    let stopped = false;
    const stopping = h.heartbeat.stop(a, "abandoned").then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(stopped).toBe(false);
    h.calls[0]?.answer([{ ok: true }]);
    await stopping;
    expect(stopped).toBe(true);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(h.calls).toHaveLength(1);
  });

  it("a failure for a message stopped meanwhile is the owner's business: not logged, not reported", async () => {
    const h = setup({ autoAnswer: false });
    const a = beat("a");
    h.heartbeat.watch(a, () => undefined);
    await vi.advanceTimersByTimeAsync(10_000);
    const stopping = h.heartbeat.stop(a, "settled");
    h.calls[0]?.answer([failed("ReceiptHandleIsInvalid")]);
    await stopping;
    expect(h.events).toEqual([]);
    expect(h.logs.filter((l) => l["level"] === "warn")).toEqual([]);
  });

  it("caps a message from startCap(): reports it once and stops extending it", async () => {
    const h = setup({ maxProcessingSeconds: 25 });
    const a = beat("a");
    const capped = vi.fn();
    h.heartbeat.watch(a, capped);
    await vi.advanceTimersByTimeAsync(60_000); // waiting for a slot: no cap yet
    expect(capped).not.toHaveBeenCalled();
    expect(h.calls).toHaveLength(6);
    h.heartbeat.startCap(a);
    await vi.advanceTimersByTimeAsync(24_999);
    expect(capped).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(capped).toHaveBeenCalledOnce();
    expect(h.calls).toHaveLength(8);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(h.calls).toHaveLength(8);
    await h.heartbeat.stop(a, "settled");
  });

  it("retries within 5 s after a transient failure; stops for a receipt handle that is gone", async () => {
    const h = setup({ autoAnswer: false });
    const a = beat("a");
    const b = beat("b");
    h.heartbeat.watch(a, () => undefined);
    h.heartbeat.watch(b, () => undefined);
    await vi.advanceTimersByTimeAsync(10_000);
    h.calls[0]?.answer([failed("ThrottlingException"), failed("MessageNotInflight")]);
    await vi.advanceTimersByTimeAsync(4_999);
    expect(h.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.calls.map((c) => c.ids)).toEqual([["a", "b"], ["a"]]);
    expect(h.events).toMatchObject([
      { type: "error", operation: "ChangeMessageVisibilityBatch", messageIds: ["a"] },
      { type: "error", operation: "ChangeMessageVisibilityBatch", messageIds: ["b"] },
    ]);
    expect(h.logs.map((l) => [l["messageId"], l["code"], l["receiveCount"]])).toEqual([
      ["a", "ThrottlingException", 2],
      ["b", "MessageNotInflight", 2],
    ]);
    h.calls[1]?.answer([{ ok: true }]);
    await Promise.all([h.heartbeat.stop(a, "settled"), h.heartbeat.stop(b, "settled")]);
  });
});
