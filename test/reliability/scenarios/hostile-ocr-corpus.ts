// The hostile documents of the `hostile-ocr` scenario (the chain metadata + ocr), generated at run time: the three
// the OCR issue names (a 30,000 x 30,000 PNG whose pixels are really there, a TIFF of 10,000 pages, a PDF of 5,000
// image pages), and what an attacker tries next: truncated images, wrong magic, a noise image of the largest size
// allowed (Tesseract finds blobs everywhere in it: the page limit's case), a BMP that declares a negative size and a
// GIF cut short. Its warm-up: ordinary scans, one refused. The builders are the unit tests' (images.ts).
import {
  cropToInk,
  encodeGif,
  encodePng,
  encodeTiff,
  encodeWithCanvas,
  makeScanPdf,
  pngBomb,
  textPage,
  type Raster,
} from "../../fixtures/documents/images.js";
import type { Rng } from "../lib/random.js";
import type { HostileDoc } from "./hostile-corpus.js";

const LETTER = [
  "Dear customer, thank you for your letter of 3 May.",
  "The invoice 2024-117 for 1,234.56 EUR is attached.",
  "Kind regards, the accounts team",
];

export async function ocrWarmUpDocs(): Promise<(HostileDoc & { refused?: true })[]> {
  const page = await textPage(LETTER);
  const crop = cropToInk(page);
  const png = encodePng(crop);
  return [
    { name: "ordinary-scan.pdf", what: "a scanned letter (page image, no text layer)", body: makeScanPdf([{ image: page }]) },
    { name: "ordinary-photo.jpg", what: "a photographed letter (JPEG)", body: await encodeWithCanvas(crop, "jpeg") },
    { name: "ordinary-scan.png", what: "a scanned letter (PNG)", body: png },
    { name: "ordinary-truncated.png", what: "PNG cut in half (refused: CORRUPT)", body: png.subarray(0, png.length >> 1), refused: true },
    // Each way of refusing once, as the text scenario's warm-up has its refused PDF: code that runs (and is compiled)
    // on first use is in the steady level, not counted as growth.
    { name: "ordinary-too-large.png", what: "a 20,000 x 20,000 PNG (refused: TOO_LARGE)", body: pngBomb(20_000, 20_000), refused: true },
    { name: "ordinary-fax.tif", what: "a TIFF of 60 pages (refused: TOO_MANY_PAGES)", body: encodeTiff(crop, 60), refused: true },
    { name: "ordinary-notes.png", what: "text named .png (refused: UNSUPPORTED_TYPE)", body: Buffer.from("notes\n".repeat(50)), refused: true },
    // Large but ordinary, as the text scenario's 12 MiB text: the steady level includes a large buffer and a big page.
    {
      name: "ordinary-large.png",
      what: "a blank 3,464 x 3,464 page stored uncompressed (12 MB)",
      body: encodePng({ width: 3_464, height: 3_464, data: new Uint8Array(3_464 * 3_464).fill(255) }, { store: true }),
    },
  ];
}

/** `width` x `height` of random gray: incompressible, and a page Tesseract must look at everywhere. */
function noise(rng: Rng, width: number, height: number): Raster {
  const data = new Uint8Array(width * height);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(rng.next() * 256);
  return { width, height, data };
}

export async function hostileOcrCorpus(rng: Rng, options: { maxPixels: number; full: boolean }): Promise<HostileDoc[]> {
  const crop = cropToInk(await textPage(LETTER));
  const jpeg = await encodeWithCanvas(crop, "jpeg");
  const tiny: Raster = { width: 16, height: 16, data: new Uint8Array(256).fill(255) };
  const negative = Buffer.from(encodePng(crop));
  const bmp = Buffer.alloc(54);
  bmp.write("BM", 0, "latin1");
  bmp.writeUInt32LE(54, 2);
  bmp.writeUInt32LE(40, 14);
  bmp.writeInt32LE(-30_000, 18);
  bmp.writeInt32LE(30_000, 22);
  const gif = encodeGif(crop);
  const side = Math.floor(Math.sqrt(options.maxPixels));
  const docs: HostileDoc[] = [
    { name: "png-30000x30000.png", what: "a 30,000 x 30,000 PNG, 900 MB of pixels deflated (TOO_LARGE from its header)", body: pngBomb(30_000, 30_000) },
    { name: "tiff-10000-pages.tif", what: "a TIFF of 10,000 pages (TOO_MANY_PAGES from its directories)", body: encodeTiff(tiny, 10_000) },
    {
      name: "pdf-5000-image-pages.pdf",
      what: "a PDF of 5,000 image pages (TOO_MANY_PAGES before any is rendered)",
      body: makeScanPdf(Array.from({ length: 5_000 }, () => ({ image: tiny }))),
    },
    { name: "truncated.jpg", what: "a JPEG cut in half (CORRUPT from the engine)", body: jpeg.subarray(0, jpeg.length >> 1) },
    { name: "wrong-magic.png", what: "text named .png (UNSUPPORTED_TYPE)", body: Buffer.from("not an image, only words\n".repeat(100)) },
    { name: "negative-width.bmp", what: "a BMP declaring -30,000 x 30,000 (CORRUPT)", body: bmp },
    { name: "gif-cut-short.gif", what: "a GIF cut after its header (CORRUPT from the engine)", body: gif.subarray(0, 40) },
    {
      name: `noise-${side}x${side}.png`,
      what: `${side} x ${side} random gray, the most pixels allowed (Tesseract sees blobs everywhere: TIMEOUT or text)`,
      body: encodePng(noise(rng, side, side)),
    },
  ];
  negative.writeUInt32BE(0, 16);
  docs.push({ name: "zero-width.png", what: "a PNG declaring 0 x N (CORRUPT)", body: negative });
  if (options.full) {
    docs.push({ name: "png-65535x65535.png", what: "a 65,535 x 65,535 PNG (TOO_LARGE)", body: pngBomb(65_535, 65_535) });
  }
  return docs;
}
