// The layer rule of eslint.config.js, run through ESLint's API with the project's own config on a fixture tree
// (test/unit/lint/fixtures/src, linted with that directory as the working directory): an import up the layers, or of
// app.ts from anywhere but main.ts, fails; imports down the layers and between peers pass.
import { fileURLToPath } from "node:url";
import { ESLint } from "eslint";
import { beforeAll, describe, expect, it } from "vitest";

const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));
const CONFIG = fileURLToPath(new URL("../../../eslint.config.js", import.meta.url));

describe("the layer rule (eslint.config.js LAYERS)", () => {
  let byFile: Map<string, ESLint.LintResult>;

  beforeAll(async () => {
    const eslint = new ESLint({ cwd: FIXTURES, overrideConfigFile: CONFIG });
    const results = await eslint.lintFiles(["src/**/*.ts"]);
    byFile = new Map(results.map((r) => [r.filePath.slice(FIXTURES.length), r]));
  }, 60_000);

  const layerMessages = (file: string) => {
    const result = byFile.get(file);
    expect(result, `${file} was linted`).toBeDefined();
    return result!.messages.filter((m) => m.ruleId === "local/layers").map((m) => `${m.line}: ${m.message}`);
  };

  it("lints the whole fixture tree with no other rule's complaint (the fixtures are otherwise clean)", () => {
    expect([...byFile.keys()].sort()).toEqual([
      "src/app.ts",
      "src/config/settings.ts",
      "src/domain/ref.ts",
      "src/errors/imports-config.ts",
      "src/main.ts",
      "src/pipeline/allowed.ts",
      "src/pipeline/imports-queue.ts",
      "src/processors/peer.ts",
      "src/queue/imports-app.ts",
      "src/queue/receive.ts",
      "src/service/imports-app.ts",
      "src/service/wiring.ts",
      "src/storage/blob.ts",
      "src/storage/imports-service.ts",
      "src/unplaced/thing.ts",
    ]);
    const others = [...byFile.values()].flatMap((r) => r.messages.filter((m) => m.ruleId !== "local/layers"));
    expect(others).toEqual([]);
  });

  it("passes imports down the layers, between peers of a layer, and main.ts importing app.ts", () => {
    for (const file of ["src/pipeline/allowed.ts", "src/processors/peer.ts", "src/config/settings.ts", "src/app.ts", "src/main.ts"]) {
      expect(layerMessages(file), file).toEqual([]);
    }
  });

  it("fails the queue importing app.ts", () => {
    expect(layerMessages("src/queue/imports-app.ts")).toEqual(["2: Only main.ts may import app.ts."]);
  });

  it("fails the service layer importing app.ts back", () => {
    expect(layerMessages("src/service/imports-app.ts")).toEqual(["2: Only main.ts may import app.ts."]);
  });

  it("fails storage importing service, whether by import, re-export or dynamic import", () => {
    const messages = layerMessages("src/storage/imports-service.ts");
    expect(messages.map((m) => m.split(":")[0])).toEqual(["2", "4", "6"]);
    for (const m of messages) expect(m).toContain("storage (layer 6) must not import service (layer 10)");
  });

  it("fails the pipeline importing the queue (the queue feeds the pipeline, not the other way)", () => {
    expect(layerMessages("src/pipeline/imports-queue.ts")).toEqual([
      expect.stringContaining("2: pipeline (layer 7) must not import queue (layer 8)") as unknown,
    ]);
  });

  it("fails errors importing config (errors sits below config)", () => {
    expect(layerMessages("src/errors/imports-config.ts")).toEqual([
      expect.stringContaining("2: errors (layer 1) must not import config (layer 2)") as unknown,
    ]);
  });

  it("fails a folder that is in no layer, so a new folder is placed on purpose", () => {
    expect(layerMessages("src/unplaced/thing.ts")).toEqual(["2: src/unplaced is in no layer: add it to LAYERS in eslint.config.js."]);
  });
});
