import { describe, expect, it } from "vitest";
import {
  bomEncoding,
  CountingDecoder,
  detectEncoding,
  utf16Shape,
  type TextEncodingName,
} from "../../../../src/processors/builtin/text/encoding.js";
import { UTF8_BOM, utf16be, utf16le } from "../../../fixtures/documents/build.js";

/** Decodes `data` split at every position into two chunks (and whole), expecting the same result each time. */
function decodeSplits(encoding: TextEncodingName, data: Buffer): { text: string; replacements: number } {
  const results = new Set<string>();
  let last = { text: "", replacements: 0 };
  for (let cut = 0; cut <= data.length; cut++) {
    const d = new CountingDecoder(encoding);
    const text = d.decode(data.subarray(0, cut)) + d.decode(data.subarray(cut)) + d.end();
    last = { text, replacements: d.replacements };
    results.add(JSON.stringify(last));
  }
  expect(results.size).toBe(1);
  return last;
}

describe("bomEncoding / detectEncoding", () => {
  it("reads the byte order marks", () => {
    expect(bomEncoding(Buffer.concat([UTF8_BOM, Buffer.from("x")]))).toBe("utf-8");
    expect(bomEncoding(utf16le("x"))).toBe("utf-16le");
    expect(bomEncoding(utf16be("x"))).toBe("utf-16be");
    expect(bomEncoding(Buffer.from("plain"))).toBeUndefined();
    expect(detectEncoding(utf16be("x"))).toEqual({ encoding: "utf-16be", bom: true });
  });

  it("recognises Latin-script UTF-16 without a BOM from its zero bytes, and nothing else", () => {
    expect(utf16Shape(utf16le("Hello, world\n", false))).toBe("utf-16le");
    expect(utf16Shape(utf16be("Hello, world\n", false))).toBe("utf-16be");
    expect(detectEncoding(utf16le("Plain ASCII in UTF-16", false))).toEqual({ encoding: "utf-16le", bom: false });
    expect(utf16Shape(Buffer.from("Hello, world\n"))).toBeUndefined();
    // CJK in UTF-16 has no zero bytes: indistinguishable from binary without a BOM.
    expect(utf16Shape(utf16le("日本語のテキスト", false))).toBeUndefined();
    expect(utf16Shape(Buffer.from([0x41]))).toBeUndefined();
    expect(detectEncoding(Buffer.from("héllo"))).toEqual({ encoding: "utf-8", bom: false });
  });
});

describe("CountingDecoder", () => {
  it("drops the BOM and decodes UTF-8, UTF-16 LE and BE", () => {
    expect(decodeSplits("utf-8", Buffer.concat([UTF8_BOM, Buffer.from("naïve — ok")])).text).toBe("naïve — ok");
    expect(decodeSplits("utf-16le", utf16le("naïve 😀")).text).toBe("naïve 😀");
    expect(decodeSplits("utf-16be", utf16be("naïve 😀")).text).toBe("naïve 😀");
  });

  it("replaces invalid UTF-8 and counts each replacement, wherever the chunks are cut", () => {
    // a lone continuation byte, a truncated 3-byte sequence before ASCII, an invalid lead byte, a cut 4-byte one
    const data = Buffer.concat([
      Buffer.from("a"),
      Buffer.from([0x80]),
      Buffer.from("b"),
      Buffer.from([0xe2, 0x82]),
      Buffer.from("c"),
      Buffer.from([0xff]),
      Buffer.from("d"),
      Buffer.from([0xf0, 0x9f, 0x98]),
    ]);
    const { text, replacements } = decodeSplits("utf-8", data);
    expect(text).toBe("a\ufffdb\ufffdc\ufffdd\ufffd");
    expect(replacements).toBe(4);
  });

  it("does not count a U+FFFD that was validly encoded in the input, even split across chunks", () => {
    const data = Buffer.from("x\ufffdy\ufffd", "utf8");
    expect(decodeSplits("utf-8", data)).toEqual({ text: "x\ufffdy\ufffd", replacements: 0 });
    const mixed = Buffer.concat([Buffer.from("\ufffd", "utf8"), Buffer.from([0xc3]), Buffer.from("z")]);
    expect(decodeSplits("utf-8", mixed)).toEqual({ text: "\ufffd\ufffdz", replacements: 1 });
  });

  it("counts lone surrogates and a dangling byte in UTF-16, but not an encoded U+FFFD", () => {
    const le = Buffer.concat([utf16le("a\ufffd", false), Buffer.from([0x00, 0xd8]), utf16le("b", false), Buffer.from([0x41])]);
    expect(decodeSplits("utf-16le", le)).toEqual({ text: "a\ufffd\ufffdb\ufffd", replacements: 2 });
    const be = Buffer.concat([utf16be("\ufffdc", false), Buffer.from([0xdc, 0x00])]);
    expect(decodeSplits("utf-16be", be)).toEqual({ text: "\ufffdc\ufffd", replacements: 1 });
  });

  it("counts as it goes, for a stream fed chunk by chunk", () => {
    const d = new CountingDecoder("utf-8");
    d.decode(Buffer.from([0x61, 0xff]));
    expect(d.replacements).toBe(1);
    d.decode(Buffer.from([0xfe, 0x62]));
    d.end();
    expect(d.replacements).toBe(2);
  });
});
