/**
 * Entry of the extraction worker thread (started by ExtractionHost). It loads the parsers first and says `ready`,
 * so their memory is not charged to the first document; then one request at a time, a reply for each.
 * Console output is collected as the current job's warnings, since PDF.js reports recovered problems with
 * console.log and nothing may reach the daemon's stdout, which carries its JSON logs.
 */
import { parentPort } from "node:worker_threads";
import { WarningList } from "./extracted.js";
import { reply, type ExtractionRequest, type WorkerReady } from "./extract.js";

let current: WarningList | undefined;

function capture(...args: unknown[]): void {
  const line = args.map((a) => (typeof a === "string" ? a : a instanceof Error ? a.message : String(a))).join(" ");
  current?.add(line.replace(/^Warning: /, ""));
}
for (const method of ["log", "info", "warn", "error", "debug", "trace"] as const) console[method] = capture;

const port = parentPort;
if (port === null) throw new Error("the extraction worker must run in a worker thread");

// PDF.js's own worker code registers itself on globalThis, so PDF.js will not import it again on the first document.
// (A variable specifier: the module has no type declarations, and none are needed.)
const pdfWorkerModule = "pdfjs-dist/legacy/build/pdf.worker.mjs";
await Promise.all([
  import("pdfjs-dist/legacy/build/pdf.mjs"),
  import(pdfWorkerModule),
  import("mammoth"),
  import("html-to-text"),
]);
port.postMessage({ ready: true } satisfies WorkerReady);

port.on("message", (request: ExtractionRequest) => {
  const warnings = (current = new WarningList());
  void reply({ ...request, verbosity: 1 }).then((answer) => {
    current = undefined;
    if (answer.ok) {
      for (const w of warnings.toArray()) answer.result.warnings.push(w);
    }
    port.postMessage(answer);
  });
});
