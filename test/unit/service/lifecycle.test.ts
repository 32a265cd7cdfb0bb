// supervise() with fake timers: READY first, the systemd watchdog fed only while the receive loop makes progress
// (Liveness), fed through a long drain, SIGTERM -> STOPPING -> drain -> exit 0, a failed receive loop -> exit 70, and
// a second signal during the drain -> exit 75 at once.
import { EventEmitter } from "node:events";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ExitCode } from "../../../src/errors/fatal.js";
import { createLogger, silentLogger } from "../../../src/logging/logger.js";
import type { StopResult } from "../../../src/queue/consumer.js";
import {
  Liveness,
  ShutdownSignals,
  stallAfterMs,
  supervise,
  type SignalSource,
  type SupervisedDaemon,
} from "../../../src/service/lifecycle.js";
import type { Notifier } from "../../../src/service/systemd.js";

const WATCHDOG_MS = 1_000;
const STALL_AFTER_MS = 5_000;
const CYCLE = { type: "cycle", result: "received", received: 0 } as const;

function recordingNotifier(watchdogIntervalMs: number | undefined) {
  const calls: string[] = [];
  const notifier: Notifier = {
    enabled: true,
    watchdogIntervalMs,
    ready: async (status) => void calls.push(`READY ${status}`),
    status: async () => void calls.push("STATUS"),
    watchdog: async () => void calls.push("WATCHDOG"),
    stopping: async () => void calls.push("STOPPING"),
  };
  const count = (kind: string) => calls.filter((c) => c.startsWith(kind)).length;
  return { notifier, calls, count };
}

/**
 * A daemon whose loop ends once stop() is called and whose stop() takes `drainMs` (fake time); `failLoop` makes the
 * receive loop reject (a bug) or end by itself, as a broken consumer would.
 */
function fakeDaemon(drainMs = 0) {
  let endLoop: () => void = () => {};
  let failLoop: (err: unknown) => void = () => {};
  const loop = new Promise<void>((resolve, reject) => {
    endLoop = resolve;
    failLoop = reject;
  });
  const stop = vi.fn(async (_opts: { drainTimeoutMs: number }): Promise<StopResult> => {
    endLoop();
    if (drainMs > 0) await new Promise((resolve) => setTimeout(resolve, drainMs));
    return { completed: 0, released: 0, timedOut: false };
  });
  const daemon: SupervisedDaemon = {
    consumer: { stop },
    metrics: { snapshot: () => ({}), statusLine: () => "processed 0" },
    loop,
  };
  return { daemon, stop, endLoop: () => endLoop(), failLoop: (err: unknown) => failLoop(err) };
}

/** A logger whose lines are kept (JSON objects), for the fatal and warning lines a test expects. */
function recordingLogger() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: "info", destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } });
  return { log, lines, messages: () => lines.map((l) => l["msg"]) };
}

class FakeSignals extends EventEmitter implements SignalSource {
  send(signal: "SIGTERM" | "SIGINT"): void {
    this.emit(signal);
  }
}

function start(options: { watchdogIntervalMs: number | undefined; drainMs?: number; log?: ReturnType<typeof silentLogger>; exitNow?: (code: number) => void }) {
  const log = options.log ?? silentLogger();
  const source = new FakeSignals();
  const signals = new ShutdownSignals(
    source,
    log,
    options.exitNow ??
      (() => {
        throw new Error("exitNow must not be called");
      }),
  );
  const liveness = new Liveness();
  const { notifier, calls, count } = recordingNotifier(options.watchdogIntervalMs);
  const { daemon, stop, endLoop, failLoop } = fakeDaemon(options.drainMs);
  const exit = supervise({
    daemon,
    liveness,
    log,
    notifier,
    drainTimeoutMs: 30_000,
    stallAfterMs: STALL_AFTER_MS,
    signals,
    statusIntervalMs: 60_000,
    readyStatus: "running as R",
  });
  return { exit, source, liveness, calls, count, stop, endLoop, failLoop, signals };
}

/** Advances fake time by `ms` in steps of `stepMs`, reporting a completed loop cycle before each step. */
async function healthyFor(liveness: Liveness, ms: number, stepMs = 500): Promise<void> {
  for (let t = 0; t < ms; t += stepMs) {
    liveness.onEvent(CYCLE);
    await vi.advanceTimersByTimeAsync(stepMs);
  }
}

describe("supervise", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("sends READY with the status before anything else", async () => {
    const s = start({ watchdogIntervalMs: WATCHDOG_MS });
    await vi.advanceTimersByTimeAsync(0);
    expect(s.calls).toEqual(["READY running as R"]);
    s.source.send("SIGTERM");
    await expect(s.exit).resolves.toBe(0);
  });

  it("feeds the watchdog every interval while the loop cycles, stops once it stalls, resumes with progress", async () => {
    const s = start({ watchdogIntervalMs: WATCHDOG_MS });
    await healthyFor(s.liveness, 10_000);
    expect(s.count("WATCHDOG")).toBe(10);

    // No cycle from now on: pings continue only until the last progress is STALL_AFTER_MS old.
    const beforeStall = s.count("WATCHDOG");
    await vi.advanceTimersByTimeAsync(STALL_AFTER_MS);
    const atStall = s.count("WATCHDOG");
    expect(atStall - beforeStall).toBeLessThanOrEqual(STALL_AFTER_MS / WATCHDOG_MS);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(s.count("WATCHDOG")).toBe(atStall);

    // A completed cycle makes it healthy again: the next tick feeds.
    s.liveness.onEvent(CYCLE);
    await vi.advanceTimersByTimeAsync(WATCHDOG_MS);
    expect(s.count("WATCHDOG")).toBe(atStall + 1);

    s.source.send("SIGTERM");
    await expect(s.exit).resolves.toBe(0);
  });

  it("counts only loop cycles as progress, not other consumer events", async () => {
    const s = start({ watchdogIntervalMs: WATCHDOG_MS });
    await healthyFor(s.liveness, 2_000);
    const before = s.count("WATCHDOG");
    for (let t = 0; t < 20_000; t += 500) {
      s.liveness.onEvent({ type: "extended", count: 1 });
      s.liveness.onEvent({ type: "deleted", count: 1 });
      await vi.advanceTimersByTimeAsync(500);
    }
    expect(s.count("WATCHDOG") - before).toBeLessThanOrEqual(STALL_AFTER_MS / WATCHDOG_MS);
    const stalled = s.count("WATCHDOG");
    await vi.advanceTimersByTimeAsync(5_000);
    expect(s.count("WATCHDOG")).toBe(stalled);
    s.source.send("SIGTERM");
    await expect(s.exit).resolves.toBe(0);
  });

  it("keeps feeding the watchdog through a long drain (the loop no longer cycles; TimeoutStopSec bounds it)", async () => {
    const s = start({ watchdogIntervalMs: WATCHDOG_MS, drainMs: 20_000 });
    await healthyFor(s.liveness, 2_000);
    s.source.send("SIGTERM");
    await vi.advanceTimersByTimeAsync(0);
    const atStop = s.count("WATCHDOG");
    await vi.advanceTimersByTimeAsync(20_000);
    await expect(s.exit).resolves.toBe(0);
    expect(s.count("WATCHDOG") - atStop).toBeGreaterThanOrEqual(19);
  });

  it("on SIGTERM: STOPPING, the drain with the configured deadline, exit 0, and no pings after the exit", async () => {
    const s = start({ watchdogIntervalMs: WATCHDOG_MS });
    await healthyFor(s.liveness, 2_000);
    s.source.send("SIGTERM");
    await expect(s.exit).resolves.toBe(0);
    expect(s.stop).toHaveBeenCalledWith({ drainTimeoutMs: 30_000 });
    expect(s.calls.filter((c) => c !== "WATCHDOG")).toEqual(["READY running as R", "STOPPING"]);
    const after = s.calls.length;
    await vi.advanceTimersByTimeAsync(120_000);
    expect(s.calls.length).toBe(after);
  });

  it("sends no watchdog pings when systemd asked for no watchdog", async () => {
    const s = start({ watchdogIntervalMs: undefined });
    await healthyFor(s.liveness, 10_000);
    expect(s.count("WATCHDOG")).toBe(0);
    s.source.send("SIGTERM");
    await expect(s.exit).resolves.toBe(0);
  });
});

describe("supervise: a receive loop that fails or ends by itself", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("a receive loop that rejects (a bug): fatal line, STOPPING, the drain, exit 70", async () => {
    const rec = recordingLogger();
    const s = start({ watchdogIntervalMs: WATCHDOG_MS, log: rec.log });
    await healthyFor(s.liveness, 1_000);
    s.failLoop(new Error("bug in the loop"));
    await expect(s.exit).resolves.toBe(ExitCode.software);
    expect(ExitCode.software).toBe(70);
    expect(s.stop).toHaveBeenCalledWith({ drainTimeoutMs: 30_000 });
    expect(s.calls.filter((c) => c !== "WATCHDOG")).toEqual(["READY running as R", "STOPPING"]);
    const fatal = rec.lines.find((l) => l["msg"] === "receive loop failed");
    expect(fatal).toMatchObject({ level: "fatal", err: { message: "bug in the loop" } });
    expect(rec.messages()).not.toContain("stopped");
  });

  it("a receive loop that ends without a stop: exit 70 as well, naming that", async () => {
    const rec = recordingLogger();
    const s = start({ watchdogIntervalMs: undefined, log: rec.log });
    await vi.advanceTimersByTimeAsync(0);
    s.endLoop();
    await expect(s.exit).resolves.toBe(70);
    expect(s.stop).toHaveBeenCalledTimes(1);
    expect(rec.lines.find((l) => l["msg"] === "receive loop failed")).toMatchObject({ err: { message: "receive loop ended without a stop" } });
  });

  it("a stop signal after the loop failed changes nothing: still exit 70, one drain", async () => {
    const s = start({ watchdogIntervalMs: undefined });
    await vi.advanceTimersByTimeAsync(0);
    s.failLoop(new Error("bug"));
    await expect(s.exit).resolves.toBe(70);
    s.source.send("SIGTERM");
    await vi.advanceTimersByTimeAsync(0);
    expect(s.stop).toHaveBeenCalledTimes(1);
  });
});

describe("a second signal during the drain", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it.each([
    ["SIGTERM", "SIGINT"],
    ["SIGTERM", "SIGTERM"],
    ["SIGINT", "SIGTERM"],
  ] as const)("%s then %s: exits at once with 75 (temporary), warning that unfinished messages reappear", async (first, second) => {
    const rec = recordingLogger();
    const exitNow = vi.fn();
    const s = start({ watchdogIntervalMs: undefined, drainMs: 20_000, log: rec.log, exitNow });
    await vi.advanceTimersByTimeAsync(0);
    s.source.send(first);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(s.stop).toHaveBeenCalledTimes(1);
    expect(exitNow).not.toHaveBeenCalled();

    s.source.send(second);
    expect(exitNow).toHaveBeenCalledTimes(1);
    expect(exitNow).toHaveBeenCalledWith(ExitCode.tempFail);
    expect(ExitCode.tempFail).toBe(75);
    expect(rec.lines.find((l) => l["msg"] === "second signal: exiting now; unfinished messages reappear after their visibility timeout")).toMatchObject({
      level: "warn",
      signal: second,
    });
    // The first signal named the drain; the second did not start another.
    expect(s.signals.signal).toBe(first);
    expect(s.stop).toHaveBeenCalledTimes(1);
    // (In production exitNow is process.exit; here the drain goes on and ends normally.)
    await vi.advanceTimersByTimeAsync(20_000);
    await expect(s.exit).resolves.toBe(0);
  });

  it("the first signal alone never exits at once, and a disposed watcher ignores later signals", () => {
    const source = new FakeSignals();
    const exitNow = vi.fn();
    const signals = new ShutdownSignals(source, silentLogger(), exitNow);
    source.send("SIGINT");
    expect(signals.signal).toBe("SIGINT");
    expect(exitNow).not.toHaveBeenCalled();
    signals.dispose();
    source.send("SIGTERM");
    expect(exitNow).not.toHaveBeenCalled();
    expect(source.listenerCount("SIGTERM") + source.listenerCount("SIGINT")).toBe(0);
  });
});

describe("stallAfterMs", () => {
  it("is a long poll plus the longest receive backoff (30 s) plus a request timeout (60 s), as before", () => {
    expect(stallAfterMs(20)).toBe((20 + 30 + 60) * 1_000);
    expect(stallAfterMs(0)).toBe(90_000);
  });
});

describe("Liveness", () => {
  it("is healthy within staleAfterMs of the last cycle, and only then", () => {
    let now = 1_000;
    const liveness = new Liveness(() => now);
    expect(liveness.isHealthy(100)).toBe(true);
    now += 100;
    expect(liveness.isHealthy(100)).toBe(true);
    now += 1;
    expect(liveness.isHealthy(100)).toBe(false);
    liveness.onEvent({ type: "cycle", result: "full", received: 0 });
    expect(liveness.isHealthy(100)).toBe(true);
  });
});
