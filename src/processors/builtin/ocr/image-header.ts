/**
 * An image's format, size and page count from its headers alone, before anything decodes it: a 30,000 x 30,000 PNG
 * or a TIFF of 10,000 pages is refused here from a few bytes, in the daemon, and never reaches the OCR process.
 * Pure functions on the buffered bytes. What they cannot make sense of is CORRUPT; a variant the engine's image
 * library cannot read (BigTIFF) is UNSUPPORTED_TYPE.
 */
import type { DetectedType } from "../../../domain/document.js";
import { PermanentDocumentError } from "../../../errors/document.js";

export type ImageFormat = "png" | "jpeg" | "tiff" | "webp" | "bmp" | "gif";

export const IMAGE_TYPES: Readonly<Record<ImageFormat, DetectedType>> = {
  png: { mime: "image/png", ext: "png" },
  jpeg: { mime: "image/jpeg", ext: "jpg" },
  tiff: { mime: "image/tiff", ext: "tif" },
  webp: { mime: "image/webp", ext: "webp" },
  bmp: { mime: "image/bmp", ext: "bmp" },
  gif: { mime: "image/gif", ext: "gif" },
};

export interface ImageInfo {
  format: ImageFormat;
  width: number;
  height: number;
  /** TIFF: its directories (pages); 1 for the others (a GIF's first frame is what is read). */
  pages: number;
  /**
   * The pixels the engine decodes at once at most, which the pixel limit holds: the largest page of a TIFF (each is
   * decoded in turn), every frame of a GIF (its reader decodes them all, whatever the logical screen says).
   */
  pixels: number;
  /** TIFF: each page's directory offset (a TIFF whose header points at one of them reads as that page). */
  directories?: number[];
}

/** What a format's reader finds; `pixels` defaults to width x height. */
type Header = Omit<ImageInfo, "pixels"> & { pixels?: number };

const ascii = (b: Uint8Array, at: number, s: string): boolean =>
  b.length >= at + s.length && [...s].every((c, i) => b[at + i] === c.charCodeAt(0));

/** The format from the first bytes (12 are enough), or undefined for anything else. */
export function imageFormatOf(head: Uint8Array): ImageFormat | undefined {
  if (head.length >= 8 && [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a].every((v, i) => head[i] === v)) return "png";
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return "jpeg";
  if (ascii(head, 0, "II") && (head[2] === 42 || head[2] === 43) && head[3] === 0) return "tiff";
  if (ascii(head, 0, "MM") && head[2] === 0 && (head[3] === 42 || head[3] === 43)) return "tiff";
  if (ascii(head, 0, "RIFF") && ascii(head, 8, "WEBP")) return "webp";
  if (ascii(head, 0, "BM") && head.length >= 14) return "bmp";
  if (ascii(head, 0, "GIF87a") || ascii(head, 0, "GIF89a")) return "gif";
  return undefined;
}

function corrupt(format: ImageFormat, why: string): PermanentDocumentError {
  return new PermanentDocumentError("CORRUPT", `not a readable ${format.toUpperCase()} image: ${why}`, {
    detectedType: IMAGE_TYPES[format],
  });
}

/**
 * The image's size and pages from its headers. `maxPages` bounds the walk of a TIFF's directory chain: one more is
 * TOO_MANY_PAGES at once, however many follow.
 */
export function readImageInfo(data: Uint8Array, maxPages: number): ImageInfo {
  const format = imageFormatOf(data);
  if (format === undefined) throw new Error("readImageInfo: not an image format it knows (check imageFormatOf first)");
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const info = ((): Header => {
    switch (format) {
      case "png":
        return png(data, view);
      case "jpeg":
        return jpeg(data, view);
      case "tiff":
        return tiff(data, view, maxPages);
      case "webp":
        return webp(data, view);
      case "bmp":
        return bmp(data, view);
      case "gif":
        return gifFrames(data, view, maxPages);
    }
  })();
  if (info.width <= 0 || info.height <= 0) throw corrupt(format, `it declares ${info.width} x ${info.height} pixels`);
  return { ...info, pixels: info.pixels ?? info.width * info.height };
}

/**
 * The size an image declares, from its first bytes only (PNG, GIF, BMP, WebP: fixed offsets in the first 30 bytes;
 * JPEG when its frame header is among them), or undefined when they do not say. So a dimension bomb is refused
 * before its bytes are buffered.
 */
export function declaredSize(head: Uint8Array): { format: ImageFormat; width: number; height: number } | undefined {
  const format = imageFormatOf(head);
  if (format === undefined || format === "tiff") return undefined;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  try {
    if (format === "png") {
      if (head.length < 24 || !ascii(head, 12, "IHDR")) return undefined;
      return { format, width: view.getUint32(16), height: view.getUint32(20) };
    }
    const info = format === "jpeg" ? jpeg(head, view) : format === "webp" ? webp(head, view) : format === "bmp" ? bmp(head, view) : gif(head, view);
    return { format, width: info.width, height: info.height };
  } catch {
    // Cut short or damaged: the whole image is judged once it is read.
    return undefined;
  }
}

/** IHDR first, then the chunks walked to IEND: a truncated PNG is refused before it is sent anywhere. */
function png(b: Uint8Array, v: DataView): Header {
  if (b.length < 33 || !ascii(b, 12, "IHDR")) throw corrupt("png", "no IHDR chunk after the signature");
  const width = v.getUint32(16);
  const height = v.getUint32(20);
  for (let at = 8; ; ) {
    if (at + 12 > b.length) throw corrupt("png", "it ends before its IEND chunk (truncated)");
    const length = v.getUint32(at);
    if (ascii(b, at + 4, "IEND")) break;
    at += 12 + length;
  }
  return { format: "png", width, height, pages: 1 };
}

/** The first start-of-frame segment (SOF0-SOF15 but DHT, JPG and DAC). */
function jpeg(b: Uint8Array, v: DataView): Header {
  for (let at = 2; ; ) {
    while (at < b.length && b[at] === 0xff && b[at + 1] === 0xff) at++;
    if (at + 4 > b.length) throw corrupt("jpeg", "it ends before its frame header (truncated)");
    if (b[at] !== 0xff) throw corrupt("jpeg", `no marker at byte ${at}`);
    const marker = b[at + 1]!;
    if (marker === 0xd9 || marker === 0xda) throw corrupt("jpeg", "no frame header before the image data");
    // Markers without a length: TEM and RSTn.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2;
      continue;
    }
    const length = v.getUint16(at + 2);
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      if (at + 9 > b.length) throw corrupt("jpeg", "its frame header is cut short");
      return { format: "jpeg", height: v.getUint16(at + 5), width: v.getUint16(at + 7), pages: 1 };
    }
    if (length < 2) throw corrupt("jpeg", `a segment of length ${length}`);
    at += 2 + length;
  }
}

/**
 * The first directory's width and height, and the directory chain counted (a chain that loops or points outside the
 * file is CORRUPT). Each page is a directory: a fax of 10,000 pages is 10,000 of them.
 */
function tiff(b: Uint8Array, v: DataView, maxPages: number): Header {
  const little = b[0] === 0x49;
  if ((little ? v.getUint16(2, true) : v.getUint16(2)) === 43) {
    throw new PermanentDocumentError("UNSUPPORTED_TYPE", "a BigTIFF image: the OCR engine's image library reads classic TIFF only", {
      detectedType: IMAGE_TYPES.tiff,
    });
  }
  if (b.length < 8) throw corrupt("tiff", "its header is cut short");
  const u16 = (at: number): number => v.getUint16(at, little);
  const u32 = (at: number): number => v.getUint32(at, little);
  let width = 0;
  let height = 0;
  let pixels = 0;
  let pages = 0;
  const directories: number[] = [];
  const seen = new Set<number>();
  for (let ifd = u32(4); ifd !== 0; ) {
    if (seen.has(ifd)) throw corrupt("tiff", "its directory chain loops");
    seen.add(ifd);
    if (ifd + 2 > b.length) throw corrupt("tiff", `a directory at byte ${ifd}, past its end`);
    const entries = u16(ifd);
    const next = ifd + 2 + entries * 12;
    if (next + 4 > b.length) throw corrupt("tiff", `a directory at byte ${ifd} runs past its end`);
    pages++;
    directories.push(ifd);
    if (pages > maxPages) {
      throw new PermanentDocumentError("TOO_MANY_PAGES", `a TIFF of more than ${maxPages} pages: the OCR processor reads at most ocrMaxPages (${maxPages})`, {
        detectedType: IMAGE_TYPES.tiff,
      });
    }
    // Every page's size, not the first's only: each page is decoded in turn.
    let w = 0;
    let h = 0;
    for (let e = ifd + 2; e < next; e += 12) {
      const tag = u16(e);
      if (tag !== 256 && tag !== 257) continue;
      const value = u16(e + 2) === 3 ? u16(e + 8) : u32(e + 8);
      if (tag === 256) w = value;
      else h = value;
    }
    if (w <= 0 || h <= 0) throw corrupt("tiff", `page ${pages} declares ${w} x ${h} pixels`);
    if (pages === 1) [width, height] = [w, h];
    pixels = Math.max(pixels, w * h);
    ifd = u32(next);
  }
  if (pages === 0) throw corrupt("tiff", "it has no image directory");
  return { format: "tiff", width, height, pages, pixels, directories };
}

/** The canvas of an extended WebP, else the size in the lossy (VP8) or lossless (VP8L) frame header. */
function webp(b: Uint8Array, v: DataView): Header {
  if (b.length < 30) throw corrupt("webp", "its header is cut short");
  if (ascii(b, 12, "VP8X")) {
    const u24 = (at: number): number => b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16);
    return { format: "webp", width: u24(24) + 1, height: u24(27) + 1, pages: 1 };
  }
  if (ascii(b, 12, "VP8 ")) {
    if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) throw corrupt("webp", "no VP8 start code");
    return { format: "webp", width: v.getUint16(26, true) & 0x3fff, height: v.getUint16(28, true) & 0x3fff, pages: 1 };
  }
  if (ascii(b, 12, "VP8L")) {
    if (b[20] !== 0x2f) throw corrupt("webp", "no VP8L signature");
    const bits = v.getUint32(21, true);
    return { format: "webp", width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1, pages: 1 };
  }
  throw corrupt("webp", "no VP8, VP8L or VP8X chunk first");
}

function bmp(b: Uint8Array, v: DataView): Header {
  if (b.length < 26) throw corrupt("bmp", "its header is cut short");
  const dib = v.getUint32(14, true);
  if (dib === 12) return { format: "bmp", width: v.getUint16(18, true), height: v.getUint16(20, true), pages: 1 };
  if (dib < 40 || b.length < 26) throw corrupt("bmp", `an info header of ${dib} bytes`);
  // A negative height is a top-down bitmap.
  return { format: "bmp", width: v.getInt32(18, true), height: Math.abs(v.getInt32(22, true)), pages: 1 };
}

/** The logical screen (the first bytes say no more). */
function gif(b: Uint8Array, v: DataView): Header {
  if (b.length < 13) throw corrupt("gif", "its header is cut short");
  return { format: "gif", width: v.getUint16(6, true), height: v.getUint16(8, true), pages: 1 };
}

/**
 * The logical screen, and every frame walked: the engine's GIF reader (giflib's DGifSlurp under Leptonica) decodes
 * all frames into memory before the first is used, each at its own declared size, which may exceed the screen's. So
 * the pixels are the frames' sum, and each frame counts as a page. A GIF that ends early is walked as far as it goes
 * (the engine judges it).
 */
function gifFrames(b: Uint8Array, v: DataView, maxPages: number): Header {
  const screen = gif(b, v);
  const table = (flags: number): number => (flags & 0x80 ? 3 << ((flags & 7) + 1) : 0);
  const skipBlocks = (from: number): number => {
    let at = from;
    while (at < b.length) {
      const size = b[at]!;
      at += 1 + size;
      if (size === 0) break;
    }
    return at;
  };
  let frames = 0;
  let pixels = 0;
  for (let at = 13 + table(b[10]!); at < b.length; ) {
    const introducer = b[at]!;
    if (introducer === 0x3b) break;
    if (introducer === 0x21) {
      at = skipBlocks(at + 2);
    } else if (introducer === 0x2c) {
      if (at + 10 > b.length) break;
      frames++;
      if (frames > maxPages) {
        throw new PermanentDocumentError("TOO_MANY_PAGES", `a GIF of more than ${maxPages} frames: the OCR engine decodes every frame, and the ocr processor reads at most ocrMaxPages (${maxPages})`, {
          detectedType: IMAGE_TYPES.gif,
        });
      }
      pixels += v.getUint16(at + 5, true) * v.getUint16(at + 7, true);
      at = skipBlocks(at + 10 + table(b[at + 9]!) + 1);
    } else {
      throw corrupt("gif", `an unknown block (0x${introducer.toString(16)}) at byte ${at}`);
    }
  }
  return { ...screen, pixels: Math.max(pixels, screen.width * screen.height) };
}
