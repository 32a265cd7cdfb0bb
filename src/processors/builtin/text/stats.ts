/**
 * Counts over extracted text, fed piece by piece: characters (Unicode code points), words (runs of non-whitespace)
 * and lines (`\n`-terminated, plus a last line without one). State carries across pieces, so a word or a surrogate
 * pair split between two pieces counts once.
 */

import { isWhitespace } from "../metadata.js";

export interface TextCounts {
  characters: number;
  words: number;
  lines: number;
}

export class TextCounter {
  #characters = 0;
  #words = 0;
  #lines = 0;
  #inWord = false;
  #endsWithNewline = true;
  #afterHigh = false;
  /** UTF-8 bytes of everything pushed. */
  bytes = 0;

  push(s: string): void {
    if (s.length === 0) return;
    let characters = this.#characters;
    let words = this.#words;
    let lines = this.#lines;
    let inWord = this.#inWord;
    let afterHigh = this.#afterHigh;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      const low = c >= 0xdc00 && c <= 0xdfff;
      // A low surrogate completes the pair its high surrogate already counted (even across pieces).
      if (!(low && afterHigh)) characters++;
      afterHigh = c >= 0xd800 && c <= 0xdbff;
      if (c === 0x0a) lines++;
      if (isWhitespace(c)) {
        inWord = false;
      } else if (!inWord) {
        inWord = true;
        words++;
      }
    }
    this.#characters = characters;
    this.#words = words;
    this.#lines = lines;
    this.#inWord = inWord;
    this.#afterHigh = afterHigh;
    this.#endsWithNewline = s.charCodeAt(s.length - 1) === 0x0a;
    this.bytes += Buffer.byteLength(s, "utf8");
  }

  counts(): TextCounts {
    return {
      characters: this.#characters,
      words: this.#words,
      lines: this.#lines + (this.#endsWithNewline ? 0 : 1),
    };
  }
}

/** Counts of one whole string. */
export function countText(s: string): TextCounts {
  const counter = new TextCounter();
  counter.push(s);
  return counter.counts();
}
