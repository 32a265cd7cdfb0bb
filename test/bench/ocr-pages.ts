/**
 * Real pages for the OCR evaluation and bench: PDFs that Debian packages ship as documentation (nobody here wrote
 * them), rendered at 300 dpi in gray, with their text layer as the reference; and the degradations a scanner or a
 * phone adds (noise, a slight rotation, a lower resolution, JPEG). Pure raster arithmetic here, rendering with
 * PDF.js and @napi-rs/canvas as the processor does.
 */
import { existsSync, readFileSync } from "node:fs";
import { openPdf, pageText } from "../../src/processors/builtin/text/pdf.js";
import { encodePng, encodeWithCanvas, renderPdfPage, type Raster } from "../fixtures/documents/images.js";
import { createRng } from "../reliability/lib/random.js";

export interface SourcePdf {
  path: string;
  /** The Debian package that installs it (`apt-get install <package>`). */
  debianPackage: string;
  /** Pages sampled (body text: the title pages are mostly whitespace). */
  pages: number[];
}

export const DEBIAN_PDFS: readonly SourcePdf[] = [
  { path: "/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf", debianPackage: "shared-mime-info", pages: [2, 5, 9] },
  { path: "/usr/share/doc/libtasn1-doc/libtasn1.pdf", debianPackage: "libtasn1-doc", pages: [10, 14, 20] },
];

/** The PDFs, or an error that names the Debian packages to install. */
export function debianPdfs(): SourcePdf[] {
  const missing = DEBIAN_PDFS.filter((p) => !existsSync(p.path));
  if (missing.length > 0) {
    throw new Error(
      `the OCR evaluation reads PDFs that Debian packages ship: ${missing.map((p) => p.path).join(", ")} missing; ` +
        `install them with: apt-get install ${missing.map((p) => p.debianPackage).join(" ")}`,
    );
  }
  return [...DEBIAN_PDFS];
}

export interface SamplePage {
  label: string;
  /** The PDF's own text layer for the page: the reference. */
  reference: string;
  raster: Raster;
}

export async function samplePages(pdfs: readonly SourcePdf[], dpi = 300): Promise<SamplePage[]> {
  const out: SamplePage[] = [];
  for (const pdf of pdfs) {
    const data = readFileSync(pdf.path);
    const task = await openPdf(new Uint8Array(data));
    const doc = await task.promise;
    const references: string[] = [];
    for (const n of pdf.pages) references.push(await pageText(await doc.getPage(n)));
    await task.destroy();
    for (const [i, n] of pdf.pages.entries()) {
      out.push({
        label: `${pdf.debianPackage} p.${n}`,
        reference: references[i]!,
        raster: await renderPdfPage(new Uint8Array(data), n, dpi),
      });
    }
  }
  return out;
}

/** The repository's seeded generator (mulberry32), so every run degrades the same way. */
export function random(seed: number): () => number {
  return createRng(seed).next;
}

/** Scanner noise: every pixel shifted by up to +-`amplitude`, and `speckle` of them turned black or white. */
export function addNoise(r: Raster, amplitude = 40, speckle = 0.003, seed = 7): Raster {
  const next = random(seed);
  const data = new Uint8Array(r.data.length);
  for (let i = 0; i < data.length; i++) {
    const roll = next();
    if (roll < speckle / 2) data[i] = 0;
    else if (roll < speckle) data[i] = 255;
    else data[i] = Math.max(0, Math.min(255, r.data[i]! + Math.round((next() * 2 - 1) * amplitude)));
  }
  return { ...r, data };
}

async function canvasOf(r: Raster) {
  const { createCanvas } = await import("@napi-rs/canvas");
  const canvas = createCanvas(r.width, r.height);
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(r.width, r.height);
  for (let i = 0, j = 0; j < r.data.length; i += 4, j++) {
    image.data[i] = image.data[i + 1] = image.data[i + 2] = r.data[j]!;
    image.data[i + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
  return { createCanvas, canvas };
}

function grayOfCanvas(ctx: { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } }, width: number, height: number): Raster {
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const data = new Uint8Array(width * height);
  for (let i = 0, j = 0; j < data.length; i += 4, j++) data[j] = (rgba[i]! * 77 + rgba[i + 1]! * 150 + rgba[i + 2]! * 29) >> 8;
  return { width, height, data };
}

/** Turned by `degrees` about its centre on a white background, as a page fed slightly askew. */
export async function rotate(r: Raster, degrees: number): Promise<Raster> {
  const { createCanvas, canvas } = await canvasOf(r);
  const out = createCanvas(r.width, r.height);
  const ctx = out.getContext("2d");
  ctx.fillStyle = "white";
  ctx.fillRect(0, 0, r.width, r.height);
  ctx.translate(r.width / 2, r.height / 2);
  ctx.rotate((degrees * Math.PI) / 180);
  ctx.drawImage(canvas, -r.width / 2, -r.height / 2);
  return grayOfCanvas(ctx, r.width, r.height);
}

/** Resampled by `factor` (0.5: 300 dpi to 150). */
export async function rescale(r: Raster, factor: number): Promise<Raster> {
  const { createCanvas, canvas } = await canvasOf(r);
  const width = Math.round(r.width * factor);
  const height = Math.round(r.height * factor);
  const out = createCanvas(width, height);
  const ctx = out.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(canvas, 0, 0, width, height);
  return grayOfCanvas(ctx, width, height);
}

export interface Variant {
  name: string;
  degraded: boolean;
  /** The image file the processor is given. */
  make(r: Raster): Promise<{ file: Buffer; ext: string }>;
}

export const VARIANTS: readonly Variant[] = [
  { name: "clean 300 dpi", degraded: false, make: async (r) => ({ file: encodePng(r), ext: "png" }) },
  { name: "noise", degraded: true, make: async (r) => ({ file: encodePng(addNoise(r)), ext: "png" }) },
  { name: "rotated 1.5 deg", degraded: true, make: async (r) => ({ file: encodePng(await rotate(r, 1.5)), ext: "png" }) },
  { name: "200 dpi", degraded: true, make: async (r) => ({ file: encodePng(await rescale(r, 2 / 3)), ext: "png" }) },
  { name: "JPEG q50", degraded: true, make: async (r) => ({ file: await encodeWithCanvas(r, "jpeg", 50), ext: "jpg" }) },
  {
    name: "all four",
    degraded: true,
    make: async (r) => ({ file: await encodeWithCanvas(await rescale(await rotate(addNoise(r), 1.5), 2 / 3), "jpeg", 50), ext: "jpg" }),
  },
];

/**
 * Text for comparison: compatibility forms folded (ligatures, typographic quotes and dashes), every run of white
 * space one space. Layout (line breaks, column order) is not what OCR is judged on here; characters are.
 */
export function normalise(text: string): string {
  return text
    .normalize("NFKC")
    .replace(/[\u2018\u2019\u201a\u2032]/g, "'")
    .replace(/[\u201c\u201d\u201e\u2033]/g, '"')
    .replace(/[\u2010-\u2015\u2212]/g, "-")
    .replace(/\u2022/g, "*")
    .replace(/\s+/g, " ")
    .trim();
}

/** Levenshtein distance (two rows; a page is a few thousand characters). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  let cur = new Array<number>(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    const ca = a.charCodeAt(i - 1);
    for (let j = 1; j <= b.length; j++) {
      const cost = ca === b.charCodeAt(j - 1) ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length]!;
}

/** Character error rate of `ocr` against `reference`, both normalised: edits / reference characters. */
export function characterErrorRate(reference: string, ocr: string): { cer: number; edits: number; characters: number } {
  const ref = normalise(reference);
  const edits = editDistance(ref, normalise(ocr));
  return { cer: ref.length === 0 ? 0 : edits / ref.length, edits, characters: ref.length };
}
