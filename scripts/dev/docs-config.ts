// Rewrites the README's configuration reference from the schema (npm run docs:config).
import { readFileSync, writeFileSync } from "node:fs";
import { renderConfigReference } from "../../src/config/reference.js";

const path = new URL("../../README.md", import.meta.url);
const readme = readFileSync(path, "utf8");
const next = readme.replace(
  /(<!-- config-reference:start[^>]*-->\n)[\s\S]*?(\n<!-- config-reference:end -->)/,
  (_m, start: string, end: string) => `${start}${renderConfigReference()}${end}`,
);
writeFileSync(path, next);
console.log(next === readme ? "README configuration reference already up to date" : "README configuration reference updated");
