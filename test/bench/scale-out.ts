// Scale-out run (issue 5, point 2): the same documents processed once by 1 daemon and once by 3 daemons on one queue
// (the Auto Scaling picture), with duplicates and losses counted from outside.
//   npx tsx test/bench/scale-out.ts [--quick] [--out FILE] [--docs N] [--latency-ms N] [--concurrency N]
// (after `npm run build`). Full: 2,000 documents of 4 KiB; --quick: 300. Prints a table, saves JSON (default
// bench-results/scale-out.json); exit 0 when both runs completed, nothing was lost, the queue ended empty and every
// daemon exited 0 on SIGTERM.
//
// How it models a fleet on a 2-core machine: on AWS each daemon has its own instance and every S3/SQS call takes tens
// of milliseconds, so the work waits on I/O. Here every S3 and SQS request gets a fixed injected latency at the
// stand-in (standIn.faults, default 25 ms; ReceiveMessage too: a long poll's wait is already a wait, the delay is its
// round trip), the daemons share core 0 and the stand-in (this process) has core 1. CPU per daemon and each core's busy
// share are reported so a reader can see whether a core saturated, which would cap the ratio below the ideal 3.0x for
// a reason a fleet does not have.
//
// Each run gets a fresh stand-in, so the second starts from the same empty state as the first.
// So that all daemons start on the same backlog, the bench holds the uploaded messages (receives them as admin with a
// long visibility), starts the daemons, waits for every READY, then releases them (visibility 0): the window timed is
// release to last finished document. Each message's ApproximateReceiveCount is therefore 2 at its first delivery to a
// daemon.
import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
} from "@aws-sdk/client-sqs";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { DAEMON_CLI } from "../local/daemon-process.js";
import type { StandIn } from "../local/stand-in.js";
import { startContender, type Contender, type LogLine } from "./contender.js";
import { fmt, percentile, table } from "./report.js";
import { cpuMs, peakRssBytes, taskset } from "./proc.js";
import {
  cleanQueue,
  contenderEnv,
  daemonConfigFile,
  eventKeys,
  makeDocuments,
  saveResults,
  say,
  startMeasuredStandIn,
  unitNodeFlags,
  upload,
  type BenchDoc,
} from "./workload.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const DOC_BYTES = 4 * 1024;
/** The unit's Node flags (heap and young-generation limits), for every Node contender. */
const NODE_FLAGS = unitNodeFlags();
const MiB = 1024 * 1024;
/** A core at least this busy over the window is taken as saturated (the figure is shown either way). */
const SATURATED = 90;
/** How long the bench holds the uploaded messages at most (they are released as soon as every daemon is READY). */
const HOLD_VISIBILITY_SECONDS = 900;

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    docs: { type: "string" },
    "latency-ms": { type: "string", default: "25" },
    concurrency: { type: "string", default: "4" },
    daemons: { type: "string", default: "3" },
    out: { type: "string", default: join(REPO, "bench-results", "scale-out.json") },
  },
});
const quick = values.quick;
const docCount = Number(values.docs ?? (quick ? 300 : 2000));
const latencyMs = Number(values["latency-ms"]);
const concurrency = Number(values.concurrency);
const fleetSize = Number(values.daemons);
for (const [name, n, min] of [
  ["docs", docCount, 1],
  ["latency-ms", latencyMs, 0],
  ["concurrency", concurrency, 1],
  ["daemons", fleetSize, 2],
] as const) {
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`--${name} takes a whole number >= ${min}\n`);
    process.exit(64);
  }
}

interface DoneLine {
  key: string;
  messageId: string;
  receiveCount: number;
  durationMs: number;
  at: number;
}

interface DaemonFigures {
  index: number;
  pid: number;
  readyMs: number;
  /** "document" lines with outcome done for this run's keys. */
  documents: number;
  /** This daemon's share of all done lines of the run. */
  share: number;
  /** "document" lines with another outcome (failed, superseded…). */
  otherOutcomes: number;
  /** CPU (utime+stime) from release to the last finished document of the run. */
  cpuMsWindow: number | null;
  /** cpuMsWindow against the window's wall time (100% = one whole core). */
  cpuPercent: number | null;
  peakRssMb: number | null;
  exit: number | string | null;
}

interface DuplicateDetail {
  key: string;
  deliveries: { daemon: number; messageId: string; receiveCount: number }[];
  likelyCause: string;
}

interface RunFigures {
  daemons: number;
  /** Distinct keys with a done line. */
  documents: number;
  completed: boolean;
  problem: string | null;
  /** Release to the last finished document. */
  seconds: number;
  docsPerSecond: number;
  /** Role requests from release until every daemon exited, per document. */
  requestsPerDoc: number;
  requestsByAction: Record<string, number>;
  /** Requests of S3 and SQS (all principals) that got the injected latency during the run. */
  delayedRequests: number;
  /** Sum of the daemons' CPU in the window, per document. */
  cpuMsPerDoc: number | null;
  /** Core 0 (daemons) and core 1 (stand-in) busy over the window from /proc/stat: every process, other work included. */
  core0BusyPercent: number | null;
  core1BusyPercent: number | null;
  /** CPU of this process (the stand-in: gateway, emulator, IMDS) over the window, against its wall time. */
  standInCpuPercent: number;
  /** The daemons' own durationMs of finished documents (receive to result, inside the daemon): median and 90th percentile. */
  documentMs: { p50: number | null; p90: number | null };
  perDaemon: DaemonFigures[];
  doneLines: number;
  duplicates: number;
  duplicateDetails: DuplicateDetail[];
  /** Checked from outside: keys without an output object whose sha256 and source key are right. */
  losses: string[];
  wrongContent: string[];
  /** Output objects under the run's prefix that belong to no uploaded key. */
  unexpectedOutputs: string[];
  queue: { visible: number; notVisible: number; delayed: number; deadLetter: number };
}

type Jiffies = { busy: number; total: number } | undefined;

/** Busy and total jiffies of one CPU from /proc/stat; undefined when unreadable. */
function cpuJiffies(cpu: number): Jiffies {
  try {
    const line = readFileSync("/proc/stat", "utf8")
      .split("\n")
      .find((l) => l.startsWith(`cpu${cpu} `));
    if (!line) return undefined;
    const fields = line.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

function busyPercent(before: Jiffies, after: Jiffies): number | null {
  if (!before || !after || after.total <= before.total) return null;
  return ((after.busy - before.busy) / (after.total - before.total)) * 100;
}

async function sha256Of(doc: BenchDoc): Promise<string> {
  const hash = createHash("sha256");
  const body = doc.body();
  if (Buffer.isBuffer(body)) return hash.update(body).digest("hex");
  for await (const chunk of body) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Runs `fn` over `items`, `parallel` at a time. */
async function eachParallel<T>(items: readonly T[], parallel: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, worker));
}

/**
 * Receives (as admin, with a long visibility) the event messages of every key, so the backlog exists before any
 * daemon polls; returns their receipt handles. Anything else found is deleted and counted.
 */
async function holdMessages(standIn: StandIn, keys: ReadonlySet<string>, timeoutMs: number): Promise<string[]> {
  const sqs = standIn.clients.admin.sqs;
  const seen = new Set<string>();
  const handles: string[] = [];
  let others = 0;
  const deadline = performance.now() + timeoutMs;
  while (seen.size < keys.size) {
    if (performance.now() > deadline) throw new Error(`holding messages: ${seen.size} of ${keys.size} events arrived in ${timeoutMs} ms`);
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: standIn.queue.url,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        VisibilityTimeout: HOLD_VISIBILITY_SECONDS,
      }),
    );
    const strays: { Id: string; ReceiptHandle: string }[] = [];
    for (const m of out.Messages ?? []) {
      const ours = eventKeys(m.Body ?? "").filter((k) => keys.has(k));
      if (ours.length === 0) {
        strays.push({ Id: String(strays.length), ReceiptHandle: m.ReceiptHandle! });
        continue;
      }
      for (const k of ours) seen.add(k);
      handles.push(m.ReceiptHandle!);
    }
    if (strays.length > 0) {
      others += strays.length;
      await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: standIn.queue.url, Entries: strays }));
    }
  }
  if (others > 0) say(`  (${others} messages that were no event of this run were deleted before the start)`);
  return handles;
}

/** Makes the held messages visible at once (visibility 0), 10 per call, 16 calls at a time. */
async function release(standIn: StandIn, handles: readonly string[]): Promise<void> {
  const sqs = standIn.clients.admin.sqs;
  const batches: string[][] = [];
  for (let i = 0; i < handles.length; i += 10) batches.push(handles.slice(i, i + 10));
  await eachParallel(batches, 16, async (batch) => {
    const out = await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: standIn.queue.url,
        Entries: batch.map((h, i) => ({ Id: String(i), ReceiptHandle: h, VisibilityTimeout: 0 })),
      }),
    );
    if ((out.Failed ?? []).length > 0) throw new Error(`releasing held messages failed: ${JSON.stringify(out.Failed)}`);
  });
}

/** Every output object under `prefix` in the output bucket, listed as admin. */
async function listOutputs(standIn: StandIn, prefix: string): Promise<string[]> {
  const s3 = standIn.clients.admin.s3;
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const out = await s3.send(
      new ListObjectsV2Command({ Bucket: standIn.config.outputBucket, Prefix: prefix, ...(token !== undefined && { ContinuationToken: token }) }),
    );
    for (const o of out.Contents ?? []) if (o.Key !== undefined) keys.push(o.Key);
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token !== undefined);
  return keys;
}

/** Losses, wrong contents and strays, from the output bucket alone (the daemons' own claims are not used). */
async function verifyOutputs(
  standIn: StandIn,
  outputPrefix: string,
  docPrefix: string,
  expected: ReadonlyMap<string, string>,
): Promise<{ losses: string[]; wrongContent: string[]; unexpectedOutputs: string[] }> {
  const listed = new Set(await listOutputs(standIn, `${outputPrefix}${docPrefix}`));
  const wanted = new Map([...expected.keys()].map((k) => [`${outputPrefix}${k}.json`, k]));
  const unexpectedOutputs = [...listed].filter((k) => !wanted.has(k)).sort();
  const losses: string[] = [];
  const wrongContent: string[] = [];
  await eachParallel([...wanted], 16, async ([outKey, key]) => {
    if (!listed.has(outKey)) {
      losses.push(key);
      return;
    }
    const out = await standIn.clients.admin.s3.send(new GetObjectCommand({ Bucket: standIn.config.outputBucket, Key: outKey }));
    let record: { sha256?: unknown; source?: { key?: unknown; bucket?: unknown } } = {};
    try {
      record = JSON.parse((await out.Body?.transformToString()) ?? "") as typeof record;
    } catch {
      // Unparseable: counted as wrong content below.
    }
    if (record.sha256 !== expected.get(key) || record.source?.key !== key || record.source.bucket !== standIn.config.sourceBucket) {
      wrongContent.push(key);
      losses.push(key);
    }
  });
  return { losses: losses.sort(), wrongContent: wrongContent.sort(), unexpectedOutputs };
}

async function queueCounts(standIn: StandIn): Promise<RunFigures["queue"]> {
  const sqs = standIn.clients.admin.sqs;
  const read = async (url: string): Promise<Record<string, string>> =>
    (
      await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: url,
          AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"],
        }),
      )
    ).Attributes ?? {};
  const main = await read(standIn.queue.url);
  const dlq = await read(standIn.queue.dlqUrl);
  return {
    visible: Number(main["ApproximateNumberOfMessages"] ?? NaN),
    notVisible: Number(main["ApproximateNumberOfMessagesNotVisible"] ?? NaN),
    delayed: Number(main["ApproximateNumberOfMessagesDelayed"] ?? NaN),
    deadLetter: Number(dlq["ApproximateNumberOfMessages"] ?? NaN),
  };
}

function explainDuplicate(deliveries: DuplicateDetail["deliveries"]): string {
  const messages = new Set(deliveries.map((d) => d.messageId));
  if (messages.size > 1) return "more than one event message for the key (S3 notifications are at-least-once)";
  const counts = new Set(deliveries.map((d) => d.receiveCount));
  if (counts.size > 1) return "the same message received again: its visibility ran out or its delete was lost before it landed";
  return "the same receive of one message reached two consumers (an emulator fault: SQS hides a received message)";
}

/** One run: `n` daemons started together on a backlog of `docs`, on a fresh stand-in. */
async function runFleet(n: number, docs: readonly BenchDoc[], expected: ReadonlyMap<string, string>, docPrefix: string): Promise<RunFigures> {
  const { standIn, measured, standInPinned } = await startMeasuredStandIn();
  const contenders: Contender[] = [];
  try {
    if (!standInPinned && taskset() !== null) say("  (the stand-in could not be pinned to core 1)");
    await cleanQueue(standIn);
    await upload(standIn, docs);
    const held = await holdMessages(standIn, new Set(expected.keys()), 60_000);

    const configPath = daemonConfigFile(standIn, { processor: "metadata", concurrency });
    const outputPrefix = String((JSON.parse(readFileSync(configPath, "utf8")) as { outputPrefix?: string }).outputPrefix ?? "");
    const env = contenderEnv(standIn);
    const done: DoneLine[][] = Array.from({ length: n }, () => []);
    const other = Array.from({ length: n }, () => 0);
    const finished = new Set<string>();
    let lastAt = 0;
    let allDone: () => void = () => {};
    const everyDocument = new Promise<void>((r) => (allDone = r));

    // The fleet's network from here on: every S3 and SQS call waits latencyMs (the uploads and the hold above did not).
    standIn.faults.set("s3", { latencyMs });
    standIn.faults.set("sqs", { latencyMs });
    const latencyBefore = standIn.faults.counters();
    for (let i = 0; i < n; i++) {
      contenders.push(
        startContender({
          args: [DAEMON_CLI, "run", "--config", configPath],
          nodeFlags: NODE_FLAGS,
          env,
          cpus: "0",
          onLog: (line: LogLine, at: number) => {
            if (line.msg !== "document" || !expected.has(String(line["key"]))) return;
            if (line["outcome"] !== "done") {
              other[i]! += 1;
              return;
            }
            const key = String(line["key"]);
            done[i]!.push({ key, messageId: String(line["messageId"]), receiveCount: Number(line["receiveCount"]),
              durationMs: Number(line["durationMs"]),
              at,
            });
            if (finished.has(key)) return;
            finished.add(key);
            lastAt = at;
            if (finished.size === expected.size) allDone();
          },
        }),
      );
    }
    const ready = await Promise.all(contenders.map((c) => c.waitFor((l) => typeof l.msg === "string" && l.msg.startsWith("ready"), 60_000)));

    const cpuAtRelease = contenders.map((c) => cpuMs(c.pid));
    const coresAtRelease = [cpuJiffies(0), cpuJiffies(1)];
    const selfAtRelease = process.cpuUsage();
    const releasedAt = performance.now();
    await release(standIn, held);

    const timeoutMs = 60_000 + docs.length * 50;
    let timer: NodeJS.Timeout | undefined;
    const problem = await Promise.race([
      everyDocument.then(() => null),
      new Promise<string>((r) => {
        timer = setTimeout(() => r(`${finished.size} of ${expected.size} documents finished within ${timeoutMs} ms`), timeoutMs);
      }),
      ...contenders.map((c, i) =>
        c.exited.then(({ code, signal }) => `daemon ${i + 1} exited (${code ?? signal}) early; stderr:\n${c.stderr()}`),
      ),
    ]).finally(() => clearTimeout(timer));
    const endAt = problem === null ? lastAt : performance.now();
    const cpuAtEnd = contenders.map((c) => cpuMs(c.pid));
    const coresAtEnd = [cpuJiffies(0), cpuJiffies(1)];
    const selfCpu = process.cpuUsage(selfAtRelease);
    const rss = contenders.map((c) => peakRssBytes(c.pid));

    const exits = await Promise.all(contenders.map((c) => c.stop()));
    const exitedAt = performance.now();
    const latencyAfter = standIn.faults.counters();
    standIn.faults.clear();

    const seconds = (endAt - releasedAt) / 1000;
    const byAction: Record<string, number> = {};
    for (const c of measured.checks) if (c.at >= releasedAt && c.at <= exitedAt) byAction[c.action] = (byAction[c.action] ?? 0) + 1;
    const requests = measured.requests.filter((r) => r.at >= releasedAt && r.at <= exitedAt).length;
    const doneLines = done.reduce((sum, d) => sum + d.length, 0);
    const durations = done
      .flat()
      .map((d) => d.durationMs)
      .filter(Number.isFinite)
      .sort((a, b) => a - b);
    const cpuWindow = contenders.map((_, i) => {
      const a = cpuAtRelease[i];
      const b = cpuAtEnd[i];
      return a !== undefined && b !== undefined ? b - a : null;
    });
    const cpuSum = cpuWindow.every((c) => c !== null) ? cpuWindow.reduce<number>((a, b) => a + (b ?? 0), 0) : null;

    const byKey = new Map<string, DuplicateDetail["deliveries"]>();
    done.forEach((lines, i) => {
      for (const l of lines) {
        const list = byKey.get(l.key) ?? [];
        list.push({ daemon: i + 1, messageId: l.messageId, receiveCount: l.receiveCount });
        byKey.set(l.key, list);
      }
    });
    const duplicateDetails = [...byKey]
      .filter(([, d]) => d.length > 1)
      .map(([key, deliveries]) => ({ key, deliveries, likelyCause: explainDuplicate(deliveries) }));

    const verified = await verifyOutputs(standIn, outputPrefix, docPrefix, expected);
    const queue = await queueCounts(standIn);
    return {
      daemons: n,
      documents: finished.size,
      completed: problem === null,
      problem,
      seconds,
      docsPerSecond: finished.size / seconds,
      requestsPerDoc: requests / Math.max(1, finished.size),
      requestsByAction: byAction,
      delayedRequests:
        latencyAfter.s3.latency + latencyAfter.sqs.latency - latencyBefore.s3.latency - latencyBefore.sqs.latency,
      cpuMsPerDoc: cpuSum !== null ? cpuSum / Math.max(1, finished.size) : null,
      core0BusyPercent: busyPercent(coresAtRelease[0], coresAtEnd[0]),
      core1BusyPercent: busyPercent(coresAtRelease[1], coresAtEnd[1]),
      standInCpuPercent: ((selfCpu.user + selfCpu.system) / 1000 / (endAt - releasedAt)) * 100,
      documentMs: { p50: percentile(durations, 50), p90: percentile(durations, 90) },
      perDaemon: contenders.map((c, i) => {
        const cpu = cpuWindow[i] ?? null;
        const peak = rss[i];
        return {
        index: i + 1,
        pid: c.pid,
        readyMs: ready[i]!.at - c.startedAt,
        documents: done[i]!.length,
        share: doneLines > 0 ? done[i]!.length / doneLines : 0,
        otherOutcomes: other[i]!,
        cpuMsWindow: cpu,
        cpuPercent: cpu !== null ? (cpu / 1000 / seconds) * 100 : null,
        peakRssMb: peak !== undefined ? peak / MiB : null,
        exit: exits[i]!.code ?? exits[i]!.signal,
      };
      }),
      doneLines,
      duplicates: doneLines - finished.size,
      duplicateDetails,
      ...verified,
      queue,
    };
  } finally {
    await Promise.all(contenders.map((c) => c.stop(5_000)));
    await standIn.close();
  }
}



function queueText(q: RunFigures["queue"]): string {
  return `visible ${q.visible}, not visible ${q.notVisible}, delayed ${q.delayed}, DLQ ${q.deadLetter}`;
}

/** The daemons' CPU over the window as a share of one core (null when a figure is missing). */
function daemonsCpu(r: RunFigures): number | null {
  return r.perDaemon.every((d) => d.cpuPercent !== null) ? r.perDaemon.reduce((sum, d) => sum + (d.cpuPercent ?? 0), 0) : null;
}

function formatReport(one: RunFigures, fleet: RunFigures, total: number): string {
  const ratio = fleet.docsPerSecond / one.docsPerSecond;
  const runs = [one, fleet];
  const header = [
    "",
    "docs",
    "s",
    "docs/s",
    "x 1 daemon",
    "req/doc",
    "doc ms p50/p90",
    "CPU ms/doc",
    "daemons CPU",
    "core 0 busy",
    "core 1 busy",
    "stand-in CPU",
    "dup",
    "lost",
    "exits",
  ];
  const rows = runs.map((r) => [
    `${r.daemons} daemon${r.daemons > 1 ? "s" : ""}`,
    String(r.documents),
    fmt(r.seconds),
    fmt(r.docsPerSecond),
    fmt(r.docsPerSecond / one.docsPerSecond, "x"),
    fmt(r.requestsPerDoc),
    `${fmt(r.documentMs.p50)}/${fmt(r.documentMs.p90)}`,
    fmt(r.cpuMsPerDoc),
    fmt(daemonsCpu(r), "%"),
    fmt(r.core0BusyPercent, "%"),
    fmt(r.core1BusyPercent, "%"),
    fmt(r.standInCpuPercent, "%"),
    String(r.duplicates),
    String(r.losses.length),
    r.perDaemon.map((d) => String(d.exit)).join(","),
  ]);
  const daemonHeader = ["", "docs", "share", "other outcomes", "CPU ms", "CPU % of window", "peak RSS MB", "READY ms", "exit"];
  const daemonRows = runs.flatMap((r) =>
    r.perDaemon.map((d) => [
      `${r.daemons}-daemon run, daemon ${d.index}`,
      String(d.documents),
      fmt(d.share * 100, "%"),
      String(d.otherOutcomes),
      fmt(d.cpuMsWindow),
      fmt(d.cpuPercent, "%"),
      fmt(d.peakRssMb),
      fmt(d.readyMs),
      String(d.exit),
    ]),
  );
  const lines = [
    `Model of a fleet: every S3 and SQS request delayed ${latencyMs} ms at the stand-in (I/O-bound work, as on AWS); ` +
      `${taskset() !== null ? "all daemons on core 0, the stand-in on core 1" : "no taskset: nothing pinned"}; ` +
      `backlog released when every daemon was READY.`,
    `"daemons CPU" is the daemons' own CPU as a share of one core; "core N busy" counts every process on the core ` +
      `(other work on this machine included).`,
    "",
    table([header, ...rows]),
    "",
    table([daemonHeader, ...daemonRows]),
    "",
    `scale-out: ${fleet.daemons} daemons made ${fmt(ratio, "x")} the documents/s of 1 (ideal ${fleet.daemons}.0x).`,
    ...runs.flatMap((r) => {
      const saturated = [
        ...(r.core0BusyPercent !== null && r.core0BusyPercent >= SATURATED ? [`core 0 (daemons) ${fmt(r.core0BusyPercent, "%")}`] : []),
        ...(r.core1BusyPercent !== null && r.core1BusyPercent >= SATURATED ? [`core 1 (stand-in) ${fmt(r.core1BusyPercent, "%")}`] : []),
      ];
      return saturated.length > 0
        ? [`${r.daemons}-daemon run: ${saturated.join(" and ")} busy over the window: the run waited on CPU too, not only on the injected latency`]
        : [];
    }),
    ...runs.map((r) => `queue after the ${r.daemons}-daemon run: ${queueText(r.queue)}`),
    ...runs.map(
      (r) =>
        `outputs checked for the ${r.daemons}-daemon run: ${total - r.losses.length} ` +
        `of ${total} correct, ${r.losses.length} lost (${r.wrongContent.length} with wrong content), ` +
        `${r.unexpectedOutputs.length} unexpected outputs; ${r.delayedRequests} S3/SQS requests delayed ${latencyMs} ms`,
    ),
  ];
  for (const r of runs) {
    if (r.duplicateDetails.length === 0) continue;
    const causes = new Map<string, number>();
    for (const d of r.duplicateDetails) causes.set(d.likelyCause, (causes.get(d.likelyCause) ?? 0) + 1);
    lines.push(`duplicates in the ${r.daemons}-daemon run (${r.duplicates}), by likely cause:`);
    for (const [cause, count] of causes) lines.push(`  ${count} key(s): ${cause}`);
  }
  lines.push("");
  return lines.join("\n");
}

async function main(): Promise<number> {
  if (!existsSync(DAEMON_CLI)) {
    say("scale-out: dist/ is missing; run `npm run build` first");
    return 1;
  }
  const docPrefix = "scale-out/doc-";
  const docs = makeDocuments(docCount, DOC_BYTES, docPrefix);
  const expectedHashes = new Map(await Promise.all(docs.map(async (d) => [d.key, await sha256Of(d)] as const)));
  say(
    `scale-out: ${docCount} documents of ${DOC_BYTES} B, processor metadata, concurrency ${concurrency} per daemon; ` +
      `every S3 and SQS request delayed ${latencyMs} ms at the stand-in to model AWS round trips (I/O-bound work, as on a fleet); ` +
      `${taskset() !== null ? "daemons on core 0, stand-in on core 1" : "no taskset: unpinned"}; ` +
      `${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}), Node ${process.version}`,
  );
  say("1 daemon…");
  const one = await runFleet(1, docs, expectedHashes, docPrefix);
  say(`${fleetSize} daemons…`);
  const fleet = await runFleet(fleetSize, docs, expectedHashes, docPrefix);

  process.stdout.write(formatReport(one, fleet, docs.length));
  const out = saveResults(values.out, quick ? "quick" : "full", {
    workload: {
      documents: docCount,
      documentBytes: DOC_BYTES,
      processor: "metadata",
      concurrency,
      nodeFlags: NODE_FLAGS,
      injectedLatencyMs: { s3: latencyMs, sqs: latencyMs },
      placement: taskset() !== null ? { daemons: "core 0", standIn: "core 1" } : null,
      start: "backlog held by the bench, released when every daemon is READY",
    },
    ratio: fleet.docsPerSecond / one.docsPerSecond,
    runs: [one, fleet],
  });
  say(`saved ${out}`);

  let failed = false;
  for (const r of [one, fleet]) {
    const label = `${r.daemons}-daemon run`;
    if (!r.completed) {
      say(`FAIL ${label}: ${r.problem}`);
      failed = true;
    }
    if (r.losses.length > 0) {
      say(`FAIL ${label}: ${r.losses.length} lost: ${r.losses.join(" ")}`);
      failed = true;
    }
    const q = r.queue;
    if (q.visible !== 0 || q.notVisible !== 0 || q.delayed !== 0) {
      say(`FAIL ${label}: queue not empty at the end (${queueText(q)})`);
      failed = true;
    }
    const badExits = r.perDaemon.filter((d) => d.exit !== 0);
    if (badExits.length > 0) {
      say(`FAIL ${label}: exit on SIGTERM ${badExits.map((d) => `daemon ${d.index}: ${d.exit}`).join(", ")}`);
      failed = true;
    }
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`scale-out: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
