// `npm run bench [-- --quick]`: the daemon against its baselines, in one run, on the same local stand-in and data.
// Small-document workload (4 KiB each): the stand-in runs in this process (on core 1 when taskset exists), each
// contender as a child pinned to core 0 with the Node flags of the systemd unit (heap and young-generation limits):
//   daemon        node dist/cli.js run (processor `metadata`, the lean transport)
//   daemon (sha256 only), (sha256, sdk)  the daemon doing the baselines' job, on the lean and on the SDK transport
//   raw           hand-written SDK loop (test/bench/peer-worker.ts raw): what everyone writes
//   lean loop     the same loop on the daemon's lean transport (peer-worker.ts lean): the practical limit
//   aws-lite loop the same loop on @aws-lite/client (peer-worker.ts aws-lite): the maintained lean alternative
//   sqs-consumer  the same job on sqs-consumer, usual settings (peer-worker.ts sqs-consumer)
//   shell         the seed-style loop: /usr/bin/aws s3 cp down and up per object, on a sample
// The same documents are re-uploaded before each queue consumer. Every figure is measured in this run: documents/s and
// MB/s from the first ReceiveMessage to the last finished document, CPU ms/document from /proc (utime+stime, READY to
// last document), role requests/document (gateway, first receive to exit), peak RSS (VmHWM), READY time. Start-up and
// JIT warm-up are inside those, so each queue consumer also gets steady-state documents/s and CPU ms/document after a
// warm-up prefix (test/bench/steady.ts), and the documents an hour that CPU allows on a t2.micro's baseline budget.
// Prints the tables and the targets (to reach, not asserted), saves JSON (default bench-results/latest.json). Then, each as a child
// with its own table and JSON beside it: pdf-bench.ts (the text processor on PDFs), and in the full run only (the
// quick one stays under a minute) streaming.ts (8 x 256 MiB, RSS against object size), scale-out.ts (1 vs 3
// daemons on one queue) and text-mix.ts (the text processor through the daemon on a txt/html/docx/pdf mix).
// Exit 0 when every part completed; targets are reported, not asserted.
// Options: --quick, --docs N, --shell-docs N, --concurrency N, --out FILE, --no-pdf, --no-streaming, --no-scale-out,
// --no-text-mix, --only NAMES (comma-separated parts of contender names), --node-flags="FLAGS" (added to the unit's; the = is needed, they start with a dash),
// --rounds N (passes over the queue consumers in turns, each figure from the median round: 3 in the full run, 1 in the
// quick one), --profile DIR (a CPU profile per Node contender), --profile-stand-in DIR (one of the stand-in per contender's steady
// window), --compare CLI (another build's dist/cli.js, e.g. of a git worktree at the base commit, run on the raw
// loop's job right after this build's: an A/B of a change in one run).
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { DAEMON_CLI } from "../local/daemon-process.js";
import type { StandIn } from "../local/stand-in.js";
import { startContender } from "./contender.js";
import { taskset, ticksToMs } from "./proc.js";
import {
  AWS_LITE_LOOP,
  DAEMON_SHA256,
  DAEMON_SHA256_COMPARED,
  DAEMON_SHA256_SDK,
  LEAN_LOOP,
  RAW,
  SQS_CONSUMER,
  checkTargets,
  formatReport,
  medianOfRounds,
  type ContenderResult,
} from "./report.js";
import { T2_MICRO_BASELINE_CPU_MS_PER_HOUR, t2MicroDocsPerHour } from "./steady.js";
import {
  contenderEnv,
  daemonConfigFile,
  makeDocuments,
  runConsumer,
  saveResults,
  say,
  startMeasuredStandIn,
  unitNodeFlags,
  type ConsumerRun,
  type Measured,
  type MeasuredStandIn,
} from "./workload.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const PEER_WORKER = fileURLToPath(new URL("./peer-worker.ts", import.meta.url));
const PDF_BENCH = fileURLToPath(new URL("./pdf-bench.ts", import.meta.url));
const STREAMING_BENCH = fileURLToPath(new URL("./streaming.ts", import.meta.url));
const SCALE_OUT_BENCH = fileURLToPath(new URL("./scale-out.ts", import.meta.url));
const TEXT_MIX_BENCH = fileURLToPath(new URL("./text-mix.ts", import.meta.url));
// The ocr processor's pages per CPU-second and peak RSS (skipped with --no-ocr), run after pdf-bench.ts.
const OCR_BENCH = fileURLToPath(new URL("./ocr-bench.ts", import.meta.url));
const SHA256_PROCESSOR = fileURLToPath(new URL("./sha256-processor.mjs", import.meta.url));
const DOC_BYTES = 4 * 1024;
/** The unit's Node flags (heap and young-generation limits), for every Node contender. */
const UNIT_FLAGS = unitNodeFlags();

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    docs: { type: "string" },
    "shell-docs": { type: "string" },
    concurrency: { type: "string", default: "4" },
    out: { type: "string", default: join(REPO, "bench-results", "latest.json") },
    "no-pdf": { type: "boolean", default: false },
    "no-ocr": { type: "boolean", default: false },
    "no-streaming": { type: "boolean", default: false },
    "no-scale-out": { type: "boolean", default: false },
    "no-text-mix": { type: "boolean", default: false },
    only: { type: "string" },
    "node-flags": { type: "string" },
    profile: { type: "string" },
    "profile-stand-in": { type: "string" },
    compare: { type: "string" },
    rounds: { type: "string" },
  },
});
const quick = values.quick;
/** --only: contenders whose name contains one of these (comma-separated), e.g. `--only "sha256,raw"`. */
const only = values.only?.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
const selected = (name: string): boolean => only === undefined || only.some((o) => name.includes(o));
/**
 * The unit's Node flags, plus --node-flags (to measure a change of them: --node-flags="--max-semi-space-size=4") and, with
 * --profile DIR, a CPU profile per contender (node --cpu-prof) in DIR.
 */
const NODE_FLAGS = [
  ...UNIT_FLAGS,
  ...(values["node-flags"]?.split(" ").filter((f) => f.length > 0) ?? []),
  ...(values.profile === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${values.profile}`]),
];
const docCount = Number(values.docs ?? (quick ? 200 : 2000));
const shellCount = Number(values["shell-docs"] ?? (quick ? 3 : 20));
const concurrency = Number(values.concurrency);
/** Passes over the queue consumers, in turns; each reported figure is the median round (report.ts medianOfRounds). */
const rounds = Number(values.rounds ?? (quick ? 1 : 3));
for (const [name, n] of [["docs", docCount], ["shell-docs", shellCount], ["concurrency", concurrency], ["rounds", rounds]] as const) {
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`--${name} takes a whole number >= 1\n`);
    process.exit(64);
  }
}
/** The seed's by-hand loop on a sample of the uploaded objects: two AWS CLI runs per document. */
async function runShell(standIn: StandIn, measured: Measured, keys: string[]): Promise<ContenderResult | null> {
  const aws = "/usr/bin/aws";
  if (!existsSync(aws)) {
    say(`shell loop skipped: ${aws} is missing (apt-get install awscli)`);
    return null;
  }
  const home = mkdtempSync(join(tmpdir(), "dp-bench-cli-"));
  const script = [
    "set -euo pipefail",
    `for key in "$@"; do`,
    `  "$AWS" --endpoint-url "$ENDPOINT" s3 cp --only-show-errors "s3://$SOURCE/$key" "$HOME/in"`,
    `  size=$(stat -c %s "$HOME/in"); sum=$(sha256sum "$HOME/in" | cut -d' ' -f1)`,
    `  printf '{"source":{"bucket":"%s","key":"%s"},"bytes":%s,"sha256":"%s"}\\n' "$SOURCE" "$key" "$size" "$sum" > "$HOME/out.json"`,
    `  "$AWS" --endpoint-url "$ENDPOINT" s3 cp --only-show-errors "$HOME/out.json" "s3://$OUTPUT/$key.json"`,
    `  echo "$key"`,
    "done",
    // The loop's CPU including its finished children (cutime+cstime), read by the shell itself before it exits.
    `cat /proc/$$/stat >&2`,
  ].join("\n");
  const env = {
    PATH: "/usr/bin:/bin",
    HOME: home,
    AWS: aws,
    ENDPOINT: standIn.urls.gateway,
    SOURCE: standIn.config.sourceBucket,
    OUTPUT: standIn.config.outputBucket,
    AWS_EC2_METADATA_SERVICE_ENDPOINT: standIn.urls.imds,
    AWS_DEFAULT_REGION: standIn.region,
    AWS_CONFIG_FILE: join(home, "config"),
    AWS_SHARED_CREDENTIALS_FILE: join(home, "credentials"),
    AWS_PAGER: "",
  };
  const pinTool = taskset();
  const command = pinTool ?? "bash";
  const args = [...(pinTool !== null ? ["-c", "0", "bash"] : []), "-c", script, "shell-loop", ...keys];
  const started = performance.now();
  const result = await new Promise<{ stdout: string; stderr: string; code: number }>((done) => {
    execFile(command, args, { env, timeout: 300_000 }, (err, stdout, stderr) => {
      done({ stdout, stderr, code: err ? (typeof err.code === "number" ? err.code : 1) : 0 });
    });
  });
  const ended = performance.now();
  const finished = result.stdout.split("\n").filter((l) => l.length > 0).length;
  if (result.code !== 0 || finished !== keys.length) {
    say(`shell loop failed (exit ${result.code}, ${finished} of ${keys.length}): ${result.stderr.slice(-2000)}`);
    return null;
  }
  const statLine = result.stderr.trim().split("\n").pop() ?? "";
  const fields = statLine.slice(statLine.lastIndexOf(")") + 2).split(" ");
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i] ?? NaN), 0);
  const cpu = Number.isFinite(ticks) ? ticksToMs(ticks) : null;
  const requests = measured.requests.filter((r) => r.at >= started && r.at <= ended).length;
  const byAction: Record<string, number> = {};
  for (const c of measured.checks) if (c.at >= started && c.at <= ended) byAction[c.action] = (byAction[c.action] ?? 0) + 1;
  const seconds = (ended - started) / 1000;
  return {
    name: "shell (aws s3 cp)",
    documents: finished,
    duplicates: 0,
    failures: 0,
    seconds,
    docsPerSecond: finished / seconds,
    mbPerSecond: (finished * DOC_BYTES) / 1e6 / seconds,
    cpuMsPerDoc: cpu !== null ? cpu / finished : null,
    cpuMsTotal: cpu,
    requestsPerDoc: requests / finished,
    requestsByAction: byAction,
    peakRssMb: null,
    readyMs: null,
    pinned: pinTool !== null,
    exit: result.code,
    // A sample of a few documents, each two CLI starts: nothing to warm up, too few to leave a prefix out.
    steady: null,
  };
}

/** Runs another bench script as a child (its output goes straight through); resolves to its exit code. */
async function runPart(script: string, args: string[]): Promise<number> {
  say(`\n${script.slice(script.lastIndexOf("/") + 1)} ${args.join(" ")}`);
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], { cwd: REPO, stdio: ["ignore", "inherit", "inherit"] });
  return new Promise((done) => child.on("exit", (code) => done(code ?? 1)));
}

/** One pass over the queue consumers (every selected one but the shell loop), on the same documents. */
async function runRound(bench: MeasuredStandIn, docs: ReturnType<typeof makeDocuments>, childEnv: ReturnType<typeof contenderEnv>): Promise<ContenderResult[]> {
  const { standIn } = bench;
  const results: ContenderResult[] = [];

  let daemon: ConsumerRun | undefined;
  if (selected("daemon")) {
    say("daemon…");
    const configPath = daemonConfigFile(standIn, { processor: "metadata", concurrency });
    daemon = await runConsumer("daemon", bench, docs, (onLog) =>
      startContender({ args: [DAEMON_CLI, "run", "--config", configPath], nodeFlags: NODE_FLAGS, env: childEnv, onLog }),
    );
    results.push(daemon);
  }

  say("daemon with the baselines' job (sha256 only)…");
  for (const [name, transport] of [[DAEMON_SHA256, "lean"], [DAEMON_SHA256_SDK, "sdk"]] as const) {
    if (!selected(name)) continue;
    if (transport === "sdk") say("the same on the SDK transport…");
    const jobOnlyConfig = daemonConfigFile(standIn, { processor: SHA256_PROCESSOR, concurrency, transport });
    results.push(
      await runConsumer(name, bench, docs, (onLog) =>
        startContender({ args: [DAEMON_CLI, "run", "--config", jobOnlyConfig], nodeFlags: NODE_FLAGS, env: childEnv, onLog }),
      ),
    );
    if (transport === "lean" && values.compare !== undefined) {
      const other = values.compare;
      say(`the same with ${other}…`);
      results.push(
        await runConsumer(DAEMON_SHA256_COMPARED, bench, docs, (onLog) =>
          startContender({ args: [other, "run", "--config", jobOnlyConfig], nodeFlags: NODE_FLAGS, env: childEnv, onLog }),
        ),
      );
    }
  }

  const job = JSON.stringify({
    endpoint: standIn.urls.gateway,
    region: standIn.region,
    queueUrl: standIn.queue.url,
    outputBucket: standIn.config.outputBucket,
    concurrency,
    // The daemon's metadata record size; without a daemon run (--only), about what it writes for these documents.
    outputBytes: Math.round(daemon?.bytesOutPerDoc ?? 700),
  });
  const peers = [
    ["raw", RAW],
    ["lean", LEAN_LOOP],
    ["aws-lite", AWS_LITE_LOOP],
    ["sqs-consumer", SQS_CONSUMER],
  ] as const;
  for (const [mode, name] of peers) {
    if (!selected(name)) continue;
    say(`${name}…`);
    results.push(
      await runConsumer(name, bench, docs, (onLog) =>
        startContender({ args: [PEER_WORKER, mode, job], nodeFlags: [...NODE_FLAGS, "--import", "tsx"], env: { ...childEnv }, onLog }),
      ),
    );
  }
  return results;
}

async function main(): Promise<number> {
  if (!existsSync(DAEMON_CLI)) {
    say("bench: dist/ is missing; run `npm run build` first");
    return 1;
  }
  if (values.compare !== undefined && !existsSync(values.compare)) {
    say(`bench: --compare ${values.compare}: no such file (another build's dist/cli.js)`);
    return 64;
  }
  // The stand-in (this process) on core 1, the contender on core 0: they do not compete for the measured core.
  const bench: MeasuredStandIn = await startMeasuredStandIn();
  if (values["profile-stand-in"] !== undefined) bench.profileDir = values["profile-stand-in"];
  const { standIn, measured, standInPinned } = bench;
  const results: ContenderResult[] = [];
  try {
    const docs = makeDocuments(docCount, DOC_BYTES);
    const cpuCount = cpus().length;
    say(
      `bench: ${docCount} documents of ${DOC_BYTES} B, concurrency ${concurrency}, ` +
        `${taskset() !== null ? "contenders on core 0" : "no taskset: contenders unpinned"}` +
        `${standInPinned ? ", stand-in on core 1" : ""}, ${cpuCount} CPUs (${cpus()[0]?.model ?? "?"}), Node ${process.version}`,
    );
    const childEnv = contenderEnv(standIn);
    const perRound: ContenderResult[][] = [];
    for (let r = 1; r <= rounds; r++) {
      if (rounds > 1) say(`round ${r} of ${rounds}`);
      perRound.push(await runRound(bench, docs, childEnv));
    }
    results.push(...medianOfRounds(perRound));
    if (selected("shell")) {
      say(`shell loop on ${shellCount} documents…`);
      const shell = await runShell(standIn, measured, docs.slice(0, shellCount).map((d) => d.key));
      if (shell) results.push(shell);
    }
  } finally {
    await standIn.close();
  }

  const targets = checkTargets(results);
  process.stdout.write(formatReport(results, targets));
  const out = saveResults(values.out, quick ? "quick" : "full", {
    workload: { documents: docCount, documentBytes: DOC_BYTES, shellDocuments: shellCount, concurrency, rounds, nodeFlags: NODE_FLAGS },
    results: results.map(({ ...r }) => {
      delete (r as Partial<typeof r> & { bytesOutPerDoc?: number }).bytesOutPerDoc;
      return r;
    }),
    targets,
    t2micro: {
      baselineCpuMsPerHour: T2_MICRO_BASELINE_CPU_MS_PER_HOUR,
      steadyDocsPerHour: Object.fromEntries(results.flatMap((r) => (r.steady ? [[r.name, t2MicroDocsPerHour(r.steady.cpuMsPerDoc)]] : []))),
    },
  });
  say(`saved ${out}`);
  const parts: [skip: boolean, script: string, args: string[]][] = [
    [values["no-pdf"], PDF_BENCH, quick ? ["--pages", "200", "--max-mib", "4"] : []],
    [values["no-ocr"], OCR_BENCH, quick ? ["--pages", "1"] : ["--json", join(dirname(out), "ocr.json")]],
    [quick || values["no-streaming"], STREAMING_BENCH, ["--out", join(dirname(out), "streaming.json")]],
    [quick || values["no-scale-out"], SCALE_OUT_BENCH, ["--out", join(dirname(out), "scale-out.json")]],
    [quick || values["no-text-mix"], TEXT_MIX_BENCH, ["--out", join(dirname(out), "text-mix.json")]],
  ];
  const failed: string[] = [];
  for (const [skip, script, args] of parts) {
    if (!skip && (await runPart(script, args)) !== 0) failed.push(script);
  }
  if (failed.length > 0) say(`bench: failed: ${failed.join(", ")}`);
  return failed.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
