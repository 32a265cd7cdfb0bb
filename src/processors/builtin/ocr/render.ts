/**
 * A PDF page as an 8-bit grayscale image for Tesseract, in the OCR child: rendered by PDF.js onto its own
 * @napi-rs/canvas, read back a band of rows at a time into a PGM, the canvas freed before recognition starts. So a
 * 300-dpi letter page (8.4 million pixels) peaks at its 34 MB canvas plus an 8 MB PGM, rather than two RGBA copies
 * held while Tesseract works. A page larger than `maxPixels` at `dpi` is rendered at the resolution that fits.
 */
import type { PDFDocumentProxy, PDFPageProxy } from "pdfjs-dist/legacy/build/pdf.mjs";

export interface PageImage {
  /** A binary PGM (P5) of the page. */
  pgm: Uint8Array;
  width: number;
  height: number;
  dpi: number;
}

/** Rows read back from the canvas at a time: a few MB of RGBA, whatever the page. */
const BAND_ROWS = 256;

/** The resolution a page of `widthPt` x `heightPt` points is rendered at: `dpi`, or less to stay within `maxPixels`. */
export function renderDpi(widthPt: number, heightPt: number, dpi: number, maxPixels: number): number {
  const pixelsAt = (d: number): number => Math.ceil((widthPt * d) / 72) * Math.ceil((heightPt * d) / 72);
  if (pixelsAt(dpi) <= maxPixels) return dpi;
  let fit = Math.floor(72 * Math.sqrt(maxPixels / (widthPt * heightPt)));
  while (fit > 1 && pixelsAt(fit) > maxPixels) fit--;
  return Math.max(1, fit);
}

interface CanvasAndContext {
  canvas: { width: number; height: number };
  context: { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } };
}
interface CanvasFactory {
  create(width: number, height: number): CanvasAndContext;
  destroy(target: CanvasAndContext): void;
}

export async function renderPage(doc: PDFDocumentProxy, page: PDFPageProxy, dpi: number, maxPixels: number): Promise<PageImage> {
  const [x0, y0, x1, y1] = page.view as [number, number, number, number];
  const rotated = page.rotate % 180 !== 0;
  const [w, h] = rotated ? [y1 - y0, x1 - x0] : [x1 - x0, y1 - y0];
  // A page's UserUnit (PDF 1.6) scales its box; PDF.js's viewport applies it, so the resolution must count it too.
  const unit = page.userUnit > 0 ? page.userUnit : 1;
  const used = renderDpi(Math.abs(w) * unit, Math.abs(h) * unit, dpi, maxPixels);
  const viewport = page.getViewport({ scale: used / 72 });
  const width = Math.ceil(viewport.width);
  const height = Math.ceil(viewport.height);
  if (width * height > maxPixels) throw new Error(`a page of ${width} x ${height} pixels at ${used} dpi`);
  const factory = doc.canvasFactory as CanvasFactory;
  const target = factory.create(width, height);
  try {
    await page.render({
      canvas: null,
      // PDF.js types the DOM's context; in Node its own factory made this one.
      canvasContext: target.context as never,
      viewport,
      background: "white",
    }).promise;
    const header = new TextEncoder().encode(`P5\n${width} ${height}\n255\n`);
    const pgm = new Uint8Array(header.length + width * height);
    pgm.set(header);
    for (let top = 0; top < height; top += BAND_ROWS) {
      const rows = Math.min(BAND_ROWS, height - top);
      const rgba = target.context.getImageData(0, top, width, rows).data;
      let j = header.length + top * width;
      // ITU-R 601 luma in integers.
      for (let i = 0; i < rgba.length; i += 4) pgm[j++] = (rgba[i]! * 77 + rgba[i + 1]! * 150 + rgba[i + 2]! * 29) >> 8;
    }
    return { pgm, width, height, dpi: used };
  } finally {
    factory.destroy(target);
  }
}
