import { createHash } from "node:crypto";
import { Readable, Transform } from "node:stream";
import { describe, expect, it } from "vitest";
import {
  createMetadataProcessor,
  looksLikeText,
  SNIFF_BYTES,
  TextStats,
  type MetadataDocument,
} from "../../../src/processors/builtin/metadata.js";
import type { SourceObjectInfo } from "../../../src/processors/types.js";
import { chunked, generated, silentLog, sourceInfo, stalled } from "../pipeline/helpers.js";

async function describeStream(
  input: Readable,
  source: Partial<SourceObjectInfo> = {},
  signal = new AbortController().signal,
): Promise<MetadataDocument> {
  const [out] = await createMetadataProcessor().process({ input, source: sourceInfo(source), signal, log: silentLog });
  expect(out).toMatchObject({ suffix: ".json", contentType: "application/json" });
  return JSON.parse(out!.body as string) as MetadataDocument;
}

/** Every byte its own chunk: splits every word, line and multi-byte character. */
function byteByByte(text: string | Buffer): Readable {
  const bytes = typeof text === "string" ? Buffer.from(text) : text;
  return chunked([...bytes].map((b) => Uint8Array.of(b)));
}

const sha256 = (data: string | Buffer): string => createHash("sha256").update(data).digest("hex");

describe("TextStats", () => {
  const count = (chunks: (string | Uint8Array)[]): { lines: number; words: number } => {
    const s = new TextStats();
    for (const c of chunks) s.push(typeof c === "string" ? Buffer.from(c) : c);
    return s.end();
  };

  it.each([
    ["", 0, 0],
    ["one", 1, 1],
    ["one\n", 1, 1],
    ["one two\nthree", 2, 3],
    ["\n\n", 2, 0],
    ["  lead and trail  \r\n", 1, 3],
    ["non\u00a0breaking\u3000ideographic", 1, 3],
  ])("%j: %i lines, %i words", (text, lines, words) => {
    expect(count([text])).toEqual({ lines, words });
  });

  it("agrees with decoding to a string first, on random bytes cut into random chunks (seeded)", () => {
    // The reference: what the counter did before it read bytes directly (decode, then count characters).
    const reference = (bytes: Uint8Array): { lines: number; words: number } => {
      const text = new TextDecoder("utf-8").decode(bytes);
      const words = text.split(/\s+/).filter((w) => w.length > 0).length;
      const lines = (text.match(/\n/g) ?? []).length + (text.length > 0 && !text.endsWith("\n") ? 1 : 0);
      return { lines, words };
    };
    let seed = 42;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    // Bytes drawn so that valid and broken multi-byte sequences, spaces (ASCII and Unicode) and newlines all occur.
    const pieces = [
      ..."ab \n\t\r".split("").map((ch) => Buffer.from(ch)),
      ...["\u00a0", "\u3000", "\u2028", "\u205f", "\ufeff", "é", "€", "😀"].map((ch) => Buffer.from(ch)),
      Uint8Array.of(0x80), Uint8Array.of(0xc0, 0xa0), Uint8Array.of(0xe0, 0x82, 0xa0), Uint8Array.of(0xed, 0xa0, 0x80),
      Uint8Array.of(0xe3), Uint8Array.of(0xe3, 0x80), Uint8Array.of(0xe3, 0xef, 0xbb, 0xbf), Uint8Array.of(0xf5), Uint8Array.of(0xff), Uint8Array.of(0xf4, 0x90, 0x80, 0x80),
    ];
    for (let round = 0; round < 2000; round++) {
      const parts = Array.from({ length: Math.floor(random() * 40) }, () => pieces[Math.floor(random() * pieces.length)]!);
      const bytes = Buffer.concat(parts);
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < bytes.length; ) {
        const size = 1 + Math.floor(random() * 5);
        chunks.push(bytes.subarray(at, at + size));
        at += size;
      }
      expect({ round, ...count(chunks) }).toEqual({ round, ...reference(bytes) });
    }
  });

  it("counts a word split across chunks once", () => {
    expect(count(["hel", "lo wor", "ld"])).toEqual({ lines: 1, words: 2 });
  });

  it("counts a multi-byte character split across chunks as one character", () => {
    // U+3000 (ideographic space, 3 bytes) split 1+2: decoded alone each half would be a replacement character, a
    // non-space, and "a" and "b" would merge into one word.
    const [a, b, c] = [...Buffer.from("\u3000")];
    expect(count([Buffer.from("a"), Uint8Array.of(a!), Uint8Array.of(b!, c!), Buffer.from("b")])).toEqual({
      lines: 1,
      words: 2,
    });
  });
});

describe("looksLikeText", () => {
  it("accepts UTF-8 and refuses NUL or invalid bytes", () => {
    expect(looksLikeText(Buffer.from("héllo"), true)).toBe(true);
    expect(looksLikeText(Buffer.from("a\0b"), true)).toBe(false);
    expect(looksLikeText(Uint8Array.of(0xff, 0xfe, 0x41), true)).toBe(false);
  });

  it("allows a character cut at the end of a prefix sample, not at the end of the object", () => {
    const cut = Buffer.from("ab日").subarray(0, 4);
    expect(looksLikeText(cut, false)).toBe(true);
    expect(looksLikeText(cut, true)).toBe(false);
  });
});

describe("metadata processor", () => {
  const text = "Grüße aus Köln\nzweite Zeile  mit   Lücken\n日本語 テキスト\nlast line";

  it("describes text fed byte by byte exactly as in one chunk", async () => {
    const whole = await describeStream(chunked([text]), { size: Buffer.byteLength(text) });
    const split = await describeStream(byteByByte(text), { size: Buffer.byteLength(text) });
    expect(whole.text).toEqual({ lines: 4, words: 11 });
    expect(split).toEqual(whole);
    expect(whole).toMatchObject({
      sha256: sha256(text),
      bytes: Buffer.byteLength(text),
      detectedType: { mime: "text/plain", ext: "txt" },
    });
  });

  it("records the source and its claimed content type, and its own name and version", async () => {
    const doc = await describeStream(chunked(["x"]), {
      bucket: "b",
      key: "k.pdf",
      eTag: "e",
      size: 1,
      contentType: "application/pdf",
    });
    expect(doc.source).toEqual({ bucket: "b", key: "k.pdf", eTag: "e", size: 1, contentType: "application/pdf" });
    expect(doc.processor).toEqual({ name: "metadata", version: "1.0.0" });
    // The claim is recorded, not trusted: the bytes are text.
    expect(doc.detectedType.mime).toBe("text/plain");
  });

  it("sniffs PNG from its magic bytes, even split across chunks, and gives no text counts", async () => {
    const png = Buffer.concat([
      Buffer.from("89504e470d0a1a0a0000000d49484452", "hex"),
      Buffer.alloc(64, 1),
    ]);
    const doc = await describeStream(byteByByte(png));
    expect(doc.detectedType).toEqual({ mime: "image/png", ext: "png" });
    expect(doc.text).toBeUndefined();
    expect(doc.sha256).toBe(sha256(png));
  });

  it("sniffs PDF from its header", async () => {
    const pdf = Buffer.from("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "latin1");
    const doc = await describeStream(chunked([pdf]));
    expect(doc.detectedType).toEqual({ mime: "application/pdf", ext: "pdf" });
  });

  it("calls unknown binary application/octet-stream", async () => {
    const doc = await describeStream(chunked([Buffer.from([0x00, 0x01, 0x02, 0xff, 0x10])]));
    expect(doc.detectedType).toEqual({ mime: "application/octet-stream" });
    expect(doc.text).toBeUndefined();
  });

  it("decides text on the first 4100 bytes: a NUL later still counts as text", async () => {
    const head = "a ".repeat(SNIFF_BYTES);
    const doc = await describeStream(chunked([head, Buffer.from([0]), "tail"]));
    expect(doc.detectedType.mime).toBe("text/plain");
    expect(doc.text?.words).toBe(SNIFF_BYTES + 1);
  });

  it("describes an empty object", async () => {
    const doc = await describeStream(chunked([]), { size: 0 });
    expect(doc).toMatchObject({
      bytes: 0,
      sha256: sha256(""),
      detectedType: { mime: "text/plain" },
      text: { lines: 0, words: 0 },
    });
  });

  it("streams 64 MiB without reading ahead of what it has hashed", async () => {
    const total = 64 * 1024 * 1024;
    const line = Buffer.from("lorem ipsum dolor sit amet\n"); // 27 bytes, 5 words
    const source = generated(total, 64 * 1024, (offset, chunk) => {
      for (let i = 0; i < chunk.length; i++) chunk[i] = line[(offset + i) % line.length]!;
    });
    // Between the source and the processor: how many bytes the processor has pulled so far.
    let pulled = 0;
    let maxAhead = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        pulled += chunk.length;
        maxAhead = Math.max(maxAhead, source.produced - pulled);
        cb(null, chunk);
      },
    });
    const doc = await describeStream(source.pipe(meter), { size: total });

    expect(doc.bytes).toBe(total);
    expect(pulled).toBe(total);
    // Source buffer plus the pipe's buffers: a few chunks, never the object.
    expect(maxAhead).toBeLessThanOrEqual(256 * 1024);
    const fullLines = Math.floor(total / line.length);
    expect(total % line.length).toBe(13); // ends with "lorem ipsum d": a last line of 3 words, cut mid-word
    expect(doc.text).toEqual({ lines: fullLines + 1, words: fullLines * 5 + 3 });
  });

  it("honours the AbortSignal: rejects with its reason and destroys the input", async () => {
    const ac = new AbortController();
    const input = stalled();
    input.push(Buffer.from("some text"));
    const running = describeStream(input, {}, ac.signal);
    const reason = new Error("shutting down");
    ac.abort(reason);
    await expect(running).rejects.toBe(reason);
    expect(input.destroyed).toBe(true);
  });

  it("rejects at once when the signal is already aborted", async () => {
    const ac = new AbortController();
    ac.abort(new Error("too late"));
    const input = stalled();
    await expect(describeStream(input, {}, ac.signal)).rejects.toThrow("too late");
    expect(input.destroyed).toBe(true);
  });
});
