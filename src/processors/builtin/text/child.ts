/**
 * The extraction child process as the daemon sees it: how it is started (what it may touch), its frames, its
 * private resident memory, and its death. Policy (limits, reuse, errors) is the host's (host.ts).
 *
 * What the child gets: the same node binary, an environment of one allocator setting (no AWS variables, no
 * credentials, no NODE_OPTIONS), cwd /, stdin and stdout closed, and Node's permission model: it may read the package's own files
 * (its code and node_modules, where PDF.js also reads fonts and CMaps), load native addons (@napi-rs/canvas, which
 * PDF.js's legacy build needs for DOMMatrix), and write one file, its own oom_score_adj; no other file, no child
 * processes, no worker threads, and no eval (--disallow-code-generation-from-strings), which is what past PDF.js
 * exploits relied on. Node 22's permission model does not restrict the network.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Socket } from "node:net";
import { FrameDecoder, type Frame } from "./frames.js";
import { CHANNEL_FD } from "./protocol.js";

const MiB = 1024 * 1024;
/** Node's own code and native memory, outside the V8 heap: the heap limit leaves this much of the ceiling to it. */
const NON_HEAP_BYTES = 64 * MiB;
/** What is kept of the child's stderr, from its start and its end (a V8 abort's reason comes before its stack). */
const STDERR_KEPT_CHARS = 2_000;
/**
 * The child's whole environment: the unit's fixed glibc mmap threshold (systemd/doc-processor.service says why; a
 * unit-file test keeps the two equal), so the buffers a parse frees go back to the system as they do in the daemon.
 */
export const CHILD_ENV: Readonly<Record<string, string>> = Object.freeze({
  GLIBC_TUNABLES: "glibc.malloc.mmap_threshold=65536",
});

export interface ChildOptions {
  /** The child's entry (extract-child.js). */
  entry: string;
  /** The ceiling on the child's private resident memory; its V8 heap limit is set below it. */
  memoryLimitBytes: number;
  /** V8's semi-space (young generation) size, in MiB. */
  semiSpaceMiB: number;
}

/** Every live child, killed when the daemon exits however it exits, so none is ever left behind. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function killAllOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    const pids = [...live].map((child) => (child.kill("SIGKILL"), child.pid!));
    // A process of a dozen threads takes a few ms to die. Waiting for that here (at most 500 ms) means the service
    // manager, which looks right after the daemon exits, finds nothing left in the unit to kill.
    const tick = new Int32Array(new SharedArrayBuffer(4));
    for (const end = Date.now() + 500; Date.now() < end && pids.some(dying); ) Atomics.wait(tick, 0, 0, 5);
  });
}

/** Whether `pid` is still on its way out: a zombie is done once its last thread has gone too. */
function dying(pid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "latin1");
    return !/^State:\s+Z/m.test(status) || !/^Threads:\s+[01]$/m.test(status);
  } catch {
    return false;
  }
}

/**
 * The directory whose node_modules holds the parsers, above the entry: the package root (the release directory in
 * production; the checkout in tests, whose transpiled entry lives under node_modules/.cache).
 */
export function packageRoot(entry: string, exists: (path: string) => boolean = existsSync): string {
  for (let dir = dirname(entry); ; dir = dirname(dir)) {
    if (exists(join(dir, "node_modules", "pdfjs-dist", "package.json"))) return dir;
    if (dirname(dir) === dir) throw new Error(`no node_modules with pdfjs-dist above ${entry}`);
  }
}

/** Node's arguments for the child (pure, for tests). */
export function childArguments(options: ChildOptions, root: string): string[] {
  const limitMiB = Math.floor(options.memoryLimitBytes / MiB);
  const heapMiB = Math.max(16, limitMiB - NON_HEAP_BYTES / MiB);
  return [
    `--max-old-space-size=${heapMiB}`,
    `--max-semi-space-size=${options.semiSpaceMiB}`,
    "--expose-gc",
    "--disallow-code-generation-from-strings",
    "--permission",
    `--allow-fs-read=${root}`,
    "--allow-fs-write=/proc/self/oom_score_adj",
    "--allow-addons",
    // The warning that --allow-addons weakens the model: known, and it would only fill the stderr tail.
    "--disable-warning=SecurityWarning",
    options.entry,
  ];
}

/**
 * A process's private resident memory from the text of /proc/<pid>/status, in bytes: RssAnon + RssShmem (its heap,
 * buffers and malloc arenas), without RssFile, the pages of the node binary and libraries it shares with the daemon
 * (about 55 MiB), which no document can grow.
 */
export function parsePrivateRss(status: string): number | undefined {
  const field = (name: string): number | undefined => {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, "m").exec(status);
    return m === null ? undefined : Number(m[1]) * 1024;
  };
  const anon = field("RssAnon");
  return anon === undefined ? undefined : anon + (field("RssShmem") ?? 0);
}

/** A process's private resident memory, or undefined when it cannot be read (gone, a zombie, not Linux). */
export function residentBytes(pid: number): number | undefined {
  try {
    return parsePrivateRss(readFileSync(`/proc/${pid}/status`, "latin1"));
  } catch {
    return undefined;
  }
}

/** How V8 says it ran out of heap before it aborts. */
const HEAP_OOM = /heap out of memory|Reached heap limit/i;

/** The line of a dying Node's stderr that says why: its error, else its last line. */
export function lastWords(stderr: string): string {
  const lines = stderr.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !/^Node\.js v\d/.test(l));
  const said = lines.findLast((l) => /^(FATAL ERROR|\w*Error\b)/.test(l)) ?? lines.at(-1) ?? "";
  return said.slice(0, 300);
}

export class ExtractorChild {
  readonly pid: number;
  readonly #process: ChildProcess;
  readonly #channel: Socket;
  readonly #decoder = new FrameDecoder({ maxPayloadBytes: 0 });
  #stderrHead = "";
  #stderrTail = "";
  #outOfHeap = false;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly #closed: Promise<void>;
  #onFrame: (frame: Frame) => void = () => undefined;
  #onFailure: (err: Error) => void = () => undefined;
  #failed = false;
  #killed = false;

  private constructor(child: ChildProcess) {
    this.#process = child;
    this.pid = child.pid!;
    this.#channel = child.stdio[CHANNEL_FD] as Socket;
    this.#closed = new Promise((resolve) => {
      child.once("close", (code, signal) => {
        this.#exit = { code, signal };
        live.delete(child);
        resolve();
        this.#report(new Error(`the extractor exited (${this.exitDescription()})`));
      });
    });
    this.#channel.on("data", (chunk: Buffer) => this.#receive(chunk));
    // A write to a child that just died (EPIPE) or a reset: its exit is what reports the failure.
    this.#channel.on("error", () => undefined);
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (s: string) => {
      const room = STDERR_KEPT_CHARS - this.#stderrHead.length;
      if (room > 0) this.#stderrHead += s.slice(0, room);
      const recent = this.#stderrTail + s;
      // Before trimming: the words may straddle two chunks.
      if (HEAP_OOM.test(recent)) this.#outOfHeap = true;
      this.#stderrTail = recent.slice(-STDERR_KEPT_CHARS);
    });
  }

  /** Starts a child; throws when it cannot even be spawned (no such binary, no pid). */
  static spawn(options: ChildOptions): ExtractorChild {
    const root = packageRoot(options.entry);
    const child = spawn(process.execPath, childArguments(options, root), {
      cwd: "/",
      env: CHILD_ENV,
      stdio: ["ignore", "ignore", "pipe", "pipe"],
    });
    if (child.pid === undefined) {
      // spawn reports the reason asynchronously; the 'error' must still be handled.
      child.on("error", () => undefined);
      throw new Error(`the extractor could not be started (${process.execPath})`);
    }
    killAllOnExit();
    live.add(child);
    child.on("error", () => undefined);
    return new ExtractorChild(child);
  }

  /** Where frames go (one listener: the host's current phase). */
  set onFrame(listener: (frame: Frame) => void) {
    this.#onFrame = listener;
  }

  /** Called once, when the child dies or breaks the protocol (it is then being killed). */
  set onFailure(listener: (err: Error) => void) {
    this.#onFailure = listener;
  }

  /** The largest payload the next frames may carry (a reply's text while a job runs, else nothing). */
  set maxPayloadBytes(bytes: number) {
    this.#decoder.maxPayloadBytes = bytes;
  }

  get alive(): boolean {
    return this.#exit === undefined;
  }

  /** Whether V8 ran out of heap, as its last words on stderr say. */
  get outOfHeap(): boolean {
    return this.#outOfHeap;
  }

  residentBytes(): number | undefined {
    return this.alive ? residentBytes(this.pid) : undefined;
  }

  exitDescription(): string {
    if (this.#exit === undefined) return "running";
    const { code, signal } = this.#exit;
    const how = signal === null ? `code ${code}` : `signal ${signal}`;
    const said = this.#stderrHead.length < STDERR_KEPT_CHARS ? this.#stderrHead : `${this.#stderrHead}\n${this.#stderrTail}`;
    return said === "" ? how : `${how}: ${lastWords(said)}`;
  }

  send(chunks: Uint8Array[]): void {
    for (const chunk of chunks) this.#channel.write(chunk);
  }

  /** Holds the daemon's event loop while the child works; an idle child must not keep the daemon alive. */
  ref(): void {
    this.#process.ref();
    this.#channel.ref();
  }

  unref(): void {
    this.#process.unref();
    this.#channel.unref();
    (this.#process.stderr as Socket | null)?.unref();
  }

  /** SIGKILL (all its memory goes back to the system at once), resolved once it is reaped or after `waitMs`. */
  async kill(waitMs = 5_000): Promise<void> {
    this.#killed = true;
    if (this.#exit === undefined) this.#process.kill("SIGKILL");
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
  }

  #receive(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (err) {
      this.#fail(new Error(`the extractor broke the protocol: ${(err as Error).message}`));
      return;
    }
    for (const frame of frames) {
      if (this.#failed || this.#killed) return;
      this.#onFrame(frame);
    }
  }

  #fail(err: Error): void {
    this.#process.kill("SIGKILL");
    this.#report(err);
  }

  #report(err: Error): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#onFailure(err);
  }

  /** For the host: a message it cannot accept (wrong type, wrong id) ends the child like a broken frame. */
  fail(err: Error): void {
    this.#fail(err);
  }
}
