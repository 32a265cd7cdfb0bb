/**
 * Turns the configured processor specs into Processors: a built-in by name, or a user's module by path. Every failure
 * is a DocProcessorError with code PROCESSOR_LOAD_FAILED (exit 78: a configuration problem, not worth restarting).
 */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ProcessorLoadError } from "../errors/fatal.js";
import { errorMessage } from "../errors/message.js";
import type { OcrProcessorOptions } from "./builtin/ocr/index.js";
import type { TextProcessorOptions } from "./builtin/text/index.js";
import { ERROR_RECORD_SUFFIX, type Processor } from "./types.js";

/** Settings of the built-ins, from the daemon's config; each built-in falls back to its own defaults. */
export interface BuiltinOptions {
  text?: Partial<TextProcessorOptions>;
  ocr?: Partial<OcrProcessorOptions>;
}

/**
 * Built-in processors by name; each call makes a fresh instance. Each is imported when configured: a daemon that runs
 * only `metadata` does not keep the text and OCR modules in its heap.
 */
export const builtinProcessors: Readonly<Record<string, (options: BuiltinOptions) => Promise<Processor>>> = {
  // The suffix is declared here so the static check below covers metadata too (it writes `<key>.json` only).
  metadata: async () => ({ ...(await import("./builtin/metadata.js")).createMetadataProcessor(), outputSuffixes: [".json"] }),
  text: async (options) => (await import("./builtin/text/index.js")).createTextProcessor(options.text),
  // Opt-in; replaces `text` in a chain (both write <key>.txt: checkOutputSuffixes refuses the pair).
  ocr: async (options) => (await import("./builtin/ocr/index.js")).createOcrProcessor(options.ocr),
};

/** A module path: absolute, or relative with an explicit ./ or ../ (a bare word is a built-in name). */
export function isModulePath(spec: string): boolean {
  return isAbsolute(spec) || spec.startsWith("./") || spec.startsWith("../");
}

function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return `an object with keys [${Object.keys(value).join(", ")}]`;
  return typeof value;
}

/** Checks the Processor shape, naming what is wrong and where it came from. */
export function validateProcessor(value: unknown, origin: string): Processor {
  const problems: string[] = [];
  if (typeof value !== "object" || value === null) {
    problems.push(`expected an object, got ${describeValue(value)}`);
  } else {
    const p = value as Record<string, unknown>;
    if (typeof p["name"] !== "string" || p["name"].trim() === "") problems.push("`name` must be a non-empty string");
    if (typeof p["version"] !== "string" || p["version"].trim() === "") {
      problems.push("`version` must be a non-empty string");
    }
    if (typeof p["process"] !== "function") problems.push("`process` must be a function (ctx) => Promise<outputs>");
  }
  if (problems.length > 0) {
    throw new ProcessorLoadError(
      `processor ${origin} is not a valid Processor: ${problems.join("; ")}. ` +
        "The module's default export must be { name, version, process } or a function returning one.",
    );
  }
  return value as Processor;
}

/** Imports a processor module and returns its Processor (default export, or the result of calling it). */
export async function loadProcessorModule(spec: string, baseDir: string): Promise<Processor> {
  const path = resolve(baseDir, spec);
  const origin = `module ${path}`;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (err) {
    throw new ProcessorLoadError(`cannot load processor ${origin}: ${errorMessage(err)}`, { cause: err });
  }
  if (!("default" in mod) || mod["default"] === undefined) {
    throw new ProcessorLoadError(
      `processor ${origin} has no default export; export default a Processor or a function returning one`,
    );
  }
  let candidate: unknown = mod["default"];
  if (typeof candidate === "function") {
    try {
      candidate = await (candidate as () => unknown)();
    } catch (err) {
      throw new ProcessorLoadError(`processor ${origin}: its factory threw: ${errorMessage(err)}`, { cause: err });
    }
  }
  return validateProcessor(candidate, origin);
}

/**
 * Refuses a chain whose declared output suffixes collide (two processors would overwrite each other's `<key><suffix>`)
 * or that declares the pipeline's own error-record suffix. Undeclared suffixes are checked when written.
 */
export function checkOutputSuffixes(processors: readonly Processor[], specs: readonly string[]): void {
  const owner = new Map<string, number>();
  processors.forEach((p, i) => {
    const suffixes: unknown = p.outputSuffixes;
    if (suffixes === undefined) return;
    if (!Array.isArray(suffixes) || !suffixes.every((s): s is string => typeof s === "string")) {
      throw new ProcessorLoadError(`processor ${specs[i]}: \`outputSuffixes\` must be an array of strings`);
    }
    for (const suffix of suffixes) {
      if (suffix === ERROR_RECORD_SUFFIX) {
        throw new ProcessorLoadError(
          `processor ${specs[i]} declares the suffix "${suffix}", which is reserved for the pipeline's error records`,
        );
      }
      const first = owner.get(suffix);
      if (first !== undefined && first !== i) {
        throw new ProcessorLoadError(
          `processors ${specs[first]} and ${specs[i]} both write "<key>${suffix}"; ` +
            "one would overwrite the other: remove one of them or change its suffix",
        );
      }
      owner.set(suffix, i);
    }
  });
}

/**
 * Resolves the configured chain, in order. Relative paths resolve against `baseDir` (the config file's directory,
 * or the working directory). Names must be unique: they are recorded in each output's lineage. Declared output
 * suffixes must not collide (checkOutputSuffixes).
 */
export async function resolveProcessors(
  specs: readonly string[],
  baseDir: string,
  options: BuiltinOptions = {},
): Promise<Processor[]> {
  if (specs.length === 0) throw new ProcessorLoadError("no processor configured");
  const processors: Processor[] = [];
  for (const spec of specs) {
    // hasOwn: "toString" and friends are not processors.
    const builtin = Object.hasOwn(builtinProcessors, spec) ? builtinProcessors[spec] : undefined;
    if (builtin !== undefined) {
      try {
        processors.push(await builtin(options));
      } catch (err) {
        throw new ProcessorLoadError(`built-in processor ${spec} cannot start: ${errorMessage(err)}`, { cause: err });
      }
    } else if (isModulePath(spec)) {
      processors.push(await loadProcessorModule(spec, baseDir));
    } else {
      throw new ProcessorLoadError(
        `unknown processor "${spec}": use a built-in name (${Object.keys(builtinProcessors).join(", ")}) ` +
          "or a module path (absolute, or starting with ./)",
      );
    }
  }
  const seen = new Map<string, number>();
  processors.forEach((p, i) => {
    const first = seen.get(p.name);
    if (first !== undefined) {
      throw new ProcessorLoadError(
        `processor name "${p.name}" appears twice in the chain (${specs[first]} and ${specs[i]}); ` +
          "names must be unique because they are recorded in each output's lineage",
      );
    }
    seen.set(p.name, i);
  });
  checkOutputSuffixes(processors, specs);
  return processors;
}
