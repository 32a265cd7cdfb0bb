import { describe, expect, it } from "vitest";
import { detectDocument, looksBinary, looksLikeHtml } from "../../../../src/processors/builtin/text/detect.js";
import { PermanentDocumentError } from "../../../../src/processors/types.js";
import { makeDocx, makePdf, makeZip, noise, UTF8_BOM, utf16be, utf16le } from "../../../fixtures/documents/build.js";

const PNG = Buffer.from(
  "89504e470d0a1a0a0000000d4948445200000001000000010806000000" +
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a5f7a3c30000000049454e44ae426082",
  "hex",
);
// The header of an OLE compound file: what Word writes around a password-protected .docx (and a legacy .doc).
const CFB = Buffer.concat([Buffer.from("d0cf11e0a1b11ae1", "hex"), Buffer.alloc(4092)]);

async function refusal(promise: Promise<unknown>): Promise<PermanentDocumentError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PermanentDocumentError);
  return err as PermanentDocumentError;
}

describe("detectDocument: from the bytes", () => {
  it("finds PDF and DOCX whatever the key says", async () => {
    expect(await detectDocument(makePdf(["x"]), "report.txt", true)).toMatchObject({
      kind: "pdf",
      type: { mime: "application/pdf", ext: "pdf" },
    });
    expect(await detectDocument(makeDocx(["x"]), "no-extension", true)).toMatchObject({ kind: "docx", type: { ext: "docx" } });
  });

  it("takes a zip for a DOCX only when the key says .docx, and then only provisionally", async () => {
    const zip = makeZip([{ name: "a.txt", data: Buffer.from("hello") }]);
    expect(await detectDocument(zip, "letter.DOCX", true)).toMatchObject({ kind: "docx", provisional: true });
    const err = await refusal(detectDocument(zip, "archive.zip", true));
    expect(err).toMatchObject({ code: "UNSUPPORTED_TYPE", detectedType: { mime: "application/zip" } });
  });

  it("calls an OLE compound file named .docx encrypted, and other binary types unsupported", async () => {
    expect(await refusal(detectDocument(CFB, "secret.docx", true))).toMatchObject({ code: "ENCRYPTED" });
    expect(await refusal(detectDocument(CFB, "old.doc", true))).toMatchObject({ code: "UNSUPPORTED_TYPE" });
    const png = await refusal(detectDocument(PNG, "scan.txt", true));
    expect(png).toMatchObject({ code: "UNSUPPORTED_TYPE", detectedType: { mime: "image/png", ext: "png" } });
    const blob = await refusal(detectDocument(noise(4100), "data.txt", false));
    expect(blob).toMatchObject({ code: "UNSUPPORTED_TYPE", detectedType: { mime: "application/octet-stream" } });
  });

  it("refuses an empty object", async () => {
    expect(await refusal(detectDocument(Buffer.alloc(0), "empty.txt", true))).toMatchObject({
      code: "EMPTY",
      detectedType: { mime: "inode/x-empty" },
    });
  });

  it("reads text in UTF-8 (with or without BOM) and UTF-16 (with a BOM, or Latin script without)", async () => {
    expect(await detectDocument(Buffer.from("héllo"), "a.txt", true)).toMatchObject({ kind: "text", encoding: "utf-8" });
    expect(await detectDocument(Buffer.concat([UTF8_BOM, Buffer.from("x")]), "a.txt", true)).toMatchObject({
      encoding: "utf-8",
    });
    expect(await detectDocument(utf16le("日本語"), "a.txt", true)).toMatchObject({ kind: "text", encoding: "utf-16le" });
    expect(await detectDocument(utf16be("abc"), "a.txt", true)).toMatchObject({ encoding: "utf-16be" });
    expect(await detectDocument(utf16le("plain words", false), "a.txt", true)).toMatchObject({ encoding: "utf-16le" });
  });

  it("keeps text with a few invalid bytes as text (they are replaced when decoded)", async () => {
    const latin1 = Buffer.from("caf\xe9 cr\xe8me br\xfbl\xe9e", "latin1");
    expect(await detectDocument(latin1, "menu.txt", true)).toMatchObject({ kind: "text", encoding: "utf-8" });
  });
});

describe("detectDocument: the extension breaks ties between kinds of text", () => {
  it.each([
    ["notes.md", "text/markdown"],
    ["table.csv", "text/csv"],
    ["rows.TSV", "text/tab-separated-values"],
    ["data.json", "application/json"],
    ["readme", "text/plain"],
    ["report.pdf", "text/plain"],
  ])("%s -> %s", async (key, mime) => {
    const d = await detectDocument(Buffer.from("a,b\n1,2\n"), key, true);
    expect(d).toMatchObject({ kind: "text", type: { mime } });
  });

  it("takes HTML from the extension or from the markup", async () => {
    expect(await detectDocument(Buffer.from("<p>hi</p>"), "page.htm", true)).toMatchObject({ kind: "html" });
    expect(await detectDocument(Buffer.from("<!-- c -->\n<!DOCTYPE html><p>x"), "page", true)).toMatchObject({
      kind: "html",
      type: { mime: "text/html" },
    });
    expect(await detectDocument(utf16le("<html><body>x</body></html>"), "u", true)).toMatchObject({
      kind: "html",
      encoding: "utf-16le",
    });
    expect(await detectDocument(Buffer.from("<p>not a document</p>"), "snippet.txt", true)).toMatchObject({ kind: "text" });
  });

  it("keeps XML as text, or HTML when the key says XHTML", async () => {
    const xml = Buffer.from('<?xml version="1.0"?><root/>');
    expect(await detectDocument(xml, "feed", true)).toMatchObject({ kind: "text", type: { mime: "application/xml" } });
    expect(await detectDocument(xml, "page.xhtml", true)).toMatchObject({ kind: "html" });
  });
});

describe("looksBinary / looksLikeHtml", () => {
  it("calls NUL bytes or many control bytes binary, text with tabs and escapes not", () => {
    expect(looksBinary(Buffer.from("a\0b"))).toBe(true);
    expect(looksBinary(Buffer.from("\x01\x02\x03abcdefghijklmnopq"))).toBe(true);
    expect(looksBinary(Buffer.from("col\tcol\r\n\x1b[1mbold\x1b[0m\f\x1a"))).toBe(false);
    expect(looksBinary(Buffer.alloc(0))).toBe(false);
  });

  it("needs a doctype or an html element first", () => {
    expect(looksLikeHtml("\ufeff  <HTML lang=en>")).toBe(true);
    expect(looksLikeHtml('<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml">')).toBe(true);
    expect(looksLikeHtml("text <html>")).toBe(false);
    expect(looksLikeHtml("<htmlx>")).toBe(false);
  });
});
