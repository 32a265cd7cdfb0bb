// systemd/doc-processor.service under a real systemd 252 (booted in a container), installed the way the bootstrap
// installs it, against the local stand-in: start succeeds only after READY with the right role; another role is
// refused with 77 and not restarted; `systemctl stop` drains and loses nothing; a frozen daemon is killed by the
// watchdog and restarted.
import { readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  assertDaemonBuilt,
  discardTestEvent,
  eventKeys,
  peekVisible,
  queueDepth,
  readOutput,
  roleDecisions,
  upload,
} from "../integration/helpers/daemon-harness.js";
import { startStandIn, type StandIn } from "../local/stand-in.js";
import { bootContainer, ensureRootfs, eventually, requireContainerHost, type Container } from "./container.js";

const REPO = join(import.meta.dirname, "..", "..");
const VERSION = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;
const CACHE_DIR = process.env["DOC_PROCESSOR_SYSTEMD_CACHE"] ?? "/var/cache/doc-processor-test";
const UNIT = "doc-processor.service";
const DROP_INS = "/etc/systemd/system/doc-processor.service.d";
const RELEASE = `/opt/doc-processor/releases/${VERSION}`;

/** Test settings on top of the stand-in's config: short long polls, quick IMDS failures. */
const TEST_CONFIG = { waitTimeSeconds: 2, imdsTimeoutMs: 1_000, imdsMaxRetries: 1, concurrency: 3, drainTimeoutSeconds: 15 };

let container: Container;

async function systemctl(...args: string[]) {
  return container.run(["systemctl", "--no-pager", ...args], { timeoutMs: 90_000 });
}

/** `systemctl show` properties as a record. */
async function show(...properties: string[]): Promise<Record<string, string>> {
  const out = await container.check(["systemctl", "show", UNIT, ...properties.map((p) => `--property=${p}`)]);
  return Object.fromEntries(
    out
      .split("\n")
      .filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}

/** A journal position: what comes after it belongs to the current test. */
async function journalCursor(): Promise<string> {
  const out = await container.check(["journalctl", "--lines=0", "--show-cursor", "--no-pager"]);
  const cursor = /-- cursor: (.+)/.exec(out)?.[1];
  if (!cursor) throw new Error(`no journal cursor in ${out}`);
  return cursor;
}

/** The unit's journal (the daemon's lines and systemd's about it) since `cursor`, as plain text. */
async function journal(cursor: string): Promise<string> {
  return container.check(["journalctl", `--unit=${UNIT}`, `--after-cursor=${cursor}`, "--output=cat", "--no-pager"]);
}

/** The daemon's JSON log lines since `cursor`. */
async function daemonLines(cursor: string): Promise<Record<string, unknown>[]> {
  return (await journal(cursor))
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Waits until the journal since `cursor` contains `text` (journald reads the daemon's output asynchronously). */
function journalContains(cursor: string, text: string, timeoutMs = 15_000): Promise<string> {
  return eventually(`"${text}" in the journal`, async () => {
    const j = await journal(cursor);
    return j.includes(text) ? j : undefined;
  }, { timeoutMs, describe: () => journal(cursor) });
}

function describeUnit(): Promise<string> {
  return systemctl("status", "--lines=30", UNIT).then((r) => r.stdout + r.stderr);
}

/** Config and endpoints for the stand-in, written as the bootstrap writes the config (root:doc-processor 0640). */
async function configure(stand: StandIn, config: Record<string, unknown> = {}): Promise<void> {
  await container.writeFile(
    "/etc/doc-processor/config.json",
    `${JSON.stringify({ ...stand.config, ...TEST_CONFIG, ...config }, null, 2)}\n`,
    "root:doc-processor",
    "0640",
  );
  // Test-only: the stand-in's endpoints, through a drop-in as an operator would add local settings.
  const lines = Object.entries(stand.env).map(([k, v]) => `Environment="${k}=${v}"`);
  // A daemon that never reports READY fails its test in 30 s instead of the unit's 120 s.
  lines.push("TimeoutStartSec=30s");
  await container.writeFile(`${DROP_INS}/local.conf`, `[Service]\n${lines.join("\n")}\n`, "root:root", "0644");
  await container.check(["systemctl", "daemon-reload"]);
}

beforeAll(async () => {
  requireContainerHost();
  assertDaemonBuilt();
  const rootfs = await ensureRootfs(CACHE_DIR);
  // The release as the bootstrap lays it out (releases/<version>, current -> it), read-only from this checkout, and
  // this host's node as /usr/bin/node-22 (Amazon Linux 2023's name for Node 22).
  container = await bootContainer(rootfs, [
    { host: realpathSync(process.execPath), container: "/usr/bin/node-22" },
    ...["dist", "node_modules", "package.json", "systemd"].map((p) => ({ host: join(REPO, p), container: `${RELEASE}/${p}` })),
  ]);
  const node = await container.run(["/usr/bin/node-22", "--version"]);
  if (node.code !== 0) {
    const ldd = await container.run(["ldd", "/usr/bin/node-22"]);
    throw new Error(`node does not run in the container (${node.stderr}); its libraries:\n${ldd.stdout}${ldd.stderr}`);
  }
  // The unit runs on what Amazon Linux 2023's nodejs22 provides: a Node 22 (the suite's own, checked at its start).
  expect(node.stdout.trim()).toMatch(/^v22\./);
  // What scripts/user-data.sh does, minus the download: user, current symlink, config dir, unit.
  await container.check([
    "useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
    "--comment", "doc-processor daemon", "doc-processor",
  ]);
  await container.check(["ln", "-sfn", `releases/${VERSION}`, "/opt/doc-processor/current"]);
  await container.check(["install", "-d", "-m", "0750", "-o", "root", "-g", "doc-processor", "/etc/doc-processor"]);
  await container.check(["install", "-m", "0644", `${RELEASE}/systemd/doc-processor.service`, `/etc/systemd/system/${UNIT}`]);
  await container.check(["systemctl", "daemon-reload"]);
  await container.check(["systemctl", "enable", UNIT]);
}, 20 * 60_000);

afterAll(async () => {
  await container?.poweroff();
});

describe("doc-processor.service under systemd 252", () => {
  let stand: StandIn;
  let cursor: string;

  beforeEach(async () => {
    stand = await startStandIn();
    await configure(stand);
    cursor = await journalCursor();
  });

  afterEach(async () => {
    try {
      // Every notification the daemon sent (through systemd-notify children) was attributed to the unit and
      // accepted: none dropped for an already exited sender, none refused by NotifyAccess.
      const manager = await container.check(["journalctl", "_PID=1", `--after-cursor=${cursor}`, "--output=cat", "--no-pager"]);
      expect(manager).not.toContain("Cannot find unit for notify message");
      expect(manager).not.toMatch(/notification message from PID \d+, but reception/);
      await systemctl("stop", UNIT);
      await systemctl("reset-failed", UNIT);
      await container.run(["rm", "-f", `${DROP_INS}/watchdog.conf`]);
      await container.check(["systemctl", "daemon-reload"]);
    } finally {
      await stand.close();
    }
  });

  it("start returns 0 once the daemon is READY as the expected role, sandboxed as doc-processor; a document gets processed", async () => {
    const start = await systemctl("start", UNIT);
    expect(start.code, start.stderr).toBe(0);

    // Right when start returned: active, and the READY message's status names the verified role session.
    const state = await show("ActiveState", "SubState", "StatusText", "MainPID", "NRestarts", "Type", "NotifyAccess");
    expect(state).toMatchObject({ ActiveState: "active", SubState: "running", NRestarts: "0", Type: "notify", NotifyAccess: "all" });
    expect(state["StatusText"]).toBe(`running as arn:aws:sts::${stand.accountId}:assumed-role/${stand.config.expectedRoleName}/${stand.instanceId()}`);

    // The main process is node, as doc-processor, with no privileges and a syscall filter.
    const pid = state["MainPID"]!;
    const status = await container.check(["cat", `/proc/${pid}/status`]);
    const uid = (await container.check(["id", "-u", "doc-processor"])).trim();
    expect(status).toMatch(new RegExp(`^Uid:\\s+${uid}\\s+${uid}\\s+${uid}\\s+${uid}$`, "m"));
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(status).toMatch(/^Seccomp:\s+2$/m);
    expect(status).toMatch(/^CapEff:\s+0+$/m);
    expect((await container.check(["cat", `/proc/${pid}/cmdline`])).split("\0")[0]).toBe("/usr/bin/node-22");

    await upload(stand, [{ key: "systemd/hello world.txt", body: "processed under systemd\n" }]);
    const output = await eventually("the output of the uploaded document", () => readOutput(stand, "systemd/hello world.txt"), {
      describe: describeUnit,
    });
    expect(output.source.key).toBe("systemd/hello world.txt");
  });

  it("another role: start fails, status shows the reason and exit 77, and systemd does not restart it", async () => {
    stand.imds.setRole("SomeOtherRole");
    const start = await systemctl("start", UNIT);
    expect(start.code).not.toBe(0);

    // Decided at the exit: "failed", not "auto-restart" (which a restartable failure enters at once, see below).
    expect(await show("ActiveState", "SubState", "Result", "ExecMainStatus", "NRestarts")).toEqual({
      ActiveState: "failed",
      SubState: "failed",
      Result: "exit-code",
      ExecMainStatus: "77",
      NRestarts: "0",
    });
    expect((await systemctl("list-jobs", UNIT)).stdout).not.toContain(UNIT);
    await journalContains(cursor, "refusing to start");
    const status = await eventually("the reason in systemctl status", async () => {
      const out = await describeUnit();
      return out.includes("refusing to start") ? out : undefined;
    });
    expect(status).toContain("status=77");
    expect(status).toContain("SomeOtherRole");
  });

  it("IMDS unreachable at start (exit 75) is a transient failure: systemd schedules a restart", async () => {
    stand.imds.setMode("refuse");
    const start = await systemctl("start", UNIT);
    expect(start.code).not.toBe(0);
    // The contrast with 77: the same kind of failure, but restartable, enters auto-restart right away.
    expect(await show("ActiveState", "SubState", "Result", "ExecMainStatus")).toEqual({
      ActiveState: "activating",
      SubState: "auto-restart",
      Result: "exit-code",
      ExecMainStatus: "75",
    });
  });

  it("stop during processing: in-flight documents finish, the rest stay queued, a restart finishes them; nothing lost", async () => {
    await discardTestEvent(stand);
    const docs = Array.from({ length: 6 }, (_, i) => ({ key: `drain/doc ${i + 1}.txt`, body: `document ${i + 1}\n` }));
    const keys = docs.map((d) => d.key);
    await upload(stand, docs);
    // Slow reads: three documents (concurrency 3) are still running when the stop comes.
    stand.faults.set("s3", { latencyMs: 3_000, operations: ["GetObject"] });
    expect((await systemctl("start", UNIT)).code).toBe(0);
    await eventually("three documents running", async () =>
      roleDecisions(stand).filter((d) => d.action === "s3:GetObject").length >= 3 ? true : undefined,
    );

    const stop = await systemctl("stop", UNIT);
    expect(stop.code, stop.stderr).toBe(0);
    // A clean exit 0 after the drain, not a kill at TimeoutStopSec.
    expect(await show("ActiveState", "Result", "ExecMainCode", "ExecMainStatus")).toEqual({
      ActiveState: "inactive",
      Result: "success",
      ExecMainCode: "1",
      ExecMainStatus: "0",
    });
    const lines = await eventually("the daemon's stopped line", async () => {
      const l = await daemonLines(cursor);
      return l.some((x) => x["msg"] === "stopped") ? l : undefined;
    });
    const stopping = lines.findIndex((l) => String(l["msg"]).startsWith("stopping:"));
    expect(stopping).toBeGreaterThanOrEqual(0);
    expect(lines.find((l) => l["msg"] === "stopped")).toMatchObject({ timedOut: false });
    const doneKeys = (from: number) =>
      lines.slice(from).filter((l) => l["msg"] === "document" && l["outcome"] === "done").map((l) => String(l["key"]));
    // Drained: the documents running at SIGTERM finished after it.
    expect(doneKeys(stopping).length).toBeGreaterThanOrEqual(3);

    // Nothing lost: each document is processed or its message is back in the queue, visible now.
    stand.faults.clear();
    const done = new Set(doneKeys(0));
    expect(await queueDepth(stand)).toEqual({ visible: docs.length - done.size, inFlight: 0 });
    const queued = new Set((await peekVisible(stand)).flatMap(eventKeys));
    for (const key of keys) expect(done.has(key) || queued.has(key), key).toBe(true);

    expect((await systemctl("start", UNIT)).code).toBe(0);
    for (const key of keys) {
      await eventually(`the output of ${key}`, () => readOutput(stand, key), { describe: describeUnit });
    }
    await eventually("an empty queue", async () => {
      const depth = await queueDepth(stand);
      return depth.visible === 0 && depth.inFlight === 0 ? depth : undefined;
    });
  });

  it("a frozen daemon stops feeding the watchdog: systemd aborts it and restarts it", async () => {
    // The unit's 90 s would make this test slow; the mechanism is the same with 6 s.
    await container.writeFile(`${DROP_INS}/watchdog.conf`, "[Service]\nWatchdogSec=6s\nRestartSec=1s\n", "root:root", "0644");
    await container.check(["systemctl", "daemon-reload"]);
    expect((await systemctl("start", UNIT)).code).toBe(0);
    const first = await show("MainPID", "ActiveEnterTimestampMonotonic", "WatchdogUSec");
    expect(first["WatchdogUSec"]).toBe("6s");

    // Healthy, it outlives WatchdogSec: systemd keeps receiving WATCHDOG=1 from it.
    await eventually("watchdog pings beyond WatchdogSec", async () => {
      const s = await show("MainPID", "NRestarts", "WatchdogTimestampMonotonic");
      expect(s).toMatchObject({ MainPID: first["MainPID"], NRestarts: "0" });
      return Number(s["WatchdogTimestampMonotonic"]) - Number(first["ActiveEnterTimestampMonotonic"]) > 6_000_000 ? s : undefined;
    }, { timeoutMs: 20_000, describe: describeUnit });

    // A real stall: nothing runs in the process any more, so no ping is sent.
    await container.check(["sh", "-c", 'kill -STOP "$1"', "sh", first["MainPID"]!]);
    const restarted = await eventually("a restart by the watchdog", async () => {
      const s = await show("MainPID", "NRestarts", "ActiveState", "SubState");
      return s["NRestarts"] === "1" && s["ActiveState"] === "active" && s["SubState"] === "running" ? s : undefined;
    }, { timeoutMs: 45_000, describe: describeUnit });
    expect(restarted["MainPID"]).not.toBe(first["MainPID"]);
    const log = await journalContains(cursor, "Watchdog timeout");
    expect(log).toContain("SIGABRT");
  });
});
