// The OCR processor's pure parts: image headers (sizes and pages before decoding; hostile headers refused with their
// codes), the render resolution under a pixel cap, language data resolution, and the protocol's page records.
import { describe, expect, it } from "vitest";
import { PermanentDocumentError } from "../../../../src/errors/document.js";
import { declaredSize, imageFormatOf, readImageInfo } from "../../../../src/processors/builtin/ocr/image-header.js";
import { resolveLanguages } from "../../../../src/processors/builtin/ocr/languages.js";
import { renderDpi } from "../../../../src/processors/builtin/ocr/render.js";
import { encodeFrame, FrameError } from "../../../../src/processors/builtin/text/frames.js";
import { parseChildFrame, replyFrame } from "../../../../src/processors/builtin/text/protocol.js";
import { MAX_PDF_PAGES } from "../../../../src/processors/builtin/ocr/recognize.js";
import { encodeBmp, encodeGif, encodePng, encodeTiff, encodeWithCanvas, pngBomb, type Raster } from "../../../fixtures/documents/images.js";

const raster: Raster = { width: 37, height: 11, data: new Uint8Array(37 * 11).fill(200) };

function refusal(f: () => unknown): PermanentDocumentError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(PermanentDocumentError);
    return err as PermanentDocumentError;
  }
  throw new Error("expected a refusal");
}

describe("image headers", () => {
  it.each([
    ["png", () => Promise.resolve(encodePng(raster))],
    ["jpeg", () => encodeWithCanvas(raster, "jpeg")],
    ["webp", () => encodeWithCanvas(raster, "webp")],
    ["bmp", () => Promise.resolve(encodeBmp(raster))],
    ["gif", () => Promise.resolve(encodeGif(raster))],
    ["tiff", () => Promise.resolve(encodeTiff(raster, 3))],
  ])("reads a %s's size from its header", async (format, make) => {
    const data = await make();
    expect(imageFormatOf(data)).toBe(format);
    expect(readImageInfo(data, 50)).toMatchObject({ format, width: 37, height: 11, pages: format === "tiff" ? 3 : 1 });
  });

  it("reads a 30,000 x 30,000 PNG's size without inflating it", () => {
    const started = performance.now();
    expect(readImageInfo(pngBomb(30_000, 30_000), 50)).toMatchObject({ width: 30_000, height: 30_000 });
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it("reads the declared size from the first bytes alone, where they say it", async () => {
    expect(declaredSize(pngBomb(30_000, 30_000).subarray(0, 64))).toEqual({ format: "png", width: 30_000, height: 30_000 });
    expect(declaredSize(encodeGif(raster).subarray(0, 16))).toEqual({ format: "gif", width: 37, height: 11 });
    expect(declaredSize((await encodeWithCanvas(raster, "jpeg")).subarray(0, 4100))).toMatchObject({ width: 37, height: 11 });
    expect(declaredSize(encodeTiff(raster))).toBeUndefined();
    expect(declaredSize(encodePng(raster).subarray(0, 12))).toBeUndefined();
  });

  it("stops walking a TIFF's directories one past the limit (TOO_MANY_PAGES)", () => {
    const tiff = encodeTiff(raster, 10_000);
    expect(refusal(() => readImageInfo(tiff, 50)).code).toBe("TOO_MANY_PAGES");
    expect(readImageInfo(tiff, 10_000).pages).toBe(10_000);
    expect(readImageInfo(tiff, 10_000).directories).toHaveLength(10_000);
  });

  it("refuses broken headers as CORRUPT and a BigTIFF as UNSUPPORTED_TYPE", () => {
    const png = encodePng(raster);
    expect(refusal(() => readImageInfo(png.subarray(0, png.length - 12), 50)).code).toBe("CORRUPT");
    expect(refusal(() => readImageInfo(png.subarray(0, 20), 50)).code).toBe("CORRUPT");
    const bmp = encodeBmp(raster);
    bmp.writeInt32LE(-5, 18);
    expect(refusal(() => readImageInfo(bmp, 50)).message).toContain("-5 x 11");
    const tiff = encodeTiff(raster);
    tiff.writeUInt32LE(tiff.length + 100, 4);
    expect(refusal(() => readImageInfo(tiff, 50)).message).toContain("past its end");
    const big = Buffer.from(tiff);
    big.writeUInt16LE(43, 2);
    expect(refusal(() => readImageInfo(big, 50)).code).toBe("UNSUPPORTED_TYPE");
    expect(refusal(() => readImageInfo(Buffer.from([0xff, 0xd8, 0xff, 0xda, 0, 2]), 50)).message).toContain("no frame header");
  });

  it("knows no format in text, a PDF or a zip", () => {
    for (const head of ["hello world", "%PDF-1.7\n", "PK\u0003\u0004"]) expect(imageFormatOf(Buffer.from(head, "latin1"))).toBeUndefined();
  });
});

describe("renderDpi", () => {
  it("keeps 300 dpi for a letter page under 12 million pixels and lowers it to fit a larger page", () => {
    expect(renderDpi(612, 792, 300, 12_000_000)).toBe(300);
    const dpi = renderDpi(612 * 4, 792 * 4, 300, 12_000_000);
    expect(dpi).toBeLessThan(300);
    expect(Math.ceil((612 * 4 * dpi) / 72) * Math.ceil((792 * 4 * dpi) / 72)).toBeLessThanOrEqual(12_000_000);
    expect(Math.ceil((612 * 4 * (dpi + 1)) / 72) * Math.ceil((792 * 4 * (dpi + 1)) / 72)).toBeGreaterThan(12_000_000);
  });
});

describe("resolveLanguages", () => {
  it("finds the English data shipped with the daemon, best model first", () => {
    const [eng] = resolveLanguages("eng");
    expect(eng).toMatchObject({ code: "eng", package: "@tesseract.js-data/eng", model: "4.0.0_best_int" });
    expect(eng!.path).toMatch(/eng\.traineddata\.gz$/);
  });

  it("names the package to install for a missing language, and refuses malformed specs", () => {
    expect(() => resolveLanguages("eng+fra")).toThrow("npm install @tesseract.js-data/fra");
    expect(() => resolveLanguages("eng+eng")).toThrow("twice");
    expect(() => resolveLanguages("../eng")).toThrow("language codes");
  });
});

describe("page records from the OCR child", () => {
  const reply = (pageRecords: unknown): ReturnType<typeof parseChildFrame> => {
    const chunks = encodeFrame({ type: "reply", id: 1, ok: true, warnings: [], pageRecords, engine: "5.1.0" }, Buffer.from("text"));
    const bytes = Buffer.concat(chunks);
    const headerLength = bytes.readUInt32LE(0);
    return parseChildFrame({ header: JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8")) as Record<string, unknown>, payload: Buffer.from("text") });
  };

  it("keeps valid records, field by field", () => {
    const message = reply([{ page: 1, source: "ocr", confidence: 91, words: 3, durationMs: 12.5, width: 10, height: 20, dpi: 300, extra: "dropped" }]);
    expect(message.type === "reply" && message.reply.ok && message.reply.result.pageRecords).toEqual([
      { page: 1, source: "ocr", confidence: 91, words: 3, durationMs: 12.5, width: 10, height: 20, dpi: 300 },
    ]);
  });

  it.each([
    ["a confidence above 100", [{ page: 1, source: "ocr", confidence: 101, words: 0, durationMs: 1 }]],
    ["an unknown source", [{ page: 1, source: "guess", confidence: null, words: 0, durationMs: 1 }]],
    ["a negative word count", [{ page: 1, source: "ocr", confidence: 1, words: -1, durationMs: 1 }]],
    ["not a list", { page: 1 }],
  ])("refuses %s as a broken protocol", (_what, records) => {
    expect(() => reply(records)).toThrow(FrameError);
  });

  it("fits a reply of MAX_PDF_PAGES of the longest records, and warnings, in one frame header", () => {
    const record = { page: MAX_PDF_PAGES, source: "ocr", confidence: 100, words: 99_999, durationMs: 3_600_000, width: 10_000, height: 10_000, dpi: 300 };
    const warnings = Array.from({ length: 21 }, (_, i) => `${i}`.padEnd(300, "\u00e9"));
    const result = { text: "", warnings, pageRecords: Array.from({ length: MAX_PDF_PAGES }, () => record), engine: "5.1.0" } as never;
    expect(() => replyFrame({ id: 1, ok: true, result })).not.toThrow();
    // The bound is real: twice as many did not fit, and the OCR process died on its own reply.
    const twice = { ...(result as object), pageRecords: Array.from({ length: 2 * MAX_PDF_PAGES }, () => record) } as never;
    expect(() => replyFrame({ id: 1, ok: true, result: twice })).toThrow(FrameError);
  });

  it("accepts a page message with no payload only", () => {
    expect(parseChildFrame({ header: { type: "page" }, payload: Buffer.alloc(0) })).toEqual({ type: "page" });
    expect(() => parseChildFrame({ header: { type: "page" }, payload: Buffer.from("x") })).toThrow(FrameError);
  });
});

describe("image headers: sizes past the first page or frame", () => {
  it("reports a TIFF's largest page, not its first: a small first page cannot hide a huge second one", () => {
    const tiff = encodeTiff(raster, 2);
    const second = readImageInfo(tiff, 50).directories![1]!;
    tiff.writeUInt32LE(30_000, second + 2 + 8); // ImageWidth of page 2
    tiff.writeUInt32LE(30_000, second + 2 + 12 + 8); // ImageLength of page 2
    expect(readImageInfo(tiff, 50)).toMatchObject({ pages: 2, pixels: 900_000_000 });
  });

  it("counts every GIF frame (the engine's GIF reader decodes them all) and a frame larger than the screen", () => {
    const gif = encodeGif(raster);
    expect(readImageInfo(gif, 50)).toMatchObject({ width: 37, height: 11, pages: 1, pixels: 37 * 11 });
    // A 1 x 1 logical screen around a 20,000 x 20,000 frame.
    const lying = Buffer.from(gif);
    lying.writeUInt16LE(1, 6);
    lying.writeUInt16LE(1, 8);
    lying.writeUInt16LE(20_000, 13 + 12 + 5);
    lying.writeUInt16LE(20_000, 13 + 12 + 7);
    expect(readImageInfo(lying, 50).pixels).toBe(400_000_000);
    // The same frame 60 times over: each is decoded (the first one only read), and each counts against ocrMaxPages.
    const frame = gif.subarray(13 + 12, gif.length - 1);
    const many = Buffer.concat([gif.subarray(0, 13 + 12), ...Array.from({ length: 60 }, () => frame), Buffer.from([0x3b])]);
    expect(refusal(() => readImageInfo(many, 50)).code).toBe("TOO_MANY_PAGES");
    expect(readImageInfo(many, 60)).toMatchObject({ pages: 1, pixels: 60 * 37 * 11 });
  });
});
