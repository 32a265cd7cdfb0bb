// PDF extraction figures: pages per second on one core, and memory for the largest PDF the text processor accepts
// (maxBufferedBytes). Prints figures only, asserts nothing. Run after a build (the extractor is dist's):
//   npm run build && npx tsx test/bench/pdf-bench.ts [--pages 2000] [--max-mib 32] [--memory-mib N (default: the config's extractionMemoryBytes)] [--semi-space-mib 2]
// The figures depend on the machine (and on a t2.micro, on its CPU credits): run it where the daemon runs.
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { configSchema } from "../../src/config/schema.js";
import { residentBytes } from "../../src/processors/builtin/text/child.js";
import { ExtractionHost } from "../../src/processors/builtin/text/host.js";
import { extractPdf } from "../../src/processors/builtin/text/pdf.js";
import { makePdf } from "../fixtures/documents/build.js";

const MiB = 1024 * 1024;
// The daemon's default ceiling, from the one place defaults live.
const DEFAULT_MEMORY_MIB = String(configSchema.shape.extractionMemoryBytes.parse(undefined) / MiB);
const { values } = parseArgs({
  options: {
    pages: { type: "string", default: "2000" },
    "max-mib": { type: "string", default: "32" },
    "memory-mib": { type: "string", default: DEFAULT_MEMORY_MIB },
    "semi-space-mib": { type: "string", default: "2" },
  },
});
const pages = Number(values.pages);
const maxBytes = Number(values["max-mib"]) * MiB;
const memoryLimitBytes = Number(values["memory-mib"]) * MiB;
const semiSpaceMiB = Number(values["semi-space-mib"]);

/** A process's CPU seconds from /proc/<pid>/stat (utime + stime, at the usual 100 ticks a second). */
function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "latin1").replace(/^.*\) /, "").split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const extractorUrl = new URL("../../dist/processors/builtin/text/extract-child.js", import.meta.url);
if (!existsSync(fileURLToPath(extractorUrl))) {
  process.stderr.write("pdf-bench: dist/ is missing; run `npm run build` first\n");
  process.exit(1);
}

/** A page of 45 lines of 90 characters of prose-like text, as a report or a book would have. */
function page(n: number): string[] {
  const words = ["revenue", "quarter", "growth", "the", "of", "and", "customers", "market", "report", "2024", "net"];
  return Array.from({ length: 45 }, (_, line) => {
    let s = `${n}.${line}`;
    for (let i = 0; s.length < 90; i++) s += ` ${words[(n * 7 + line * 3 + i) % words.length]}`;
    return s;
  });
}

/** A text PDF of about `bytes` (uncompressed content streams: the most text PDF.js must evaluate per byte). */
function pdfOfSize(bytes: number): { data: Buffer; pages: number } {
  const one = makePdf([page(0)]).length;
  const n = Math.max(1, Math.floor(bytes / (one - 600)));
  const data = makePdf(Array.from({ length: n }, (_, i) => page(i)));
  return { data, pages: n };
}

function line(label: string, figures: Record<string, string | number>): void {
  process.stdout.write(`${label.padEnd(44)} ${Object.entries(figures).map(([k, v]) => `${k}=${v}`).join("  ")}\n`);
}

const limits = { maxTextBytes: 1024 * MiB, maxUncompressedBytes: 1024 * MiB };

// 1. Pages per second, in this thread (PDF.js alone, one core), after a warm-up.
for (const compress of [false, true]) {
  const data = makePdf(
    Array.from({ length: pages }, (_, i) => page(i)),
    { compress },
  );
  await extractPdf(new Uint8Array(makePdf([page(0)], { compress })), limits);
  const started = performance.now();
  const cpu = process.cpuUsage();
  const out = await extractPdf(new Uint8Array(data), limits);
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const cpuSeconds = (used.user + used.system) / 1e6;
  line(`in-process, ${pages} pages, ${compress ? "Flate" : "uncompressed"}`, {
    MiB: (data.length / MiB).toFixed(1),
    "pages/s": Math.round(out.pages! / seconds),
    // Per second of CPU: the figure for one core, whatever else the machine is doing.
    "pages/cpu-s": Math.round(out.pages! / cpuSeconds),
    "cpu-s": cpuSeconds.toFixed(2),
    "text-MiB": (Buffer.byteLength(out.text) / MiB).toFixed(1),
  });
}

// 2. The largest allowed PDF through the extraction child, as the daemon runs it: time, the child's peak RSS (the
// ceiling applies to it), and this process's, which only holds the document.
const big = pdfOfSize(maxBytes);
const host = new ExtractionHost({ extractorUrl, memoryLimitBytes, semiSpaceMiB });
try {
  await host.run({ kind: "pdf", data: new Uint8Array(makePdf(["warm"])), limits }, { signal: new AbortController().signal, timeoutMs: 60_000 });
  const baseline = process.memoryUsage.rss();
  const childPid = host.childPid!;
  const childIdle = Math.round((residentBytes(childPid) ?? 0) / MiB);
  const started = performance.now();
  const cpu = cpuSecondsOf(childPid);
  try {
    const run = await host.run(
      { kind: "pdf", data: new Uint8Array(big.data), limits: { ...limits, maxTextBytes: maxBytes } },
      { signal: new AbortController().signal, timeoutMs: 3_600_000 },
    );
    const seconds = (performance.now() - started) / 1000;
    const cpuSeconds = cpuSecondsOf(childPid) - cpu;
    line(`child, largest allowed (${(big.data.length / MiB).toFixed(1)} MiB, ${big.pages} pages)`, {
      "pages/s": Math.round(big.pages / seconds),
      "pages/cpu-s": Math.round(big.pages / cpuSeconds),
      seconds: seconds.toFixed(1),
      "text-MiB": (Buffer.byteLength(run.result.text) / MiB).toFixed(1),
      "child-idle-rss-MiB": childIdle,
      "child-peak-rss-MiB": Math.round(run.peakRssBytes / MiB),
      "rss-before-MiB": Math.round(baseline / MiB),
      "max-rss-MiB": Math.round(process.resourceUsage().maxRSS / 1024),
    });
  } catch (err) {
    line(`child, largest allowed (${(big.data.length / MiB).toFixed(1)} MiB, ${big.pages} pages)`, {
      failed: err instanceof Error ? `${(err as { code?: string }).code ?? err.name}: ${err.message}` : String(err),
      "max-rss-MiB": Math.round(process.resourceUsage().maxRSS / 1024),
    });
  }
} finally {
  await host.close();
}
