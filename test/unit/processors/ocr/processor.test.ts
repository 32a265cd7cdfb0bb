// The `ocr` processor end to end with its OCR child: images of every supported format and scanned PDFs give the
// text that was drawn into them, mixed PDFs keep their text layer, and hostile inputs (dimension and decompression
// bombs, thousands of pages, truncated files, wrong magic, a page that takes too long, a page over the memory
// ceiling) end as PermanentDocumentErrors with their codes.
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOcrProcessor, type OcrProcessor, type OcrRecord } from "../../../../src/processors/builtin/ocr/index.js";
import { resolveProcessors } from "../../../../src/processors/registry.js";
import { PermanentDocumentError, type ProcessorOutput } from "../../../../src/processors/types.js";
import { makeDocx } from "../../../fixtures/documents/build.js";
import {
  cropToInk,
  encodeBmp,
  encodeGif,
  encodePng,
  encodeTiff,
  encodeWithCanvas,
  makeScanPdf,
  pngBomb,
  textPage,
  type Raster,
} from "../../../fixtures/documents/images.js";
import { silentLog } from "../../pipeline/helpers.js";
import { bodyOf, buildExtractor, bytes, source } from "../text/helpers.js";

const MiB = 1024 * 1024;
const LINES = ["The quick brown fox jumps over the lazy dog.", "Invoice 2024-117: total 1,234.56 EUR"];
const OTHER = ["Second page of the scan, with other words.", "Payment due within thirty days."];

let ocrUrl: URL;
let cleanup: () => void;
let processor: OcrProcessor;
let lines: Raster;
let other: Raster;
let fullPage: Raster;

function ocrWith(options: Parameters<typeof createOcrProcessor>[0] = {}): OcrProcessor {
  return createOcrProcessor({ extractorUrl: ocrUrl, maxBufferedBytes: 16 * MiB, timeoutMs: 60_000, pageTimeoutMs: 30_000, ...options });
}

beforeAll(async () => {
  const built = buildExtractor();
  ocrUrl = new URL(built.extractorUrl.href.replace("text/extract-child.js", "ocr/ocr-child.js"));
  cleanup = built.cleanup;
  processor = ocrWith();
  fullPage = await textPage(LINES);
  lines = cropToInk(fullPage);
  other = cropToInk(await textPage(OTHER));
});
afterAll(async () => {
  await processor.close();
  cleanup();
});

async function run(p: OcrProcessor, key: string, data: Uint8Array): Promise<{ text: string; record: OcrRecord; outputs: ProcessorOutput[] }> {
  const outputs = await p.process({
    input: bytes(data),
    source: source(key, data.length),
    signal: new AbortController().signal,
    log: silentLog,
  });
  const text = (await bodyOf(outputs.find((o) => o.suffix === ".txt"))).toString("utf8");
  const record = JSON.parse((await bodyOf(outputs.find((o) => o.suffix === ".ocr.json"))).toString("utf8")) as OcrRecord;
  return { text, record, outputs };
}

async function refusal(p: OcrProcessor, key: string, data: Uint8Array): Promise<PermanentDocumentError> {
  const err = await run(p, key, data).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PermanentDocumentError);
  return err as PermanentDocumentError;
}

const words = (s: string): string => s.replace(/\s+/g, " ").trim();

describe("ocr processor: images", () => {
  it("reads a PNG and records the page, its confidence, the engine and the language data", async () => {
    const { text, record, outputs } = await run(processor, "scan.png", encodePng(lines));
    expect(words(text)).toBe(words(LINES.join("\n")));
    expect(outputs.map((o) => o.suffix)).toEqual([".txt", ".ocr.json"]);
    expect(record.detectedType).toEqual({ mime: "image/png", ext: "png" });
    expect(record.pages).toBe(1);
    expect(record.ocrPages).toBe(1);
    expect(record.pageRecords[0]).toMatchObject({ page: 1, source: "ocr", words: 14 });
    expect(record.pageRecords[0]!.confidence).toBeGreaterThan(80);
    expect(record.meanConfidence).toBeGreaterThan(80);
    expect(record.engine.name).toBe("tesseract");
    expect(record.engine.version).toMatch(/^5\./);
    expect(record.engine.build).toMatch(/^tesseract\.js-core \d/);
    expect(record.languages).toEqual([
      expect.objectContaining({ code: "eng", package: "@tesseract.js-data/eng", model: "4.0.0_best_int" }),
    ]);
    expect(record.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it.each([
    ["jpeg", "image/jpeg", (r: Raster) => encodeWithCanvas(r, "jpeg")],
    ["webp", "image/webp", (r: Raster) => encodeWithCanvas(r, "webp")],
    ["bmp", "image/bmp", (r: Raster) => Promise.resolve(encodeBmp(r))],
    ["gif", "image/gif", (r: Raster) => Promise.resolve(encodeGif(r))],
    ["tiff", "image/tiff", (r: Raster) => Promise.resolve(encodeTiff(r))],
  ])("reads a %s", async (ext, mime, encode) => {
    const { text, record } = await run(processor, `scan.${ext}`, await encode(lines));
    expect(record.detectedType.mime).toBe(mime);
    expect(words(text)).toBe(words(LINES.join("\n")));
  });

  it("reads every page of a multi-page TIFF, pages separated by form feeds", async () => {
    // Two different pages: the second directory must really be read, not the first twice.
    const first = encodeTiff(lines);
    const second = encodeTiff(other);
    const two = twoPageTiff(first, second);
    const { text, record } = await run(processor, "fax.tif", two);
    const pages = text.split("\f");
    expect(pages).toHaveLength(2);
    expect(words(pages[0]!)).toBe(words(LINES.join("\n")));
    expect(words(pages[1]!)).toBe(words(OTHER.join("\n")));
    expect(record.pageRecords.map((p) => p.page)).toEqual([1, 2]);
  });
});

/** Two single-page TIFFs as one of two pages: the second's strip and directory appended, offsets moved. */
function twoPageTiff(a: Buffer, b: Buffer): Buffer {
  const shift = a.length;
  const out = Buffer.concat([a, b]);
  const firstIfd = a.readUInt32LE(4);
  const entries = a.readUInt16LE(firstIfd);
  const secondIfd = b.readUInt32LE(4) + shift;
  out.writeUInt32LE(secondIfd, firstIfd + 2 + entries * 12);
  // The second directory's strip offset (tag 273) is absolute: move it.
  const n = out.readUInt16LE(secondIfd);
  for (let e = secondIfd + 2; e < secondIfd + 2 + n * 12; e += 12) {
    if (out.readUInt16LE(e) === 273) out.writeUInt32LE(out.readUInt32LE(e + 8) + shift, e + 8);
  }
  return out;
}

describe("ocr processor: PDFs", () => {
  it("recognises a scanned PDF's pages and keeps a text layer where a page has one", async () => {
    const pdf = makeScanPdf([{ lines: ["This page has a real text layer, read as it is."] }, { image: lines }]);
    const { text, record } = await run(processor, "mixed.pdf", pdf);
    const pages = text.split("\f");
    expect(pages).toHaveLength(2);
    expect(pages[0]).toBe("This page has a real text layer, read as it is.\n");
    expect(words(pages[1]!)).toBe(words(LINES.join("\n")));
    expect(record.pages).toBe(2);
    expect(record.ocrPages).toBe(1);
    expect(record.pageRecords.map((p) => p.source)).toEqual(["text-layer", "ocr"]);
    expect(record.pageRecords[1]).toMatchObject({ dpi: 300 });
  });

  it("renders a page larger than ocrMaxPixels at a lower resolution rather than refusing it", async () => {
    const small = ocrWith({ maxPixels: 2_000_000 });
    try {
      const { text, record } = await run(small, "big-page.pdf", makeScanPdf([{ image: fullPage }]));
      const page = record.pageRecords[0]!;
      expect(page.dpi).toBeLessThan(300);
      expect(page.width! * page.height!).toBeLessThanOrEqual(2_000_000);
      expect(words(text)).toContain("quick brown fox");
    } finally {
      await small.close();
    }
  });

  it("sizes a page with a UserUnit by its real size: rendered lower to fit ocrMaxPixels, not skipped", async () => {
    // UserUnit 2: the letter page is 17 x 22 inches, 33.7 million pixels at 300 dpi.
    const { text, record } = await run(processor, "user-unit.pdf", makeScanPdf([{ image: fullPage }], 300, { userUnit: 2 }));
    expect(record.warnings).toEqual([]);
    const page = record.pageRecords[0]!;
    expect(page).toMatchObject({ source: "ocr", dpi: 179 });
    expect(page.width! * page.height!).toBeLessThanOrEqual(12_000_000);
    expect(words(text)).toBe(words(LINES.join("\n")));
  });

  it("keeps the other pages of a PDF with a page it cannot open, with a warning, as the text layer pass does", async () => {
    const pdf = makeScanPdf([{ lines: ["This page has a real text layer, read as it is."] }, { image: lines }]);
    // The second kid of the page tree points at an object that does not exist: PDF.js cannot get that page, in either
    // pass (it failed the whole document when the OCR pass asked for it again).
    const source = pdf.toString("latin1").replace(/\/Kids \[(\d+) 0 R \d+ 0 R\]/, "/Kids [$1 0 R 99 0 R]");
    const { text, record } = await run(processor, "broken-page.pdf", Buffer.from(source, "latin1"));
    expect(text).toBe("This page has a real text layer, read as it is.\n\f\n");
    expect(record.pages).toBe(2);
    expect(record.ocrPages).toBe(0);
    expect(record.warnings.join("\n")).toMatch(/page 2: .*wrong type of object/);
  });
});

describe("ocr processor: hostile inputs", () => {
  it("refuses a 30,000 x 30,000 PNG from its header (TOO_LARGE), quickly", async () => {
    const started = Date.now();
    const err = await refusal(processor, "bomb.png", pngBomb(30_000, 30_000));
    expect(err.code).toBe("TOO_LARGE");
    expect(err.message).toContain("30000 x 30000");
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("refuses a dimension bomb from its first bytes, without waiting for the rest", async () => {
    const head = pngBomb(30_000, 30_000).subarray(0, 8_192);
    // The rest never comes: only a refusal from the head can settle this.
    const input = new Readable({ read() {} });
    input.push(head);
    const err = await processor
      .process({ input, source: source("bomb.png", 10 * MiB), signal: new AbortController().signal, log: silentLog })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(PermanentDocumentError);
    expect((err as PermanentDocumentError).code).toBe("TOO_LARGE");
    expect(input.destroyed).toBe(true);
  });

  it("refuses a TIFF of 10,000 pages (TOO_MANY_PAGES) from its directories", async () => {
    const err = await refusal(processor, "fax.tif", encodeTiff({ width: 8, height: 8, data: new Uint8Array(64).fill(255) }, 10_000));
    expect(err.code).toBe("TOO_MANY_PAGES");
  });

  it("refuses a TIFF whose second page is a dimension bomb, and a GIF frame larger than its screen (TOO_LARGE)", async () => {
    const tiff = encodeTiff(lines, 2);
    const second = tiff.readUInt32LE(tiff.readUInt32LE(4) + 2 + 8 * 12);
    tiff.writeUInt32LE(30_000, second + 2 + 8);
    tiff.writeUInt32LE(30_000, second + 2 + 12 + 8);
    const err = await refusal(processor, "two.tif", tiff);
    expect(err.code).toBe("TOO_LARGE");
    expect(err.message).toContain("900000000 pixels");
    const gif = encodeGif(lines);
    gif.writeUInt16LE(1, 6);
    gif.writeUInt16LE(1, 8);
    gif.writeUInt16LE(20_000, 13 + 12 + 5);
    gif.writeUInt16LE(20_000, 13 + 12 + 7);
    expect((await refusal(processor, "screen.gif", gif)).code).toBe("TOO_LARGE");
  });

  it("refuses a PDF of 5,000 image pages (TOO_MANY_PAGES) before recognising any", async () => {
    const tiny: Raster = { width: 16, height: 16, data: new Uint8Array(256).fill(255) };
    const started = Date.now();
    const err = await refusal(processor, "scans.pdf", makeScanPdf(Array.from({ length: 5_000 }, () => ({ image: tiny }))));
    expect(err.code).toBe("TOO_MANY_PAGES");
    expect(err.message).toContain("5000 of the PDF's 5000 pages");
    expect(Date.now() - started).toBeLessThan(30_000);
  }, 60_000);

  it("refuses a PDF of more pages than one record can list (TOO_MANY_PAGES), even when every page has a text layer", async () => {
    // Each page is a page record in the reply's header: 14,000 of them were more than a frame header may hold, the
    // OCR process died on its reply, and the document failed as if the daemon were at fault (retried).
    const pdf = makeScanPdf(Array.from({ length: 14_000 }, () => ({ lines: ["A page with a text layer of its own."] })));
    const err = await refusal(processor, "many.pdf", pdf);
    expect(err.code).toBe("TOO_MANY_PAGES");
    expect(err.message).toContain("14000 pages");
  }, 120_000);

  it("refuses a truncated PNG (CORRUPT) in the daemon, and a truncated JPEG (CORRUPT) from the engine", async () => {
    const png = encodePng(lines);
    expect((await refusal(processor, "cut.png", png.subarray(0, png.length >> 1))).code).toBe("CORRUPT");
    const jpeg = await encodeWithCanvas(lines, "jpeg");
    const err = await refusal(processor, "cut.jpg", jpeg.subarray(0, jpeg.length >> 1));
    expect(err.code).toBe("CORRUPT");
    // The child is still usable after an image it could not decode.
    expect(words((await run(processor, "ok.png", png)).text)).toBe(words(LINES.join("\n")));
  });

  it("refuses wrong magic, zero dimensions, a looping TIFF and a DOCX", async () => {
    expect((await refusal(processor, "fake.png", Buffer.from("not a picture at all, just words\n".repeat(10)))).code).toBe("UNSUPPORTED_TYPE");
    const zero = encodePng(lines);
    zero.writeUInt32BE(0, 16);
    expect((await refusal(processor, "zero.png", zero)).code).toBe("CORRUPT");
    const loop = encodeTiff(lines);
    const ifd = loop.readUInt32LE(4);
    loop.writeUInt32LE(ifd, ifd + 2 + loop.readUInt16LE(ifd) * 12);
    expect((await refusal(processor, "loop.tif", loop)).code).toBe("CORRUPT");
    expect((await refusal(processor, "letter.docx", makeDocx(["Dear reader"]))).code).toBe("UNSUPPORTED_TYPE");
    expect((await refusal(processor, "empty.png", new Uint8Array(0))).code).toBe("EMPTY");
  });

  it("stops a page that takes longer than its page limit (TIMEOUT)", async () => {
    const hasty = ocrWith({ pageTimeoutMs: 50 });
    try {
      const err = await refusal(hasty, "page.pdf", makeScanPdf([{ image: fullPage }]));
      expect(err.code).toBe("TIMEOUT");
      expect(err.message).toContain("one page");
    } finally {
      await hasty.close();
    }
  });

  it("stops a document that takes longer than its document limit (TIMEOUT)", async () => {
    const hasty = ocrWith({ timeoutMs: 300 });
    try {
      const err = await refusal(hasty, "page.pdf", makeScanPdf([{ image: fullPage }, { image: fullPage }]));
      expect(err.code).toBe("TIMEOUT");
      expect(err.message).toContain("one document");
    } finally {
      await hasty.close();
    }
  });

  it("stops a page that takes the OCR process over its memory ceiling (MEMORY_LIMIT)", async () => {
    const small = ocrWith({ memoryBytes: 128 * MiB });
    try {
      expect((await refusal(small, "page.pdf", makeScanPdf([{ image: fullPage }]))).code).toBe("MEMORY_LIMIT");
    } finally {
      await small.close();
    }
  });
});

describe("ocr processor: configuration", () => {
  it("refuses to start without a language's data package, naming the package", () => {
    expect(() => ocrWith({ languages: "eng+xyz" })).toThrow(/@tesseract\.js-data\/xyz.*not installed/);
    expect(() => ocrWith({ languages: "english" })).toThrow(/language codes/);
  });

  it("cannot share a chain with text: both write <key>.txt", async () => {
    const textUrl = new URL(ocrUrl.href.replace("ocr/ocr-child.js", "text/extract-child.js"));
    const options = { text: { extractorUrl: textUrl }, ocr: { extractorUrl: ocrUrl } };
    await expect(resolveProcessors(["text", "ocr"], process.cwd(), options)).rejects.toThrow(/text and ocr both write "<key>\.txt"/);
  });
});
