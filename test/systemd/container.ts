// A real systemd 252 to test the unit under: a Debian bookworm minbase root (debootstrap, cached), booted with
// systemd-nspawn on a throw-away overlay (the cached root is never written), entered with nsenter. The container
// shares the host's network, so a service inside reaches the stand-in on 127.0.0.1.
// Recipe and pitfalls: ../shared/reference/systemd-in-container.md (the project's research notes).
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireTool } from "../helpers/tools.js";

const SYSTEMD_NSPAWN = "/usr/bin/systemd-nspawn";
const DEBOOTSTRAP = "/usr/sbin/debootstrap";
const NSENTER = "/usr/bin/nsenter";
const MOUNT = "/usr/bin/mount";

/** What the cached root is built from; a change here rebuilds it. */
const ROOTFS_RECIPE = {
  suite: "bookworm",
  variant: "minbase",
  // systemd 252 as PID 1; libstdc++6 for the host's node binary bound into it.
  include: ["systemd", "systemd-sysv", "dbus", "libstdc++6"],
};

/** Fails (never skips) with what to install or how to run, when this host cannot boot the container. */
export function requireContainerHost(): void {
  if (process.getuid?.() !== 0) {
    throw new Error(
      "npm run test:systemd boots a systemd-nspawn container and must run as root (CI does); locally: `sudo npm run test:systemd`",
    );
  }
  requireTool(SYSTEMD_NSPAWN, "apt-get install systemd-container");
  requireTool(DEBOOTSTRAP, "apt-get install debootstrap");
  requireTool(NSENTER, "apt-get install util-linux");
  requireTool(MOUNT, "apt-get install mount");
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  timeoutMs?: number;
  input?: string;
  env?: Record<string, string>;
}

/** Runs a host command with a deadline (SIGKILL when it passes); never rejects for a non-zero exit. */
export function runHost(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      env: options.env ?? { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8" },
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout?.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, options.timeoutMs ?? 60_000);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(new Error(`${command} ${args.join(" ")} did not finish within ${options.timeoutMs ?? 60_000} ms\n${stdout}${stderr}`));
        return;
      }
      resolve({ code, signal, stdout, stderr });
    });
    if (child.stdin) {
      // A command that exits without reading its input must not turn into an EPIPE error here.
      child.stdin.on("error", () => undefined);
      child.stdin.end(options.input);
    }
  });
}

/** Polls `probe` until it returns a value other than undefined; fails after `timeoutMs` with `what` and the last state. */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { timeoutMs = 30_000, intervalMs = 250, describe }: { timeoutMs?: number; intervalMs?: number; describe?: () => Promise<string> } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      const state = describe ? `\n${await describe().catch((e: unknown) => String(e))}` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${state}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * The first `deb` URI serving `suite` in apt sources, in the one-line format (`deb [options] URI suite components`)
 * or deb822 stanzas (`Types:`, `URIs:`, `Suites:`, `Enabled:`): the root is built from the mirror this host installs
 * its own packages from, whatever network policy or proxy that mirror stands for.
 */
export function aptMirrorFromSources(files: readonly string[], suite: string): string | undefined {
  for (const text of files) {
    for (const line of text.split("\n")) {
      const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
      if (m && m[2] === suite) return m[1];
    }
    for (const stanza of text.split(/\n\s*\n/)) {
      const fields = new Map<string, string[]>();
      for (const line of stanza.split("\n")) {
        const f = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
        if (f) fields.set(f[1]!.toLowerCase(), f[2]!.trim().split(/\s+/));
      }
      if (fields.get("enabled")?.[0]?.toLowerCase() === "no") continue;
      if (!fields.get("types")?.includes("deb") || !fields.get("suites")?.includes(suite)) continue;
      const uri = fields.get("uris")?.[0];
      if (uri) return uri;
    }
  }
  return undefined;
}

function hostAptMirror(suite: string): string {
  const dir = "/etc/apt/sources.list.d";
  const paths = [
    "/etc/apt/sources.list",
    ...(existsSync(dir) ? readdirSync(dir).filter((n) => /\.(list|sources)$/.test(n)).map((n) => join(dir, n)) : []),
  ];
  const mirror = aptMirrorFromSources(paths.filter((p) => existsSync(p)).map((p) => readFileSync(p, "utf8")), suite);
  if (mirror === undefined) {
    throw new Error(`no apt source on this host serves Debian ${suite}: set DEBOOTSTRAP_MIRROR to a ${suite} mirror's URL`);
  }
  return mirror;
}

/**
 * The cached root (built once, 1-3 minutes, about 250 MB): `<cacheDir>/bookworm-minbase-systemd`, built into a
 * temporary directory and renamed into place, so an interrupted build never leaves a half root behind.
 */
export async function ensureRootfs(cacheDir: string): Promise<string> {
  const rootfs = join(cacheDir, `${ROOTFS_RECIPE.suite}-${ROOTFS_RECIPE.variant}-systemd`);
  const stamp = join(cacheDir, `${ROOTFS_RECIPE.suite}-${ROOTFS_RECIPE.variant}-systemd.recipe.json`);
  const recipe = JSON.stringify(ROOTFS_RECIPE);
  if (existsSync(join(rootfs, "usr/lib/systemd/systemd")) && existsSync(stamp) && readFileSync(stamp, "utf8") === recipe) {
    return rootfs;
  }
  mkdirSync(cacheDir, { recursive: true });
  const building = join(cacheDir, `.building-${process.pid}`);
  rmSync(building, { recursive: true, force: true });
  const mirror = process.env["DEBOOTSTRAP_MIRROR"] ?? hostAptMirror(ROOTFS_RECIPE.suite);
  const result = await runHost(
    DEBOOTSTRAP,
    [`--variant=${ROOTFS_RECIPE.variant}`, `--include=${ROOTFS_RECIPE.include.join(",")}`, ROOTFS_RECIPE.suite, building, mirror],
    { timeoutMs: 15 * 60_000 },
  ).catch((err: unknown) => {
    rmSync(building, { recursive: true, force: true });
    throw err;
  });
  if (result.code !== 0) {
    rmSync(building, { recursive: true, force: true });
    throw new Error(`debootstrap failed (${result.code}):\n${(result.stdout + result.stderr).slice(-4_000)}`);
  }
  rmSync(rootfs, { recursive: true, force: true });
  renameSync(building, rootfs);
  writeFileSync(stamp, recipe);
  return rootfs;
}

function isMountPoint(path: string): boolean {
  // mountinfo field 5 is the mount point.
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .some((line) => line.split(" ")[4] === path);
}

/** nspawn refuses to start when /run/systemd/nspawn is on a disk file system (here /run is not a tmpfs). */
async function ensureNspawnRuntimeDir(): Promise<void> {
  const dir = "/run/systemd/nspawn";
  if (isMountPoint(dir) || isMountPoint("/run")) return;
  mkdirSync(dir, { recursive: true });
  const result = await runHost(MOUNT, ["-t", "tmpfs", "tmpfs", dir], { timeoutMs: 10_000 });
  if (result.code !== 0) throw new Error(`cannot mount a tmpfs on ${dir}: ${result.stderr}`);
}

export interface Bind {
  host: string;
  container: string;
}

export interface Container {
  /** Host PID of the container's PID 1 (systemd). */
  readonly initPid: number;
  /** The console output of the boot (removed at power-off; kept when the boot failed). */
  readonly logFile: string;
  /** Runs a command inside the container (all its namespaces) as root, with a deadline. */
  run(command: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** Like run, but a non-zero exit is an error carrying the output. */
  check(command: readonly string[], options?: RunOptions): Promise<string>;
  /** Writes a file inside the container with this owner ("user:group") and octal mode ("0640"). */
  writeFile(path: string, content: string, owner: string, mode: string): Promise<void>;
  /** Powers the container off (SIGKILL after a deadline); the overlay and everything written inside are gone. */
  poweroff(): Promise<void>;
}

function childrenOf(pid: number): number[] {
  const tasks = readdirSync(`/proc/${pid}/task`);
  return tasks.flatMap((tid) => {
    try {
      return readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
}

function commOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return undefined;
  }
}

function tail(path: string, chars = 3_000): string {
  try {
    return readFileSync(path, "utf8").slice(-chars);
  } catch {
    return "(no console log)";
  }
}

const CONTAINER_ENV = {
  PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
  LANG: "C.UTF-8",
  SYSTEMD_COLORS: "0",
  SYSTEMD_PAGER: "cat",
  SYSTEMD_LESS: "",
  TERM: "dumb",
};

/** Boots `rootfs` (read-only, with a tmpfs overlay) and resolves once systemd reports the boot finished. */
export async function bootContainer(rootfs: string, binds: readonly Bind[]): Promise<Container> {
  await ensureNspawnRuntimeDir();
  const machine = `doc-processor-test-${process.pid}`;
  const logFile = join(tmpdir(), `${machine}.console.log`);
  const logFd = openSync(logFile, "w");
  const nspawn: ChildProcess = spawn(
    SYSTEMD_NSPAWN,
    [
      `--directory=${rootfs}`,
      "--volatile=overlay",
      // No systemd and no system bus on this host: without both flags nspawn fails ("Failed to open system bus").
      "--register=no",
      "--keep-unit",
      `--machine=${machine}`,
      "--console=read-only",
      ...binds.map((b) => `--bind-ro=${b.host}:${b.container}`),
      "--boot",
    ],
    { stdio: ["ignore", logFd, logFd], env: { PATH: CONTAINER_ENV.PATH, LANG: "C.UTF-8" } },
  );
  closeSync(logFd);
  const nspawnPid = nspawn.pid;
  if (nspawnPid === undefined) throw new Error(`${SYSTEMD_NSPAWN} did not start; console: ${tail(logFile)}`);
  let exited = false;
  const nspawnExit = new Promise<void>((resolve) => nspawn.once("exit", () => ((exited = true), resolve())));

  let initPid: number | undefined;
  // If this process dies without powering off, the container must not outlive it: killing PID 1 of a PID
  // namespace kills everything in it.
  const killOnExit = (): void => {
    if (initPid !== undefined) {
      try {
        process.kill(initPid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    try {
      process.kill(nspawnPid, "SIGKILL");
    } catch {
      // already gone
    }
  };
  process.on("exit", killOnExit);

  const enter = (command: readonly string[], options: RunOptions = {}) =>
    runHost(NSENTER, [`--target=${initPid}`, "--mount", "--uts", "--ipc", "--pid", "--", ...command], {
      env: CONTAINER_ENV,
      ...options,
    });

  const poweroff = async (keepLog = false): Promise<void> => {
    let clean = false;
    if (!exited && initPid !== undefined) {
      const result = await enter(["systemctl", "poweroff", "--no-block"], { timeoutMs: 10_000 }).catch(() => undefined);
      clean = result?.code === 0;
    }
    // A manager that cannot be asked is killed at once; one that was asked gets 30 s to shut down.
    const timer = setTimeout(killOnExit, clean ? 30_000 : 0);
    await nspawnExit;
    clearTimeout(timer);
    process.off("exit", killOnExit);
    if (!keepLog) rmSync(logFile, { force: true });
  };

  try {
    initPid = await eventually(
      "the container's systemd (PID 1)",
      async () => {
        if (exited) throw new Error(`systemd-nspawn exited during boot; console:\n${tail(logFile)}`);
        return childrenOf(nspawnPid).find((pid) => commOf(pid) === "systemd");
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    // systemctl needs the manager's socket, which appears a moment after PID 1 starts.
    await eventually(
      "the container's systemd to listen",
      async () => (existsSync(`/proc/${initPid}/root/run/systemd/private`) ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    // Waits for the boot to finish; "degraded" (some unit of the minimal OS failed) is good enough here.
    const state = await enter(["systemctl", "is-system-running", "--wait"], { timeoutMs: 90_000 });
    if (!["running", "degraded"].includes(state.stdout.trim())) {
      throw new Error(`container boot ended "${state.stdout.trim()}" ${state.stderr}; console:\n${tail(logFile)}`);
    }
  } catch (err) {
    await poweroff(true);
    throw err;
  }

  const container: Container = {
    initPid: initPid,
    logFile,
    run: enter,
    async check(command, options) {
      const result = await enter(command, options);
      if (result.code !== 0) {
        throw new Error(`\`${command.join(" ")}\` exited ${result.code ?? result.signal} in the container:\n${result.stdout}${result.stderr}`);
      }
      return result.stdout;
    },
    async writeFile(path, content, owner, mode) {
      await container.check(
        ["sh", "-c", 'umask 077 && mkdir -p "$(dirname "$1")" && cat > "$1" && chown "$2" "$1" && chmod "$3" "$1"', "sh", path, owner, mode],
        { input: content, timeoutMs: 10_000 },
      );
    },
    poweroff,
  };
  return container;
}
