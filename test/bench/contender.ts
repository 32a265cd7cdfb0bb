// One contender of the bench as a child process: the daemon (`node dist/cli.js run`) or a baseline worker, pinned to
// one core with taskset when available and given a t2.micro-like heap limit. Its JSON log lines on stdout are parsed:
// "ready…" marks READY, "document" lines mark finished documents (the bench clock, not the child's, times them).
import { spawn, type ChildProcess } from "node:child_process";
import { performance } from "node:perf_hooks";
import { onJsonLines } from "../local/daemon-process.js";
import { taskset } from "./proc.js";

export type LogLine = Record<string, unknown> & { msg?: string };

export interface ContenderOptions {
  /** Arguments after `node` (script and its arguments). */
  args: string[];
  env: Record<string, string>;
  /** Node flags, e.g. --max-old-space-size=320. */
  nodeFlags?: string[];
  /** CPU list for taskset -c (default "0"); ignored without taskset. */
  cpus?: string;
  /** Called with every parsed log line and the bench time (performance.now()) it arrived at. */
  onLog?: (line: LogLine, at: number) => void;
}

export interface Contender {
  readonly child: ChildProcess;
  readonly pid: number;
  /** performance.now() right before spawn. */
  readonly startedAt: number;
  readonly pinned: boolean;
  readonly stderr: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first line (from now on or already seen) matching, and when it arrived. */
  waitFor(predicate: (line: LogLine) => boolean, timeoutMs: number): Promise<{ line: LogLine; at: number }>;
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startContender(options: ContenderOptions): Contender {
  const nodeArgs = [...(options.nodeFlags ?? []), ...options.args];
  const pinTool = taskset();
  // taskset execs the command, so the child's pid is node's own: /proc figures are the contender's.
  const [command, args] =
    pinTool !== null ? [pinTool, ["-c", options.cpus ?? "0", process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  const startedAt = performance.now();
  const child = spawn(command, args, { env: options.env, stdio: ["ignore", "pipe", "pipe"] });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  const seen: { line: LogLine; at: number }[] = [];
  const waiters = new Set<{ predicate: (l: LogLine) => boolean; resolve: (v: { line: LogLine; at: number }) => void }>();
  let stderr = "";
  onJsonLines(child.stdout, (line) => {
    const entry = { line, at: performance.now() };
    // Only lines someone may still wait for are kept: the document lines go to onLog.
    if (line.msg !== "document") seen.push(entry);
    options.onLog?.(line, entry.at);
    for (const w of waiters) {
      if (w.predicate(line)) {
        waiters.delete(w);
        w.resolve(entry);
      }
    }
  });
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-20_000);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("exit", (code, signal) => resolve({ code, signal }));
  });

  return {
    child,
    pid: child.pid,
    startedAt,
    pinned: pinTool !== null,
    stderr: () => stderr,
    exited,
    waitFor(predicate, timeoutMs) {
      const found = seen.find((e) => predicate(e.line));
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no matching log line within ${timeoutMs} ms; stderr:\n${stderr}`));
        }, timeoutMs);
        const waiter = {
          predicate,
          resolve: (v: { line: LogLine; at: number }) => {
            clearTimeout(timer);
            resolve(v);
          },
        };
        waiters.add(waiter);
        void exited.then(({ code, signal }) => {
          if (!waiters.delete(waiter)) return;
          clearTimeout(timer);
          reject(new Error(`process exited (${code ?? signal}) before the expected log line; stderr:\n${stderr}`));
        });
      });
    },
    async stop(timeoutMs = 30_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
