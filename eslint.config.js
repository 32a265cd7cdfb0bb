// Lint rules that guard the project's invariants: no floating promises, no focused or skipped tests,
// and process.env read only by src/config/env.ts.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const noFocusedOrSkipped = [
  "error",
  ...["it", "test", "describe", "suite"].flatMap((fn) => [
    { object: fn, property: "only", message: "Focused tests hide the rest of the suite." },
    { object: fn, property: "skip", message: "Skipped tests hide gaps; fail with what to install instead." },
    { object: fn, property: "todo", message: "A todo test asserts nothing." },
  ]),
];

export default tseslint.config(
  { ignores: ["dist/", "coverage/", "node_modules/", "test/local/.cache/"] },
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
