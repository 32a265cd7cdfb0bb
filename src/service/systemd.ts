/**
 * systemd readiness and watchdog (sd_notify). Node cannot send a Unix datagram without a native module, and the
 * instance should need no native build, so messages go through the `systemd-notify` binary that every systemd host
 * has. A child's message comes from another PID, hence the unit's NotifyAccess=all. A no-op when NOTIFY_SOCKET is
 * unset (not under systemd, tests, `npm run local`).
 */
import { execFile } from "node:child_process";
import type { Env } from "../config/env.js";
import type { Logger } from "../observability/logger.js";

export interface Notifier {
  readonly enabled: boolean;
  /** Half of WatchdogSec (ms), when systemd asked for a watchdog; else undefined. */
  readonly watchdogIntervalMs: number | undefined;
  ready(status: string): Promise<void>;
  status(status: string): Promise<void>;
  watchdog(): Promise<void>;
  stopping(status: string): Promise<void>;
}

export type NotifySender = (assignments: string[]) => Promise<void>;

export function createNotifier(env: Env, log: Logger, send?: NotifySender): Notifier {
  const socket = env["NOTIFY_SOCKET"];
  if (!socket) return noopNotifier();
  const usec = Number(env["WATCHDOG_USEC"]);
  // WATCHDOG_PID, when set, names the process the watchdog is for; only that process may feed it.
  const watchdogPid = env["WATCHDOG_PID"];
  const watchdogForUs = Number.isFinite(usec) && usec > 0 && (!watchdogPid || watchdogPid === String(process.pid));
  const sender = send ?? systemdNotify(env);
  const notify = async (assignments: string[]): Promise<void> => {
    try {
      await sender(assignments);
    } catch (err) {
      log.warn({ err, assignments }, "systemd-notify failed");
    }
  };
  return {
    enabled: true,
    watchdogIntervalMs: watchdogForUs ? Math.max(500, Math.floor(usec / 2_000)) : undefined,
    ready: (status) => notify(["READY=1", `STATUS=${status}`]),
    status: (status) => notify([`STATUS=${status}`]),
    watchdog: () => notify(["WATCHDOG=1"]),
    stopping: (status) => notify(["STOPPING=1", `STATUS=${status}`]),
  };
}

function systemdNotify(env: Env): NotifySender {
  return (assignments) =>
    new Promise((resolve, reject) => {
      execFile(
        "systemd-notify",
        // --pid names this process as the main PID, so systemd attributes the message to the daemon.
        [`--pid=${process.pid}`, ...assignments],
        { env: { NOTIFY_SOCKET: env["NOTIFY_SOCKET"] ?? "", PATH: env["PATH"] ?? "/usr/bin:/bin" }, timeout: 5_000 },
        (err) => (err ? reject(new Error(`systemd-notify: ${err.message}`, { cause: err })) : resolve()),
      );
    });
}

export function noopNotifier(): Notifier {
  const nothing = async (): Promise<void> => {};
  return { enabled: false, watchdogIntervalMs: undefined, ready: nothing, status: nothing, watchdog: nothing, stopping: nothing };
}
