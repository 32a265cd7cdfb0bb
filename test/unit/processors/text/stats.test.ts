import { describe, expect, it } from "vitest";
import { countText, TextCounter } from "../../../../src/processors/builtin/text/stats.js";

describe("TextCounter", () => {
  it("counts code points, words and lines", () => {
    expect(countText("")).toEqual({ characters: 0, words: 0, lines: 0 });
    expect(countText("one two\nthree\n")).toEqual({ characters: 14, words: 3, lines: 2 });
    expect(countText("no newline at the end")).toEqual({ characters: 21, words: 5, lines: 1 });
    expect(countText("😀 é\u3000日本")).toEqual({ characters: 6, words: 3, lines: 1 });
  });

  it("carries words, lines and surrogate pairs across pieces", () => {
    const counter = new TextCounter();
    for (const piece of ["wo", "rd\n", "\ud83d", "\ude00x", " y"]) counter.push(piece);
    expect(counter.counts()).toEqual({ characters: 9, words: 3, lines: 2 });
  });

  it("counts the UTF-8 bytes of what it was given", () => {
    const counter = new TextCounter();
    for (const piece of ["word\n", "😀x", " y"]) counter.push(piece);
    expect(counter.bytes).toBe(Buffer.byteLength("word\n😀x y"));
  });

  it("counts a lone low surrogate as a character", () => {
    expect(countText("a\ude00").characters).toBe(2);
  });
});
