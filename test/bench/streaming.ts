// `npx tsx test/bench/streaming.ts [--quick] [--out FILE]` (after `npm run build`): the large-object workload of
// issue 5, on the local stand-in (this process, core 1 when taskset exists), each contender a child pinned to core 0
// with the Node flags of the systemd unit (heap and young-generation limits, read from its ExecStart):
//   1. throughput: N documents of S MiB (full 8 x 256 MiB, --quick 2 x 64 MiB), processed by the daemon
//      (`node dist/cli.js run`, processor `metadata`), by the daemon with the raw loop's job (sha256-processor.mjs: the
//      framework without the text statistics) and then by the raw SDK loop (peer-worker.ts raw), same data:
//      MB/s and daemon/raw, CPU ms per MiB, role requests per document, peak RSS (VmHWM);
//   2. peak RSS against object size: one object per size (full 1, 16, 256, 1024 MiB; --quick 1, 16, 64 MiB), a fresh
//      daemon and a fresh raw loop per size, so each VmHWM belongs to that size; RSS per size and the spread.
// Each set of objects is uploaded once: the S3 notifications it caused are taken off the queue and sent again for each
// contender (re-uploading gigabytes through the stand-in would take most of the run). Every figure is measured in this
// run: MB/s from the first ReceiveMessage to the last finished document, CPU from /proc (READY to the last document),
// role requests from the first receive to exit. Targets (issue 5) are reported, not asserted: exit 0 when every run
// completed, 1 with the failing step named otherwise. Saves JSON (default bench-results/streaming.json).
// Options: --quick, --out FILE, --docs N, --doc-mib N, --sizes 1,16,256,1024 (MiB), --concurrency N, --flat-mb N,
// --max-in-flight-mib N (the daemon's maxInFlightBytes), --node-flag F (repeatable: extra flag for both contenders).
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import { existsSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { configSchema } from "../../src/config/schema.js";
import { DAEMON_CLI } from "../local/daemon-process.js";
import type { StandIn } from "../local/stand-in.js";
import { startContender } from "./contender.js";
import { DAEMON_SHA256, fmt, round, table } from "./report.js";
import { taskset } from "./proc.js";
import {
  cleanQueue,
  contenderEnv,
  daemonConfigFile,
  eventKeys,
  makeDocuments,
  runConsumer,
  saveResults,
  say,
  startMeasuredStandIn,
  unitNodeFlags,
  upload,
  type BenchDoc,
  type MeasuredStandIn,
} from "./workload.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const PEER_WORKER = fileURLToPath(new URL("./peer-worker.ts", import.meta.url));
const SHA256_PROCESSOR = fileURLToPath(new URL("./sha256-processor.mjs", import.meta.url));

const MiB = 1024 * 1024;
const RSS_TARGET_MB = 96;
const RATIO_TARGET = 0.95;
/** The raw loop has no visibility heartbeat: a queue timeout above any run here keeps it free of redeliveries. */
const QUEUE_VISIBILITY_SECONDS = 1800;
/** Slowest rate the timeouts allow for (the stand-in streams far faster; this only bounds a stuck run). */
const SLOWEST_BYTES_PER_SECOND = 5e6;

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    out: { type: "string", default: join(REPO, "bench-results", "streaming.json") },
    docs: { type: "string" },
    "doc-mib": { type: "string" },
    sizes: { type: "string" },
    concurrency: { type: "string", default: "4" },
    "flat-mb": { type: "string", default: "8" },
    "max-in-flight-mib": { type: "string" },
    "node-flag": { type: "string", multiple: true, default: [] },
  },
});
const quick = values.quick;
const docCount = Number(values.docs ?? (quick ? 2 : 8));
const docMiB = Number(values["doc-mib"] ?? (quick ? 64 : 256));
const sweepMiB = (values.sizes ?? (quick ? "1,16,64" : "1,16,256,1024")).split(",").map(Number);
const concurrency = Number(values.concurrency);
const flatMb = Number(values["flat-mb"]);
const maxInFlightMiB = values["max-in-flight-mib"] === undefined ? undefined : Number(values["max-in-flight-mib"]);
/** The unit's Node flags (heap and young-generation limits) and any given with --node-flag, for both contenders. */
const nodeFlags = [...unitNodeFlags(), ...values["node-flag"]];
const wholeNumbers: [string, number][] = [
  ["docs", docCount],
  ["doc-mib", docMiB],
  ["concurrency", concurrency],
  ...sweepMiB.map((n): [string, number] => ["sizes", n]),
  ...(maxInFlightMiB === undefined ? [] : [["max-in-flight-mib", maxInFlightMiB] as [string, number]]),
];
for (const [name, n] of wholeNumbers) {
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`--${name} takes whole numbers >= 1\n`);
    process.exit(64);
  }
}
if (!(flatMb >= 0)) {
  process.stderr.write("--flat-mb takes a number >= 0\n");
  process.exit(64);
}
sweepMiB.sort((a, b) => a - b);

type Side = "daemon" | "raw";

/** What one contender did with one set of objects. */
interface Figures {
  contender: string;
  documents: number;
  objectMiB: number;
  /** First ReceiveMessage to the last finished document. */
  seconds: number;
  /** Bytes read / 10^6 / seconds. */
  mbPerSecond: number;
  /** CPU (utime+stime) from READY to the last document, per MiB read. */
  cpuMsPerMiB: number | null;
  /** Requests signed by the role from the first receive to exit, per document. */
  requestsPerDoc: number;
  requestsByAction: Record<string, number>;
  peakRssMb: number | null;
  readyMs: number;
  /** "document" lines beyond the first per key (redeliveries). */
  duplicates: number;
  bytesOutPerDoc: number;
  pinned: boolean;
}

interface Check {
  target: string;
  value: number | null;
  limit: number;
  met: boolean | null;
  missedBy: string;
}

interface SweepRow {
  objectMiB: number;
  daemon: Figures;
  raw: Figures;
}

/** A step of the bench that failed, with what it was doing. */
class StepError extends Error {}

const mib = (bytes: number): number => bytes / MiB;
const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** The daemon's effective limits for a config with `settings`, read from its own schema (defaults included). */
function daemonLimits(standIn: StandIn, settings: Record<string, unknown>): { maxObjectBytes: number; maxInFlightBytes: number } {
  const parsed = configSchema.parse({ ...standIn.config, ...settings });
  return { maxObjectBytes: parsed.maxObjectBytes, maxInFlightBytes: parsed.maxInFlightBytes };
}

/** Uploads `docs` (as the uploader, so the stand-in sends the events) and takes their notifications off the queue. */
async function uploadAndCapture(standIn: StandIn, docs: readonly BenchDoc[]): Promise<string[]> {
  await cleanQueue(standIn);
  const started = performance.now();
  await upload(standIn, docs);
  const uploadSeconds = (performance.now() - started) / 1000;
  say(`  uploaded ${docs.length} x ${mib(docs[0]?.bytes ?? 0)} MiB in ${uploadSeconds.toFixed(1)} s`);
  const sqs = standIn.clients.admin.sqs;
  const wanted = new Set(docs.map((d) => d.key));
  const events: string[] = [];
  const deadline = performance.now() + 60_000;
  while (wanted.size > 0) {
    if (performance.now() > deadline) throw new StepError(`no S3 notification for ${[...wanted].join(", ")} within 60 s of the upload`);
    const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: standIn.queue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    const messages = out.Messages ?? [];
    if (messages.length === 0) continue;
    for (const m of messages) {
      if (eventKeys(m.Body).some((k) => wanted.delete(k))) events.push(m.Body!);
    }
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: standIn.queue.url,
        Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
      }),
    );
  }
  return events;
}

async function sendEvents(standIn: StandIn, events: readonly string[]): Promise<void> {
  for (let i = 0; i < events.length; i += 10) {
    await standIn.clients.admin.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: standIn.queue.url,
        Entries: events.slice(i, i + 10).map((body, j) => ({ Id: String(j), MessageBody: body })),
      }),
    );
  }
}

/**
 * One contender over `docs`, whose objects are in the source bucket already: runConsumer with the captured events
 * sent again instead of an upload; a document ending any other way than "done" fails the run at once, with its reason.
 */
async function runQueued(
  bench: MeasuredStandIn,
  side: Side,
  docs: readonly BenchDoc[],
  events: readonly string[],
  configPath: string,
  outputBytes: number,
  name: string = side === "daemon" ? "daemon" : "raw SDK loop",
): Promise<Figures> {
  const { standIn } = bench;
  const what = `${name} on ${docs.length} x ${mib(docs[0]?.bytes ?? 0)} MiB`;
  const env = contenderEnv(standIn);
  const totalBytes = docs.reduce((n, d) => n + d.bytes, 0);
  try {
    const run = await runConsumer(
      name,
      bench,
      docs,
      (onLog) =>
        side === "daemon"
          ? startContender({ args: [DAEMON_CLI, "run", "--config", configPath], nodeFlags, env, onLog })
          : startContender({ args: [PEER_WORKER, "raw", rawJob(standIn, outputBytes)], nodeFlags: [...nodeFlags, "--import", "tsx"], env, onLog }),
      {
        enqueue: () => sendEvents(standIn, events),
        failOnOtherOutcome: true,
        timeoutMs: 120_000 + (totalBytes / SLOWEST_BYTES_PER_SECOND) * 1000,
      },
    );
    return {
      contender: name,
      documents: run.documents,
      objectMiB: mib(docs[0]?.bytes ?? 0),
      seconds: run.seconds,
      mbPerSecond: run.mbPerSecond,
      cpuMsPerMiB: run.cpuMsPerDoc === null ? null : (run.cpuMsPerDoc * run.documents) / mib(totalBytes),
      requestsPerDoc: run.requestsPerDoc,
      requestsByAction: run.requestsByAction,
      peakRssMb: run.peakRssMb,
      readyMs: run.readyMs ?? 0,
      duplicates: run.duplicates,
      bytesOutPerDoc: run.bytesOutPerDoc,
      pinned: run.pinned,
    };
  } catch (err) {
    throw new StepError(`${what}: ${errorText(err)}`);
  }
}

function rawJob(standIn: StandIn, outputBytes: number): string {
  return JSON.stringify({
    endpoint: standIn.urls.gateway,
    region: standIn.region,
    queueUrl: standIn.queue.url,
    outputBucket: standIn.config.outputBucket,
    concurrency,
    outputBytes,
  });
}

/** Deletes the sources and whatever either contender wrote for them, so the emulator's memory does not pile up. */
async function removeObjects(standIn: StandIn, docs: readonly BenchDoc[]): Promise<void> {
  const s3 = standIn.clients.admin.s3;
  for (const doc of docs) {
    await s3.send(new DeleteObjectCommand({ Bucket: standIn.config.sourceBucket, Key: doc.key }));
    for (const suffix of [".json", ".error.json"]) {
      await s3.send(new DeleteObjectCommand({ Bucket: standIn.config.outputBucket, Key: `${doc.key}${suffix}` }));
    }
  }
}

/** The daemon, then the raw loop (sized to write the daemon's output bytes), on the same uploaded objects. */
interface Compared {
  /** The daemon with the bench's config (defaults but for maxObjectBytes when needed). */
  daemon: Figures;
  /** The daemon in other configurations on the same objects (throughput run only). */
  variants: Figures[];
  raw: Figures;
}

/** A daemon configuration to run besides the main one, and its row label. */
interface Variant {
  label: string;
  configPath: string;
}

/** The daemon, its variants, then the raw loop, on the same objects (uploaded once, events replayed). */
async function both(bench: MeasuredStandIn, docs: readonly BenchDoc[], configPath: string, variants: readonly Variant[] = []): Promise<Compared> {
  const events = await uploadAndCapture(bench.standIn, docs);
  const said = (f: Figures): void => say(`  ${f.contender} ${f.mbPerSecond.toFixed(1)} MB/s, peak RSS ${f.peakRssMb?.toFixed(1) ?? "n/a"} MB`);
  try {
    const daemon = await runQueued(bench, "daemon", docs, events, configPath, 0);
    said(daemon);
    const others: Figures[] = [];
    for (const v of variants) {
      others.push(await runQueued(bench, "daemon", docs, events, v.configPath, 0, v.label));
      said(others.at(-1)!);
    }
    const raw = await runQueued(bench, "raw", docs, events, configPath, Math.round(daemon.bytesOutPerDoc));
    said(raw);
    return { daemon, variants: others, raw };
  } finally {
    // A failed cleanup costs the emulator memory, not the figures: say so rather than hide the run's own error.
    await removeObjects(bench.standIn, docs).catch((err: unknown) => say(`  deleting the objects failed: ${errorText(err)}`));
  }
}



function check(target: string, value: number | null, limit: number, atMost: boolean, unit: string): Check {
  if (value === null || !Number.isFinite(value)) return { target, value: null, limit, met: null, missedBy: "not measured" };
  const met = atMost ? value <= limit : value >= limit;
  const gap = Math.abs(value - limit);
  const relative = limit === 0 ? "" : ` (${Math.round((gap / limit) * 100)}%)`;
  return { target, value, limit, met, missedBy: met ? "" : `${round(gap)}${unit}${relative}` };
}

function spread(values: readonly (number | null)[]): number | null {
  if (values.length === 0 || values.some((v) => v === null)) return null;
  const v = values as number[];
  return Math.max(...v) - Math.min(...v);
}

const sizeLabel = (m: number): string => (m >= 1024 && m % 1024 === 0 ? `${m / 1024} GiB` : `${m} MiB`);

function report(throughput: Compared, sweep: readonly SweepRow[], checks: readonly Check[], notes: readonly string[]): string {
  const { daemon, variants, raw } = throughput;
  const contenders = [daemon, ...variants, raw];
  const header = ["", "docs", "MiB/doc", "s", "MB/s", "x raw", "CPU ms/MiB", "req/doc", "peak RSS MB", "READY ms", "dup"];
  const rows = contenders.map((f) => [
    f.contender,
    String(f.documents),
    String(f.objectMiB),
    fmt(f.seconds),
    fmt(f.mbPerSecond),
    fmt(f.mbPerSecond / raw.mbPerSecond, "x"),
    fmt(f.cpuMsPerMiB),
    fmt(f.requestsPerDoc),
    fmt(f.peakRssMb),
    fmt(f.readyMs),
    String(f.duplicates),
  ]);
  const sweepHeader = ["object", "daemon RSS MB", "raw RSS MB", "daemon s", "raw s", "daemon CPU ms/MiB", "raw CPU ms/MiB"];
  const sweepRows = sweep.map((r) => [
    sizeLabel(r.objectMiB),
    fmt(r.daemon.peakRssMb),
    fmt(r.raw.peakRssMb),
    fmt(r.daemon.seconds),
    fmt(r.raw.seconds),
    fmt(r.daemon.cpuMsPerMiB),
    fmt(r.raw.cpuMsPerMiB),
  ]);
  sweepRows.push(["spread (max-min)", fmt(spread(sweep.map((r) => r.daemon.peakRssMb))), fmt(spread(sweep.map((r) => r.raw.peakRssMb))), "", "", "", ""]);
  const targetLines = checks.map((t) => {
    const mark = t.met === null ? "?" : t.met ? "✓" : "✗";
    const value = t.value === null ? "n/a" : round(t.value);
    return `  ${mark} ${t.target.padEnd(52)} measured ${value}${t.met === false ? `, missed by ${t.missedBy}` : t.met === null ? " (not measured)" : ""}`;
  });
  const breakdown = contenders.map(
    (f) => `  ${f.contender}: ${Object.entries(f.requestsByAction).map(([a, n]) => `${a}=${(n / f.documents).toFixed(2)}`).join(" ")}`,
  );
  return [
    `Throughput on large objects (${daemon.documents} x ${daemon.objectMiB} MiB; MB = 10^6 bytes):`,
    table([header, ...rows]),
    "",
    "IAM checks per document, by action (role sessions, first receive to exit):",
    ...breakdown,
    "",
    "Peak RSS (VmHWM) against object size: one object per size, a fresh process per size and contender",
    "(s: first receive to done; CPU: READY to done, so the per-document overhead dominates the small sizes):",
    table([sweepHeader, ...sweepRows]),
    "",
    "daemon targets on large objects (issue 5; to reach, not asserted):",
    ...targetLines,
    ...(notes.length > 0 ? ["", ...notes.map((n) => `note: ${n}`)] : []),
    "",
  ].join("\n");
}

async function main(): Promise<number> {
  if (!existsSync(DAEMON_CLI)) {
    say("streaming bench: dist/ is missing; run `npm run build` first");
    return 1;
  }
  const bench = await startMeasuredStandIn({ visibilityTimeoutSeconds: QUEUE_VISIBILITY_SECONDS });
  const { standIn, standInPinned } = bench;
  const notes: string[] = [];
  const sweep: SweepRow[] = [];
  const settings: Record<string, unknown> = { processor: "metadata", concurrency };
  if (maxInFlightMiB !== undefined) settings["maxInFlightBytes"] = maxInFlightMiB * MiB;
  let limits: { maxObjectBytes: number; maxInFlightBytes: number };
  let throughput: Compared;
  const started = performance.now();
  try {
    const largest = Math.max(docMiB, ...sweepMiB) * MiB;
    const defaults = daemonLimits(standIn, settings);
    // The daemon refuses objects above maxObjectBytes: raise it only when a size here needs it, and say so.
    if (largest > defaults.maxObjectBytes) {
      settings["maxObjectBytes"] = largest;
      notes.push(`maxObjectBytes raised from its default ${mib(defaults.maxObjectBytes)} MiB to ${mib(largest)} MiB for the largest object`);
    }
    limits = daemonLimits(standIn, settings);
    const configPath = daemonConfigFile(standIn, settings);
    say(
      `streaming bench: ${docCount} x ${docMiB} MiB, then RSS at ${sweepMiB.map(sizeLabel).join(", ")}; concurrency ${concurrency}; ` +
        `node ${nodeFlags.join(" ")}; daemon maxObjectBytes ${mib(limits.maxObjectBytes)} MiB` +
        `${settings["maxObjectBytes"] === undefined ? " (default)" : ""}, maxInFlightBytes ${mib(limits.maxInFlightBytes)} MiB` +
        `${maxInFlightMiB === undefined ? " (default)" : ""}; ` +
        `${taskset() !== null ? "contenders on core 0" : "no taskset: contenders unpinned"}${standInPinned ? ", stand-in on core 1" : ""}, ` +
        `${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}), Node ${process.version}`,
    );
    const admitted = Math.max(1, Math.floor(limits.maxInFlightBytes / (docMiB * MiB)));
    if (admitted < Math.min(concurrency, docCount)) {
      notes.push(
        `maxInFlightBytes (${mib(limits.maxInFlightBytes)} MiB) lets the daemon run ${admitted} document(s) of ${docMiB} MiB at once; ` +
          `the raw loop runs ${Math.min(concurrency, docCount)}`,
      );
    }

    say(`throughput: ${docCount} x ${docMiB} MiB…`);
    // The byte budget lets only `admitted` documents of this size run at once; the raw loop runs `concurrency`. So the
    // same documents also go through a daemon whose budget admits as many as the raw loop, with each processor.
    const parallel = Math.min(concurrency, docCount);
    const variants: Variant[] = [];
    const budget = { ...settings, maxInFlightBytes: Math.max(limits.maxInFlightBytes, parallel * docMiB * MiB) };
    const atOnce = `maxInFlightBytes ${mib(budget.maxInFlightBytes)} MiB`;
    if (admitted < parallel) variants.push({ label: `daemon, ${atOnce}`, configPath: daemonConfigFile(standIn, budget) });
    variants.push({
      label: `${DAEMON_SHA256}${admitted < parallel ? `, ${atOnce}` : ""}`,
      configPath: daemonConfigFile(standIn, { ...budget, processor: SHA256_PROCESSOR }),
    });
    throughput = await both(bench, makeDocuments(docCount, docMiB * MiB, "stream/doc-"), configPath, variants);
    for (const size of sweepMiB) {
      say(`rss: one object of ${sizeLabel(size)}…`);
      const { daemon, raw } = await both(bench, makeDocuments(1, size * MiB, `rss/${size}mib-`), configPath);
      sweep.push({ objectMiB: size, daemon, raw });
    }
  } catch (err) {
    say(`streaming bench failed: ${err instanceof StepError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return 1;
  } finally {
    await standIn.close();
  }

  const ratio = throughput.daemon.mbPerSecond / throughput.raw.mbPerSecond;
  const daemonRss = sweep.map((r) => r.daemon.peakRssMb);
  const daemonSpread = spread(daemonRss);
  const range = `${sizeLabel(sweepMiB[0]!)} to ${sizeLabel(sweepMiB.at(-1)!)}`;
  const maxRss = daemonRss.some((v) => v === null) ? null : Math.max(...(daemonRss as number[]));
  const checks = [
    check(`>= ${RATIO_TARGET}x the raw loop's MB/s (${docMiB} MiB objects)`, ratio, RATIO_TARGET, false, "x"),
    check(`peak RSS <= ${RSS_TARGET_MB} MB (${docCount} x ${docMiB} MiB run)`, throughput.daemon.peakRssMb, RSS_TARGET_MB, true, " MB"),
    check(`peak RSS <= ${RSS_TARGET_MB} MB at every size, ${range}`, maxRss, RSS_TARGET_MB, true, " MB"),
    check(`RSS flat ${range}: spread <= ${flatMb} MB`, daemonSpread, flatMb, true, " MB"),
  ];
  notes.push(`"flat" is read as a spread of at most ${flatMb} MB across the sizes (--flat-mb): the bench's tolerance, not the issue's`);
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(report(throughput, sweep, checks, notes));

  const out = saveResults(values.out, quick ? "quick" : "full", {
    workload: {
      throughput: { documents: docCount, objectMiB: docMiB },
      rssSizesMiB: sweepMiB,
      concurrency,
      nodeFlags,
      processor: "metadata",
      daemonSettings: settings,
      daemonLimits: limits,
      queueVisibilityTimeoutSeconds: QUEUE_VISIBILITY_SECONDS,
    },
    throughput: { ...throughput, daemonToRaw: ratio },
    rss: { bySize: sweep, daemonSpreadMb: daemonSpread, rawSpreadMb: spread(sweep.map((r) => r.raw.peakRssMb)) },
    targets: checks,
    notes,
    benchSeconds: seconds,
    benchProcessPeakRssMb: process.resourceUsage().maxRSS / 1024,
  }, { standInPinned });
  say(`saved ${out} (${seconds.toFixed(0)} s)`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`streaming bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
