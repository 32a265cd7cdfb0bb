// A memory limit on the daemon enforced as the kernel enforces the unit's MemoryMax=, and the daemon's memory read
// from outside. The limit is, in order of preference:
// - cgroup2: a child group with memory.max (+ memory.swap.max, memory.high), what systemd sets up on cgroup v2;
// - cgroup1: a child of our own memory cgroup with memory.limit_in_bytes (+ memsw), what systemd does on v1;
// - watchdog: none of those writable here (no root, a read-only /sys/fs/cgroup): the process tree's total RSS is
//   sampled and the tree SIGKILLed once it passes the limit, counted as an OOM kill. Coarser than the kernel (a
//   spike between two samples goes unseen, and RSS is not everything the kernel charges), so the line says which ran.
// The daemon's pid goes into the group right after spawn; whatever it forks (an extraction child) inherits the group.
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statfsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sleep } from "./time.js";

export type Enforcement = "cgroup2" | "cgroup1" | "watchdog";

const CGROUP2_SUPER_MAGIC = 0x63677270;
const CGROUP_SUPER_MAGIC = 0x27e0eb;
const CGROUP2_ROOT = "/sys/fs/cgroup";
const CGROUP1_MEMORY = "/sys/fs/cgroup/memory";
const GROUP_PREFIX = "doc-processor-reliability-";
const MiB = 1024 * 1024;

export interface MemoryLimitOptions {
  limitBytes: number;
  /** memory.high (cgroup v2 only, as systemd applies MemoryHigh=). */
  highBytes?: number | undefined;
  /** memory.swap.max (v2) or memsw - limit (v1); 0 is MemorySwapMax=0. */
  swapMaxBytes?: number | undefined;
  /** memory.oom.group=1 (v2), as systemd sets for OOMPolicy=kill: an OOM kill takes every process of the group. */
  oomGroup?: boolean | undefined;
  /** Use only this kind (tests, or RELIABILITY_MEMORY_LIMIT=watchdog); default the first that works. */
  only?: Enforcement | undefined;
  /** Watchdog sampling period. @default 20 */
  watchdogIntervalMs?: number;
}

export interface MemoryLimit {
  readonly kind: Enforcement;
  /** How and where the limit is enforced, for the report. */
  readonly description: string;
  /** Why each preferred kind could not be used. */
  readonly fallbacks: readonly string[];
  /** Puts a freshly spawned process under the limit (its later children follow it). */
  adopt(pid: number): void;
  /** The processes under the limit now. */
  pids(): number[];
  /** OOM kills so far: the kernel's count for the group, or the watchdog's own. */
  oomKills(): number;
  /** The group's highest charge (RSS plus page cache and kernel memory), when the kernel reports one. */
  peakChargeBytes(): number | undefined;
  /** SIGKILLs whatever is still under the limit and removes the group. */
  close(): Promise<void>;
}

const mib = (bytes: number): string => `${Math.round(bytes / MiB)} MiB`;

function readInt(path: string, key?: string): number | undefined {
  try {
    const text = readFileSync(path, "utf8");
    if (key === undefined) return Number(text.trim());
    const match = new RegExp(`^${key} (\\d+)$`, "m").exec(text);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

function procs(dir: string): number[] {
  try {
    return readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes groups earlier runs left behind (their runner is gone and nothing is in them). Best effort. */
function removeStaleGroups(parent: string): void {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const match = new RegExp(`^${GROUP_PREFIX}(\\d+)-\\d+$`).exec(name);
    if (!match || alive(Number(match[1])) || procs(join(parent, name)).length > 0) continue;
    try {
      rmdirSync(join(parent, name));
    } catch {
      // Someone else's, or busy: leave it.
    }
  }
}

let groups = 0;

/** SIGKILLs every process in the group, waits until it is empty, removes it; bounded. */
async function removeGroup(dir: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const left = procs(dir);
    for (const pid of left) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    try {
      if (left.length === 0) {
        rmdirSync(dir);
        return;
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY" || Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline) throw new Error(`${dir} still holds ${left.join(", ")} after SIGKILL`);
    await sleep(50);
  }
}

function cgroupLimit(kind: "cgroup2" | "cgroup1", dir: string, fallbacks: string[], description: string): MemoryLimit {
  const v2 = kind === "cgroup2";
  return {
    kind,
    description,
    fallbacks,
    adopt(pid) {
      writeFileSync(join(dir, "cgroup.procs"), String(pid));
    },
    pids: () => procs(dir),
    oomKills: () => (v2 ? readInt(join(dir, "memory.events"), "oom_kill") : readInt(join(dir, "memory.oom_control"), "oom_kill")) ?? 0,
    peakChargeBytes: () => readInt(join(dir, v2 ? "memory.peak" : "memory.max_usage_in_bytes")),
    close: () => removeGroup(dir),
  };
}

function tryCgroup2(options: MemoryLimitOptions, fallbacks: string[]): MemoryLimit {
  if (statfsSync(CGROUP2_ROOT).type !== CGROUP2_SUPER_MAGIC) {
    throw new Error(`${CGROUP2_ROOT} is not a cgroup2 mount (a v1 or hybrid hierarchy)`);
  }
  const control = join(CGROUP2_ROOT, "cgroup.subtree_control");
  if (!readFileSync(control, "utf8").split(/\s+/).includes("memory")) appendFileSync(control, "+memory");
  removeStaleGroups(CGROUP2_ROOT);
  const dir = join(CGROUP2_ROOT, `${GROUP_PREFIX}${process.pid}-${groups++}`);
  mkdirSync(dir);
  try {
    writeFileSync(join(dir, "memory.max"), String(options.limitBytes));
    const notes = [`memory.max=${mib(options.limitBytes)}`];
    if (options.swapMaxBytes !== undefined) {
      if (existsSync(join(dir, "memory.swap.max"))) {
        writeFileSync(join(dir, "memory.swap.max"), String(options.swapMaxBytes));
        notes.push(`memory.swap.max=${options.swapMaxBytes}`);
      } else {
        notes.push("no swap accounting in this kernel");
      }
    }
    if (options.highBytes !== undefined) {
      writeFileSync(join(dir, "memory.high"), String(options.highBytes));
      notes.push(`memory.high=${mib(options.highBytes)}`);
    }
    if (options.oomGroup === true) {
      writeFileSync(join(dir, "memory.oom.group"), "1");
      notes.push("memory.oom.group=1");
    }
    if (readInt(join(dir, "memory.events"), "oom_kill") === undefined) throw new Error("memory.events has no oom_kill count");
    return cgroupLimit("cgroup2", dir, fallbacks, `cgroup v2 ${dir} (${notes.join(", ")})`);
  } catch (err) {
    rmdirSync(dir);
    throw err;
  }
}

function tryCgroup1(options: MemoryLimitOptions, fallbacks: string[]): MemoryLimit {
  if (statfsSync(CGROUP1_MEMORY).type !== CGROUP_SUPER_MAGIC) throw new Error(`${CGROUP1_MEMORY} is not a cgroup v1 memory mount`);
  const own = /^\d+:memory:(.*)$/m.exec(readFileSync("/proc/self/cgroup", "utf8"))?.[1];
  if (own === undefined) throw new Error("this process is in no v1 memory cgroup");
  const parent = join(CGROUP1_MEMORY, own);
  removeStaleGroups(parent);
  const dir = join(parent, `${GROUP_PREFIX}${process.pid}-${groups++}`);
  mkdirSync(dir);
  try {
    // The memory limit first: memsw (memory + swap) may never be below it.
    writeFileSync(join(dir, "memory.limit_in_bytes"), String(options.limitBytes));
    const notes = [`memory.limit_in_bytes=${mib(options.limitBytes)}`];
    if (options.swapMaxBytes !== undefined) {
      if (existsSync(join(dir, "memory.memsw.limit_in_bytes"))) {
        writeFileSync(join(dir, "memory.memsw.limit_in_bytes"), String(options.limitBytes + options.swapMaxBytes));
        notes.push(`memory.memsw.limit_in_bytes=${mib(options.limitBytes + options.swapMaxBytes)}`);
      } else {
        notes.push("no swap accounting in this kernel");
      }
    }
    if (options.highBytes !== undefined) notes.push("MemoryHigh not applied: v1 has no equivalent (systemd ignores it there too)");
    if (options.oomGroup === true) notes.push("no memory.oom.group on v1: the supervisor kills the rest of the group");
    if (readInt(join(dir, "memory.oom_control"), "oom_kill") === undefined) throw new Error("memory.oom_control has no oom_kill count");
    return cgroupLimit("cgroup1", dir, fallbacks, `cgroup v1 ${dir} (${notes.join(", ")})`);
  } catch (err) {
    rmdirSync(dir);
    throw err;
  }
}

/** Parent pid of each process now, from /proc/<pid>/stat. */
function parents(): Map<number, number> {
  const out = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // The fields after the parenthesised command name (which may hold spaces): state, then ppid.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      out.set(Number(name), ppid);
    } catch {
      // Exited while we looked.
    }
  }
  return out;
}

/** `roots` (those still alive) and all their descendants. */
export function processTree(roots: Iterable<number>): number[] {
  const ppids = parents();
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of ppids) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  const out: number[] = [];
  const todo = [...roots].filter((pid) => ppids.has(pid));
  for (let pid = todo.pop(); pid !== undefined; pid = todo.pop()) {
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** VmRSS and VmHWM of one process in bytes; undefined once it is gone. */
export function rssOf(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    const hwm = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
    if (rss === undefined) return undefined;
    return { rss: Number(rss) * 1024, hwm: Number(hwm ?? rss) * 1024 };
  } catch {
    return undefined;
  }
}

/** Descendants are looked up this often; RSS is read every sample. */
const TREE_REFRESH_MS = 200;

/** The process tree of the adopted roots, refreshed at most every TREE_REFRESH_MS. */
class TrackedTree {
  readonly roots = new Set<number>();
  #pids: number[] = [];
  #at = 0;

  add(pid: number): void {
    this.roots.add(pid);
    this.#at = 0;
  }

  pids(): number[] {
    if (Date.now() - this.#at >= TREE_REFRESH_MS) {
      this.#pids = processTree(this.roots);
      this.#at = Date.now();
      for (const root of this.roots) if (!this.#pids.includes(root)) this.roots.delete(root);
    }
    return this.#pids;
  }
}

function watchdogLimit(options: MemoryLimitOptions, fallbacks: string[]): MemoryLimit {
  const tree = new TrackedTree();
  const interval = options.watchdogIntervalMs ?? 20;
  let kills = 0;
  let peak = 0;
  // A killed process can take a few samples to die: one kill is counted once.
  const killed = new Set<number>();
  const timer = setInterval(() => {
    const pids = tree.pids();
    const total = pids.reduce((sum, pid) => sum + (rssOf(pid)?.rss ?? 0), 0);
    peak = Math.max(peak, total);
    if (total <= options.limitBytes || pids.every((pid) => killed.has(pid))) return;
    kills += 1;
    for (const pid of pids) {
      killed.add(pid);
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }, interval);
  timer.unref();
  return {
    kind: "watchdog",
    description: `watchdog: SIGKILL when the process tree's RSS passes ${mib(options.limitBytes)}, sampled every ${interval} ms`,
    fallbacks,
    adopt: (pid) => tree.add(pid),
    pids: () => tree.pids(),
    oomKills: () => kills,
    peakChargeBytes: () => peak,
    async close() {
      clearInterval(timer);
      for (const pid of processTree(tree.roots)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
    },
  };
}

/** The first kind of limit that can be set up here (or `options.only`); the fallbacks say why others could not. */
export function createMemoryLimit(options: MemoryLimitOptions): MemoryLimit {
  const fallbacks: string[] = [];
  const kinds: [Enforcement, (o: MemoryLimitOptions, f: string[]) => MemoryLimit][] = [
    ["cgroup2", tryCgroup2],
    ["cgroup1", tryCgroup1],
    ["watchdog", watchdogLimit],
  ];
  for (const [kind, create] of kinds) {
    if (options.only !== undefined && options.only !== kind) continue;
    try {
      return create(options, fallbacks);
    } catch (err) {
      fallbacks.push(`${kind}: ${(err as Error).message}`);
    }
  }
  throw new Error(`no memory limit could be set up: ${fallbacks.join("; ")}`);
}

/** RSS medians over a stretch: of the whole tree, and of its main process alone (undefined when it had none). */
export interface RssMedians {
  total: number;
  main: number | undefined;
}

/**
 * The total RSS of the processes under a limit, sampled from /proc every `intervalMs`: the current value, the peak
 * (at least the highest VmHWM of any one process, which the kernel tracks exactly), and windows over a stretch. With
 * `main` (the pid of the tree's main process now), medians are also kept for that process alone, so a child that
 * comes and goes (the extraction process) cannot hide the main process's growth, or be hidden by it.
 */
export class RssSampler {
  current = 0;
  /** The main process's RSS at the last sample (undefined: no main process, or it was gone). */
  mainCurrent: number | undefined;
  peak = 0;
  /** Processes seen by the last sample. */
  processes = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #windows = new Set<{ peak: number; samples: number[]; main: number[] }>();

  constructor(
    private readonly pids: () => number[],
    private readonly intervalMs = 50,
    private readonly main: () => number | undefined = () => undefined,
  ) {}

  start(): void {
    this.sample();
    this.#timer = setInterval(() => this.sample(), this.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  sample(): number {
    let total = 0;
    let hwm = 0;
    let processes = 0;
    const mainPid = this.main();
    let main: number | undefined;
    for (const pid of this.pids()) {
      const m = rssOf(pid);
      if (m === undefined) continue;
      total += m.rss;
      hwm = Math.max(hwm, m.hwm);
      processes += 1;
      if (pid === mainPid) main = m.rss;
    }
    this.current = total;
    this.mainCurrent = main;
    this.processes = processes;
    this.peak = Math.max(this.peak, total, hwm);
    for (const w of this.#windows) {
      w.peak = Math.max(w.peak, total);
      w.samples.push(total);
      if (main !== undefined) w.main.push(main);
    }
    return total;
  }

  /** Starts a window: its peak and samples from now until `end()`. */
  window(): { peak: () => number; samples: () => number[]; mainSamples: () => number[]; end: () => void } {
    const w = { peak: this.current, samples: [] as number[], main: [] as number[] };
    this.#windows.add(w);
    return { peak: () => w.peak, samples: () => w.samples, mainSamples: () => w.main, end: () => this.#windows.delete(w) };
  }

  /** The median total RSS over the next `ms`, and the main process's. */
  async median(ms: number, signal?: AbortSignal): Promise<RssMedians> {
    const w = this.window();
    try {
      await sleep(ms, signal);
    } finally {
      w.end();
    }
    return { total: medianOf(w.samples()) ?? this.current, main: medianOf(w.mainSamples()) ?? this.mainCurrent };
  }
}

function medianOf(values: number[]): number | undefined {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? undefined : sorted[Math.floor(sorted.length / 2)];
}
