// The extractors in-process (the worker runs the same functions; host.test.ts covers the worker itself).
import { describe, expect, it } from "vitest";
import { extractDocx } from "../../../../src/processors/builtin/text/docx.js";
import { runExtraction, reply } from "../../../../src/processors/builtin/text/extract.js";
import { extractHtml } from "../../../../src/processors/builtin/text/html.js";
import { extractPdf } from "../../../../src/processors/builtin/text/pdf.js";
import { PermanentDocumentError } from "../../../../src/processors/types.js";
import {
  encryptedPdf,
  makeDocx,
  makePdf,
  makeZip,
  truncatedPdf,
  utf16le,
  zipBombDocx,
} from "../../../fixtures/documents/build.js";

const MiB = 1024 * 1024;
const limits = { maxTextBytes: MiB, maxUncompressedBytes: 64 * MiB };

async function refusal(promise: Promise<unknown>): Promise<PermanentDocumentError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PermanentDocumentError);
  return err as PermanentDocumentError;
}

const u8 = (b: Buffer): Uint8Array => new Uint8Array(b);

describe("extractPdf", () => {
  it("gives the text of every page, pages ending in a newline and separated by a form feed", async () => {
    const pdf = makePdf([["Quarterly report", "Revenue (up) 12%"], "Second page", ["Third", "page"]]);
    const out = await extractPdf(u8(pdf), limits);
    expect(out.pages).toBe(3);
    expect(out.text).toBe("Quarterly report\nRevenue (up) 12%\n\fSecond page\n\fThird\npage\n");
    expect(out.warnings).toEqual([]);
  });

  it("reads compressed content streams and Latin-1 text", async () => {
    const out = await extractPdf(u8(makePdf([["Caf\xe9 cr\xe8me"]], { compress: true })), limits);
    expect(out.text).toBe("Café crème\n");
  });

  it("refuses a password-protected PDF as ENCRYPTED", async () => {
    const err = await refusal(extractPdf(u8(encryptedPdf()), limits));
    expect(err).toMatchObject({ code: "ENCRYPTED", detectedType: { mime: "application/pdf" } });
  });

  it.each([0.05, 0.5, 0.9])("refuses a PDF cut at %s of its length as CORRUPT", async (fraction) => {
    const err = await refusal(extractPdf(u8(truncatedPdf(fraction)), limits));
    expect(err.code).toBe("CORRUPT");
    expect(err.message).toContain("truncated or damaged");
  });

  it("refuses text above the limit rather than truncating it", async () => {
    const lines = Array.from({ length: 40 }, (_, i) => `line ${i} ${"x".repeat(60)}`);
    const err = await refusal(extractPdf(u8(makePdf([lines, lines])), { ...limits, maxTextBytes: 3000 }));
    expect(err.code).toBe("TOO_LARGE");
  });
});

describe("extractDocx", () => {
  it("gives the paragraphs", async () => {
    const out = await extractDocx(u8(makeDocx(["First paragraph", "Zweiter Absatz — ünïcödé", "3 < 4 & 5 > 2"])), limits);
    expect(out.text).toBe("First paragraph\n\nZweiter Absatz — ünïcödé\n\n3 < 4 & 5 > 2\n\n");
    expect(out.pages).toBeUndefined();
  });

  it("refuses zip bombs before mammoth inflates them", async () => {
    expect(await refusal(extractDocx(u8(zipBombDocx(256 * MiB)), limits))).toMatchObject({
      code: "UNSAFE_ARCHIVE",
      detectedType: { ext: "docx" },
    });
    expect(await refusal(extractDocx(u8(zipBombDocx(256 * MiB, true)), limits))).toMatchObject({ code: "UNSAFE_ARCHIVE" });
  });

  it("calls a zip without a Word document, or a broken one, corrupt", async () => {
    const notWord = makeZip([{ name: "hello.txt", data: Buffer.from("hello") }]);
    expect(await refusal(extractDocx(u8(notWord), limits))).toMatchObject({ code: "CORRUPT" });
    const docx = makeDocx(["x"]);
    expect(await refusal(extractDocx(u8(docx.subarray(0, 200)), limits))).toMatchObject({ code: "CORRUPT" });
  });
});

describe("extractHtml", () => {
  const page =
    "<!doctype html><html><head><title>Title</title><style>p { color: red }</style>" +
    "<script>var secret = 1;</script></head><body><h1>Main heading</h1>" +
    "<p>A <a href='https://example.com/x'>link</a> &amp; <b>bold</b> text that goes on for well over eighty " +
    "characters, which must not be wrapped.</p><ul><li>one</li><li>two</li></ul><img src=a.png alt=pic></body></html>";

  it("keeps the words: headings as written, links without URLs, no scripts or styles, no wrapping", async () => {
    const out = await extractHtml(u8(Buffer.from(page)), "utf-8", limits);
    expect(out.text).toContain("Main heading");
    expect(out.text).toContain(
      "A link & bold text that goes on for well over eighty characters, which must not be wrapped.",
    );
    expect(out.text).toMatch(/\* one\n \* two\n$/);
    expect(out.text).not.toMatch(/secret|color|example\.com|pic/);
    expect(out.replacements).toBe(0);
  });

  it("decodes UTF-16 and counts replaced bytes", async () => {
    expect((await extractHtml(u8(utf16le("<p>naïve</p>")), "utf-16le", limits)).text).toBe("naïve\n");
    const bad = Buffer.concat([Buffer.from("<p>a"), Buffer.from([0xff]), Buffer.from("b</p>")]);
    const out = await extractHtml(u8(bad), "utf-8", limits);
    expect(out).toMatchObject({ text: "a\ufffdb\n", replacements: 1 });
    expect(out.warnings).toEqual(["1 invalid utf-8 byte sequence(s) replaced with U+FFFD"]);
  });

  it("survives nesting deep enough to overflow a recursive walk", async () => {
    const deep = `${"<div>".repeat(20_000)}deep${"</div>".repeat(20_000)}<p>after</p>`;
    const out = await extractHtml(u8(Buffer.from(deep)), "utf-8", limits);
    expect(out.text).toContain("after");
  });
});

describe("runExtraction / reply", () => {
  it("dispatches by kind and turns failures into replies", async () => {
    const job = { kind: "pdf" as const, data: u8(makePdf(["hi"])), limits };
    expect((await runExtraction(job)).text).toBe("hi\n");
    expect(await reply({ ...job, id: 7, data: u8(encryptedPdf()) })).toMatchObject({
      id: 7,
      ok: false,
      permanent: true,
      code: "ENCRYPTED",
      detectedType: { mime: "application/pdf" },
    });
    const broken = await reply({ id: 8, kind: "html", data: undefined as unknown as Uint8Array, limits });
    expect(broken).toMatchObject({ id: 8, ok: false, permanent: false });
  });
});
