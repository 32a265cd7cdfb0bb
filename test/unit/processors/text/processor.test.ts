// The `text` processor end to end (with its extraction worker): every supported type gives the right text and
// record, every broken document a PermanentDocumentError with its code, within the limits.
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTextProcessor,
  TEXT_PROCESSOR_NAME,
  type TextProcessor,
  type TextRecord,
} from "../../../../src/processors/builtin/text/index.js";
import { PermanentDocumentError, type ProcessorOutput } from "../../../../src/processors/types.js";
import {
  encryptedPdf,
  flateBombPdf,
  makeDocx,
  makePdf,
  makeZip,
  noise,
  slowPdf,
  truncatedPdf,
  UTF8_BOM,
  utf16be,
  utf16le,
  zipBombDocx,
} from "../../../fixtures/documents/build.js";
import { deferred, generated, silentLog } from "../../pipeline/helpers.js";
import { buildExtractor, bytes, readTextOutputs, source } from "./helpers.js";

const MiB = 1024 * 1024;
const PNG = Buffer.from(
  "89504e470d0a1a0a0000000d4948445200000001000000010806000000" +
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a5f7a3c30000000049454e44ae426082",
  "hex",
);

let extractorUrl: URL;
let cleanup: () => void;
let processor: TextProcessor;
beforeAll(() => {
  ({ extractorUrl, cleanup } = buildExtractor());
  processor = createTextProcessor({
    extractorUrl,
    maxBufferedBytes: 8 * MiB,
    extractionMemoryBytes: 192 * MiB,
    // Long enough that only the memory limit can stop the Flate bomb, even on a loaded machine.
    extractionTimeoutMs: 60_000,
  });
});
afterAll(async () => {
  await processor.close();
  cleanup();
});

function run(key: string, data: Buffer, p: TextProcessor = processor): Promise<ProcessorOutput[]> {
  return p.process({ input: bytes(data), source: source(key, data.length), signal: new AbortController().signal, log: silentLog });
}

async function extract(key: string, data: Buffer): Promise<{ text: string; record: TextRecord }> {
  const outputs = await run(key, data);
  expect(outputs.map((o) => [o.suffix, o.contentType])).toEqual([
    [".txt", "text/plain; charset=utf-8"],
    [".text.json", "application/json"],
  ]);
  const { text, record } = await readTextOutputs(outputs);
  return { text, record: record as unknown as TextRecord };
}

async function refused(key: string, data: Buffer, p: TextProcessor = processor): Promise<PermanentDocumentError> {
  const err = await run(key, data, p).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PermanentDocumentError);
  return err as PermanentDocumentError;
}

const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

describe("text processor: good documents", () => {
  it("PDF: text per page, page count, counts, lineage", async () => {
    const data = makePdf([["Annual report 2024", "Revenue grew."], "Page two"], { compress: true });
    const { text, record } = await extract("in/report.pdf", data);
    expect(text).toBe("Annual report 2024\nRevenue grew.\n\fPage two\n");
    expect(record).toMatchObject({
      source: { bucket: "source-bucket", key: "in/report.pdf", eTag: "etag-1", size: data.length },
      detectedType: { mime: "application/pdf", ext: "pdf" },
      pages: 2,
      characters: text.length,
      words: 7,
      lines: 3,
      textBytes: Buffer.byteLength(text),
      replacementCharacters: 0,
      sha256: sha256(data),
      bytes: data.length,
      processor: { name: TEXT_PROCESSOR_NAME, version: "1.0.0" },
      warnings: [],
    });
    expect(record.durationMs).toBeGreaterThanOrEqual(0);
  });

  it("PDF without any text: empty text and a warning about OCR", async () => {
    const { text, record } = await extract("scan.pdf", makePdf([[]]));
    expect(text).toBe("\n");
    expect(record.warnings.join()).toMatch(/no text found.*OCR/);
  });

  it("DOCX: paragraphs", async () => {
    const { text, record } = await extract("letter.docx", makeDocx(["Dear reader,", "ünïcödé — naïve"]));
    expect(text).toBe("Dear reader,\n\nünïcödé — naïve\n\n");
    expect(record).toMatchObject({ detectedType: { ext: "docx" }, pages: null, words: 5 });
  });

  it("DOCX named .docx that file-type only saw as a zip: confirmed from the whole archive", async () => {
    // 128 KiB of other parts before [Content_Types].xml: the first chunk (64 KiB) only says "zip".
    const filler = Array.from({ length: 32 }, (_, i) => ({ name: `customXml/item${i}.bin`, data: noise(4096, i + 1), stored: true }));
    const { text, record } = await extract("tool.docx", makeDocx(["late"], filler));
    expect(text).toBe("late\n\n");
    expect(record.detectedType).toMatchObject({ ext: "docx" });
  });

  it("HTML: the visible text", async () => {
    const html = Buffer.from("<!doctype html><title>T</title><h2>Heading</h2><p>Body &amp; soul</p><script>x()</script>");
    const { text, record } = await extract("site/index.html", html);
    expect(text).toContain("Heading\n\nBody & soul\n");
    expect(text).not.toContain("x()");
    expect(record).toMatchObject({ detectedType: { mime: "text/html", encoding: "utf-8" }, pages: null });
  });

  it.each([
    ["notes.md", "# Title\n\n- item\n", "text/markdown"],
    ["table.csv", "name,qty\napple,3\n", "text/csv"],
    ["data.json", '{"a": [1, 2]}\n', "application/json"],
    ["plain.txt", "just text\n", "text/plain"],
  ])("%s: the text as it is, typed from the extension", async (key, content, mime) => {
    const { text, record } = await extract(key, Buffer.from(content));
    expect(text).toBe(content);
    expect(record.detectedType).toEqual({ mime, ext: expect.any(String) as string, encoding: "utf-8" });
  });

  it("UTF-8 with BOM, UTF-16 LE and BE with BOM: UTF-8 text without a BOM", async () => {
    const content = "naïve café 😀\nline 2\n";
    for (const [data, encoding] of [
      [Buffer.concat([UTF8_BOM, Buffer.from(content)]), "utf-8"],
      [utf16le(content), "utf-16le"],
      [utf16be(content), "utf-16be"],
    ] as const) {
      const { text, record } = await extract("u.txt", data);
      expect(text).toBe(content);
      expect(record).toMatchObject({ detectedType: { encoding }, characters: 20, lines: 2, warnings: [] });
    }
  });

  it("UTF-16 without a BOM, recognised and said so", async () => {
    const { text, record } = await extract("u.txt", utf16le("plain words here\n", false));
    expect(text).toBe("plain words here\n");
    expect(record.warnings).toEqual(["no byte order mark: utf-16le was recognised from the pattern of zero bytes"]);
  });

  it("invalid UTF-8: replaced with U+FFFD, counted, warned", async () => {
    const data = Buffer.concat([Buffer.from("caf"), Buffer.from([0xe9]), Buffer.from(" cr"), Buffer.from([0xe8]), Buffer.from("me\n")]);
    const { text, record } = await extract("latin1.txt", data);
    expect(text).toBe("caf\ufffd cr\ufffdme\n");
    expect(record.replacementCharacters).toBe(2);
    expect(record.warnings).toEqual(["2 invalid utf-8 byte sequence(s) replaced with U+FFFD"]);
  });

  it("streams plain text: the first text is out before the source has ended", async () => {
    const gate = deferred();
    async function* slowSource(): AsyncGenerator<Buffer> {
      yield Buffer.from(`${"first chunk of text ".repeat(300)}\n`);
      await gate.promise;
      yield Buffer.from("last line\n");
    }
    const outputs = await processor.process({
      input: Readable.from(slowSource(), { objectMode: false }),
      source: source("big.txt", 0),
      signal: new AbortController().signal,
      log: silentLog,
    });
    const txt = outputs[0]!.body as Readable;
    const first = (await txt[Symbol.asyncIterator]().next()).value as Buffer;
    expect(first.toString()).toMatch(/^first chunk of text/);
    gate.resolve();
    const rest: Buffer[] = [];
    for await (const c of txt as AsyncIterable<Buffer>) rest.push(c);
    expect(Buffer.concat(rest).toString()).toContain("last line\n");
    const { record } = await readTextOutputs([{ ...outputs[0]!, body: "" }, outputs[1]!]);
    expect(record).toMatchObject({ lines: 2, words: 1202 });
  });

  it("streams a large text in flat memory: the source is read only as fast as the text is taken", async () => {
    const size = 64 * MiB;
    const input = generated(size, 64 * 1024, (_offset, chunk) => chunk.fill("words and more words\n"));
    const outputs = await processor.process({ input, source: source("huge.txt", size), signal: new AbortController().signal, log: silentLog });
    let textBytes = 0;
    let ahead = 0;
    for await (const c of outputs[0]!.body as AsyncIterable<Buffer>) {
      textBytes += c.length;
      ahead = Math.max(ahead, input.produced - textBytes);
    }
    expect(textBytes).toBe(size);
    // What is held between the source and the reader of the text: a few chunks, whatever the size.
    expect(ahead).toBeLessThan(MiB);
    const { record } = await readTextOutputs([{ ...outputs[0]!, body: "" }, outputs[1]!]);
    expect(record).toMatchObject({ bytes: size, textBytes: size, replacementCharacters: 0 });
  });
});

describe("text processor: broken documents", () => {
  it.each([
    ["truncated.pdf", "CORRUPT", () => truncatedPdf()],
    ["encrypted.pdf", "ENCRYPTED", () => encryptedPdf()],
    ["bomb.docx", "UNSAFE_ARCHIVE", () => zipBombDocx(1024 * MiB)],
    ["lying-bomb.docx", "UNSAFE_ARCHIVE", () => zipBombDocx(1024 * MiB, true)],
    ["empty.txt", "EMPTY", () => Buffer.alloc(0)],
    ["pixel.png", "UNSUPPORTED_TYPE", () => PNG],
    ["blob.bin", "UNSUPPORTED_TYPE", () => noise(100_000)],
    ["archive.docx", "UNSUPPORTED_TYPE", () => makeZip([{ name: "a.txt", data: noise(8000) }])],
    ["flate-bomb.pdf", "MEMORY_LIMIT", () => flateBombPdf(2048 * MiB)],
  ])("%s -> %s", async (key, code, make) => {
    const err = await refused(key, make());
    expect(err.code).toBe(code);
    expect(err.message.length).toBeGreaterThan(10);
  });

  it("slow.pdf -> TIMEOUT", async () => {
    // Memory to spare, one second of time: only the time limit can stop it.
    const impatient = createTextProcessor({ extractorUrl, extractionMemoryBytes: 1024 * MiB, extractionTimeoutMs: 1_000 });
    try {
      const err = await refused("slow.pdf", slowPdf(64), impatient);
      expect(err).toMatchObject({ code: "TIMEOUT", detectedType: { mime: "application/pdf" } });
    } finally {
      await impatient.close();
    }
  });

  it("refuses a buffered type over maxBufferedBytes from its size, before reading the rest", async () => {
    const head = makePdf(["x"]);
    const size = 9 * MiB;
    const input = generated(size, 64 * 1024, (offset, chunk) => {
      if (offset === 0) head.copy(chunk);
    });
    const err = await processor
      .process({ input, source: source("big.pdf", size), signal: new AbortController().signal, log: silentLog })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toMatchObject({ code: "TOO_LARGE", detectedType: { mime: "application/pdf" } });
    expect((err as Error).message).toContain("maxBufferedBytes (8388608)");
    expect(input.produced).toBeLessThan(MiB);
    expect(input.destroyed).toBe(true);
  });

  it("rejects with the signal's reason (not a permanent error) when aborted", async () => {
    const ac = new AbortController();
    ac.abort(new Error("stop"));
    const err = await processor
      .process({ input: bytes(makePdf(["x"])), source: source("a.pdf", 1000), signal: ac.signal, log: silentLog })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).not.toBeInstanceOf(PermanentDocumentError);
  });
});
