/**
 * The body shared by the extraction child processes (extract-child.ts, ../ocr/ocr-child.ts), which child.ts starts:
 * empty environment, Node's permission model, no eval, its own heap limit. It asks the kernel's OOM killer to pick
 * this process first, collects console output as the current job's warnings (PDF.js reports recovered problems with
 * console.log), loads the engine before saying `ready` (so its memory is not charged to the first document), then
 * serves one job at a time from the daemon's socket, a reply for each, and a full collection on request
 * (`collect`), after which what it still holds is what the next document would start from.
 */
import { writeFileSync } from "node:fs";
import { Socket } from "node:net";
import { WarningList } from "./extracted.js";
import type { ExtractionRequest, reply } from "./extract.js";
import { FrameDecoder } from "./frames.js";
import { CHANNEL_FD, parseDaemonFrame, replyFrame, signalFrame, type DaemonMessage } from "./protocol.js";

export type Answer = Awaited<ReturnType<typeof reply>>;

/** What a child does with one job. */
export type Serve = (request: ExtractionRequest) => Promise<Answer>;

export interface ChildChannel {
  /** Sends a signal frame to the daemon (e.g. `page` before each OCR page, for its per-page time limit). */
  signal(name: Parameters<typeof signalFrame>[0]): void;
}

/** Runs the child: `load` brings in the engine and returns how a job is served. Never returns while the daemon talks. */
export async function serveChild(load: (channel: ChildChannel) => Promise<Serve>): Promise<void> {
  // Under the unit's MemoryMax the kernel's OOM killer should pick this process, never the daemon.
  try {
    writeFileSync("/proc/self/oom_score_adj", "1000");
  } catch {
    // Not Linux, or not allowed: the daemon's memory ceiling on this process still applies.
  }

  let current: WarningList | undefined;
  const capture = (...args: unknown[]): void => {
    const line = args.map((a) => (typeof a === "string" ? a : a instanceof Error ? a.message : String(a))).join(" ");
    current?.add(line.replace(/^Warning: /, ""));
  };
  for (const method of ["log", "info", "warn", "error", "debug", "trace"] as const) console[method] = capture;

  const channel = new Socket({ fd: CHANNEL_FD, readable: true, writable: true });
  // The daemon closed the channel or is gone: nothing more will come, and no one would read an answer.
  const leave = (): never => process.exit(0);
  channel.on("end", leave);
  channel.on("close", leave);
  channel.on("error", leave);

  const send = (chunks: Uint8Array[]): void => {
    for (const chunk of chunks) channel.write(chunk);
  };

  const serve = await load({ signal: (name) => send(signalFrame(name)) });

  // --expose-gc is given by the daemon. A full collection costs tens of milliseconds with PDF.js loaded: only on request.
  const collect = (globalThis as { gc?: () => void }).gc ?? ((): void => undefined);

  const run = async (request: ExtractionRequest): Promise<void> => {
    const warnings = (current = new WarningList());
    const answer = await serve(request);
    current = undefined;
    if (answer.ok) answer.result.warnings.push(...warnings.toArray());
    send(replyFrame(answer));
  };

  const handle = (message: DaemonMessage): void => {
    if (message.type === "job") {
      void run(message.request);
    } else {
      collect();
      send(signalFrame("collected"));
    }
  };

  // The daemon sends one job at a time and waits for its reply; the document may be as large as maxBufferedBytes.
  const decoder = new FrameDecoder({ maxPayloadBytes: 0xffff_ffff });
  channel.on("data", (chunk: Buffer) => {
    let frames;
    try {
      frames = decoder.push(chunk);
    } catch {
      process.exit(2);
    }
    for (const frame of frames) handle(parseDaemonFrame(frame));
  });
  // What the engine left behind while loading is not the first document's.
  collect();
  send(signalFrame("ready"));
}
