// The real daemon as a child process (`node dist/cli.js run`), pointed at the stand-in only through its config file
// and the standard variables. Used by `npm run local` and the integration tests; it spawns the built program and
// never imports daemon code.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";

export const DAEMON_CLI = fileURLToPath(new URL("../../dist/cli.js", import.meta.url));

export type LogLine = Record<string, unknown> & { msg?: string; level?: string };

export interface DaemonProcess {
  readonly child: ChildProcess;
  readonly configPath: string;
  readonly logs: LogLine[];
  readonly stderr: () => string;
  /** Resolves with the first log line (past or future) matching `predicate`; rejects on timeout or exit. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM and wait for the exit. */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): void;
}

export interface StartDaemonOptions {
  config: Record<string, unknown>;
  /** The stand-in's env (IMDS and endpoint variables); merged over a minimal environment. */
  env: Record<string, string>;
  args?: string[];
  /** Node flags before the program (e.g. the systemd unit's --max-old-space-size). */
  nodeFlags?: string[];
  onLog?: (line: LogLine) => void;
  /** Echo non-JSON output (stderr) to this function. */
  onStderr?: (text: string) => void;
}

export function startDaemonProcess(options: StartDaemonOptions): DaemonProcess {
  const dir = mkdtempSync(join(tmpdir(), "doc-processor-run-"));
  const configPath = join(dir, "config.json");
  writeFileSync(configPath, JSON.stringify(options.config, null, 2));
  const env: Record<string, string> = {
    PATH: process.env["PATH"] ?? "/usr/bin:/bin",
    HOME: dir,
    ...options.env,
  };
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), DAEMON_CLI, ...(options.args ?? ["run"]), "--config", configPath], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: LogLine[] = [];
  const waiters = new Set<{ predicate: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  let stderr = "";
  onJsonLines(child.stdout, (line) => {
    logs.push(line);
    options.onLog?.(line);
    for (const w of waiters) {
      if (w.predicate(line)) {
        waiters.delete(w);
        w.resolve(line);
      }
    }
  });
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    stderr += chunk;
    options.onStderr?.(chunk);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("exit", (code, signal) => resolve({ code, signal }));
  });

  const waitForLog = (predicate: (line: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> => {
    const found = logs.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = { predicate, resolve };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`no matching daemon log line within ${timeoutMs} ms; stderr:\n${stderr}`));
      }, timeoutMs);
      waiter.resolve = (l) => {
        clearTimeout(timer);
        resolve(l);
      };
      waiters.add(waiter);
      void exited.then(({ code, signal }) => {
        if (!waiters.has(waiter)) return;
        waiters.delete(waiter);
        clearTimeout(timer);
        reject(new Error(`daemon exited (${code ?? signal}) before the expected log line; stderr:\n${stderr}`));
      });
    });
  };

  return {
    child,
    configPath,
    logs,
    stderr: () => stderr,
    waitForLog,
    exited,
    async stop(timeoutMs = 60_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
    kill() {
      child.kill("SIGKILL");
    },
  };
}

/** Calls `onLine` with each JSON log line of `stream` (the daemon's stdout); other output is skipped. */
export function onJsonLines(stream: Readable | null, onLine: (line: LogLine) => void): void {
  let partial = "";
  stream?.setEncoding("utf8");
  stream?.on("data", (chunk: string) => {
    partial += chunk;
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const text of lines) {
      if (!text.startsWith("{")) continue;
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        continue;
      }
      onLine(line);
    }
  });
}

/** The daemon's "document" log lines: one per document outcome. */
export function documentLines(logs: readonly LogLine[]): LogLine[] {
  return logs.filter((l) => l.msg === "document");
}
