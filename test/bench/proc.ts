// Figures of a child process read from /proc (Linux): CPU time (utime+stime) and peak RSS (VmHWM). The bench reads
// them around a workload rather than trusting the process to report on itself.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

const clockTicks = (() => {
  const out = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const n = Number(out.stdout.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** Clock ticks (as in /proc/<pid>/stat) to ms. */
export function ticksToMs(ticks: number): number {
  return (ticks * 1000) / clockTicks;
}

/** CPU time (user + system) of `pid` in ms; undefined once it is gone. Resolution is one clock tick (usually 10 ms). */
export function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name (which may contain spaces); utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return ((utime + stime) * 1000) / clockTicks;
  } catch {
    return undefined;
  }
}

/** Peak resident set size (VmHWM) of `pid` in bytes; undefined once it is gone. */
export function peakRssBytes(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The live children of `pid` (the text processor's extraction process, for the daemon). */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (new RegExp(`^PPid:\\s+${pid}$`, "m").test(readFileSync(`/proc/${entry}/status`, "utf8"))) children.push(Number(entry));
    } catch {
      // Gone while listing.
    }
  }
  return children;
}

/** CPU time of `pid` and its live children, in ms (the daemon's work includes its extractor's). */
export function treeCpuMs(pid: number): number | undefined {
  const own = cpuMs(pid);
  return own === undefined ? undefined : childPids(pid).reduce((sum, child) => sum + (cpuMs(child) ?? 0), own);
}

/** Peak RSS of `pid` plus each live child's: an upper bound of their peak together (they may peak apart). */
export function treePeakRssBytes(pid: number): number | undefined {
  const own = peakRssBytes(pid);
  return own === undefined ? undefined : childPids(pid).reduce((sum, child) => sum + (peakRssBytes(child) ?? 0), own);
}

let tasksetPath: string | null | undefined;
/** /usr/bin/taskset (util-linux) when installed and it works here, else null. */
export function taskset(): string | null {
  if (tasksetPath !== undefined) return tasksetPath;
  const probe = spawnSync("taskset", ["-c", "0", "true"]);
  tasksetPath = probe.status === 0 ? "taskset" : null;
  return tasksetPath;
}

/** Pins every thread of `pid` to `cpus` (e.g. "1"); false when taskset is missing or refuses. */
export function pin(pid: number, cpus: string): boolean {
  if (taskset() === null) return false;
  return spawnSync("taskset", ["-a", "-pc", cpus, String(pid)], { stdio: "ignore" }).status === 0;
}
