// Hostile documents under the unit's memory limit: the real daemon (processors metadata and text, the unit's Node
// flags) runs in a memory cgroup with the unit's MemoryMax (or, where no cgroup is writable, under an RSS watchdog)
// while zip bombs, PDF bombs, tens of MB of nested HTML and documents at the size limit arrive, all at once and then
// one after another. A restart (the daemon OOM-killed, exiting by itself, or stopped after an OOM kill in its group
// as the unit's OOMPolicy says) is counted and the daemon restarted as systemd would, so every document can still be
// accounted for: its text written, an error record with a code, or its message in the DLQ with a reason in the log.
// RSS (from /proc) is read before the corpus (steady: after a warm-up of ordinary documents, one of them refused, and
// an idle spell), during it (peak) and after the queue is empty and the daemon has idled (settled), for the daemon's
// own process and for its whole tree (the daemon and its extraction process, which comes and goes).
// PASS: no restart, every document accounted for, settled RSS within 20% of steady for the daemon and for the tree.
// `hostile-ocr` is the same run with the chain metadata + ocr and its own corpus (hostile-ocr-corpus.ts: a
// 30,000 x 30,000 PNG, a TIFF of 10,000 pages, a PDF of 5,000 image pages, truncated images, a noise page...).
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { Upload } from "@aws-sdk/lib-storage";
import { makeDocx, makePdf } from "../../fixtures/documents/build.js";
import type { LogLine } from "../../local/daemon-process.js";
import type { StandIn } from "../../local/stand-in.js";
import { depthOf, keysInBody, listOutputKeys, persist, takeAll } from "../lib/aws.js";
import { READY, type FleetDaemon } from "../lib/fleet.js";
import { createMemoryLimit, RssSampler, type Enforcement, type MemoryLimit, type RssMedians } from "../lib/memory.js";
import { Report, type Mode } from "../lib/report.js";
import { startRig, type Rig, type Scenario, type ScenarioContext } from "../lib/scenario.js";
import { Aborted, pollUntil, sleep } from "../lib/time.js";
import { readUnitLimits, type UnitLimits } from "../lib/unit.js";
import { hostileCorpus, type HostileDoc } from "./hostile-corpus.js";
import { hostileOcrCorpus, ocrWarmUpDocs } from "./hostile-ocr-corpus.js";

const MiB = 1024 * 1024;
/** The daemon's maxBufferedBytes (its default), set explicitly: the near-limit documents are sized from it. */
const MAX_BUFFERED_BYTES = 32 * MiB;
/**
 * extractionMemoryBytes as far as the corpus is concerned: archives meant to pass the declared-size check (which
 * refuses a DOCX declaring more than it) stay under it. 192 MiB, the default before extraction moved to a process
 * (256 MiB since): the 180 MiB of XML passes either way.
 */
const EXTRACTION_MEMORY_BYTES = 192 * MiB;
/** Settled RSS may exceed the steady RSS by this fraction at most (the daemon's own, and its tree's). */
const SETTLED_TOLERANCE = 0.2;
/** Parts of the stand-in's multipart uploads (it refuses one PutObject over 11 MiB). */
const PART_BYTES = 8 * MiB;

interface Settings {
  /** Receives before the DLQ (production's queue: 5). Each receive of a document that kills the daemon costs a restart. */
  maxReceiveCount: number;
  /** The daemon's visibility timeout (10 at least): the messages a killed daemon held come back after it. */
  visibilitySeconds: number;
  /** Restart delay after a crash or an OOM kill; undefined: the unit's RestartSec. */
  restartMs: number | undefined;
  /**
   * The daemon's extractionTimeoutSeconds; undefined: its default (120). Parses that never end (20,000 pages, 30 MB
   * of nesting) each hold the one extraction slot that long; memory is what is tested, and 10 s shows it.
   */
  extractionTimeoutSeconds: number | undefined;
  /** Deadlines: the all-at-once phase, the one-after-another phase, one document in it, the final settling. */
  atOnceMs: number;
  inARowMs: number;
  perDocMs: number;
  settleMs: number;
  /** Idle time before the steady and the settled RSS are read, and how long each is read (the median). */
  idleMs: number;
  measureMs: number;
}

const SETTINGS: Record<Mode, Settings> = {
  quick: {
    maxReceiveCount: 3,
    visibilitySeconds: 10,
    restartMs: 1_000,
    extractionTimeoutSeconds: 10,
    atOnceMs: 80_000,
    inARowMs: 100_000,
    perDocMs: 40_000,
    settleMs: 30_000,
    idleMs: 10_000,
    measureMs: 3_000,
  },
  full: {
    maxReceiveCount: 5,
    visibilitySeconds: 10,
    restartMs: undefined,
    extractionTimeoutSeconds: undefined,
    atOnceMs: 600_000,
    inARowMs: 600_000,
    perDocMs: 200_000,
    settleMs: 150_000,
    idleMs: 10_000,
    measureMs: 5_000,
  },
};

/** How systemd stops the unit after an OOM kill (OOMPolicy=stop): SIGTERM, SIGKILL after this (TimeoutStopSec). */
const STOP_TIMEOUT_MS = 45_000;

const mb = (bytes: number): string => `${Math.round(bytes / 1e6)}MB`;
const mbOf = (bytes: number | undefined): string => (bytes === undefined ? "?" : mb(bytes));
const percent = (fraction: number | undefined): string =>
  fraction === undefined ? "?" : `${fraction >= 0 ? "+" : ""}${Math.round(fraction * 100)}%`;

/** Which memory limit this run may use: RELIABILITY_MEMORY_LIMIT=watchdog (or cgroup1, cgroup2) forces one. */
function forcedEnforcement(): Enforcement | undefined {
  const value = process.env["RELIABILITY_MEMORY_LIMIT"];
  if (value === undefined || value === "") return undefined;
  if (value === "cgroup2" || value === "cgroup1" || value === "watchdog") return value;
  throw new Error(`RELIABILITY_MEMORY_LIMIT must be cgroup2, cgroup1 or watchdog (got ${value})`);
}

interface Restart {
  daemon: number;
  cause: "oom-kill" | "crash";
  detail: string;
  /** What the scenario was doing: a phase, or the document then processed alone. */
  during: string | undefined;
}

/**
 * The daemon as systemd runs it: started in the memory group and restarted (after RestartSec) when it dies. An OOM
 * kill in the group is handled as the unit's OOMPolicy says: stop (systemd's default) stops and restarts the service
 * even when the kill hit another of its processes; kill takes the whole group down (memory.oom.group); continue
 * leaves the daemon running when it was not the process killed.
 */
class Supervisor {
  readonly restarts: Restart[] = [];
  /** OOM kills that left the daemon running (OOMPolicy=continue), with what the scenario was doing. */
  readonly survivedOomKills: (string | undefined)[] = [];
  current: FleetDaemon | undefined;
  /** What the scenario is doing, for the restart records. */
  during: string | undefined;
  /** Why supervision ended early (a daemon that could not be started or put under the limit). */
  failure: Error | undefined;
  #stopping = false;
  #loop: Promise<void> | undefined;

  constructor(
    private readonly rig: Rig,
    private readonly limit: MemoryLimit,
    private readonly unit: UnitLimits,
    private readonly config: Record<string, unknown>,
    private readonly restartMs: number,
    private readonly ctx: ScenarioContext,
  ) {}

  /** Starts the first daemon and resolves once it is READY. */
  async start(): Promise<void> {
    const first = this.#spawn();
    // Runs until stop(); a failure is kept for the report.
    this.#loop = this.#supervise(first).catch((err: unknown) => {
      if (!(err instanceof Aborted)) this.failure = err instanceof Error ? err : new Error(String(err));
    });
    await first.process.waitForLog((l) => l.msg === READY, 60_000);
  }

  #spawn(): FleetDaemon {
    const daemon = this.rig.fleet.start(this.config, this.unit.environment, this.unit.nodeFlags);
    // At once, before the event loop turns: the process has not yet done anything worth charging elsewhere, and
    // whatever it forks from now on is born in the group.
    try {
      this.limit.adopt(daemon.process.child.pid!);
    } catch (err) {
      daemon.process.kill();
      throw new Error(`could not put daemon #${daemon.id} under the memory limit: ${(err as Error).message}`, { cause: err });
    }
    this.current = daemon;
    return daemon;
  }

  async #supervise(first: FleetDaemon): Promise<void> {
    for (let daemon = first; ; ) {
      const ended = await this.#whileAlive(daemon);
      if (ended.how === "stopping") return;
      if (ended.how === "oom" && this.unit.oomPolicy === "kill") {
        // memory.oom.group: the kernel kills every process of the group (emulated where the group cannot say so).
        for (const pid of this.limit.pids()) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            // Already gone.
          }
        }
        await this.rig.fleet.kill(daemon);
      } else if (ended.how === "oom") {
        // OOMPolicy=stop: systemd stops the service cleanly although the kill may have hit another of its processes.
        await this.rig.fleet.terminate(daemon, STOP_TIMEOUT_MS);
      }
      const exit = daemon.exit;
      const by = this.limit.kind === "watchdog" ? "by the RSS watchdog" : `in the ${this.limit.kind} group`;
      const detail = `exit ${exit?.code ?? exit?.signal ?? "?"}${ended.oom ? `, OOM kill ${by}, OOMPolicy=${this.unit.oomPolicy}` : ""}`;
      this.restarts.push({ daemon: daemon.id, cause: ended.oom ? "oom-kill" : "crash", detail, during: this.during });
      this.ctx.progress(`daemon #${daemon.id} ${ended.oom ? "OOM-killed" : "crashed"} (${detail}); restarting in ${this.restartMs} ms`);
      await sleep(this.restartMs, this.ctx.signal);
      if (this.#stopping) return;
      daemon = this.#spawn();
    }
  }

  /**
   * Until the daemon exits (`oom`: an OOM kill came with its exit), an OOM kill hits the group while it lives and the
   * policy ends the service, or stop(). OOM kills the service survives (OOMPolicy=continue) are recorded.
   */
  async #whileAlive(daemon: FleetDaemon): Promise<{ how: "exited" | "oom" | "stopping"; oom: boolean }> {
    let exited = false;
    void daemon.process.exited.then(() => {
      exited = true;
    });
    let seen = this.limit.oomKills();
    for (;;) {
      if (this.#stopping) return { how: "stopping", oom: false };
      if (exited) {
        // The kernel may report the kill that ended it a moment after the exit: let the count catch up.
        await sleep(200);
        return { how: "exited", oom: this.limit.oomKills() > seen };
      }
      const now = this.limit.oomKills();
      if (now > seen && this.unit.oomPolicy !== "continue") return { how: "oom", oom: true };
      // Give the exit a moment to arrive: a kill of the daemon itself is not one it survived.
      if (now > seen) await sleep(300);
      if (now > seen && !exited) {
        for (let i = seen; i < now; i++) this.survivedOomKills.push(this.during);
        this.ctx.progress(`${now - seen} OOM kill(s) in the group; the daemon goes on (OOMPolicy=continue)`);
        seen = now;
      }
      if (!exited) await sleep(100);
    }
  }

  /** SIGTERM to the daemon running now and the end of supervision. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
    this.#stopping = true;
    await this.#loop;
    const daemon = this.current;
    if (daemon === undefined || daemon.exit !== undefined) return undefined;
    const { code, signal } = await this.rig.fleet.terminate(daemon, 30_000);
    return { code, signal };
  }
}

/** Uploads as the uploader (so S3 events follow): one PutObject, or 8 MiB parts above that. */
async function upload(stand: StandIn, s3: S3Client, key: string, body: Buffer): Promise<void> {
  const params = { Bucket: stand.config.sourceBucket, Key: key, Body: body };
  if (body.length <= PART_BYTES) {
    await persist(() => s3.send(new PutObjectCommand(params)));
    return;
  }
  await persist(() => new Upload({ client: s3, params, partSize: PART_BYTES, queueSize: 2 }).done());
}

/** The DLQ's messages as they arrive, each read once and hidden for the rest of the run. */
class DlqWatch {
  readonly keys = new Set<string>();
  constructor(private readonly rig: Rig) {}

  async poll(): Promise<void> {
    const { sqs } = this.rig.admin;
    const url = this.rig.harness.stand.queue.dlqUrl;
    // Bounded: 10 a receive, far more rounds than the corpus has documents.
    for (let round = 0; round < 50; round++) {
      const { Messages = [] } = await persist(() =>
        sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 43_200 })),
      );
      if (Messages.length === 0) return;
      for (const m of Messages) for (const key of keysInBody(m.Body)) this.keys.add(key);
    }
  }
}

/** The "document" lines of every daemon so far, by key. */
function documentLinesByKey(rig: Rig): Map<string, LogLine[]> {
  const out = new Map<string, LogLine[]>();
  for (const line of rig.fleet.lines()) {
    if (line.msg !== "document" || typeof line["key"] !== "string") continue;
    const key = line["key"];
    out.set(key, [...(out.get(key) ?? []), line]);
  }
  return out;
}

/** Outcomes after which the message is deleted: nothing more will happen to the document. */
const FINAL = new Set(["done", "failed-permanently", "superseded"]);

function isSettled(key: string, lines: Map<string, LogLine[]>, dlq: DlqWatch): boolean {
  return dlq.keys.has(key) || (lines.get(key) ?? []).some((l) => FINAL.has(String(l["outcome"])));
}

/** Polls until every key is settled (a final outcome, or in the DLQ); false at the deadline. */
async function waitSettled(rig: Rig, dlq: DlqWatch, keys: readonly string[], timeoutMs: number, signal: AbortSignal): Promise<boolean> {
  return pollUntil(
    async () => {
      await dlq.poll();
      const lines = documentLinesByKey(rig);
      return keys.every((k) => isSettled(k, lines, dlq));
    },
    { timeoutMs, intervalMs: 500, signal },
  );
}

interface Fate {
  /** text, error CODE, dlq: reason, dlq (no reason logged), still queued, lost. */
  label: string;
  accounted: boolean;
  kind: "text" | "error" | "dlq" | "dlq-unexplained" | "queued" | "lost";
}

/** " (4.2 s)": how long the last final outcome took, receive count if not the first. */
function took(lines: readonly LogLine[] | undefined): string {
  const last = (lines ?? []).filter((l) => FINAL.has(String(l["outcome"]))).at(-1);
  if (last === undefined) return "";
  const receives = Number(last["receiveCount"]);
  const ms = Number(last["durationMs"]);
  return ` (${ms < 1_000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`}${receives > 1 ? `, receive ${receives}` : ""})`;
}

async function fateOf(
  recordSuffix: string,
  rig: Rig,
  key: string,
  outputs: ReadonlySet<string>,
  lines: Map<string, LogLine[]>,
  dlq: DlqWatch,
  queued: ReadonlySet<string>,
): Promise<Fate> {
  const hasText = outputs.has(`${key}.txt`) && outputs.has(`${key}${recordSuffix}`);
  if (outputs.has(`${key}.error.json`)) {
    const { stand } = rig.harness;
    const text = await persist(async () => {
      const res = await rig.admin.s3.send(new GetObjectCommand({ Bucket: stand.config.outputBucket, Key: `${key}.error.json` }));
      return res.Body!.transformToString();
    });
    let code: unknown;
    try {
      code = (JSON.parse(text) as { code?: unknown }).code;
    } catch {
      code = undefined;
    }
    const ok = typeof code === "string" && code.length > 0;
    const label = ok ? `error ${String(code)}${hasText ? " (and text)" : ""}${took(lines.get(key))}` : "error record without a code";
    return { kind: "error", accounted: ok, label };
  }
  if (hasText) return { kind: "text", accounted: true, label: `text${took(lines.get(key))}` };
  if (dlq.keys.has(key)) {
    const reasons = (lines.get(key) ?? [])
      .filter((l) => typeof l["reason"] === "string")
      .map((l) => `${String(l["code"] ?? l["outcome"])}: ${String(l["reason"])}`);
    const last = reasons.at(-1);
    return last === undefined
      ? { kind: "dlq-unexplained", accounted: false, label: "DLQ, no reason in the log" }
      : { kind: "dlq", accounted: true, label: `DLQ (${last.slice(0, 120)})` };
  }
  if (queued.has(key)) return { kind: "queued", accounted: false, label: "still queued" };
  return { kind: "lost", accounted: false, label: "lost" };
}

/** "(daemon 150MB + 1 other process(es) 70MB)": medians of the daemon's own RSS and of the rest of its tree. */
function split(medians: RssMedians, processes: number): string {
  if (medians.main === undefined) return "";
  const others = processes - 1;
  return `(daemon ${mb(medians.main)}${others > 0 ? ` + ${others} other process(es) ${mb(Math.max(0, medians.total - medians.main))}` : ""})`;
}

/**
 * A few ordinary documents first, so the steady RSS is that of a daemon that has worked: SDK clients, the extraction
 * process, and every end of the pipeline (an output, a large output written in parts, and an error record for a
 * document it refuses), whose code is loaded and compiled on first use (without them, that first use was counted as
 * growth: the settled daemon came out +7% to +19%).
 */
/** `text` repeated up to `bytes` characters (ASCII). */
function repeatTo(text: string, bytes: number): string {
  return text.repeat(Math.ceil(bytes / text.length)).slice(0, bytes);
}

/** A PDF cut short before its cross-reference table: an ordinary mistake, refused with an error record. */
function truncated(pdf: Buffer): Buffer {
  return pdf.subarray(0, Math.floor(pdf.length / 2));
}

function warmUpDocs(): (HostileDoc & { refused?: true })[] {
  const prose = Array.from({ length: 30 }, (_, i) => `Paragraph ${i} of an ordinary document, with ordinary words in it.`);
  return [
    { name: "ordinary.txt", what: "text", body: Buffer.from(prose.join("\n")) },
    { name: "ordinary.html", what: "HTML", body: Buffer.from(`<html><body>${prose.map((p) => `<p>${p}</p>`).join("")}</body></html>`) },
    { name: "ordinary.docx", what: "DOCX", body: makeDocx(prose) },
    { name: "ordinary.pdf", what: "PDF", body: makePdf([prose.slice(0, 15), prose.slice(15)]) },
    { name: "ordinary-truncated.pdf", what: "PDF cut in half (refused: CORRUPT)", body: truncated(makePdf([prose])), refused: true },
    // Large but ordinary: 12 MiB of text, streamed, its text written by a multipart upload.
    { name: "ordinary-large.txt", what: "12 MiB of text", body: Buffer.from(repeatTo(`${prose.join("\n")}\n`, 12 * MiB)) },
  ];
}

/** What differs between the text chain's run and the OCR chain's. */
interface Variant {
  name: string;
  processors: string[];
  /** The record written beside `<key>.txt` for a document read. */
  recordSuffix: string;
  budgetMs: Record<Mode, number>;
  corpus(ctx: ScenarioContext): Promise<HostileDoc[]>;
  warmUp(): Promise<(HostileDoc & { refused?: true })[]>;
  /** Daemon settings of the variant's processor, per mode. */
  config(mode: Mode): Record<string, unknown>;
}

/** The OCR processor's pixel limit (its default), which the noise page is sized to. */
const OCR_MAX_PIXELS = 12_000_000;

const TEXT_VARIANT: Variant = {
  name: "hostile",
  processors: ["metadata", "text"],
  recordSuffix: ".text.json",
  budgetMs: { quick: 300_000, full: 1_800_000 },
  corpus: async (ctx) =>
    hostileCorpus(ctx.rng, { maxBufferedBytes: MAX_BUFFERED_BYTES, extractionMemoryBytes: EXTRACTION_MEMORY_BYTES, full: ctx.mode === "full" }),
  warmUp: async () => warmUpDocs(),
  config: (mode) => {
    const seconds = SETTINGS[mode].extractionTimeoutSeconds;
    return seconds === undefined ? {} : { extractionTimeoutSeconds: seconds };
  },
};

const OCR_VARIANT: Variant = {
  name: "hostile-ocr",
  processors: ["metadata", "ocr"],
  recordSuffix: ".ocr.json",
  budgetMs: { quick: 300_000, full: 1_800_000 },
  corpus: (ctx) => hostileOcrCorpus(ctx.rng, { maxPixels: OCR_MAX_PIXELS, full: ctx.mode === "full" }),
  warmUp: ocrWarmUpDocs,
  // Quick mode: a page that never ends (the noise page) holds the one OCR slot 10 s, not the default 120 s.
  config: (mode) => ({ ocrMaxPixels: OCR_MAX_PIXELS, ...(mode === "quick" ? { ocrPageTimeoutSeconds: 10, ocrTimeoutSeconds: 30 } : {}) }),
};

export const hostile: Scenario = hostileScenario(TEXT_VARIANT);
export const hostileOcr: Scenario = hostileScenario(OCR_VARIANT);

function hostileScenario(variant: Variant): Scenario {
  return {
    name: variant.name,
    budgetMs: variant.budgetMs,
    async run(ctx) {
      const report = new Report();
      const mode = ctx.mode;
      const settings = SETTINGS[mode];
      const unit = readUnitLimits();
      const restartMs = settings.restartMs ?? unit.restartMs;

      const generated = Date.now();
      const corpus = await variant.corpus(ctx);
      const corpusBytes = corpus.reduce((sum, d) => sum + d.body.length, 0);
      ctx.progress(`generated ${corpus.length} hostile documents (${mb(corpusBytes)}) in ${((Date.now() - generated) / 1000).toFixed(1)} s`);

      const limit = createMemoryLimit({
        limitBytes: unit.memoryMaxBytes,
        highBytes: unit.memoryHighBytes,
        swapMaxBytes: unit.memorySwapMaxBytes,
        oomGroup: unit.oomPolicy === "kill",
        only: forcedEnforcement(),
      });
      ctx.progress(`memory limit: ${limit.description}`);
      let rig: Rig | undefined;
      let supervisor: Supervisor | undefined;
      const sampler = new RssSampler(() => limit.pids(), 50, () => supervisor?.current?.process.child.pid);
      try {
        rig = await startRig(
          ctx,
          { maxReceiveCount: settings.maxReceiveCount, visibilityTimeoutSeconds: settings.visibilitySeconds },
          { visibilityTimeoutSeconds: settings.visibilitySeconds },
        );
        const { stand } = rig.harness;
        const config = {
          processor: variant.processors,
          maxBufferedBytes: MAX_BUFFERED_BYTES,
          ...variant.config(mode),
        };
        supervisor = new Supervisor(rig, limit, unit, config, restartMs, ctx);
        await supervisor.start();
        sampler.start();
        const dlq = new DlqWatch(rig);

        // Warm-up, then the steady RSS.
        const warm = (await variant.warmUp()).map((d) => ({ ...d, key: `warm-up/${d.name}` }));
        for (const d of warm) await upload(stand, rig.uploader.s3, d.key, d.body);
        await waitSettled(rig, dlq, warm.map((d) => d.key), 60_000, ctx.signal);
        // Ordinary documents must come out as text: otherwise the daemon cannot extract at all here (a broken install,
        // an extractor that cannot start), and every hostile document would only measure that.
        const warmLines = documentLinesByKey(rig);
        const expected = (d: (typeof warm)[number]): string => (d.refused === true ? "failed-permanently" : "done");
        const broken = warm.filter((d) => !(warmLines.get(d.key) ?? []).some((l) => l["outcome"] === expected(d)));
        if (broken.length > 0) {
          for (const d of broken) {
            const last = (warmLines.get(d.key) ?? []).at(-1);
            const why = last === undefined ? "no outcome" : `${String(last["outcome"])}: ${String(last["reason"])}`;
            report.fail(`warm-up: ${d.name} did not end ${expected(d)} (${why})`);
          }
          return report;
        }
        await sleep(settings.idleMs, ctx.signal);
        const steady = await sampler.median(settings.measureMs, ctx.signal);
        const steadySplit = split(steady, sampler.processes);
        ctx.progress(`steady RSS ${mb(steady.total)} (daemon ${mbOf(steady.main)}) after the warm-up`);

        // All at once.
        supervisor.during = "all at once";
        const atOnce = corpus.map((d) => ({ ...d, key: `hostile/at-once/${d.name}` }));
        const atOnceWindow = sampler.window();
        const started = Date.now();
        let next = 0;
        await Promise.all(
          Array.from({ length: 4 }, async () => {
            while (next < atOnce.length) {
              const d = atOnce[next++]!;
              await upload(stand, rig!.uploader.s3, d.key, d.body);
            }
          }),
        );
        const atOnceSettled = await waitSettled(rig, dlq, atOnce.map((d) => d.key), settings.atOnceMs, ctx.signal);
        atOnceWindow.end();
        const atOnceMs = Date.now() - started;
        const atOnceState = atOnceSettled ? "settled" : "NOT settled";
        ctx.progress(`all at once: ${atOnceState} in ${(atOnceMs / 1000).toFixed(1)} s, peak ${mb(atOnceWindow.peak())}`);
        // The emulator keeps objects in this process's memory: drop the sources nothing will read again.
        const linesSoFar = documentLinesByKey(rig);
        for (const d of atOnce.filter((x) => isSettled(x.key, linesSoFar, dlq))) {
          await persist(() => rig!.admin.s3.send(new DeleteObjectCommand({ Bucket: stand.config.sourceBucket, Key: d.key })));
        }

        // One after another, each alone in the daemon.
        const inARow = corpus.map((d) => ({ ...d, key: `hostile/in-a-row/${d.name}` }));
        const rowPeaks = new Map<string, { before: number; peak: number; ms: number; settled: boolean }>();
        const rowStarted = Date.now();
        const ranInARow: typeof inARow = [];
        let rowWindowPeak = 0;
        for (const d of inARow) {
          const left = settings.inARowMs - (Date.now() - rowStarted);
          if (left <= 0) {
            report.fail(`one after another: out of time before ${d.name} (${settings.inARowMs / 1000} s for the phase)`);
            break;
          }
          supervisor.during = d.name;
          const before = sampler.sample();
          const window = sampler.window();
          const t0 = Date.now();
          await upload(stand, rig.uploader.s3, d.key, d.body);
          ranInARow.push(d);
          const settled = await waitSettled(rig, dlq, [d.key], Math.min(settings.perDocMs, left), ctx.signal);
          window.end();
          rowPeaks.set(d.name, { before, peak: window.peak(), ms: Date.now() - t0, settled });
          rowWindowPeak = Math.max(rowWindowPeak, window.peak());
          const state = settled ? "settled" : "NOT settled";
          ctx.progress(`in a row: ${d.name} ${state} in ${((Date.now() - t0) / 1000).toFixed(1)} s, peak ${mb(window.peak())}`);
        }
        supervisor.during = "settling";

        // Everything still under way finishes (or reaches the DLQ); then the queue is empty and the daemon idles.
        const allKeys = [...atOnce, ...ranInARow].map((d) => d.key);
        const allSettled = await waitSettled(rig, dlq, allKeys, settings.settleMs, ctx.signal);
        const queueEmpty = await pollUntil(
          async () => {
            const depth = await depthOf(rig!.admin.sqs, stand.queue.url);
            return depth.visible === 0 && depth.inFlight === 0;
          },
          { timeoutMs: settings.settleMs, intervalMs: 500, signal: ctx.signal },
        );
        await sleep(settings.idleMs, ctx.signal);
        const settled = await sampler.median(settings.measureMs, ctx.signal);
        const settledSplit = split(settled, sampler.processes);
        const peak = sampler.peak;
        const chargePeak = limit.peakChargeBytes();
        sampler.stop();
        const stop = await supervisor.stop();
        // Messages a killed daemon held come back after their visibility timeout: wait for them, so a document still
        // under way shows as queued rather than lost.
        await pollUntil(async () => (await depthOf(rig!.admin.sqs, stand.queue.url)).inFlight === 0, {
          timeoutMs: 15_000,
          intervalMs: 500,
          signal: ctx.signal,
        });
        await dlq.poll();

        // The audit: every document's fate, from the outputs, the DLQ and the logs.
        const outputs = new Set(await listOutputKeys(stand, rig.admin.s3));
        const queued = new Set((await takeAll(rig.admin.sqs, stand.queue.url)).flatMap((m) => keysInBody(m.Body)));
        const lines = documentLinesByKey(rig);
        const fates = new Map<string, Fate>();
        for (const key of allKeys) fates.set(key, await fateOf(variant.recordSuffix, rig, key, outputs, lines, dlq, queued));
        const count = (kind: Fate["kind"]): number => [...fates.values()].filter((f) => f.kind === kind).length;
        const unaccounted = [...fates].filter(([, f]) => !f.accounted);

        const restarts = supervisor.restarts;
        const ooms = restarts.filter((r) => r.cause === "oom-kill").length;
        const growth = (after: number | undefined, before: number | undefined): number | undefined =>
          after === undefined || before === undefined ? undefined : after / before - 1;
        const treeGrowth = growth(settled.total, steady.total)!;
        const daemonGrowth = growth(settled.main, steady.main);
        report.figure("limit", `${limit.kind}:${Math.round(unit.memoryMaxBytes / MiB)}MiB`);
        report.figure("docs", allKeys.length);
        report.figure("text", count("text"));
        report.figure("errorRecords", count("error"));
        report.figure("dlq", count("dlq") + count("dlq-unexplained"));
        report.figure("unaccounted", unaccounted.length);
        report.figure("restarts", `${restarts.length}(oom=${ooms},crash=${restarts.length - ooms})`);
        report.figure("oomKills", limit.oomKills());
        report.figure("rssSteady", `${mb(steady.total)}(daemon ${mbOf(steady.main)})`);
        report.figure("rssPeak", mb(peak));
        report.figure("rssSettled", `${mb(settled.total)}(${percent(treeGrowth)},daemon ${mbOf(settled.main)}(${percent(daemonGrowth)}))`);
        if (chargePeak !== undefined && limit.kind !== "watchdog") report.figure("cgroupPeak", mb(chargePeak));

        if (supervisor.failure !== undefined) report.fail(`supervising the daemon failed: ${supervisor.failure.message}`);
        report.check(restarts.length === 0, `${restarts.length} restart(s): ${ooms} OOM kill(s), ${restarts.length - ooms} crash(es) (below)`);
        report.check(
          unaccounted.length === 0,
          `${unaccounted.length} document(s) not accounted for (no text, no error record with a code, no DLQ message with a logged reason): ` +
            unaccounted.map(([key, f]) => `${key} [${f.label}]`).slice(0, 12).join(", "),
        );
        report.check(
          daemonGrowth !== undefined && daemonGrowth <= SETTLED_TOLERANCE,
          daemonGrowth === undefined
            ? "the daemon's own RSS could not be read before and after the corpus"
            : `the daemon's settled RSS ${mbOf(settled.main)} is ${percent(daemonGrowth)} from the steady ${mbOf(steady.main)} ` +
                `(at most +${SETTLED_TOLERANCE * 100}%)`,
        );
        report.check(
          treeGrowth <= SETTLED_TOLERANCE,
          `the process tree's settled RSS ${mb(settled.total)} is ${percent(treeGrowth)} from the steady ${mb(steady.total)} ` +
            `(at most +${SETTLED_TOLERANCE * 100}%)`,
        );
        report.check(atOnceSettled, `all at once: not every document settled within ${settings.atOnceMs / 1000} s`);
        report.check(allSettled, `not every document settled (final outcome or DLQ) by the end`);
        report.check(queueEmpty, "the queue was not empty at the end");
        const bugs = rig.fleet.brokenLines();
        report.check(bugs.length === 0, `${bugs.length} fatal/bug log line(s), first: ${JSON.stringify(bugs[0] ?? {}).slice(0, 300)}`);
        if (stop !== undefined) {
          report.check(stop.code === 0 && stop.signal === null, `the last daemon exited ${stop.code ?? stop.signal} on SIGTERM, expected 0`);
        }

        report.detail(
          `memory limit: ${limit.description}; OOMPolicy=${unit.oomPolicy}; the daemon's Node flags: ${unit.nodeFlags.join(" ")}`,
        );
        for (const f of limit.fallbacks) report.detail(`  (not used: ${f})`);
        report.detail(
          `RSS of the daemon's process tree (/proc, every 50 ms): steady ${mb(steady.total)} ${steadySplit} after ${warm.length} ordinary ` +
            `documents (one refused, one of 12 MiB) and ${settings.idleMs / 1000} s idle; peak ${mb(atOnceWindow.peak())} all at once (${(atOnceMs / 1000).toFixed(0)} s), ` +
            `${mb(rowWindowPeak)} one after another; settled ${mb(settled.total)} ${settledSplit} ${settings.idleMs / 1000} s after the ` +
            "queue emptied. " +
            (limit.kind === "watchdog"
              ? "The watchdog compares that RSS, file pages (the node binary, libraries) included, with the limit"
              : "RSS includes file pages (the node binary, libraries) that the kernel can reclaim and here charges to the " +
                "runner's group, which mapped them first: RSS can pass the limit; cgroupPeak is the charge the limit counts"),
        );
        report.detail(
          `corpus: ${corpus.length} documents, ${mb(corpusBytes)}, uploaded twice (all at once, then one after another); ` +
            `maxReceiveCount ${settings.maxReceiveCount}, extractionTimeoutSeconds ${settings.extractionTimeoutSeconds ?? "default"}, ` +
            `restart after ${restartMs / 1000} s`,
        );
        for (const r of restarts) report.detail(`restart: daemon #${r.daemon} ${r.cause} (${r.detail}) during ${r.during ?? "?"}`);
        for (const during of supervisor.survivedOomKills) report.detail(`OOM kill the daemon survived (OOMPolicy=continue) during ${during ?? "?"}`);
        report.detail(
          "each document (its size, what it does): all at once -> its fate; alone -> its fate, RSS when it arrived -> peak while it ran",
        );
        for (const d of corpus) {
          const once = fates.get(`hostile/at-once/${d.name}`)?.label ?? "not run";
          const row = fates.get(`hostile/in-a-row/${d.name}`)?.label;
          const p = rowPeaks.get(d.name);
          const unsettled = p?.settled === false ? ` (unsettled after ${(p.ms / 1000).toFixed(0)} s)` : "";
          const alone = p === undefined ? "not run" : `${row ?? "?"}, RSS ${mb(p.before)} -> ${mb(p.peak)}${unsettled}`;
          report.detail(`  ${d.name} (${mb(d.body.length)}, ${d.what}): at once -> ${once}; alone -> ${alone}`);
        }
      } catch (err) {
        if (err instanceof Aborted) throw err;
        report.fail(`threw: ${(err as Error).stack ?? String(err)}`);
      } finally {
        sampler.stop();
        try {
          await supervisor?.stop();
          await rig?.close();
        } finally {
          await limit.close();
        }
      }
      return report;
    },
  };
}
