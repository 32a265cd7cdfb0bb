/**
 * A stand-in for the extraction child that does what a broken or hostile one could: it speaks the real protocol (the
 * transpiled frames.js, protocol.js and extract.js next to it), extracts for real by default, and misbehaves when the
 * HTML document it is sent is one of the commands below. It runs with the spawn settings of the real one, so it also
 * reports what its sandbox lets it do. Written as JavaScript into the transpiled directory by installMisbehavingChild.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const SOURCE = String.raw`
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { Socket } from "node:net";
import { reply } from "./extract.js";
import { encodeFrame, FrameDecoder } from "./frames.js";
import { CHANNEL_FD, parseDaemonFrame, replyFrame, signalFrame } from "./protocol.js";

const channel = new Socket({ fd: CHANNEL_FD, readable: true, writable: true });
const leave = () => process.exit(0);
channel.on("end", leave);
channel.on("error", leave);
const send = (chunks) => { for (const c of chunks) channel.write(c); };
const kept = [];
const attempt = (f) => { try { return String(f()); } catch (e) { return "denied:" + (e.code ?? e.name); } };
const answer = (id, text, warnings = []) => send(replyFrame({ id, ok: true, result: { text, warnings } }));

async function handle(job) {
  const command = Buffer.from(job.data).toString("utf8").trim();
  switch (command) {
    case "pid": return answer(job.id, String(process.pid));
    case "exit": process.exit(3);
    case "sleep": return setTimeout(() => answer(job.id, "slept"), 600);
    case "chatty":
      answer(job.id, "chatty");
      return send(signalFrame("collected"));
    case "spin": for (;;); // busy for good: it will never see its channel close
    case "oversized": return send(encodeFrame({ type: "reply", id: job.id, ok: true, warnings: [] }, Buffer.alloc(job.limits.maxTextBytes + 1)));
    case "huge-declared": {
      const prefix = Buffer.alloc(8);
      prefix.writeUInt32LE(2, 0);
      prefix.writeUInt32LE(0xffffffff, 4);
      channel.write(prefix);
      channel.write("{}");
      return;
    }
    case "not-json": {
      const prefix = Buffer.alloc(8);
      prefix.writeUInt32LE(5, 0);
      channel.write(prefix);
      channel.write("hello");
      return;
    }
    case "wrong-id": return answer(job.id + 1, "x");
    case "bad-code": return send(encodeFrame({ type: "reply", id: job.id, ok: false, permanent: true, code: "../x", message: "m" }));
    case "heap": {
      const objects = [];
      for (;;) objects.push({ n: objects.length, s: "x".repeat(64) + objects.length });
    }
    case "keep":
      // Leftovers after the job: a hundred resident MiB the next document would otherwise start with.
      for (let i = 0; i < 100; i++) kept.push(Buffer.alloc(1024 * 1024, 1));
      return answer(job.id, "kept");
    case "grow-idle":
      answer(job.id, "growing");
      setInterval(() => { for (let i = 0; i < 16; i++) kept.push(Buffer.alloc(1024 * 1024, 1)); }, 20);
      return;
    case "sandbox":
      answer(job.id, "sandbox", [
        "env:" + JSON.stringify(process.env),
        "cwd:" + process.cwd(),
        "read /etc/hostname:" + attempt(() => readFileSync("/etc/hostname", "utf8").length),
        "write /tmp:" + attempt(() => writeFileSync("/tmp/doc-processor-extractor-probe", "x")),
        "eval:" + attempt(() => new Function("return 1")()),
        "spawn:" + attempt(() => execFileSync("true")),
      ]);
    default:
      return send(replyFrame(await reply(job)));
  }
}

const decoder = new FrameDecoder({ maxPayloadBytes: 0xffffffff });
channel.on("data", (chunk) => {
  for (const frame of decoder.push(chunk)) {
    const message = parseDaemonFrame(frame);
    if (message.type === "collect") {
      globalThis.gc?.();
      send(signalFrame("collected"));
    } else {
      void handle(message.request);
    }
  }
});
send(signalFrame("ready"));
`;

/** Writes the stand-in next to the transpiled extractor; returns its URL. */
export function installMisbehavingChild(dir: string): URL {
  const path = join(dir, "builtin/text/misbehaving-child.js");
  writeFileSync(path, SOURCE);
  return pathToFileURL(path);
}
