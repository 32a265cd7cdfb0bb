// Lint rules that guard the project's invariants: no floating promises, no focused or skipped tests,
// process.env read only by src/config/env.ts, and imports between src/ folders only downwards (layers below).
import path from "node:path";
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/**
 * The layers of src/, lowest first: a module may import its own layer and the layers below it, never above. The
 * folders of one layer are peers. Every folder and top-level file of src/ must be listed, so a new one is placed
 * on purpose. `onlyFrom` narrows who may import an entry at all (the composition root has one caller).
 */
export const LAYERS = [
  ["domain"],
  ["errors"],
  ["config"],
  ["logging"],
  ["aws"],
  ["identity"],
  ["storage", "processors"],
  ["pipeline"],
  ["queue"],
  // Metrics and the per-document log line are fed by the queue's events and the pipeline's outcomes.
  ["observability"],
  ["service"],
  ["app.ts"],
  ["main.ts"],
  ["cli.ts"],
];
export const ONLY_FROM = { "app.ts": ["main.ts"] };

/** The entry of src/ a file belongs to: its first folder under src/, or the file itself; undefined outside src/. */
function entryOf(file, srcDir) {
  const rel = path.relative(srcDir, file);
  if (rel === "" || rel.startsWith("..") || path.isAbsolute(rel)) return undefined;
  return rel.split(path.sep)[0];
}

/** Normalises a specifier's entry: "app.js" is app.ts compiled. */
function sourceName(entry) {
  return entry.endsWith(".js") ? `${entry.slice(0, -3)}.ts` : entry;
}

const layerRule = {
  meta: {
    type: "problem",
    docs: { description: "Imports between src/ folders go down the layer table (eslint.config.js LAYERS), never up." },
    schema: [],
    messages: {
      upward: "{{from}} (layer {{fromLayer}}) must not import {{to}} (layer {{toLayer}}): imports go down the layers ({{order}}).",
      onlyFrom: "Only {{allowed}} may import {{to}}.",
      unplaced: "src/{{entry}} is in no layer: add it to LAYERS in eslint.config.js.",
    },
  },
  create(context) {
    // src/ of the directory ESLint runs in (the repo; a test's fixture tree in test/unit/lint).
    const srcDir = path.join(context.cwd, "src");
    const from = entryOf(context.filename, srcDir);
    if (from === undefined) return {};
    const layerOf = (entry) => LAYERS.findIndex((layer) => layer.includes(entry));
    const order = LAYERS.map((layer) => layer.join(", ")).join(" < ");
    const fromLayer = layerOf(from);
    const check = (node, specifier) => {
      if (typeof specifier !== "string" || !specifier.startsWith(".")) return;
      const to = entryOf(path.resolve(path.dirname(context.filename), specifier), srcDir);
      if (to === undefined || to === from) return;
      const target = sourceName(to);
      const toLayer = layerOf(target);
      if (fromLayer < 0) return context.report({ node, messageId: "unplaced", data: { entry: from } });
      if (toLayer < 0) return context.report({ node, messageId: "unplaced", data: { entry: target } });
      const allowed = ONLY_FROM[target];
      if (allowed !== undefined && !allowed.includes(from)) {
        return context.report({ node, messageId: "onlyFrom", data: { allowed: allowed.join(", "), to: target } });
      }
      if (toLayer > fromLayer) {
        context.report({ node, messageId: "upward", data: { from, fromLayer, to: target, toLayer, order } });
      }
    };
    const fromSource = (node) => check(node.source, node.source?.value);
    return {
      ImportDeclaration: fromSource,
      ExportNamedDeclaration: fromSource,
      ExportAllDeclaration: fromSource,
      ImportExpression: (node) => check(node.source, node.source.type === "Literal" ? node.source.value : undefined),
    };
  },
};

const noFocusedOrSkipped = [
  "error",
  ...["it", "test", "describe", "suite"].flatMap((fn) => [
    { object: fn, property: "only", message: "Focused tests hide the rest of the suite." },
    { object: fn, property: "skip", message: "Skipped tests hide gaps; fail with what to install instead." },
    { object: fn, property: "todo", message: "A todo test asserts nothing." },
  ]),
];

export default tseslint.config(
  // The lint fixtures break the layer rule on purpose; test/unit/lint lints them with their own working directory.
  { ignores: ["dist/", "coverage/", "node_modules/", "test/local/.cache/", "test/unit/lint/fixtures/"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ["vitest.config.ts", "eslint.config.js"] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/require-await": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-restricted-syntax": [
        "error",
        {
          selector: "MemberExpression[object.name='process'][property.name='env']",
          message: "Read the environment only in src/config/env.ts; pass values in.",
        },
      ],
    },
  },
  {
    files: ["src/**/*.ts"],
    plugins: { local: { rules: { layers: layerRule } } },
    rules: {
      "local/layers": "error",
      // An ES import of node:http reads every export, and its WebSocket getter loads undici (~7 MB RSS unused).
      "@typescript-eslint/no-restricted-imports": [
        "error",
        {
          paths: [
            {
              name: "node:http",
              allowTypeImports: true,
              message: 'Use process.getBuiltinModule("node:http"): an ES import loads undici through its WebSocket getter.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ["src/config/env.ts", "test/**", "scripts/**", "vitest.config.ts", "eslint.config.js"],
    rules: { "no-restricted-syntax": "off" },
  },
  {
    files: ["test/**"],
    rules: {
      "no-restricted-properties": noFocusedOrSkipped,
      "@typescript-eslint/no-non-null-assertion": "off",
      "@typescript-eslint/unbound-method": "off",
    },
  },
  {
    files: ["**/*.js", "**/*.mjs"],
    ...tseslint.configs.disableTypeChecked,
  },
);
