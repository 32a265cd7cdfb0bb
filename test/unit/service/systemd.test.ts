// The sd_notify client: a no-op outside systemd, the watchdog interval from systemd's variables, the messages it
// sends, and the real sender (a fake `systemd-notify` on PATH records how it is called).
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Logger } from "../../../src/logging/logger.js";
import { createNotifier, type NotifySender } from "../../../src/service/systemd.js";

function fakeLog() {
  const warn = vi.fn();
  return { log: { warn } as unknown as Logger, warn };
}

function recordingSender() {
  const sent: string[][] = [];
  const send: NotifySender = async (assignments) => {
    sent.push(assignments);
  };
  return { sent, send };
}

const SOCKET = "/run/systemd/notify";

describe("createNotifier", () => {
  it("is a no-op without NOTIFY_SOCKET (not started by systemd)", async () => {
    const { send, sent } = recordingSender();
    const notifier = createNotifier({ WATCHDOG_USEC: "6000000" }, fakeLog().log, send);
    expect(notifier.enabled).toBe(false);
    expect(notifier.watchdogIntervalMs).toBeUndefined();
    await notifier.ready("up");
    await notifier.status("x");
    await notifier.watchdog();
    await notifier.stopping("bye");
    expect(sent).toEqual([]);
  });

  it("sends READY with STATUS, STATUS, WATCHDOG and STOPPING with STATUS", async () => {
    const { send, sent } = recordingSender();
    const notifier = createNotifier({ NOTIFY_SOCKET: SOCKET }, fakeLog().log, send);
    expect(notifier.enabled).toBe(true);
    await notifier.ready("running as arn:aws:sts::123456789012:assumed-role/R/i-1");
    await notifier.status("processed 3");
    await notifier.watchdog();
    await notifier.stopping("draining");
    expect(sent).toEqual([
      ["READY=1", "STATUS=running as arn:aws:sts::123456789012:assumed-role/R/i-1"],
      ["STATUS=processed 3"],
      ["WATCHDOG=1"],
      ["STOPPING=1", "STATUS=draining"],
    ]);
  });

  it("keeps a status on one line: a newline would start another assignment (READY=1 smuggled in a status)", async () => {
    const { send, sent } = recordingSender();
    const notifier = createNotifier({ NOTIFY_SOCKET: SOCKET }, fakeLog().log, send);
    await notifier.status("a\nREADY=1\r\nb");
    expect(sent).toEqual([["STATUS=a READY=1 b"]]);
  });

  it("pings the watchdog at half of WATCHDOG_USEC, only when the watchdog is for this process", () => {
    const env = { NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: "6000000" };
    const { log } = fakeLog();
    expect(createNotifier(env, log).watchdogIntervalMs).toBe(3_000);
    expect(createNotifier({ ...env, WATCHDOG_PID: String(process.pid) }, log).watchdogIntervalMs).toBe(3_000);
    expect(createNotifier({ ...env, WATCHDOG_PID: String(process.pid + 1) }, log).watchdogIntervalMs).toBeUndefined();
    expect(createNotifier({ NOTIFY_SOCKET: SOCKET }, log).watchdogIntervalMs).toBeUndefined();
    expect(createNotifier({ NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: "0" }, log).watchdogIntervalMs).toBeUndefined();
  });

  it("logs a failed send and carries on (a notification is never worth a crash)", async () => {
    const { log, warn } = fakeLog();
    const notifier = createNotifier({ NOTIFY_SOCKET: SOCKET }, log, async () => {
      throw new Error("no socket");
    });
    await expect(notifier.watchdog()).resolves.toBeUndefined();
    expect(warn).toHaveBeenCalledWith(expect.objectContaining({ assignments: ["WATCHDOG=1"] }), "systemd-notify failed");
  });
});

describe("the systemd-notify sender", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  /** A fake systemd-notify that records its arguments and environment, then exits with `exitCode`. */
  function fakeSystemdNotify(exitCode: number): { path: string; record: string } {
    dir = mkdtempSync(join(tmpdir(), "fake-systemd-notify-"));
    const record = join(dir, "record");
    const script = join(dir, "systemd-notify");
    writeFileSync(
      script,
      `#!/bin/sh\n{ printf '%s\\n' "$@"; echo "--"; env | grep -E '^(NOTIFY_SOCKET|AWS_|HOME)=' | sort; } > '${record}'\nexit ${exitCode}\n`,
    );
    chmodSync(script, 0o755);
    return { path: dir, record };
  }

  it("runs systemd-notify --pid=<this pid> with the assignments, waiting for systemd (no --no-block), NOTIFY_SOCKET only", async () => {
    const fake = fakeSystemdNotify(0);
    const { log, warn } = fakeLog();
    const env = { NOTIFY_SOCKET: SOCKET, PATH: `${fake.path}:/usr/bin:/bin`, AWS_REGION: "us-east-1", HOME: "/root" };
    await createNotifier(env, log).ready("running as R");
    expect(warn).not.toHaveBeenCalled();
    expect(readFileSync(fake.record, "utf8").split("\n")).toEqual([
      `--pid=${process.pid}`,
      "READY=1",
      "STATUS=running as R",
      "--",
      `NOTIFY_SOCKET=${SOCKET}`,
      "",
    ]);
  });

  it("reports a failing systemd-notify as a warning, not an error", async () => {
    const fake = fakeSystemdNotify(1);
    const { log, warn } = fakeLog();
    await createNotifier({ NOTIFY_SOCKET: SOCKET, PATH: `${fake.path}:/usr/bin:/bin` }, log).watchdog();
    expect(warn).toHaveBeenCalledTimes(1);
    expect(readFileSync(fake.record, "utf8")).toContain("WATCHDOG=1");
  });
});
