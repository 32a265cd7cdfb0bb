// Loading the policy files in scripts/iam/: the same documents provisioning deploys, with CloudFormation-style
// ${Name} placeholders filled in for the stand-in's buckets and queue.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { PolicyDocument, PolicyKind } from "./types.js";
import { PolicyValidationError, validatePolicy } from "./validate.js";

// This file lives at test/local/iam/, three levels below the repository root.
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** Absolute path of `parts` inside the repository; refuses paths that climb out of it. */
export function repoPath(...parts: string[]): string {
  const resolved = path.resolve(REPO_ROOT, ...parts);
  const relative = path.relative(REPO_ROOT, resolved);
  if (relative.startsWith("..") || path.isAbsolute(relative)) {
    throw new Error(`repoPath: ${JSON.stringify(parts.join("/"))} is outside the repository`);
  }
  return resolved;
}

const PLACEHOLDER = /\$\{([^}]*)\}/g;

function substitute(text: string, vars: Record<string, string>, where: string): string {
  const result = text.replace(PLACEHOLDER, (_match, name: string) => {
    const value = Object.hasOwn(vars, name) ? vars[name] : undefined;
    if (value === undefined) throw new PolicyValidationError(`${where}: unknown placeholder \${${name}}`);
    return value;
  });
  // Catches an unterminated "${", or a value that itself carried a placeholder: never pass one through unfilled.
  if (result.includes("${")) throw new PolicyValidationError(`${where}: unresolved placeholder in ${JSON.stringify(result)}`);
  return result;
}

function renderValue(value: unknown, vars: Record<string, string>, where: string): unknown {
  if (typeof value === "string") return substitute(value, vars, where);
  if (Array.isArray(value)) return value.map((item, i) => renderValue(item, vars, `${where}[${i}]`));
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderValue(v, vars, `${where}.${k}`)]));
  }
  return value;
}

/**
 * Fills `${Name}` placeholders in every string value of `doc` (keys untouched; substitution works on parsed JSON, so
 * a value cannot break the document's structure), then validates the result. Throws on an unknown placeholder or a
 * leftover `${`.
 */
export function renderPolicy(doc: unknown, vars: Record<string, string>, kind: PolicyKind = "identity"): PolicyDocument {
  return validatePolicy(renderValue(doc, vars, "policy"), kind);
}

/** Reads a policy JSON file, renders its placeholders and validates it. */
export function loadPolicyFile(file: string, vars: Record<string, string>, kind: PolicyKind = "identity"): PolicyDocument {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new PolicyValidationError(`${file}: cannot read policy JSON`, { cause: error });
  }
  try {
    return renderPolicy(parsed, vars, kind);
  } catch (error) {
    if (error instanceof PolicyValidationError) throw new PolicyValidationError(`${file}: ${error.message}`, { cause: error });
    throw error;
  }
}
