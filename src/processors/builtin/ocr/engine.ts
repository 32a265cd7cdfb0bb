/**
 * Tesseract in the OCR child process: tesseract.js-core's WebAssembly build (SIMD, LSTM engine only), driven
 * directly, without tesseract.js and its worker threads (which the child's permission model forbids). Images go in
 * as encoded files (PNG, JPEG, TIFF, WebP, BMP, GIF, PGM) through Emscripten's in-memory file system; the build's
 * Leptonica decodes them. Runs only in the child: its WebAssembly memory grows with the largest page and never
 * shrinks, and only a process that is killed gives it back.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { gunzipSync } from "node:zlib";

interface TessApi {
  Init(dataPath: string, languages: string, oem: number): number;
  SetImageFile(exif?: number, angle?: number): number;
  SetSourceResolution(dpi: number): void;
  Recognize(monitor: null): number;
  GetUTF8Text(): string;
  MeanTextConf(): number;
  Clear(): void;
  End(): void;
  Version(): string;
}

interface TessModule {
  FS: { writeFile(path: string, data: Uint8Array): void; unlink(path: string): void };
  TessBaseAPI: new () => TessApi;
}

/** Tesseract's OEM_LSTM_ONLY: the neural engine, the only one the `_best_int` data and the -lstm build carry. */
const OEM_LSTM_ONLY = 1;
const INPUT = "/input";

export interface Recognized {
  text: string;
  /** Tesseract's mean word confidence, 0-100 (0 when it found no word). */
  confidence: number;
  words: number;
}

/** The image library could not decode the image: the document's fault. */
export class UnreadableImageError extends Error {
  constructor() {
    super("the OCR engine's image library cannot decode it (truncated or damaged)");
    this.name = "UnreadableImageError";
  }
}

export function countWords(text: string): number {
  let words = 0;
  for (const _ of text.matchAll(/\S+/g)) words++;
  return words;
}

export class OcrEngine {
  readonly #module: TessModule;
  readonly #api: TessApi;
  #languages: string | undefined;

  private constructor(module: TessModule) {
    this.#module = module;
    this.#api = new module.TessBaseAPI();
  }

  /** Compiles the engine (about 100 ms); languages are loaded by the first job that names them. */
  static async load(): Promise<OcrEngine> {
    const require = createRequire(import.meta.url);
    const factory = require("tesseract.js-core/tesseract-core-simd-lstm.js") as (options: object) => Promise<TessModule>;
    // Tesseract's progress and diagnostics ("Estimating resolution as ...", Leptonica's read errors) say nothing a
    // record needs: a failure is seen in the return codes.
    const module = await factory({ print: () => undefined, printErr: () => undefined });
    return new OcrEngine(module);
  }

  /** Tesseract's own version, e.g. 5.1.0-288-g2a9c1. */
  get version(): string {
    return this.#api.Version();
  }

  /** Loads these languages unless they are the ones loaded (a new Init replaces the old). */
  use(languages: readonly { code: string; path: string }[]): void {
    const spec = languages.map((l) => l.code).join("+");
    if (spec === this.#languages) return;
    const { FS } = this.#module;
    for (const { code, path } of languages) FS.writeFile(`/${code}.traineddata`, gunzipSync(readFileSync(path)));
    const status = this.#api.Init("/", spec, OEM_LSTM_ONLY);
    // Tesseract keeps what it loaded: the files are only needed by Init.
    for (const { code } of languages) FS.unlink(`/${code}.traineddata`);
    if (status !== 0) throw new Error(`Tesseract could not load the language data for ${spec}`);
    this.#languages = spec;
  }

  /**
   * The text of one encoded image. `dpi` is the resolution it was rendered at (PDF pages); without it Tesseract
   * takes the file's, or estimates one. Throws UnreadableImageError for an image that cannot be decoded.
   */
  recognize(image: Uint8Array, dpi?: number): Recognized {
    if (this.#languages === undefined) throw new Error("the OCR engine has no language loaded");
    const { FS } = this.#module;
    const api = this.#api;
    FS.writeFile(INPUT, image);
    try {
      // A failed read leaves the previous image in place: clear it first, so a failure can never read that one.
      api.Clear();
      if (api.SetImageFile(1, 0) !== 0) throw new UnreadableImageError();
    } finally {
      FS.unlink(INPUT);
    }
    try {
      if (dpi !== undefined) api.SetSourceResolution(dpi);
      if (api.Recognize(null) !== 0) throw new Error("Tesseract's recognition failed");
      const text = api.GetUTF8Text();
      const words = countWords(text);
      return { text, confidence: words === 0 ? 0 : api.MeanTextConf(), words };
    } finally {
      api.Clear();
    }
  }
}
