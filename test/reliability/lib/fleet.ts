// The daemon processes of one scenario (the built dist/cli.js, one after another or side by side) against one
// stand-in: every "document done" line from any of them is collected with the daemon that logged it, waiters are
// woken by log lines (not by timers), and every process still running is stopped at the end, killed if it hangs.
import { daemonExit } from "../../integration/helpers/daemon-harness.js";
import { startDaemonProcess, type DaemonProcess, type LogLine } from "../../local/daemon-process.js";
import type { StandIn } from "../../local/stand-in.js";
import type { DaemonFacts, DoneLine } from "./accounting.js";
import { Aborted } from "./time.js";

export const READY = "ready: consuming notifications";
export const CREDENTIALS_FETCHED = "credentials fetched from IMDS";
const DELETE_FAILED = "delete failed; the message will be redelivered";
const VISIBILITY_LOST = ["visibility extension failed; retrying soon", "receipt handle no longer valid"];

export interface FleetDaemon {
  readonly id: number;
  readonly process: DaemonProcess;
  readonly startedAt: number;
  /** How we ended it; "other" while running, or when it exited by itself. */
  end: DaemonFacts["end"];
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly deleteFailed: Set<string>;
  readonly visibilityLost: Set<string>;
}

type Waiter = { check: () => boolean; resolve: () => void };

export class Fleet {
  readonly daemons: FleetDaemon[] = [];
  readonly done: DoneLine[] = [];
  /** Keys with at least one done line. */
  readonly doneKeys = new Set<string>();
  private readonly waiters = new Set<Waiter>();

  constructor(
    private readonly stand: StandIn,
    private readonly baseConfig: Record<string, unknown>,
    private readonly signal: AbortSignal,
  ) {}

  start(config: Record<string, unknown> = {}, env: Record<string, string> = {}, nodeFlags: string[] = []): FleetDaemon {
    const id = this.daemons.length;
    const daemon: FleetDaemon = {
      id,
      startedAt: Date.now(),
      end: "other",
      exit: undefined,
      deleteFailed: new Set(),
      visibilityLost: new Set(),
      process: startDaemonProcess({
        config: { ...this.stand.config, ...this.baseConfig, ...config },
        env: { ...this.stand.env, ...env },
        nodeFlags,
        onLog: (line) => this.onLog(id, line),
      }),
    };
    void daemon.process.exited.then((exit) => {
      daemon.exit = exit;
      this.wake();
    });
    this.daemons.push(daemon);
    return daemon;
  }

  private onLog(id: number, line: LogLine): void {
    const daemon = this.daemons[id];
    const messageId = typeof line["messageId"] === "string" ? line["messageId"] : undefined;
    if (line.msg === "document" && line["outcome"] === "done" && messageId !== undefined) {
      const key = String(line["key"]);
      this.done.push({
        key,
        daemon: id,
        messageId,
        receiveCount: Number(line["receiveCount"]),
        time: Date.parse(String(line["time"])) || Date.now(),
      });
      this.doneKeys.add(key);
    } else if (daemon && messageId !== undefined && typeof line.msg === "string") {
      if (line.msg.startsWith(DELETE_FAILED)) daemon.deleteFailed.add(messageId);
      if (VISIBILITY_LOST.some((m) => line.msg!.startsWith(m))) daemon.visibilityLost.add(messageId);
    }
    this.wake();
  }

  private wake(): void {
    for (const waiter of this.waiters) {
      if (!waiter.check()) continue;
      this.waiters.delete(waiter);
      waiter.resolve();
    }
  }

  /**
   * Resolves true once `check` holds (re-evaluated on every log line and exit of any daemon), false after
   * `timeoutMs`; rejects when the scenario is aborted.
   */
  waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
    if (check()) return Promise.resolve(true);
    return new Promise((resolve, reject) => {
      const finish = (fn: () => void): void => {
        clearTimeout(timer);
        this.signal.removeEventListener("abort", onAbort);
        this.waiters.delete(waiter);
        fn();
      };
      const waiter: Waiter = { check, resolve: () => finish(() => resolve(true)) };
      const onAbort = (): void => finish(() => reject(new Aborted("waiting for the daemons")));
      const timer = setTimeout(() => finish(() => resolve(false)), timeoutMs);
      this.signal.addEventListener("abort", onAbort, { once: true });
      this.waiters.add(waiter);
    });
  }

  /** SIGKILL, then the exit once its output is complete. */
  async kill(daemon: FleetDaemon): Promise<void> {
    daemon.end = "sigkill";
    daemon.process.kill();
    daemon.exit = await daemonExit(daemon.process);
  }

  /** SIGTERM; the exit and how long it took. SIGKILL after `timeoutMs` (then the exit shows the signal). */
  async terminate(daemon: FleetDaemon, timeoutMs = 60_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
    const started = Date.now();
    daemon.end = "sigterm";
    const exit = await daemon.process.stop(timeoutMs);
    const ms = Date.now() - started;
    daemon.exit = await daemonExit(daemon.process);
    return { ...exit, ms };
  }

  running(): FleetDaemon[] {
    return this.daemons.filter((d) => d.process.child.exitCode === null && d.process.child.signalCode === null);
  }

  /** Stops every daemon still running: SIGTERM, SIGKILL after `timeoutMs`. */
  async stopAll(timeoutMs = 20_000): Promise<void> {
    await Promise.all(this.running().map((d) => this.terminate(d, timeoutMs)));
  }

  facts(): DaemonFacts[] {
    return this.daemons.map((d) => ({ end: d.end, deleteFailed: d.deleteFailed, visibilityLost: d.visibilityLost }));
  }

  /** Every log line of every daemon, with its daemon id. */
  lines(): (LogLine & { daemon: number })[] {
    return this.daemons.flatMap((d) => d.process.logs.map((l) => ({ ...l, daemon: d.id })));
  }

  /** Log lines that mean the daemon itself broke: fatal, or a message that names a bug. */
  brokenLines(): (LogLine & { daemon: number })[] {
    return this.lines().filter((l) => l.level === "fatal" || (typeof l.msg === "string" && l.msg.startsWith("bug:")));
  }

  /** Daemons that exited although nobody stopped or killed them. */
  crashed(): FleetDaemon[] {
    return this.daemons.filter((d) => d.end === "other" && d.exit !== undefined);
  }
}
