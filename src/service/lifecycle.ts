/**
 * The running service: READY to systemd, the watchdog fed only while the receive loop makes progress, a periodic
 * status line, and shutdown on SIGTERM/SIGINT (stop receiving, drain up to the deadline, release the rest, exit 0;
 * a second signal exits at once).
 */
import type { RunningDaemon } from "../app.js";
import { ExitCode } from "../errors.js";
import type { Logger } from "../observability/logger.js";
import type { ConsumerEvent } from "../queue/consumer.js";
import type { Notifier } from "./systemd.js";

/** Tracks receive-loop progress for the watchdog. */
export class Liveness {
  private lastProgressAt: number;

  constructor(private readonly clock: () => number = Date.now) {
    this.lastProgressAt = clock();
  }

  onEvent(event: ConsumerEvent): void {
    if (event.type === "cycle") this.lastProgressAt = this.clock();
  }

  /** Healthy when the loop completed a cycle within `staleAfterMs`. */
  isHealthy(staleAfterMs: number): boolean {
    return this.clock() - this.lastProgressAt <= staleAfterMs;
  }
}

export interface SignalSource {
  on(signal: "SIGTERM" | "SIGINT", listener: () => void): unknown;
  off(signal: "SIGTERM" | "SIGINT", listener: () => void): unknown;
}

export interface SuperviseOptions {
  daemon: RunningDaemon;
  liveness: Liveness;
  log: Logger;
  notifier: Notifier;
  drainTimeoutMs: number;
  /** A loop cycle takes at most the long poll plus a receive backoff; older progress means stalled. */
  stallAfterMs: number;
  signals: SignalSource;
  /** Immediate exit on a second signal. */
  exitNow: (code: number) => void;
  statusIntervalMs?: number;
  readyStatus: string;
}

type State = { kind: "running" } | { kind: "draining"; signal: string } | { kind: "stopped" };

export async function supervise(options: SuperviseOptions): Promise<ExitCode> {
  const { daemon, log, notifier } = options;
  let state: State = { kind: "running" };
  const timers: NodeJS.Timeout[] = [];

  await notifier.ready(options.readyStatus);

  const watchdogMs = notifier.watchdogIntervalMs;
  if (watchdogMs !== undefined) {
    timers.push(
      setInterval(() => {
        if (state.kind === "running" && !options.liveness.isHealthy(options.stallAfterMs)) {
          log.error({ stallAfterMs: options.stallAfterMs }, "receive loop stalled: not feeding the systemd watchdog");
          return;
        }
        void notifier.watchdog();
      }, watchdogMs),
    );
  }
  timers.push(
    setInterval(() => {
      log.info({ metrics: daemon.metrics.snapshot(), state: state.kind }, "status");
      void notifier.status(daemon.metrics.statusLine());
    }, options.statusIntervalMs ?? 60_000),
  );
  for (const t of timers) t.unref();

  let resolveSignal: (signal: string) => void = () => {};
  const signalled = new Promise<string>((r) => (resolveSignal = r));
  const onSignal = (name: "SIGTERM" | "SIGINT") => () => {
    if (state.kind === "running") {
      state = { kind: "draining", signal: name };
      resolveSignal(name);
      return;
    }
    log.warn({ signal: name }, "second signal: exiting now; unfinished messages reappear after their visibility timeout");
    options.exitNow(ExitCode.tempFail);
  };
  const onTerm = onSignal("SIGTERM");
  const onInt = onSignal("SIGINT");
  options.signals.on("SIGTERM", onTerm);
  options.signals.on("SIGINT", onInt);

  try {
    const first = await Promise.race([
      signalled.then((signal) => ({ kind: "signal" as const, signal })),
      daemon.loop.then(
        () => ({ kind: "loop-ended" as const }),
        (err: unknown) => ({ kind: "loop-failed" as const, err }),
      ),
    ]);
    if (first.kind === "loop-failed" || first.kind === "loop-ended") {
      const err = first.kind === "loop-failed" ? first.err : new Error("receive loop ended without a stop");
      log.fatal({ err }, "receive loop failed");
      await notifier.stopping("failed: receive loop ended");
      await daemon.consumer.stop({ drainTimeoutMs: options.drainTimeoutMs });
      return ExitCode.software;
    }
    log.info({ signal: first.signal, drainTimeoutMs: options.drainTimeoutMs }, "stopping: no new messages; draining in-flight documents");
    await notifier.stopping(`draining (${daemon.metrics.statusLine()})`);
    const result = await daemon.consumer.stop({ drainTimeoutMs: options.drainTimeoutMs });
    await daemon.loop.catch((err: unknown) => log.error({ err }, "receive loop ended with an error during drain"));
    log.info({ ...result, metrics: daemon.metrics.snapshot() }, "stopped");
    return ExitCode.ok;
  } finally {
    state = { kind: "stopped" };
    for (const t of timers) clearInterval(t);
    options.signals.off("SIGTERM", onTerm);
    options.signals.off("SIGINT", onInt);
  }
}
