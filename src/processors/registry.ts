/**
 * Turns the configured processor specs into Processors: a built-in by name, or a user's module by path. Every failure
 * is a DocProcessorError with code PROCESSOR_LOAD_FAILED (exit 78: a configuration problem, not worth restarting).
 */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { DocProcessorError, ErrorCode, errorMessage } from "../errors.js";
import { createMetadataProcessor } from "./builtin/metadata.js";
import type { Processor } from "./types.js";

/** Built-in processors by name; each call makes a fresh instance. */
export const builtinProcessors: Readonly<Record<string, () => Processor>> = {
  metadata: createMetadataProcessor,
};

export class ProcessorLoadError extends DocProcessorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.processorLoad, message, options);
  }
}

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
 * Resolves the configured chain, in order. Relative paths resolve against `baseDir` (the config file's directory,
 * or the working directory). Names must be unique: they are recorded in each output's lineage.
 */
export async function resolveProcessors(specs: readonly string[], baseDir: string): Promise<Processor[]> {
  if (specs.length === 0) throw new ProcessorLoadError("no processor configured");
  const processors: Processor[] = [];
  for (const spec of specs) {
    // hasOwn: "toString" and friends are not processors.
    const builtin = Object.hasOwn(builtinProcessors, spec) ? builtinProcessors[spec] : undefined;
    if (builtin !== undefined) {
      processors.push(builtin());
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
  return processors;
}
