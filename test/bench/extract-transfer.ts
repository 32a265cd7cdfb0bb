// How a document reaches the extraction child and its text comes back: Node's IPC with `serialization: "advanced"`
// against the length-prefixed frames on a socket pair that the text processor uses (frames.ts). For a document of
// --mib MiB (32: maxBufferedBytes' default) sent to a child and the same amount sent back as text, --runs times: the
// time of a round trip, and how far each side's RSS rose above its level before the first (the peak over all runs,
// sampled every 2 ms from /proc). Each way runs in a fresh process, so neither reuses memory the other freed. Prints
// figures only, asserts nothing.
//   npm run build && npx tsx test/bench/extract-transfer.ts [--mib 32] [--runs 5]
import { fork, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { encodeFrame, FrameDecoder } from "../../src/processors/builtin/text/frames.js";

const MiB = 1024 * 1024;
const { values } = parseArgs({
  options: { mib: { type: "string", default: "32" }, runs: { type: "string", default: "5" }, mode: { type: "string" } },
});
const size = Number(values.mib) * MiB;
const runs = Number(values.runs);
const framesJs = new URL("../../dist/processors/builtin/text/frames.js", import.meta.url);
if (!existsSync(fileURLToPath(framesJs))) {
  process.stderr.write("extract-transfer: dist/ is missing; run `npm run build` first\n");
  process.exit(1);
}

// The children answer each document with a text of the same size, as an extraction of a text-only file would.
const IPC_CHILD = `
process.on("message", (m) => {
  if (m === "bye") process.exit(0);
  process.send({ text: new Uint8Array(m.data.byteLength).fill(65) });
});
`;
const FRAMES_CHILD = `
import { Socket } from "node:net";
import { encodeFrame, FrameDecoder } from ${JSON.stringify(framesJs.href)};
const channel = new Socket({ fd: 3, readable: true, writable: true });
channel.on("end", () => process.exit(0));
const decoder = new FrameDecoder({ maxPayloadBytes: 0xffffffff });
channel.on("data", (chunk) => {
  for (const frame of decoder.push(chunk)) {
    for (const c of encodeFrame({ type: "reply" }, new Uint8Array(frame.payload.length).fill(65))) channel.write(c);
  }
});
`;

function rss(pid: number): number {
  const m = /^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
  return Number(m?.[1] ?? 0) * 1024;
}

interface Figures {
  ms: number[];
  parentMiB: number;
  childMiB: number;
}

/** Runs `exchange` --runs times, sampling both processes' RSS above their level before the first. */
async function measure(child: ChildProcess, exchange: () => Promise<void>): Promise<Figures> {
  const base = [rss(process.pid), rss(child.pid!)];
  const peak = [...base];
  const timer = setInterval(() => {
    peak[0] = Math.max(peak[0]!, rss(process.pid));
    peak[1] = Math.max(peak[1]!, rss(child.pid!));
  }, 2);
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await exchange();
    ms.push(performance.now() - started);
  }
  clearInterval(timer);
  return { ms, parentMiB: (peak[0]! - base[0]!) / MiB, childMiB: (peak[1]! - base[1]!) / MiB };
}

async function ipc(dir: string): Promise<Figures> {
  const script = join(dir, "ipc-child.mjs");
  writeFileSync(script, IPC_CHILD);
  const child = fork(script, { serialization: "advanced", execArgv: [], stdio: ["ignore", "ignore", "inherit", "ipc"] });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const data = new Uint8Array(size).fill(7);
  const figures = await measure(child, async () => {
    await new Promise((resolve) => {
      child.once("message", resolve);
      child.send({ data });
    });
  });
  child.send("bye");
  return figures;
}

async function frames(dir: string): Promise<Figures> {
  const script = join(dir, "frames-child.mjs");
  writeFileSync(script, FRAMES_CHILD);
  const child = spawn(process.execPath, [script], { stdio: ["ignore", "ignore", "inherit", "pipe"] });
  const channel = child.stdio[3] as Socket;
  await new Promise((resolve) => setTimeout(resolve, 500));
  const data = new Uint8Array(size).fill(7);
  const figures = await measure(child, async () => {
    const decoder = new FrameDecoder({ maxPayloadBytes: size });
    await new Promise<void>((resolve) => {
      const onData = (chunk: Buffer): void => {
        if (decoder.push(chunk).length > 0) {
          channel.off("data", onData);
          resolve();
        }
      };
      channel.on("data", onData);
      for (const c of encodeFrame({ type: "job" }, data)) channel.write(c);
    });
  });
  channel.end();
  return figures;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const MODES = { ipc: ["IPC, serialization advanced", ipc], frames: ["frames on a socket pair", frames] } as const;

if (values.mode === undefined) {
  process.stdout.write(`${values.mib} MiB document to the child and ${values.mib} MiB of text back, ${runs} times\n`);
  for (const mode of Object.keys(MODES)) {
    const self = fileURLToPath(import.meta.url);
    const args = [...process.execArgv, self, "--mode", mode, "--mib", values.mib, "--runs", values.runs];
    await new Promise((resolve) => spawn(process.execPath, args, { stdio: "inherit" }).once("exit", resolve));
  }
} else {
  const [name, run]: readonly [string, (dir: string) => Promise<Figures>] = MODES[values.mode as keyof typeof MODES];
  const dir = mkdtempSync(join(tmpdir(), "extract-transfer-"));
  try {
    const f = await run(dir);
    process.stdout.write(
      `${name.padEnd(30)} round trip ms: median ${median(f.ms).toFixed(0)}, first ${f.ms[0]!.toFixed(0)}  ` +
        `peak RSS above start: parent +${f.parentMiB.toFixed(0)} MiB, child +${f.childMiB.toFixed(0)} MiB\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
