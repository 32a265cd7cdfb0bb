/**
 * The running service: READY to systemd (reached only once start-up has proven the identity and that the role can
 * consume the queue: prepare and verifyQueueAccess in startup.ts), the watchdog fed only while the receive loop makes
 * progress, a periodic status line, and shutdown on SIGTERM/SIGINT (stop receiving, drain up to the deadline, release
 * the rest, exit 0; a second signal exits at once).
 */
import { REQUEST_TIMEOUT_MS } from "../aws/clients.js";
import { ExitCode } from "../errors/fatal.js";
import type { Logger } from "../logging/logger.js";
import { RECEIVE_BACKOFF_MAX_MS } from "../queue/backoff.js";
import type { ConsumerEvent, StopResult } from "../queue/consumer.js";
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

/**
 * Watches SIGTERM/SIGINT from the very start of `run`, so a signal during start-up or right after READY is never
 * left to Node's default action (which would exit without releasing received messages). The first signal resolves
 * `first`; a second one exits at once.
 */
export class ShutdownSignals {
  readonly first: Promise<string>;
  private received: string | undefined;
  private readonly handlers: [("SIGTERM" | "SIGINT"), () => void][];

  constructor(
    private readonly source: SignalSource,
    log: Logger,
    exitNow: (code: number) => void,
  ) {
    let resolve: (signal: string) => void = () => {};
    this.first = new Promise<string>((r) => (resolve = r));
    this.handlers = (["SIGTERM", "SIGINT"] as const).map((name) => {
      const handler = () => {
        if (this.received === undefined) {
          this.received = name;
          resolve(name);
          return;
        }
        log.warn({ signal: name }, "second signal: exiting now; unfinished messages reappear after their visibility timeout");
        exitNow(ExitCode.tempFail);
      };
      source.on(name, handler);
      return [name, handler];
    });
  }

  /** The first signal received so far, if any. */
  get signal(): string | undefined {
    return this.received;
  }

  dispose(): void {
    for (const [name, handler] of this.handlers) this.source.off(name, handler);
  }
}

/** What supervise needs of a running daemon: its stop, its figures, and the receive loop's end. */
export interface SupervisedDaemon {
  consumer: { stop(opts: { drainTimeoutMs: number }): Promise<StopResult> };
  /** The snapshot is only logged, so any object of figures will do. */
  metrics: { snapshot(): object; statusLine(): string };
  /** Settles when the receive loop ends (after stop), rejects on a bug. */
  loop: Promise<void>;
}

/** One loop cycle lasts at most a long poll plus the longest receive backoff and a request timeout; older progress means stalled. */
export function stallAfterMs(waitTimeSeconds: number): number {
  return waitTimeSeconds * 1_000 + RECEIVE_BACKOFF_MAX_MS + REQUEST_TIMEOUT_MS;
}

export interface SuperviseOptions {
  daemon: SupervisedDaemon;
  liveness: Liveness;
  log: Logger;
  notifier: Notifier;
  drainTimeoutMs: number;
  /** A loop cycle takes at most the long poll plus a receive backoff; older progress means stalled. */
  stallAfterMs: number;
  signals: ShutdownSignals;
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

  try {
    const first = await Promise.race([
      options.signals.first.then((signal) => {
        state = { kind: "draining", signal };
        return { kind: "signal" as const, signal };
      }),
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
    // The stop (which ends receiving, then drains) starts at once; systemd-notify's round trip runs alongside.
    const [result] = await Promise.all([
      daemon.consumer.stop({ drainTimeoutMs: options.drainTimeoutMs }),
      notifier.stopping(`draining (${daemon.metrics.statusLine()})`),
    ]);
    await daemon.loop.catch((err: unknown) => log.error({ err }, "receive loop ended with an error during drain"));
    log.info({ ...result, metrics: daemon.metrics.snapshot() }, "stopped");
    return ExitCode.ok;
  } finally {
    state = { kind: "stopped" };
    for (const t of timers) clearInterval(t);
  }
}
