/**
 * systemd readiness and watchdog (sd_notify). Node cannot send a Unix datagram without a native module, and the
 * instance should need no native build, so messages go through the `systemd-notify` binary that every systemd host
 * has. A child's message comes from another PID, hence the unit's NotifyAccess=all. systemd attributes such a
 * message to the unit by the sender's cgroup, which it can only read while the sender is alive: systemd-notify
 * (252, what Amazon Linux 2023 ships) therefore waits until systemd has processed the message (a barrier) unless
 * given --no-block, which we never pass. Measured under systemd 252 as an unprivileged service: with --no-block 4-9
 * of 200 messages were dropped ("Cannot find unit for notify message"), without it none (test/systemd checks the
 * journal for such drops). A no-op when NOTIFY_SOCKET is unset (not under systemd, tests, `npm run local`).
 */
import { execFile } from "node:child_process";
import type { Env } from "../config/env.js";
import type { Logger } from "../logging/logger.js";

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
  // The message is newline-separated assignments: a newline inside the status would start another one.
  const statusOf = (text: string): string => `STATUS=${text.replace(/[\r\n]+/g, " ")}`;
  return {
    enabled: true,
    watchdogIntervalMs: watchdogForUs ? Math.max(500, Math.floor(usec / 2_000)) : undefined,
    ready: (status) => notify(["READY=1", statusOf(status)]),
    status: (status) => notify([statusOf(status)]),
    watchdog: () => notify(["WATCHDOG=1"]),
    stopping: (status) => notify(["STOPPING=1", statusOf(status)]),
  };
}

/** systemd-notify gives up waiting for systemd after 5 s by itself; kill it only if it hangs beyond that. */
const NOTIFY_TIMEOUT_MS = 10_000;

function systemdNotify(env: Env): NotifySender {
  return (assignments) =>
    new Promise((resolve, reject) => {
      execFile(
        "systemd-notify",
        // --pid also sets MAINPID to this process (it is already); never --no-block (see above).
        [`--pid=${process.pid}`, ...assignments],
        { env: { NOTIFY_SOCKET: env["NOTIFY_SOCKET"] ?? "", PATH: env["PATH"] ?? "/usr/bin:/bin" }, timeout: NOTIFY_TIMEOUT_MS },
        (err) => (err ? reject(new Error(`systemd-notify: ${err.message}`, { cause: err })) : resolve()),
      );
    });
}

export function noopNotifier(): Notifier {
  const nothing = async (): Promise<void> => {};
  return { enabled: false, watchdogIntervalMs: undefined, ready: nothing, status: nothing, watchdog: nothing, stopping: nothing };
}
