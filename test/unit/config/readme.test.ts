// The README's configuration reference is generated from the schema; this keeps the two from drifting apart.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { renderConfigReference } from "../../../src/config/reference.js";
import { CONFIG_KEYS } from "../../../src/config/schema.js";

const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
const section = /<!-- config-reference:start[^>]*-->\n([\s\S]*?)\n<!-- config-reference:end -->/.exec(readme)?.[1];

describe("README configuration reference", () => {
  it("matches the schema (run `npm run docs:config` after changing it)", () => {
    expect(section).toBe(renderConfigReference());
  });

  it("lists every key", () => {
    for (const key of CONFIG_KEYS) expect(section).toContain(`| \`${key}\` |`);
  });
});
