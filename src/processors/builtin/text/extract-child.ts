/**
 * Entry of the text extraction child process (see child-entry.ts for what every child does): PDF.js, mammoth and
 * html-to-text loaded before `ready`.
 */
import { serveChild } from "./child-entry.js";
import { reply } from "./extract.js";

await serveChild(async () => {
  // PDF.js's own worker code registers itself on globalThis, so PDF.js will not import it again on the first document.
  // (A variable specifier: the module has no type declarations, and none are needed.)
  const pdfWorkerModule = "pdfjs-dist/legacy/build/pdf.worker.mjs";
  await Promise.all([
    import("pdfjs-dist/legacy/build/pdf.mjs"),
    import(pdfWorkerModule),
    import("mammoth"),
    import("html-to-text"),
  ]);
  return (request) => reply({ ...request, verbosity: 1 });
});
