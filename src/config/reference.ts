/**
 * Renders the README's configuration reference from the schema, so the two cannot drift apart
 * (test/unit/config/readme.test.ts compares them; `npm run docs:config` rewrites the README section).
 */
import type { z } from "zod";
import { configSchema, envNameOf } from "./schema.js";

function describeType(schema: z.ZodType): { type: string; def: string } {
  let s = schema;
  let def = "required";
  for (;;) {
    const d = s.def as { type: string; innerType?: z.ZodType; in?: z.ZodType; defaultValue?: unknown; entries?: Record<string, string>; options?: z.ZodType[] };
    if (d.type === "default" && d.innerType) {
      const v = typeof d.defaultValue === "function" ? (d.defaultValue as () => unknown)() : d.defaultValue;
      def = JSON.stringify(v);
      s = d.innerType;
    } else if (d.type === "optional" && d.innerType) {
      def = "unset";
      s = d.innerType;
    } else if (d.type === "pipe" && d.in) {
      s = d.in;
    } else if (d.type === "enum" && d.entries) {
      return { type: Object.values(d.entries).map((v) => `\`${v}\``).join(" \\| "), def };
    } else if (d.type === "union" && d.options) {
      return { type: d.options.map((o) => describeType(o).type).join(" or "), def };
    } else if (d.type === "array") {
      return { type: "list of strings", def };
    } else {
      return { type: d.type === "number" ? "integer" : d.type, def };
    }
  }
}

export function renderConfigReference(): string {
  const rows = Object.entries(configSchema.shape).map(([key, schema]) => {
    const { type, def } = describeType(schema as z.ZodType);
    const description = (schema as z.ZodType).description ?? "";
    return `| \`${key}\` | \`${envNameOf(key)}\` | ${type} | ${def === "required" || def === "unset" ? def : `\`${def}\``} | ${description} |`;
  });
  return ["| key | environment override | type | default | description |", "|---|---|---|---|---|", ...rows].join("\n");
}
