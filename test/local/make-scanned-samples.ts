// Writes the two scanned samples of `npm run local` (run once; the files are committed): "scanned letter.pdf", a
// letter rendered at 300 dpi and stored as a page image with no text layer, as a scanner writes it; and
// "receipt photo.jpg", a receipt rendered at 300 dpi, turned 1 degree, with noise, as a JPEG. Both carry the texts
// SCANNED_SAMPLES (main.ts) looks for.  npx tsx test/local/make-scanned-samples.ts
import { writeFileSync } from "node:fs";
import { addNoise, rotate } from "../bench/ocr-pages.js";
import { cropToInk, encodeWithCanvas, makeScanPdf, textPage } from "../fixtures/documents/images.js";

const samples = new URL("./samples/", import.meta.url);
const letter = await textPage([
  "Northwind Traders, 12 Harbour Road, Leeds",
  "",
  "Dear Ms Almeida,",
  "",
  "Thank you for your order of 14 March. The goods were dispatched",
  "today and should reach you within five working days.",
  "",
  "Yours sincerely,",
  "Peter Lindqvist",
]);
writeFileSync(new URL("scanned letter.pdf", samples), makeScanPdf([{ image: letter }]));
const receipt = cropToInk(await textPage(["CORNER BAKERY", "2 croissants 5.80", "1 coffee 3.20", "TOTAL EUR 9.00", "Thank you for your visit"]), 60);
writeFileSync(new URL("receipt photo.jpg", samples), await encodeWithCanvas(addNoise(await rotate(receipt, 1), 25, 0.001), "jpeg", 80));
