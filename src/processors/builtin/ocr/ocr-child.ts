/**
 * Entry of the OCR child process: the text extractor's process (text/child.ts starts it; text/child-entry.ts is what
 * every child does) with Tesseract and PDF.js's renderer loaded instead of the text parsers. Same protocol
 * (text/protocol.ts), plus a `page` message before each page is recognised (the daemon's per-page time limit).
 */
import { serveChild } from "../text/child-entry.js";
import { reply } from "../text/extract.js";
import { OcrEngine } from "./engine.js";
import { runOcr } from "./recognize.js";

await serveChild(async (channel) => {
  const pdfWorkerModule = "pdfjs-dist/legacy/build/pdf.worker.mjs";
  const [engine] = await Promise.all([OcrEngine.load(), import("pdfjs-dist/legacy/build/pdf.mjs"), import(pdfWorkerModule)]);
  return (request) => reply({ ...request, verbosity: 1 }, (job) => runOcr(job, engine, () => channel.signal("page")));
});
