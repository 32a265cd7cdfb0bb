/**
 * Test support for the text processor. Its extractor is a separate Node process that runs JavaScript: vitest's
 * TypeScript transform does not reach it. So the tests transpile src/processors/ (and the leaf modules it imports:
 * src/domain/, src/errors/) into a private directory under
 * node_modules/.cache (where `pdfjs-dist`, `mammoth` and the other packages resolve as they do for dist/, and which
 * the child's permission model lets it read, being inside the checkout) and start the child from there.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath, pathToFileURL } from "node:url";
import ts from "typescript";
import type { SourceObjectInfo } from "../../../../src/domain/document.js";
import type { ProcessorOutput } from "../../../../src/processors/types.js";

const repo = fileURLToPath(new URL("../../../../", import.meta.url));
const srcDir = join(repo, "src");
/** What the extractor child may import: the processors and the leaf modules below them. */
const childDirs = ["processors", "domain", "errors"].map((d) => join(srcDir, d));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/**
 * Transpiles src/processors/, src/domain/ and src/errors/ (per test process) and returns the extractor entry's URL,
 * the transpiled processors directory (for test children of its own) and a cleanup.
 */
export function buildExtractor(): { extractorUrl: URL; dir: string; cleanup: () => void } {
  const out = join(repo, "node_modules/.cache", `doc-processor-text-extractor-${process.pid}-${Date.now()}`);
  for (const file of childDirs.flatMap(sources)) {
    const { outputText } = ts.transpileModule(readFileSync(file, "utf8"), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
      fileName: file,
    });
    const target = join(out, relative(srcDir, file)).replace(/\.ts$/, ".js");
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, outputText);
  }
  // ESM, like the package: the directory has no package.json of its own.
  writeFileSync(join(out, "package.json"), '{ "type": "module" }\n');
  return {
    extractorUrl: pathToFileURL(join(out, "processors/builtin/text/extract-child.js")),
    dir: join(out, "processors"),
    cleanup: () => rmSync(out, { recursive: true, force: true }),
  };
}

export function source(key: string, size: number, overrides: Partial<SourceObjectInfo> = {}): SourceObjectInfo {
  return { bucket: "source-bucket", key, size, eTag: "etag-1", ...overrides };
}

/** A Readable of `data` in chunks of `chunk` bytes (the fan-out hands processors 64 KiB chunks). */
export function bytes(data: Uint8Array, chunk = 64 * 1024): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunk) parts.push(Buffer.from(data.subarray(i, i + chunk)));
  return Readable.from(parts, { objectMode: false });
}

/** An output's body as a Buffer, whatever its kind. */
export async function bodyOf(output: ProcessorOutput | undefined): Promise<Buffer> {
  if (output === undefined) throw new Error("no such output");
  const { body } = output;
  if (typeof body === "string") return Buffer.from(body, "utf8");
  if (body instanceof Uint8Array) return Buffer.from(body);
  const parts: Buffer[] = [];
  for await (const c of body as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

/** The text and the record of a text processor's outputs, read in order as the pipeline writes them. */
export async function readTextOutputs(outputs: ProcessorOutput[]): Promise<{ text: string; record: Record<string, unknown> }> {
  const text = (await bodyOf(outputs.find((o) => o.suffix === ".txt"))).toString("utf8");
  const record = JSON.parse((await bodyOf(outputs.find((o) => o.suffix === ".text.json"))).toString("utf8")) as Record<
    string,
    unknown
  >;
  return { text, record };
}
