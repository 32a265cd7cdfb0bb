/**
 * Entry of the OCR child process: the text extractor's process (text/child.ts starts it: empty environment, Node's
 * permission model, no eval, its own heap limit and memory ceiling) with Tesseract and PDF.js's renderer loaded
 * instead of the text parsers. Same protocol (text/protocol.ts): `ready` once the engine is compiled, one job at a
 * time, a `page` message before each page is recognised (the daemon's per-page time limit), `collect` on request.
 * Console output is collected as the job's warnings, as in the text extractor.
 */
import { writeFileSync } from "node:fs";
import { Socket } from "node:net";
import { WarningList } from "../text/extracted.js";
import { reply, type ExtractionRequest } from "../text/extract.js";
import { FrameDecoder } from "../text/frames.js";
import { CHANNEL_FD, parseDaemonFrame, replyFrame, signalFrame, type DaemonMessage } from "../text/protocol.js";
import { OcrEngine } from "./engine.js";
import { runOcr } from "./recognize.js";

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
const leave = (): never => process.exit(0);
channel.on("end", leave);
channel.on("close", leave);
channel.on("error", leave);

function send(chunks: Uint8Array[]): void {
  for (const chunk of chunks) channel.write(chunk);
}

const pdfWorkerModule = "pdfjs-dist/legacy/build/pdf.worker.mjs";
const [engine] = await Promise.all([OcrEngine.load(), import("pdfjs-dist/legacy/build/pdf.mjs"), import(pdfWorkerModule)]);

const collect = (globalThis as { gc?: () => void }).gc ?? ((): void => undefined);

async function run(request: ExtractionRequest): Promise<void> {
  const warnings = (current = new WarningList());
  const answer = await reply({ ...request, verbosity: 1 }, (job) => runOcr(job, engine, () => send(signalFrame("page"))));
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
collect();
send(signalFrame("ready"));
