/**
 * Tesseract's language data, from npm packages installed with the daemon (`@tesseract.js-data/<code>`): nothing is
 * downloaded. Resolved once at start-up, so a language whose package is missing stops the daemon with a message
 * that says what to install, instead of failing every document.
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { OCR_LANGUAGES_PATTERN } from "../../../config/schema.js";

export interface LanguageData {
  /** Tesseract's code: eng, deu, chi_sim, ... */
  code: string;
  /** The gzipped traineddata file. */
  path: string;
  /** The npm package it comes from, and that package's version (recorded in every `.ocr.json`). */
  package: string;
  version: string;
  /** The data's own directory in the package: Tesseract's release and model kind, e.g. 4.0.0_best_int. */
  model: string;
}


/**
 * The models preferred, best first: the integer-quantised "best" LSTM model is the accurate one at the speed of
 * the fast one; a package without it has the standard model.
 */
const MODELS = ["4.0.0_best_int", "4.0.0"];

export function packageOf(code: string): string {
  return `@tesseract.js-data/${code}`;
}

/**
 * Each language's data, in order. Throws an Error naming the package to install for a language that has none, and
 * for a spec that is not language codes. `resolve` finds a package's package.json (tests pass their own).
 */
export function resolveLanguages(
  spec: string,
  resolve: (id: string) => string = createRequire(import.meta.url).resolve,
  exists: (path: string) => boolean = existsSync,
): LanguageData[] {
  if (!OCR_LANGUAGES_PATTERN.test(spec)) {
    throw new Error(`ocrLanguages must be Tesseract language codes joined by "+" (eng, eng+deu), not ${JSON.stringify(spec)}`);
  }
  const codes = spec.split("+");
  if (new Set(codes).size !== codes.length) throw new Error(`ocrLanguages names a language twice: ${spec}`);
  return codes.map((code) => {
    const name = packageOf(code);
    let manifest: string;
    try {
      manifest = resolve(`${name}/package.json`);
    } catch {
      throw new Error(
        `OCR language "${code}" needs its data package ${name}, which is not installed: install it next to the daemon ` +
          `(npm install ${name}) or remove "${code}" from ocrLanguages`,
      );
    }
    const root = dirname(manifest);
    const model = MODELS.find((m) => exists(join(root, m, `${code}.traineddata.gz`)));
    if (model === undefined) {
      throw new Error(`${name} holds no ${code}.traineddata.gz under ${MODELS.join(" or ")}: a broken or unknown install`);
    }
    const version = (JSON.parse(readFileSync(manifest, "utf8")) as { version?: unknown }).version;
    return {
      code,
      path: join(root, model, `${code}.traineddata.gz`),
      package: name,
      version: typeof version === "string" ? version : "unknown",
      model,
    };
  });
}
