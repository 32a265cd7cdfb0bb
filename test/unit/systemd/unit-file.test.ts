// systemd/doc-processor.service checked offline with the host's systemd-analyze (security exposure, verify in a
// scratch root that has the paths the unit needs), and kept consistent with the daemon: exit codes, config path,
// drain timeout, watchdog, heap limit, and the bootstrap's user and install layout. Under real systemd: test/systemd.
import { execFile } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_CONFIG_PATH, loadConfig } from "../../../src/config/load.js";
import { ExitCode } from "../../../src/errors/fatal.js";
import { CHILD_ENV } from "../../../src/processors/builtin/text/child.js";
import { requireTool } from "../../helpers/tools.js";

const REPO = join(import.meta.dirname, "..", "..", "..");
const UNIT_PATH = join(REPO, "systemd", "doc-processor.service");
const EXAMPLE_CONFIG = join(REPO, "systemd", "config.example.json");
const SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze";
const INSTALL = "apt-get install systemd";

type Unit = Map<string, Map<string, string[]>>;

/** Sections -> key -> every value in order (systemd's own rules: `#`/`;` comments, an empty value resets). */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = new Map();
      unit.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf("=");
    if (!section || eq < 0) throw new Error(`unparsable unit line: ${raw}`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    section.set(key, value === "" ? [""] : [...(section.get(key) ?? []).filter((v) => v !== ""), value]);
  }
  return unit;
}

const unit = parseUnit(readFileSync(UNIT_PATH, "utf8"));
const service = unit.get("Service") ?? new Map<string, string[]>();
/** The effective (last) value of a [Service] key. */
const get = (key: string): string | undefined => service.get(key)?.at(-1);

/** systemd time span ("90s", "1min 30s", "45") in seconds, for the units this file uses. */
function seconds(span: string | undefined): number {
  if (span === undefined) throw new Error("missing time span");
  let total = 0;
  for (const [, n, suffix] of span.matchAll(/(\d+)\s*(min|s|ms)?/g)) {
    total += Number(n) * (suffix === "min" ? 60 : suffix === "ms" ? 0.001 : 1);
  }
  return total;
}

/** "512M" -> MiB. */
function mebibytes(size: string | undefined): number {
  const m = /^(\d+)([KMG])$/.exec(size ?? "");
  if (!m) throw new Error(`unexpected size ${size}`);
  return Number(m[1]) * { K: 1 / 1024, M: 1, G: 1024 }[m[2] as "K" | "M" | "G"];
}

function analyze(args: string[], cwd: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      SYSTEMD_ANALYZE,
      args,
      { cwd, timeout: 60_000, env: { PATH: "/usr/bin:/bin", SYSTEMD_COLORS: "0", SYSTEMD_PAGER: "cat", LANG: "C.UTF-8" } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        resolve({ code, output: `${stdout}${stderr}` });
      },
    );
  });
}

describe("systemd-analyze on the unit", () => {
  let root: string;
  beforeAll(() => {
    requireTool(SYSTEMD_ANALYZE, INSTALL);
    // A scratch root: the unit where the bootstrap installs it, the interpreter it names, and systemd's own units
    // (the targets it depends on), so verify checks this unit and nothing of the host's configuration.
    root = mkdtempSync(join(tmpdir(), "unit-verify-"));
    const hostUnits = ["/usr/lib/systemd/system", "/lib/systemd/system"].find((p) => existsSync(join(p, "sysinit.target")));
    if (!hostUnits) throw new Error(`systemd's units (sysinit.target) are missing: \`${INSTALL}\``);
    cpSync(hostUnits, join(root, "usr/lib/systemd/system"), { recursive: true, verbatimSymlinks: true });
    mkdirSync(join(root, "etc/systemd/system"), { recursive: true });
    cpSync(UNIT_PATH, join(root, "etc/systemd/system/doc-processor.service"));
    mkdirSync(join(root, "usr/bin"), { recursive: true });
    writeFileSync(join(root, "usr/bin/node-22"), "#!/bin/sh\n");
    chmodSync(join(root, "usr/bin/node-22"), 0o755);
  });
  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("has an overall exposure of at most 1.5 (`systemd-analyze security --offline=yes`)", async () => {
    const { output } = await analyze(["security", "--offline=yes", "systemd/doc-processor.service"], REPO);
    const m = /Overall exposure level for doc-processor\.service: (\d+(?:\.\d+)?)/.exec(output);
    expect(m, output).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(1.5);
  });

  it("verifies clean (`systemd-analyze verify`, no warning at all) where its paths exist", async () => {
    expect(await analyze(["verify", `--root=${root}`, "doc-processor.service"], root)).toEqual({ code: 0, output: "" });
  });

  it("fails verification without the interpreter it names (the check above is real)", async () => {
    const bare = mkdtempSync(join(tmpdir(), "unit-verify-bare-"));
    try {
      cpSync(join(root, "usr/lib"), join(bare, "usr/lib"), { recursive: true, verbatimSymlinks: true });
      cpSync(join(root, "etc"), join(bare, "etc"), { recursive: true });
      const result = await analyze(["verify", `--root=${bare}`, "doc-processor.service"], bare);
      expect(result.output).toContain("/usr/bin/node-22");
      expect(result.code).not.toBe(0);
    } finally {
      rmSync(bare, { recursive: true, force: true });
    }
  });
});

describe("the unit agrees with the daemon and the bootstrap", () => {
  // The daemon's defaults: what an instance runs with when the config sets only the required keys.
  const defaults = loadConfig({
    configPath: "/etc/doc-processor/config.json",
    env: {},
    readFile: () =>
      JSON.stringify({ queueUrl: "https://sqs.us-east-1.amazonaws.com/123456789012/q", sourceBucket: "src-b", outputBucket: "out-b" }),
  });

  it("is Type=notify with NotifyAccess=all (READY comes from a systemd-notify child) and installs into multi-user", () => {
    expect(get("Type")).toBe("notify");
    expect(get("NotifyAccess")).toBe("all");
    expect(unit.get("Install")?.get("WantedBy")).toEqual(["multi-user.target"]);
  });

  it("starts Node 22 from the installed release with the default config path", () => {
    const exec = get("ExecStart") ?? "";
    expect(exec).toMatch(
      /^\/usr\/bin\/node-22 --max-old-space-size=\d+ --max-semi-space-size=\d+ --v8-pool-size=\d+ --expose-gc \/opt\/doc-processor\/current\/dist\/cli\.js run --config (\S+)$/,
    );
    expect(exec.split(" ").at(-1)).toBe(DEFAULT_CONFIG_PATH);
    expect(get("EnvironmentFile")).toBe("-/etc/doc-processor/environment");
  });

  it("runs as the user the bootstrap creates", () => {
    const bootstrap = readFileSync(join(REPO, "scripts", "user-data.sh"), "utf8");
    const user = /^readonly SERVICE_USER=(\S+)$/m.exec(bootstrap)?.[1];
    expect(user).toBeDefined();
    expect(get("User")).toBe(user);
    expect(get("Group")).toBe(user);
  });

  it("never restarts a wrong identity or config, restarts everything else that fails", () => {
    expect(get("Restart")).toBe("on-failure");
    const prevented = (get("RestartPreventExitStatus") ?? "").split(/\s+/).map(Number);
    expect(prevented.sort()).toEqual([ExitCode.noPerm, ExitCode.config].sort());
    expect(prevented).not.toContain(ExitCode.tempFail);
  });

  it("gives the drain time to finish: SIGTERM to the daemon, TimeoutStopSec above drainTimeoutSeconds plus a margin", () => {
    expect(get("KillSignal")).toBe("SIGTERM");
    expect(get("KillMode")).toBe("mixed");
    expect(seconds(get("TimeoutStopSec"))).toBeGreaterThanOrEqual(defaults.drainTimeoutSeconds + 10);
  });

  it("has a watchdog that tolerates a slow event loop and fires well before the stall detector would let a stall live on", () => {
    const watchdog = seconds(get("WatchdogSec"));
    // The daemon stops pinging after waitTimeSeconds + 90 s without a loop cycle (src/main.ts).
    const stallAfter = defaults.waitTimeSeconds + 90;
    expect(watchdog).toBeGreaterThanOrEqual(60);
    expect(watchdog).toBeLessThanOrEqual(stallAfter);
    expect(get("WatchdogSignal")).toBe("SIGABRT");
  });

  it("limits the heap below the memory limit with room for memory outside the heap", () => {
    const heap = Number(/--max-old-space-size=(\d+)/.exec(get("ExecStart") ?? "")?.[1]);
    const semi = Number(/--max-semi-space-size=(\d+)/.exec(get("ExecStart") ?? "")?.[1]);
    const high = mebibytes(get("MemoryHigh"));
    const max = mebibytes(get("MemoryMax"));
    // Young generation (three semi-spaces at most) plus code, native memory and buffers (80 MiB) above the old space.
    expect(semi).toBeGreaterThan(0);
    expect(heap + 3 * semi + 80).toBeLessThanOrEqual(high);
    expect(high).toBeLessThan(max);
    // A t2.micro has 1 GiB: the daemon gets at most half.
    expect(max).toBeLessThanOrEqual(512);
    // An OOM kill of the extraction child (oom_score_adj 1000) must not stop the service.
    expect(get("OOMPolicy")).toBe("continue");
    // A fixed mmap threshold: freed document buffers go back to the system (see the unit's comment).
    expect(get("Environment")).toBe("GLIBC_TUNABLES=glibc.malloc.mmap_threshold=65536");
    // ... and the extraction process, which gets no environment from the daemon, has the same.
    expect(`GLIBC_TUNABLES=${CHILD_ENV["GLIBC_TUNABLES"]}`).toBe(get("Environment"));
  });

  it("keeps what the daemon needs in the sandbox: network, the notify socket, writable executable memory for V8", () => {
    expect((get("RestrictAddressFamilies") ?? "").split(/\s+/).sort()).toEqual(["AF_INET", "AF_INET6", "AF_UNIX"]);
    expect(get("MemoryDenyWriteExecute") ?? "no").toBe("no");
    expect(get("PrivateNetwork") ?? "no").toBe("no");
    expect(get("ProtectSystem")).toBe("strict");
    expect(get("CapabilityBoundingSet")).toBe("");
  });

  it("ships an example config that the daemon accepts and whose drain fits TimeoutStopSec", () => {
    const example = loadConfig({ configPath: EXAMPLE_CONFIG, env: {} });
    expect(example.queueUrl).toMatch(/^https:\/\/sqs\./);
    expect(example.drainTimeoutSeconds + 10).toBeLessThanOrEqual(seconds(get("TimeoutStopSec")));
  });
});
