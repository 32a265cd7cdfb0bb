import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DocProcessorError, ErrorCode, exitCodeFor } from "../../../src/errors/fatal.js";
import { METADATA_PROCESSOR_NAME } from "../../../src/processors/builtin/metadata.js";
import {
  isModulePath,
  loadProcessorModule,
  resolveProcessors,
  validateProcessor,
} from "../../../src/processors/registry.js";
import { chunked, silentLog, sourceInfo } from "../pipeline/helpers.js";

const fixtures = resolve(dirname(fileURLToPath(import.meta.url)), "../../fixtures/processors");

async function loadError(promise: Promise<unknown>): Promise<DocProcessorError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DocProcessorError);
  const e = err as DocProcessorError;
  expect(e.code).toBe(ErrorCode.processorLoad);
  expect(exitCodeFor(e)).toBe(78);
  return e;
}

describe("resolveProcessors", () => {
  it("gives the built-in metadata processor by name", async () => {
    const [p, ...rest] = await resolveProcessors(["metadata"], fixtures);
    expect(rest).toHaveLength(0);
    expect(p).toMatchObject({ name: METADATA_PROCESSOR_NAME, version: "1.0.0" });
  });

  it("loads a user module by a ./ path resolved against the base directory, and it runs", async () => {
    const [p] = await resolveProcessors(["./example.mjs"], fixtures);
    expect(p).toMatchObject({ name: "byte-count", version: "1.2.3" });
    const outputs = await p!.process({
      input: chunked(["abc", "de"]),
      source: sourceInfo(),
      signal: new AbortController().signal,
      log: silentLog,
    });
    expect(outputs).toEqual([{ suffix: ".bytes.txt", body: "5\n", contentType: "text/plain; charset=utf-8" }]);
  });

  it("loads a user module by absolute path, whatever the base directory", async () => {
    const [p] = await resolveProcessors([join(fixtures, "example.mjs")], "/nonexistent");
    expect(p?.name).toBe("byte-count");
  });

  it("calls a default-exported (async) factory", async () => {
    const [p] = await resolveProcessors(["./factory.mjs"], fixtures);
    expect(p).toMatchObject({ name: "greeter", version: "0.1.0" });
  });

  it("keeps the configured order", async () => {
    const chain = await resolveProcessors(["./factory.mjs", "metadata", "./example.mjs"], fixtures);
    expect(chain.map((p) => p.name)).toEqual(["greeter", "metadata", "byte-count"]);
  });

  it("refuses an unknown name, listing the built-ins and the path rule", async () => {
    const err = await loadError(resolveProcessors(["pdf-text"], fixtures));
    expect(err.message).toContain('unknown processor "pdf-text"');
    expect(err.message).toContain("metadata");
    expect(err.message).toContain("./");
  });

  it("does not take Object.prototype members for built-ins", async () => {
    await loadError(resolveProcessors(["toString"], fixtures));
  });

  it("refuses duplicate names in a chain", async () => {
    const err = await loadError(resolveProcessors(["metadata", "metadata"], fixtures));
    expect(err.message).toContain('"metadata" appears twice');
    const byPath = await loadError(resolveProcessors(["./example.mjs", join(fixtures, "example.mjs")], fixtures));
    expect(byPath.message).toContain('"byte-count" appears twice');
  });

  it("refuses an empty chain", async () => {
    await loadError(resolveProcessors([], fixtures));
  });

  it.each([
    ["./no-default.mjs", "no default export"],
    ["./missing-version.mjs", "`version` must be a non-empty string"],
    ["./process-not-function.mjs", "`process` must be a function"],
    ["./factory-throws.mjs", "missing model file"],
    ["./does-not-exist.mjs", "cannot load processor"],
  ])("refuses %s: %s", async (spec, message) => {
    const err = await loadError(resolveProcessors([spec], fixtures));
    expect(err.message).toContain(message);
    // The message names the file, so the operator knows which config entry is wrong.
    expect(err.message).toContain(resolve(fixtures, spec));
  });
});

describe("loadProcessorModule", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "doc-processor-registry-"));
    await writeFile(join(dir, "syntax-error.mjs"), "export default {\n");
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("turns a module that does not parse into PROCESSOR_LOAD_FAILED", async () => {
    const err = await loadError(loadProcessorModule("./syntax-error.mjs", dir));
    expect(err.message).toContain("syntax-error.mjs");
  });
});

describe("validateProcessor", () => {
  it.each([
    [null, "expected an object, got null"],
    [42, "expected an object, got number"],
    [{ name: "", version: "1", process: () => [] }, "`name` must be a non-empty string"],
    [{ name: "x", version: 1, process: () => [] }, "`version` must be a non-empty string"],
  ])("refuses %j", (value, message) => {
    expect(() => validateProcessor(value, "test")).toThrow(message);
  });

  it("accepts a well-formed processor as is", () => {
    const p = { name: "x", version: "1", process: async () => [] };
    expect(validateProcessor(p, "test")).toBe(p);
  });
});

describe("isModulePath", () => {
  it.each([
    ["/opt/p.mjs", true],
    ["./p.mjs", true],
    ["../p.mjs", true],
    ["metadata", false],
    ["p.mjs", false],
  ])("%s -> %s", (spec, expected) => {
    expect(isModulePath(spec)).toBe(expected);
  });
});
