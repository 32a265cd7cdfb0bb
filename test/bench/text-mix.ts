// `npx tsx test/bench/text-mix.ts [--quick] [--out FILE]` (after `npm run build`): the text processor on a document
// mix (issue 5's third workload). The same documents, a quarter each of plain text, HTML, DOCX and PDF (a few pages of
// prose each), go through the daemon twice on the local stand-in: with `metadata` alone, then with
// ["metadata", "text"], pinned and with the unit's Node flags like every contender of npm run bench. Prints documents/s,
// CPU ms per document and peak RSS (the daemon's plus its extraction process's), requests per document and, for the
// text run, the median and 90th-percentile time per document of each type (the daemon's own durationMs). Every figure
// is measured in the run. Full: 400 documents; --quick: 40. JSON to bench-results/text-mix.json by default. Exit 0
// when both runs completed.
import { existsSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { makeDocx, makePdf } from "../fixtures/documents/build.js";
import { DAEMON_CLI } from "../local/daemon-process.js";
import { startContender } from "./contender.js";
import { fmt, percentile, table } from "./report.js";
import { taskset } from "./proc.js";
import {
  contenderEnv,
  daemonConfigFile,
  runConsumer,
  saveResults,
  say,
  startMeasuredStandIn,
  unitNodeFlags,
  type BenchDoc,
  type ConsumerRun,
} from "./workload.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const NODE_FLAGS = unitNodeFlags();
const TYPES = ["txt", "html", "docx", "pdf"] as const;
type DocType = (typeof TYPES)[number];

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    docs: { type: "string" },
    concurrency: { type: "string", default: "4" },
    out: { type: "string", default: join(REPO, "bench-results", "text-mix.json") },
  },
});
const quick = values.quick;
const docCount = Number(values.docs ?? (quick ? 40 : 400));
const concurrency = Number(values.concurrency);
for (const [name, n] of [["docs", docCount], ["concurrency", concurrency]] as const) {
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`--${name} takes a whole number >= 1\n`);
    process.exit(64);
  }
}

/** `count` lines of prose, different for each document and line. */
function prose(doc: number, count: number): string[] {
  const words = ["the", "report", "quarter", "customers", "growth", "market", "and", "of", "revenue", "net", "plan"];
  return Array.from({ length: count }, (_, line) => {
    let s = `${doc}.${line}`;
    for (let i = 0; s.length < 90; i++) s += ` ${words[(doc * 7 + line * 3 + i) % words.length]}`;
    return s;
  });
}

const escapeHtml = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

/** One document of `type`, about 3 pages of prose (~12 KiB of text). */
function documentOf(type: DocType, i: number): Buffer {
  const lines = prose(i, 135);
  switch (type) {
    case "txt":
      return Buffer.from(`${lines.join("\n")}\n`);
    case "html":
      return Buffer.from(
        `<!doctype html><html><head><title>Document ${i}</title><style>p{margin:0}</style></head><body>` +
          `<nav><a href="/">home</a></nav><main>${lines.map((l) => `<p>${escapeHtml(l)}</p>`).join("")}</main></body></html>`,
      );
    case "docx":
      return makeDocx(lines);
    case "pdf":
      return makePdf([lines.slice(0, 45), lines.slice(45, 90), lines.slice(90)], { compress: true });
  }
}

function mixedDocuments(count: number): (BenchDoc & { type: DocType })[] {
  return Array.from({ length: count }, (_, i) => {
    const type = TYPES[i % TYPES.length]!;
    const body = documentOf(type, i);
    return { key: `mix/doc-${String(i).padStart(5, "0")}.${type}`, bytes: body.length, body: () => body, type };
  });
}

async function main(): Promise<number> {
  if (!existsSync(DAEMON_CLI)) {
    say("text-mix: dist/ is missing; run `npm run build` first");
    return 1;
  }
  const bench = await startMeasuredStandIn();
  const { standIn, standInPinned } = bench;
  const docs = mixedDocuments(docCount);
  const typeOf = new Map(docs.map((d) => [d.key, d.type]));
  say(
    `text-mix: ${docCount} documents (${TYPES.join(", ")} in turn, ${fmt(docs.reduce((n, d) => n + d.bytes, 0) / docCount / 1024)} KiB ` +
      `on average), concurrency ${concurrency}; node ${NODE_FLAGS.join(" ")}; ` +
      `${taskset() !== null ? "daemon on core 0" : "no taskset: unpinned"}${standInPinned ? ", stand-in on core 1" : ""}, ` +
      `${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}), Node ${process.version}`,
  );
  const runs: { processors: string[]; run: ConsumerRun; byType: Record<string, { p50: number | null; p90: number | null }> }[] = [];
  try {
    for (const processors of [["metadata"], ["metadata", "text"]]) {
      const label = `daemon ${JSON.stringify(processors)}`;
      say(`${label}…`);
      const durations = new Map<DocType, number[]>(TYPES.map((t) => [t, []]));
      const configPath = daemonConfigFile(standIn, { processor: processors, concurrency });
      const run = await runConsumer(
        label,
        bench,
        docs,
        (onLog) =>
          startContender({
            args: [DAEMON_CLI, "run", "--config", configPath],
            nodeFlags: NODE_FLAGS,
            env: contenderEnv(standIn),
            onLog: (line, at) => {
              const type = typeOf.get(String(line["key"]));
              if (line.msg === "document" && line["outcome"] === "done" && type !== undefined) {
                durations.get(type)?.push(Number(line["durationMs"]));
              }
              onLog(line, at);
            },
          }),
        { failOnOtherOutcome: true },
      );
      const byType = Object.fromEntries(
        [...durations].map(([type, ms]) => {
          const sorted = [...ms].sort((a, b) => a - b);
          return [type, { p50: percentile(sorted, 50), p90: percentile(sorted, 90) }];
        }),
      );
      runs.push({ processors, run, byType });
    }
  } catch (err) {
    say(`text-mix failed: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    await standIn.close();
  }

  const header = ["processors", "docs", "s", "docs/s", "CPU ms/doc", "req/doc", "peak RSS MB", ...TYPES.map((t) => `${t} ms p50/p90`)];
  const rows = runs.map(({ processors, run, byType }) => [
    processors.join(" + "),
    String(run.documents),
    fmt(run.seconds),
    fmt(run.docsPerSecond),
    fmt(run.cpuMsPerDoc),
    fmt(run.requestsPerDoc),
    fmt(run.peakRssMb),
    ...TYPES.map((t) => `${fmt(byType[t]?.p50)}/${fmt(byType[t]?.p90)}`),
  ]);
  process.stdout.write(
    `Text processor on a document mix (durations: the daemon's own, start to result, per document):\n${table([header, ...rows])}\n`,
  );
  const out = saveResults(
    values.out,
    quick ? "quick" : "full",
    {
      workload: { documents: docCount, types: TYPES, concurrency, nodeFlags: NODE_FLAGS },
      runs: runs.map(({ processors, run, byType }) => ({ processors, ...run, durationMsByType: byType })),
    },
    { standInPinned },
  );
  say(`saved ${out}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`text-mix: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
