/**
 * Entry of the extraction child process (started by ExtractionHost, child.ts: empty environment, Node's permission
 * model, its own heap limit). It loads the parsers first and says `ready`, so their memory is not charged to the
 * first document; then one job at a time from the daemon's socket, a reply for each; and when the daemon finds it
 * big after a job, a full collection on request (`collect`), after which what it still holds is what the next
 * document would start from.
 * Console output is collected as the current job's warnings: PDF.js reports recovered problems with console.log.
 */
import { writeFileSync } from "node:fs";
import { Socket } from "node:net";
import { WarningList } from "./extracted.js";
import { reply, type ExtractionRequest } from "./extract.js";
import { FrameDecoder } from "./frames.js";
import { CHANNEL_FD, parseDaemonFrame, replyFrame, signalFrame, type DaemonMessage } from "./protocol.js";

// Under the unit's MemoryMax the kernel's OOM killer should pick this process, never the daemon.
try {
  writeFileSync("/proc/self/oom_score_adj", "1000");
} catch {
  // Not Linux, or not allowed: the daemon's memory ceiling on this process still applies.
}

let current: WarningList | undefined;

function capture(...args: unknown[]): void {
  const line = args.map((a) => (typeof a === "string" ? a : a instanceof Error ? a.message : String(a))).join(" ");
  current?.add(line.replace(/^Warning: /, ""));
}
for (const method of ["log", "info", "warn", "error", "debug", "trace"] as const) console[method] = capture;

const channel = new Socket({ fd: CHANNEL_FD, readable: true, writable: true });
// The daemon closed the channel or is gone: nothing more will come, and no one would read an answer.
const leave = (): never => process.exit(0);
channel.on("end", leave);
channel.on("close", leave);
channel.on("error", leave);

function send(chunks: Uint8Array[]): void {
  for (const chunk of chunks) channel.write(chunk);
}

// PDF.js's own worker code registers itself on globalThis, so PDF.js will not import it again on the first document.
// (A variable specifier: the module has no type declarations, and none are needed.)
const pdfWorkerModule = "pdfjs-dist/legacy/build/pdf.worker.mjs";
await Promise.all([
  import("pdfjs-dist/legacy/build/pdf.mjs"),
  import(pdfWorkerModule),
  import("mammoth"),
  import("html-to-text"),
]);

// --expose-gc is given by the daemon. A full collection costs tens of milliseconds with PDF.js loaded: only on request.
const collect = (globalThis as { gc?: () => void }).gc ?? ((): void => undefined);

async function run(request: ExtractionRequest): Promise<void> {
  const warnings = (current = new WarningList());
  const answer = await reply({ ...request, verbosity: 1 });
  current = undefined;
  if (answer.ok) answer.result.warnings.push(...warnings.toArray());
  send(replyFrame(answer));
}

function handle(message: DaemonMessage): void {
  if (message.type === "job") {
    void run(message.request);
  } else {
    collect();
    send(signalFrame("collected"));
  }
}

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
// What the parsers left behind while loading is not the first document's.
collect();
send(signalFrame("ready"));
