// What the shipped systemd unit imposes on the daemon, read from systemd/doc-processor.service itself so a scenario
// (and every bench contender: test/bench/workload.ts uses this parser) runs the daemon as production does: its
// memory limits, its OOM policy, its restart delay, its Node flags (from ExecStart) and its environment.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const UNIT_FILE = fileURLToPath(new URL("../../../systemd/doc-processor.service", import.meta.url));

export interface UnitLimits {
  /** MemoryMax= in bytes. */
  memoryMaxBytes: number;
  /** MemoryHigh= in bytes, when set (cgroup v2 only: systemd ignores it on v1). */
  memoryHighBytes: number | undefined;
  /** MemorySwapMax= in bytes, when set. */
  memorySwapMaxBytes: number | undefined;
  /** OOMPolicy=; systemd's default (DefaultOOMPolicy=) is stop. */
  oomPolicy: "continue" | "stop" | "kill";
  /** RestartSec= in ms (systemd's default 100 ms). */
  restartMs: number;
  /** The Node flags of ExecStart (heap and young-generation limits). */
  nodeFlags: string[];
  /** Environment= assignments (NAME=value, unquoted), such as the allocator's tunables. */
  environment: Record<string, string>;
}

const SIZE_UNITS: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** A systemd size ("512M", base 1024 as systemd reads it); undefined for "infinity". */
export function parseSystemdSize(value: string): number | undefined {
  if (value === "infinity") return undefined;
  const match = /^(\d+)([KMGT]?)$/.exec(value);
  if (!match) throw new Error(`unsupported size in ${UNIT_FILE}: ${value} (percentages are not handled here)`);
  return Number(match[1]) * SIZE_UNITS[match[2]!]!;
}

function parseSeconds(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|min)?$/.exec(value);
  if (!match) throw new Error(`unsupported time span in ${UNIT_FILE}: ${value}`);
  const n = Number(match[1]);
  return match[2] === "ms" ? n : match[2] === "min" ? n * 60_000 : n * 1_000;
}

/** The last value of `key=` in the unit (a later line overrides an earlier one, as in systemd). */
function setting(text: string, key: string): string | undefined {
  const values = [...text.matchAll(new RegExp(`^${key}=(.*)$`, "gm"))].map((m) => m[1]!.trim());
  return values.at(-1);
}

export function readUnitLimits(path = UNIT_FILE): UnitLimits {
  const text = readFileSync(path, "utf8");
  const max = setting(text, "MemoryMax");
  const memoryMaxBytes = max === undefined ? undefined : parseSystemdSize(max);
  if (memoryMaxBytes === undefined) throw new Error(`${path} sets no finite MemoryMax=`);
  const high = setting(text, "MemoryHigh");
  const swap = setting(text, "MemorySwapMax");
  const policy = setting(text, "OOMPolicy") ?? "stop";
  if (policy !== "continue" && policy !== "stop" && policy !== "kill") throw new Error(`${path}: unknown OOMPolicy=${policy}`);
  const restart = setting(text, "RestartSec");
  const exec = setting(text, "ExecStart");
  if (exec === undefined) throw new Error(`${path} has no ExecStart`);
  // The tokens between the node binary and the program are Node's flags.
  const [, ...rest] = exec.split(/\s+/);
  const end = rest.findIndex((token) => !token.startsWith("--"));
  const nodeFlags = rest.slice(0, end === -1 ? rest.length : end);
  if (nodeFlags.length === 0) throw new Error(`ExecStart in ${path} passes no Node flags: ${exec}`);
  const environment: Record<string, string> = {};
  for (const m of text.matchAll(/^Environment=(.*)$/gm)) {
    for (const assignment of m[1]!.trim().split(/\s+/)) {
      const eq = assignment.indexOf("=");
      if (eq <= 0 || /["']/.test(assignment)) throw new Error(`${path}: unsupported Environment= value: ${assignment}`);
      environment[assignment.slice(0, eq)] = assignment.slice(eq + 1);
    }
  }
  return {
    memoryMaxBytes,
    memoryHighBytes: high === undefined ? undefined : parseSystemdSize(high),
    memorySwapMaxBytes: swap === undefined ? undefined : parseSystemdSize(swap),
    oomPolicy: policy,
    restartMs: restart === undefined ? 100 : parseSeconds(restart),
    nodeFlags,
    environment,
  };
}
