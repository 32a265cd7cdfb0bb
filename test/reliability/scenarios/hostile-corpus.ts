// The hostile documents of the `hostile` scenario, generated at run time from the scenario's seed (nothing large in
// git): DOCX zip bombs of several kinds, PDF bombs, tens of MB of nested HTML, and documents just under and just over
// maxBufferedBytes. Each is built to get past the cheap checks the text processor makes before parsing, where it
// can, so that the parse itself (and the memory it takes) is what is tested. The generic builders (makeZip,
// zipBombDocx, flateBombPdf) are the unit tests' own, from test/fixtures/documents/build.ts.
import { constants, crc32, deflateRawSync } from "node:zlib";
import { CONTENT_TYPES, flateBombPdf, makeZip, ROOT_RELS, zipBombDocx, type ZipEntry } from "../../fixtures/documents/build.js";
import type { Rng } from "../lib/random.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export interface HostileDoc {
  /** The object's name under its phase's prefix; the extension is the one a user would give it. */
  name: string;
  /** What it attacks. */
  what: string;
  body: Buffer;
}

export interface CorpusOptions {
  /** The daemon's maxBufferedBytes: the near-limit documents sit just under and just over it. */
  maxBufferedBytes: number;
  /** The text processor's extractionMemoryBytes: the archives that must pass the declared-size check stay under it. */
  extractionMemoryBytes: number;
  /** Full mode: more kinds, larger counts. */
  full: boolean;
}

// ---------- building blocks ----------

/** Pseudo-words from syllables: prose-like text that compresses like prose. */
function vocabulary(rng: Rng, size: number): string[] {
  const syllables = ["ka", "lo", "mi", "ne", "tu", "ra", "si", "po", "de", "ve", "xa", "zu", "qi", "fo", "bu", "an", "en", "or", "is", "str"];
  return Array.from({ length: size }, () => {
    let word = "";
    for (let n = rng.int(1, 3); n > 0; n--) word += rng.pick(syllables);
    return word;
  });
}

function words(rng: Rng, vocab: readonly string[], count: number): string {
  return Array.from({ length: count }, () => rng.pick(vocab)).join(" ");
}

/** `block()` appended until at least `bytes` long. */
function fill(bytes: number, block: () => string): string {
  const parts: string[] = [];
  let length = 0;
  while (length < bytes) {
    const b = block();
    parts.push(b);
    length += b.length;
  }
  return parts.join("");
}

/** Calls `build(padding)` until the result is exactly `target` bytes (its size grows one for one with padding). */
function exactly(target: number, build: (padding: number) => Buffer): Buffer {
  let padding = 0;
  for (let attempt = 0; attempt < 6; attempt++) {
    const body = build(padding);
    if (body.length === target) return body;
    padding += target - body.length;
    if (padding < 0) throw new Error(`cannot pad to ${target} bytes: the document alone is ${body.length}`);
  }
  throw new Error(`could not size a document to exactly ${target} bytes`);
}

const ADLER_BASE = 65521;

function adler32(data: Buffer): number {
  let a = 1;
  let b = 0;
  // 5552 bytes is the most that can be summed before b could overflow 2^32 (zlib's NMAX).
  for (let i = 0; i < data.length; ) {
    const end = Math.min(data.length, i + 5552);
    for (; i < end; i++) {
      a += data[i]!;
      b += a;
    }
    a %= ADLER_BASE;
    b %= ADLER_BASE;
  }
  return ((b << 16) | a) >>> 0;
}

/** zlib's adler32_combine: the Adler-32 of A followed by B, from theirs and B's length. */
function adler32Combine(adler1: number, adler2: number, length2: number): number {
  const rem = length2 % ADLER_BASE;
  let sum1 = adler1 & 0xffff;
  let sum2 = (rem * sum1) % ADLER_BASE;
  sum1 += (adler2 & 0xffff) + ADLER_BASE - 1;
  sum2 += ((adler1 >>> 16) & 0xffff) + ((adler2 >>> 16) & 0xffff) + ADLER_BASE - rem;
  if (sum1 >= ADLER_BASE) sum1 -= ADLER_BASE;
  if (sum1 >= ADLER_BASE) sum1 -= ADLER_BASE;
  if (sum2 >= ADLER_BASE * 2) sum2 -= ADLER_BASE * 2;
  if (sum2 >= ADLER_BASE) sum2 -= ADLER_BASE;
  return ((sum2 << 16) | sum1) >>> 0;
}

interface Deflated {
  /** Raw deflate of the whole sequence. */
  raw: Buffer;
  size: number;
  crc: number;
  adler: number;
}

/**
 * The parts in order as one raw deflate stream, without compressing the whole: each distinct part compressed once
 * and sync-flushed (its back-references stay inside it, so it decodes the same anywhere), repeated as often as it
 * occurs, then an empty final block (the technique of the fixtures' rawDeflateRepeated, over several blocks).
 */
function deflateSequence(parts: readonly Buffer[]): Deflated {
  const cache = new Map<Buffer, { raw: Buffer; adler: number }>();
  const raws: Buffer[] = [];
  let size = 0;
  let crc = 0;
  let adler = 1;
  for (const part of parts) {
    let done = cache.get(part);
    if (done === undefined) {
      done = { raw: deflateRawSync(part, { finishFlush: constants.Z_SYNC_FLUSH }), adler: adler32(part) };
      cache.set(part, done);
    }
    raws.push(done.raw);
    crc = crc32(part, crc);
    adler = adler32Combine(adler, done.adler, part.length);
    size += part.length;
  }
  raws.push(Buffer.from([0x03, 0x00]));
  return { raw: Buffer.concat(raws), size, crc, adler };
}

/** The same as a zlib (FlateDecode) stream: header, raw deflate, Adler-32. */
function zlibSequence(parts: readonly Buffer[]): { bytes: Buffer; size: number } {
  const d = deflateSequence(parts);
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE(d.adler);
  return { bytes: Buffer.concat([Buffer.from([0x78, 0x9c]), d.raw, adler]), size: d.size };
}

/** `count` distinct blocks of about 1 MiB of `unit()` each: long documents are these cycled (cheap to make). */
function blocks(count: number, unit: () => string): Buffer[] {
  return Array.from({ length: count }, () => Buffer.from(fill(MiB, unit), "latin1"));
}

/** Whole blocks, cycled, as long as they fit in `bytes`. */
function upTo(distinct: readonly Buffer[], bytes: number): Buffer {
  const out: Buffer[] = [];
  for (let total = 0, i = 0; total + distinct[i % distinct.length]!.length <= bytes; i++) {
    out.push(distinct[i % distinct.length]!);
    total += distinct[i % distinct.length]!.length;
  }
  return Buffer.concat(out);
}

/** `distinct` parts cycled until their total passes `bytes` (a long stream from a few compressions). */
function cycled(distinct: readonly Buffer[], bytes: number): Buffer[] {
  const out: Buffer[] = [];
  for (let total = 0, i = 0; total < bytes; i++) {
    const part = distinct[i % distinct.length]!;
    out.push(part);
    total += part.length;
  }
  return out;
}

// ---------- DOCX ----------

const DOC_HEAD =
  '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' +
  '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>';
const DOC_TAIL = "</w:body></w:document>";

function docx(document: ZipEntry, extra: readonly ZipEntry[] = []): Buffer {
  return makeZip([
    { name: "[Content_Types].xml", data: Buffer.from(CONTENT_TYPES) },
    { name: "_rels/.rels", data: Buffer.from(ROOT_RELS) },
    document,
    ...extra,
  ]);
}

function paragraph(text: string): string {
  return (
    '<w:p><w:pPr><w:pStyle w:val="Normal"/></w:pPr><w:r><w:rPr><w:lang w:val="en-US"/></w:rPr>' +
    `<w:t xml:space="preserve">${text}</w:t></w:r></w:p>`
  );
}

/** A paragraph formatted as Word writes one (fonts, size, colour): about 350 bytes of markup around its text. */
function styledParagraph(text: string): string {
  return (
    '<w:p><w:pPr><w:pStyle w:val="BodyText"/><w:spacing w:before="0" w:after="120" w:line="276" w:lineRule="auto"/>' +
    '<w:jc w:val="both"/></w:pPr><w:r><w:rPr><w:rFonts w:ascii="Calibri" w:hAnsi="Calibri" w:cs="Calibri"/>' +
    '<w:color w:val="1F3864"/><w:sz w:val="22"/><w:szCs w:val="22"/><w:lang w:val="en-GB"/></w:rPr>' +
    `<w:t xml:space="preserve">${text}</w:t></w:r></w:p>`
  );
}

/**
 * A DOCX whose word/document.xml is `bytes` of ordinary paragraphs compressing about 7.6:1 (prose-like XML does
 * 5-20:1): under the ratio limit, and declaring less than extractionMemoryBytes in all, so it passes every archive
 * check and the parser gets the whole of it.
 */
function bigXmlDocx(paragraphs: readonly Buffer[], bytes: number): { body: Buffer; ratio: number } {
  // Each block is compressed on its own, so cycling a few distinct MiB compresses as distinct text would.
  const parts = [Buffer.from(DOC_HEAD), ...cycled(paragraphs, bytes), Buffer.from(DOC_TAIL)];
  const d = deflateSequence(parts);
  const body = docx({ name: "word/document.xml", deflated: { bytes: d.raw, crc: d.crc, size: d.size } });
  return { body, ratio: d.size / d.raw.length };
}

/** `count` parts of `partBytes` zeros each (below the 1 MiB floor of the ratio check), declared truthfully. */
function manyPartsDocx(count: number, partBytes: number): Buffer {
  const zeros = Buffer.alloc(partBytes);
  const deflated = { bytes: deflateRawSync(zeros), crc: crc32(zeros), size: partBytes };
  const parts: ZipEntry[] = Array.from({ length: count }, (_, i) => ({ name: `word/media/part${i}.xml`, deflated }));
  return docx({ name: "word/document.xml", data: Buffer.from(DOC_HEAD + paragraph("many parts") + DOC_TAIL) }, parts);
}

/**
 * Content controls nested `depth` deep around one paragraph. `ids` gives each level a random id, which keeps the
 * part's compression ratio under the limit when it is larger than the 1 MiB the ratio check ignores.
 */
function deepXmlDocx(rng: Rng, depth: number, ids: boolean): Buffer {
  const open: string[] = [];
  for (let i = 0; i < depth; i++) {
    open.push(ids ? `<w:sdt><w:sdtPr><w:id w:val="${rng.int(0, 2 ** 31 - 1)}"/></w:sdtPr><w:sdtContent>` : "<w:sdt><w:sdtContent>");
  }
  const xml = DOC_HEAD + open.join("") + paragraph("deep") + "</w:sdtContent></w:sdt>".repeat(depth) + DOC_TAIL;
  return docx({ name: "word/document.xml", data: Buffer.from(xml) });
}

/** A 1 GiB part declaring `declared` bytes: only inflating it shows the lie. */
function lyingDocx(declared: number): Buffer {
  const zeros = Buffer.alloc(MiB);
  const d = deflateSequence(Array.from({ length: 1024 }, () => zeros));
  return docx({ name: "word/document.xml", deflated: { bytes: d.raw, crc: d.crc, size: d.size }, declaredSize: declared });
}

/** A valid DOCX of exactly `target` bytes: its document.xml stored (not compressed), paragraphs then padding. */
function sizedDocx(paragraphs: readonly Buffer[], target: number): Buffer {
  const body = upTo(paragraphs, target - 4 * KiB);
  return exactly(target, (padding) =>
    docx({
      name: "word/document.xml",
      stored: true,
      data: Buffer.concat([Buffer.from(DOC_HEAD), body, Buffer.from(`${comment(padding)}${DOC_TAIL}`)]),
    }),
  );
}

/** An XML or HTML comment of exactly `bytes` (nothing below 7, the shortest comment). */
function comment(bytes: number): string {
  return bytes >= 7 ? `<!--${"p".repeat(bytes - 7)}-->` : "";
}

// ---------- PDF ----------

/** A PDF from its objects (object n is objects[n-1]; 1 is the catalog), with a correct cross-reference table. */
function pdfOf(objects: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "latin1")];
  let offset = parts[0]!.length;
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(offset);
    const obj = Buffer.concat([
      Buffer.from(`${i + 1} 0 obj\n`),
      typeof body === "string" ? Buffer.from(body, "latin1") : body,
      Buffer.from("\nendobj\n"),
    ]);
    parts.push(obj);
    offset += obj.length;
  });
  const xref =
    `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n` +
    offsets.map((o) => `${String(o).padStart(10, "0")} 00000 n \n`).join("") +
    `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${offset}\n%%EOF\n`;
  parts.push(Buffer.from(xref, "latin1"));
  return Buffer.concat(parts);
}

function pdfStream(data: Buffer, filter?: string): Buffer {
  return Buffer.concat([
    Buffer.from(`<< ${filter === undefined ? "" : `/Filter /${filter} `}/Length ${data.length} >>\nstream\n`, "latin1"),
    data,
    Buffer.from("\nendstream", "latin1"),
  ]);
}

const FONT = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>";
const page = (parent: number, font: number, content: number, extra = ""): string =>
  `<< /Type /Page /Parent ${parent} 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 ${font} 0 R >> >> ` +
  `/Contents ${content} 0 R${extra} >>`;

/** One page whose dictionary holds an array nested `depth` deep: a recursive parser overflows its stack. */
function deepArraysPdf(depth: number): Buffer {
  const nested = `${"[".repeat(depth)}0${"]".repeat(depth)}`;
  return pdfOf([
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
    FONT,
    page(2, 3, 5, ` /Hostile ${nested}`),
    pdfStream(Buffer.from("BT /F1 12 Tf 72 720 Td (deep arrays) Tj ET")),
  ]);
}

/** One page under a chain of `depth` page-tree nodes. */
function deepPageTreePdf(depth: number): Buffer {
  // Objects: 1 catalog, 2 font, 3 content, 4 page, then the tree nodes 5.. (5 is the root, each the next one's parent).
  const objects: string[] = ["<< /Type /Catalog /Pages 5 0 R >>", FONT, ""];
  const leafParent = 5 + depth - 1;
  objects.push(page(leafParent, 2, 3));
  for (let i = 0; i < depth; i++) {
    const id = 5 + i;
    const kid = i === depth - 1 ? 4 : id + 1;
    objects.push(`<< /Type /Pages ${i === 0 ? "" : `/Parent ${id - 1} 0 R `}/Kids [${kid} 0 R] /Count 1 >>`);
  }
  const all: (string | Buffer)[] = objects;
  all[2] = pdfStream(Buffer.from("BT /F1 12 Tf 72 720 Td (deep page tree) Tj ET"));
  return pdfOf(all);
}

/** One page, while the page tree claims `count`. */
function pageCountLiePdf(count: number): Buffer {
  return pdfOf([
    "<< /Type /Catalog /Pages 2 0 R >>",
    `<< /Type /Pages /Kids [4 0 R] /Count ${count} >>`,
    FONT,
    page(2, 3, 5),
    pdfStream(Buffer.from("BT /F1 12 Tf 72 720 Td (one page only) Tj ET")),
  ]);
}

/** `pages` real pages, all showing the same small content stream. */
function manyPagesPdf(pages: number): Buffer {
  const objects: (string | Buffer)[] = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    `<< /Type /Pages /Kids [${Array.from({ length: pages }, (_, i) => `${5 + i} 0 R`).join(" ")}] /Count ${pages} >>`,
    FONT,
    pdfStream(Buffer.from("BT /F1 12 Tf 72 720 Td (one of many pages) Tj ET")),
  ];
  for (let i = 0; i < pages; i++) objects.push(page(2, 3, 4));
  return pdfOf(objects);
}

/**
 * One page whose FlateDecode content stream inflates to `bytes` of text-showing operators, one line of text each:
 * millions of text items for the extractor, from a few hundred KiB (the same 16 lines over and over compress
 * about 1000:1, which keeps the file far under maxBufferedBytes).
 */
function hugeContentPdf(rng: Rng, bytes: number): Buffer {
  const vocab = vocabulary(rng, 50);
  const lines = Array.from({ length: 16 }, () => `(${words(rng, vocab, 6)}) Tj 0 -12 Td\n`);
  let i = 0;
  // One complete text object per MiB, so the parts can follow each other in any number.
  const part = Buffer.from(`BT /F1 10 Tf 72 720 Td\n${fill(MiB - 16, () => lines[i++ % lines.length]!)}ET\n`, "latin1");
  const { bytes: content } = zlibSequence(cycled([part], bytes));
  return pdfOf([
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
    FONT,
    page(2, 3, 5),
    pdfStream(content, "FlateDecode"),
  ]);
}

/**
 * A PDF of exactly `target` bytes, as a large report with charts: `pages` pages, each ten lines of text and a
 * drawing (line segments) filling its share of the size; the first page's content stream padded with a comment.
 * Text stays a few MB: every output is one PutObject, and the stand-in refuses one over 11 MiB (S3 would not).
 */
function sizedPdf(rng: Rng, target: number, pages: number): Buffer {
  const vocab = vocabulary(rng, 2000);
  const texts = Array.from({ length: pages }, () =>
    Array.from({ length: 10 }, (_, j) => `BT /F1 12 Tf 72 ${720 - j * 16} Td (${words(rng, vocab, 12)}) Tj ET`).join("\n"),
  );
  const build = (drawings: readonly string[], padding: number): Buffer => {
    const objects: (string | Buffer)[] = [
      "<< /Type /Catalog /Pages 2 0 R >>",
      `<< /Type /Pages /Kids [${texts.map((_, i) => `${5 + 2 * i} 0 R`).join(" ")}] /Count ${pages} >>`,
      FONT,
    ];
    texts.forEach((text, i) => {
      const pad = i === 0 && padding >= 2 ? `%${"p".repeat(padding - 2)}\n` : "";
      objects.push(pdfStream(Buffer.from(`${text}\n0.5 w\n${drawings[i % drawings.length] ?? ""}${pad}`, "latin1")), page(2, 3, 4 + 2 * i));
    });
    return pdfOf(objects);
  };
  // The drawings take what the text and the structure leave, less room for the padding.
  const perPage = Math.floor((target - 4 * KiB - build([], 0).length) / pages);
  const coordinate = (): number => rng.int(36, 576);
  const drawings = Array.from({ length: 4 }, () =>
    fill(perPage, () => `${coordinate()} ${coordinate()} m ${coordinate()} ${coordinate()} l S\n`).slice(0, Math.max(0, perPage - 24)),
  );
  return exactly(target, (padding) => build(drawings, padding));
}

// ---------- HTML ----------

/** `bytes` of elements each nested in the one before, never closed (the parser closes them all at the end). */
function nestedHtml(rng: Rng, bytes: number): Buffer {
  const vocab = vocabulary(rng, 200);
  const nested = blocks(8, () => `<div><span>${rng.pick(vocab)}</span>`);
  return Buffer.concat([Buffer.from("<!DOCTYPE html><html><body>"), ...cycled(nested, bytes)]);
}

/** `bytes` of sibling paragraphs with attributes, a word or three each: wide rather than deep. */
function wideHtml(rng: Rng, bytes: number): Buffer {
  const vocab = vocabulary(rng, 2000);
  const wide = blocks(
    8,
    () => `<p class="c${rng.int(0, 99)}" id="p${rng.int(0, 1e9)}" style="margin:0;padding:0">${words(rng, vocab, rng.int(1, 3))}</p>\n`,
  );
  return Buffer.concat([Buffer.from("<!DOCTYPE html><html><body>"), ...cycled(wide, bytes), Buffer.from("</body></html>")]);
}

/**
 * An HTML page of exactly `target` bytes, as a spreadsheet exported to HTML: one styled table (markup-heavy, a few
 * MB of text), then a comment as padding.
 */
function sizedHtml(rows: readonly Buffer[], target: number): Buffer {
  const head = Buffer.from("<!DOCTYPE html><html><head><title>near the limit</title></head><body><table>\n");
  const body = upTo(rows, target - 4 * KiB);
  return exactly(target, (padding) => Buffer.concat([head, body, Buffer.from(`</table>${comment(padding)}</body></html>\n`)]));
}

// ---------- the corpus ----------

export function hostileCorpus(rng: Rng, options: CorpusOptions): HostileDoc[] {
  const { maxBufferedBytes: limit, full } = options;
  const docs: HostileDoc[] = [];
  // Made once: 16 distinct MiB of DOCX paragraphs (about 7.6:1 compressed, as Word's XML), 8 of styled ones with
  // little text, 8 of styled table rows.
  const vocab = vocabulary(rng, 200);
  const docxParagraphs = blocks(16, () => paragraph(words(rng, vocab, rng.int(13, 21))));
  const styledParagraphs = blocks(8, () => styledParagraph(words(rng, vocab, rng.int(2, 8))));
  const cell = (): string => `<td class="c${rng.int(0, 40)}" style="border:1px solid #c0c0c0;padding:2px 4px">${rng.pick(vocab)}</td>`;
  const tableRows = blocks(8, () => `<tr>${Array.from({ length: 6 }, cell).join("")}</tr>\n`);
  const add = (name: string, what: string, body: Buffer): void => void docs.push({ name, what, body });

  // DOCX zip bombs.
  add("docx-ratio-bomb.docx", "a part inflating 1 GiB of zeros at ~1000:1, declared truthfully", zipBombDocx(GiB));
  add("docx-size-lie.docx", "a 1 GiB part declaring 1 KiB in its headers", zipBombDocx(GiB, true));
  if (full) add("docx-size-lie-plausible.docx", "a 1 GiB part declaring 1,000,000 bytes (under the ratio check's floor)", lyingDocx(1_000_000));
  const partBytes = 16 * KiB;
  const parts = Math.min(9_000, Math.floor((options.extractionMemoryBytes * 0.9) / partBytes));
  add("docx-many-parts.docx", `${parts} parts of ${partBytes / KiB} KiB zeros (under every archive limit)`, manyPartsDocx(parts, partBytes));
  if (full) add("docx-too-many-parts.docx", "60,000 parts (over the entry limit)", manyPartsDocx(60_000, KiB));
  add("docx-deep-nesting.docx", "content controls nested 20,000 deep (under 1 MiB of XML)", deepXmlDocx(rng, 20_000, false));
  if (full) {
    add("docx-deep-nesting-large.docx", "content controls nested 200,000 deep, each with an id (~17 MiB of XML)", deepXmlDocx(rng, 200_000, true));
  }
  const big = bigXmlDocx(docxParagraphs, 180 * MiB);
  add("docx-xml-180mib.docx", `180 MiB of paragraph XML at ${big.ratio.toFixed(1)}:1`, big.body);

  // PDF bombs.
  add("pdf-flate-bomb.pdf", "a content stream inflating to 2 GiB of zeros", flateBombPdf(2 * GiB));
  add("pdf-deep-arrays.pdf", "an array nested 100,000 deep in the page dictionary", deepArraysPdf(100_000));
  add("pdf-deep-page-tree.pdf", `one page under ${full ? "50,000" : "10,000"} nested page-tree nodes`, deepPageTreePdf(full ? 50_000 : 10_000));
  add("pdf-page-count-lie.pdf", "one page, the page tree claiming 2,147,483,647", pageCountLiePdf(2_147_483_647));
  const pages = full ? 150_000 : 20_000;
  add("pdf-many-pages.pdf", `${pages.toLocaleString("en-US")} real pages`, manyPagesPdf(pages));
  const content = full ? GiB : 256 * MiB;
  add("pdf-huge-content.pdf", `a content stream inflating to ${content / MiB} MiB of text operators`, hugeContentPdf(rng, content));

  // HTML.
  add("html-nested-30mb.html", "30 MB of elements nested in each other", nestedHtml(rng, 30_000_000));
  if (full) add("html-wide-30mb.html", "30 MB of sibling paragraphs", wideHtml(rng, 30_000_000));

  // Near the limit: the largest documents the processor accepts, and the smallest it refuses by size.
  const under = limit - 4 * KiB;
  add("near-under.html", `HTML of maxBufferedBytes - 4 KiB (${under} bytes), one styled table`, sizedHtml(tableRows, under));
  add("near-over.html", "HTML of maxBufferedBytes + 1", sizedHtml(tableRows, limit + 1));
  add("near-under.docx", "DOCX of maxBufferedBytes - 4 KiB, its XML (styled paragraphs) stored", sizedDocx(styledParagraphs, under));
  add("near-over.docx", "DOCX of maxBufferedBytes + 1", sizedDocx(styledParagraphs, limit + 1));
  const pdfPages = full ? 4_000 : 500;
  add("near-under.pdf", `PDF of maxBufferedBytes - 4 KiB (${pdfPages} pages of text and drawings)`, sizedPdf(rng, under, pdfPages));
  add("near-over.pdf", "PDF of maxBufferedBytes + 1", sizedPdf(rng, limit + 1, pdfPages));
  return docs;
}
