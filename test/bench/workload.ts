// What every bench script shares: the stand-in with the role's requests counted, documents to upload (small ones in
// one PutObject, large ones streamed up in 8 MiB multipart parts, never held in memory whole), a clean queue before
// each contender, and runConsumer: one queue consumer as a child process, timed until each document has its
// "document" line, with its CPU, peak RSS and requests read from outside, over the whole run and after a warm-up.
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { DeleteMessageBatchCommand, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { Upload } from "@aws-sdk/lib-storage";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { Session } from "node:inspector/promises";
import { Readable } from "node:stream";
import { startStandIn, type StandIn, type StandInOptions } from "../local/stand-in.js";
import type { Contender, LogLine } from "./contender.js";
import { pin, taskset, treeCpuMs, treePeakRssBytes } from "./proc.js";
import type { ContenderResult } from "./report.js";
import { steadyFigures, warmupDocuments, type Sample, type SteadyFigures } from "./steady.js";
import { readUnitLimits } from "../reliability/lib/unit.js";

const MiB = 1024 * 1024;
/** Objects above this go up in multipart parts (the stand-in takes at most 11 MiB per request). */
const SINGLE_PUT_MAX = 8 * MiB;

export const say = (text: string): void => void process.stderr.write(`${text}\n`);

/** Every request the gateway authenticated as a role session, and every authorization check of one (with its action). */
export interface Measured {
  requests: { at: number }[];
  checks: { at: number; action: string }[];
}

export interface MeasuredStandIn {
  standIn: StandIn;
  measured: Measured;
  /** Whether this process (the stand-in) was pinned to core 1, away from the contenders on core 0. */
  standInPinned: boolean;
  /** Where to write a CPU profile of the stand-in over each contender's steady window (bench --profile-stand-in). */
  profileDir?: string;
}

/** A CPU profile of this process (the stand-in), started at the warm-up's end; stop() writes it to `path`. */
async function startProfile(path: string): Promise<{ stop(): Promise<void> }> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  return {
    async stop() {
      const { profile } = await session.post("Profiler.stop");
      session.disconnect();
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, JSON.stringify(profile));
    },
  };
}

/** Starts the stand-in in this process (on core 1 when there are two), counting the role's requests with their time. */
export async function startMeasuredStandIn(options: StandInOptions = {}): Promise<MeasuredStandIn> {
  const standInPinned = cpus().length >= 2 && pin(process.pid, "1");
  const measured: Measured = { requests: [], checks: [] };
  const standIn = await startStandIn({
    ...options,
    logger: (entry) => {
      options.logger?.(entry);
      if (entry.principal.includes(":assumed-role/")) measured.checks.push({ at: performance.now(), action: entry.action });
    },
  });
  // One entry per signed request (the stand-in's own lookup wrapper counts keys, not time): role sessions only.
  const lookup = standIn.identities.lookup.bind(standIn.identities);
  standIn.identities.lookup = (accessKeyId: string) => {
    const record = lookup(accessKeyId);
    if (record?.principal.kind === "assumed-role") measured.requests.push({ at: performance.now() });
    return record;
  };
  return { standIn, measured, standInPinned };
}

export interface BenchDoc {
  key: string;
  bytes: number;
  /** A fresh body each call: a Buffer for small documents, a generated stream for large ones. */
  body: () => Buffer | Readable;
}

/** `count` documents of `bytes` each under `prefix`, with text content (so sniffing and text statistics have work). */
export function makeDocuments(count: number, bytes: number, prefix = "bench/doc-"): BenchDoc[] {
  return Array.from({ length: count }, (_, i) => {
    const line = `document ${i} of the bench: the quick brown fox jumps over the lazy dog. `;
    const key = `${prefix}${String(i).padStart(5, "0")}.txt`;
    if (bytes <= SINGLE_PUT_MAX) return { key, bytes, body: () => Buffer.alloc(bytes, line) };
    return { key, bytes, body: () => Readable.from(generate(bytes, Buffer.alloc(MiB, line))) };
  });
}

function* generate(bytes: number, chunk: Buffer): Generator<Buffer> {
  for (let left = bytes; left > 0; left -= chunk.length) yield left >= chunk.length ? chunk : chunk.subarray(0, left);
}

/** Uploads as the uploader user (so the stand-in sends the S3 events), `parallel` at a time. */
export async function upload(standIn: StandIn, docs: readonly BenchDoc[], parallel = 16): Promise<void> {
  const s3 = standIn.clients.uploader.s3;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < docs.length) {
      const doc = docs[next++]!;
      await putDocument(s3, standIn.config.sourceBucket, doc);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, docs.length) }, worker));
}

async function putDocument(s3: S3Client, bucket: string, doc: BenchDoc): Promise<void> {
  const body = doc.body();
  if (Buffer.isBuffer(body)) {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: doc.key, Body: body }));
    return;
  }
  await new Upload({ client: s3, params: { Bucket: bucket, Key: doc.key, Body: body }, partSize: SINGLE_PUT_MAX, queueSize: 2 }).done();
}

/** Empties the queue as admin (the TestEvent, leftovers of the previous contender) so each starts from the same state. */
export async function drainQueue(standIn: StandIn): Promise<number> {
  const sqs = standIn.clients.admin.sqs;
  let drained = 0;
  for (let empty = 0; empty < 2; ) {
    const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: standIn.queue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    const messages = out.Messages ?? [];
    if (messages.length === 0) {
      empty++;
      continue;
    }
    drained += messages.length;
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: standIn.queue.url,
        Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
      }),
    );
  }
  return drained;
}

/** Keys (decoded once, as S3 encodes them) of the S3 records in a notification body; [] for anything else. */
export function eventKeys(body: string | undefined): string[] {
  try {
    const parsed = JSON.parse(body ?? "") as { Records?: { s3?: { object?: { key?: string } } }[] };
    return (parsed.Records ?? []).flatMap((r) => {
      const key = r.s3?.object?.key;
      return typeof key === "string" ? [decodeURIComponent(key.replace(/\+/g, " "))] : [];
    });
  } catch {
    return [];
  }
}

/** Empties the queue before a contender. (A poll a stopped contender left open no longer hides messages: the gateway
 * makes whatever such a poll takes visible again at once.) */
export async function cleanQueue(standIn: StandIn): Promise<void> {
  const drained = await drainQueue(standIn);
  if (drained > 0) say(`  (${drained} messages left by the previous contender drained)`);
}

export interface RunOptions {
  /** Give up after this long from READY (default 60 s + 50 ms per document). */
  timeoutMs?: number;
  /** Puts the documents' events on the queue instead of uploading them (objects already in the bucket). */
  enqueue?: () => Promise<void>;
  /** Fail at once, with its reason, when a document ends other than "done" (default: counted as a failure). */
  failOnOtherOutcome?: boolean;
  /** Upload in parallel (default 16). */
  uploadParallel?: number;
  /** Upload after READY instead of before the start (the queue fills while the consumer runs). */
  uploadAfterReady?: boolean;
}

export type ConsumerRun = ContenderResult & { bytesOutPerDoc: number };

/** Runs one queue consumer over `docs` (uploaded here) until each has a finished "document" line; then stops it. */
export async function runConsumer(
  name: string,
  { standIn, measured, profileDir }: MeasuredStandIn,
  docs: readonly BenchDoc[],
  start: (onLog: (line: LogLine, at: number) => void) => Contender,
  options: RunOptions = {},
): Promise<ConsumerRun> {
  await cleanQueue(standIn);
  const enqueue = options.enqueue ?? (() => upload(standIn, docs, options.uploadParallel));
  if (!options.uploadAfterReady) await enqueue();
  const sizes = new Map(docs.map((d) => [d.key, d.bytes]));
  const finished = new Map<string, number>();
  let documentLines = 0;
  let bytesIn = 0;
  let bytesOut = 0;
  let failures = 0;
  let lastAt = 0;
  // Steady state: the clock and the contender's CPU when the warm-up's last document finished (none on short runs).
  const warmup = warmupDocuments(sizes.size);
  let atWarmup: Sample | undefined;
  // The stand-in runs in this process: its CPU over the steady window says whether it, not the contender, set the pace.
  let standInCpuAtWarmup: NodeJS.CpuUsage | undefined;
  let profile: Promise<{ stop(): Promise<void> }> | undefined;
  let settle: (error?: Error) => void = () => {};
  const done = new Promise<void>((ok, fail) => (settle = (error) => (error ? fail(error) : ok())));
  // A failure before the race below listens must not become an unhandled rejection.
  done.catch(() => undefined);
  const contender = start((line, at) => {
    if (line.msg !== "document") return;
    documentLines++;
    const key = String(line["key"]);
    if (line["outcome"] !== "done") {
      failures++;
      if (options.failOnOtherOutcome) {
        const { outcome, code, reason } = line;
        settle(new Error(`${name}: ${key} did not finish: ${JSON.stringify({ outcome, code, reason })}`));
      }
      return;
    }
    const size = sizes.get(key);
    if (size === undefined || finished.has(key)) return;
    finished.set(key, at);
    bytesIn += size;
    bytesOut += Number(line["bytesOut"] ?? 0);
    lastAt = at;
    // Read here, as the line arrives, from the same /proc source as the whole-run figure (contender is set by now).
    if (finished.size === warmup) {
      atWarmup = { at, cpuMs: treeCpuMs(contender.pid) };
      standInCpuAtWarmup = process.cpuUsage();
      if (profileDir !== undefined) profile = startProfile(join(profileDir, `stand-in-${name.replace(/[^A-Za-z0-9]+/g, "-")}.cpuprofile`));
    }
    if (finished.size === sizes.size) settle();
  });
  const since = contender.startedAt;
  const timeoutMs = options.timeoutMs ?? 60_000 + docs.length * 50;
  try {
    const ready = await contender.waitFor((l) => typeof l.msg === "string" && l.msg.startsWith("ready"), 60_000);
    const cpuAtReady = treeCpuMs(contender.pid);
    if (options.uploadAfterReady) await enqueue();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      done,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${name}: ${finished.size} of ${sizes.size} documents in ${timeoutMs} ms`)), timeoutMs);
      }),
      contender.exited.then(({ code, signal }) => {
        throw new Error(`${name} exited (${code ?? signal}) after ${finished.size} documents; stderr:\n${contender.stderr()}`);
      }),
    ]).finally(() => clearTimeout(timer));
    // With the text processor, the daemon's extraction process (still alive, idle) is part of its work and memory.
    const cpuAtEnd = treeCpuMs(contender.pid);
    const standInCpu = standInCpuAtWarmup === undefined ? undefined : process.cpuUsage(standInCpuAtWarmup);
    await (await profile)?.stop();
    const rss = treePeakRssBytes(contender.pid);
    const exit = await contender.stop();
    const exitedAt = performance.now();
    const firstReceive = measured.checks.find((c) => c.at >= since && c.action === "sqs:ReceiveMessage")?.at ?? ready.at;
    const requests = measured.requests.filter((r) => r.at >= firstReceive && r.at <= exitedAt).length;
    const byAction: Record<string, number> = {};
    for (const c of measured.checks) {
      if (c.at >= firstReceive && c.at <= exitedAt) byAction[c.action] = (byAction[c.action] ?? 0) + 1;
    }
    const seconds = (lastAt - firstReceive) / 1000;
    return {
      name,
      documents: finished.size,
      duplicates: documentLines - finished.size - failures,
      failures,
      seconds,
      docsPerSecond: finished.size / seconds,
      mbPerSecond: bytesIn / 1e6 / seconds,
      cpuMsPerDoc: cpuAtReady !== undefined && cpuAtEnd !== undefined ? (cpuAtEnd - cpuAtReady) / finished.size : null,
      cpuMsTotal: cpuAtEnd ?? null,
      requestsPerDoc: requests / finished.size,
      requestsByAction: byAction,
      peakRssMb: rss !== undefined ? rss / MiB : null,
      readyMs: ready.at - contender.startedAt,
      pinned: contender.pinned,
      exit: exit.code ?? exit.signal,
      steady: withStandInBusy(
        warmup !== null && atWarmup !== undefined
          ? steadyFigures(finished.size, warmup, atWarmup, { at: lastAt, cpuMs: cpuAtEnd })
          : null,
        standInCpu,
      ),
      bytesOutPerDoc: bytesOut / finished.size,
    };
  } catch (err) {
    await contender.stop(5_000);
    throw err;
  }
}

/** The stand-in's share of a core over the steady window (its CPU over the window's wall time). */
function withStandInBusy(steady: SteadyFigures | null, cpu: NodeJS.CpuUsage | undefined): SteadyFigures | null {
  if (steady === null || cpu === undefined) return steady;
  const ms = (cpu.user + cpu.system) / 1000;
  return { ...steady, standInBusy: ms / (steady.seconds * 1000), standInCpuMsPerDoc: ms / steady.documents };
}

/**
 * The environment of a contender: PATH, a scratch HOME, the stand-in's IMDS and endpoint variables (no keys), and
 * the unit's Environment= (its allocator setting), so every contender runs with what production runs with.
 */
export function contenderEnv(standIn: StandIn): Record<string, string> {
  return {
    PATH: process.env["PATH"] ?? "/usr/bin:/bin",
    HOME: mkdtempSync(join(tmpdir(), "dp-bench-home-")),
    ...readUnitLimits().environment,
    ...standIn.env,
  };
}

/** Writes a daemon config file for the stand-in with `settings` on top (processor, concurrency…); returns its path. */
export function daemonConfigFile(standIn: StandIn, settings: Record<string, unknown>): string {
  const path = join(mkdtempSync(join(tmpdir(), "dp-bench-")), "config.json");
  writeFileSync(path, JSON.stringify({ ...standIn.config, drainTimeoutSeconds: 10, logLevel: "info", ...settings }));
  return path;
}

/**
 * The Node flags of the systemd unit's ExecStart (heap and young-generation limits): every contender runs with them,
 * so the daemon is measured as it ships and the baselines get the same t2.micro-like limits.
 */
export function unitNodeFlags(): string[] {
  return readUnitLimits().nodeFlags;
}

/** Saves a bench's results as JSON, after the date, the mode and the machine they come from; returns the path. */
export function saveResults(path: string, mode: "quick" | "full", fields: Record<string, unknown>, machine: Record<string, unknown> = {}): string {
  const out = resolve(path);
  mkdirSync(dirname(out), { recursive: true });
  const about = { cpus: cpus().length, model: cpus()[0]?.model ?? null, node: process.version, pinned: taskset() !== null, ...machine };
  writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), mode, machine: about, ...fields }, null, 2)}\n`);
  return out;
}
