// OCR cost (the `ocr` processor): pages per CPU-second, CPU-seconds per page, the OCR process's peak private RSS
// (the figure ocrMemoryBytes caps), and what a t2.micro's baseline CPU budget (10% of a vCPU: 360 CPU-s an hour)
// allows in pages an hour. Pages: body pages of Debian documentation PDFs (ocr-pages.ts) rendered at 300 dpi and
// put in a scanned PDF, as the daemon gets them; then one 12-megapixel JPEG (the largest image ocrMaxPixels lets
// through by default). The CPU is the OCR processes' own (this process's reaped children, from /proc/self/stat), so
// it is the figure for one core whatever else the machine runs. Prints figures only, asserts nothing. Run after a
// build:  npm run build && npx tsx test/bench/ocr-bench.ts [--pages N (default 3)] [--json FILE]
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createOcrProcessor } from "../../src/processors/builtin/ocr/index.js";
import type { ProcessorLogger } from "../../src/processors/types.js";
import { encodeWithCanvas, makeScanPdf, textPage, type Raster } from "../fixtures/documents/images.js";
import { bytes, source } from "../unit/processors/text/helpers.js";
import { DEBIAN_PDFS, rescale, samplePages } from "./ocr-pages.js";
import { T2_MICRO_BASELINE_CPU_MS_PER_HOUR } from "./steady.js";

const MiB = 1024 * 1024;
const { values } = parseArgs({
  options: { pages: { type: "string", default: "3" }, json: { type: "string" }, "memory-mib": { type: "string" } },
});
// Default: the daemon's (ocrMemoryBytes); a larger one shows what a page needs when the default is too small.
const memoryBytes = values["memory-mib"] === undefined ? undefined : Number(values["memory-mib"]) * MiB;

const extractorUrl = new URL("../../dist/processors/builtin/ocr/ocr-child.js", import.meta.url);
if (!existsSync(fileURLToPath(extractorUrl))) {
  process.stderr.write("ocr-bench: dist/ is missing; run `npm run build` first\n");
  process.exit(1);
}

/** CPU seconds of this process's children that have been reaped (cutime + cstime, at 100 ticks a second). */
function childrenCpuSeconds(): number {
  const fields = readFileSync("/proc/self/stat", "latin1").replace(/^.*\) /, "").split(" ");
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

function line(label: string, figures: Record<string, string | number>): void {
  process.stdout.write(`${label.padEnd(44)} ${Object.entries(figures).map(([k, v]) => `${k}=${v}`).join("  ")}\n`);
}

const wanted = Number(values.pages);
const available = DEBIAN_PDFS.filter((p) => existsSync(p.path));
let rasters: Raster[];
let origin: string;
if (available.length > 0) {
  const pdfs = available.map((p) => ({ ...p, pages: p.pages.slice(0, Math.ceil(wanted / available.length)) }));
  rasters = (await samplePages(pdfs)).slice(0, wanted).map((p) => p.raster);
  origin = "Debian documentation pages";
} else {
  // Without the Debian PDFs (apt-get install shared-mime-info libtasn1-doc): a page of the fixtures' own text.
  const lines = Array.from({ length: 40 }, (_, i) => `Line ${i + 1} of a made-up page of ordinary words, numbers 12.50 and dates 2024-06-30.`);
  const page = await textPage(lines);
  rasters = Array.from({ length: wanted }, () => page);
  origin = "fixture pages (Debian PDFs not installed)";
}

interface Figures {
  label: string;
  pages: number;
  seconds: number;
  cpuSeconds: number;
  pagesPerCpuSecond: number;
  cpuSecondsPerPage: number;
  peakRssMiB: number;
  t2MicroPagesPerHour: number;
}
const results: Figures[] = [];

async function measure(label: string, key: string, file: Uint8Array, pages: number): Promise<void> {
  let peak = 0;
  const log: ProcessorLogger = {
    debug: (obj) => {
      const rss = (obj as { ocrPeakRssBytes?: number }).ocrPeakRssBytes;
      if (typeof rss === "number") peak = Math.max(peak, rss);
    },
    info: () => undefined,
    warn: () => undefined,
    error: () => undefined,
  };
  // A fresh processor: its child's start-up (the engine compiled, the language loaded) is in the figure, as it is
  // for the daemon after each page that left the child big.
  const processor = createOcrProcessor({
    extractorUrl,
    timeoutMs: 3_600_000,
    pageTimeoutMs: 600_000,
    ...(memoryBytes === undefined ? {} : { memoryBytes }),
  });
  const cpu = childrenCpuSeconds();
  const started = performance.now();
  let failed: string | undefined;
  try {
    await processor.process({ input: bytes(file), source: source(key, file.length), signal: new AbortController().signal, log });
  } catch (err) {
    failed = err instanceof Error ? `${(err as { code?: string }).code ?? err.name}: ${err.message}` : String(err);
  } finally {
    await processor.close();
  }
  if (failed !== undefined) {
    line(label, { failed });
    return;
  }
  const seconds = (performance.now() - started) / 1000;
  const cpuSeconds = childrenCpuSeconds() - cpu;
  const figures: Figures = {
    label,
    pages,
    seconds: Math.round(seconds * 10) / 10,
    cpuSeconds: Math.round(cpuSeconds * 100) / 100,
    pagesPerCpuSecond: Math.round((pages / cpuSeconds) * 1000) / 1000,
    cpuSecondsPerPage: Math.round((cpuSeconds / pages) * 100) / 100,
    peakRssMiB: Math.round(peak / MiB),
    t2MicroPagesPerHour: Math.floor(T2_MICRO_BASELINE_CPU_MS_PER_HOUR / 1000 / (cpuSeconds / pages)),
  };
  results.push(figures);
  line(label, {
    "pages/cpu-s": figures.pagesPerCpuSecond,
    "cpu-s/page": figures.cpuSecondsPerPage,
    seconds: figures.seconds,
    "ocr-peak-rss-MiB": figures.peakRssMiB,
    "t2.micro-baseline-pages/h": figures.t2MicroPagesPerHour,
  });
}

process.stdout.write(`ocr-bench: ${rasters.length} ${origin}, 300 dpi\n`);
await measure(`ocr, scanned PDF of ${rasters.length} page(s), 300 dpi`, "scan.pdf", makeScanPdf(rasters.map((image) => ({ image }))), rasters.length);
const first = rasters[0]!;
const factor = Math.sqrt(11_900_000 / (first.width * first.height));
const photo = await encodeWithCanvas(await rescale(first, factor), "jpeg", 85);
await measure(`ocr, one ${(11.9).toFixed(1)}-megapixel JPEG`, "photo.jpg", photo, 1);
if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify({ origin, results }, null, 2)}\n`);
