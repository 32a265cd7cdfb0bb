/**
 * Config loading: JSON file, then DOC_PROCESSOR_* environment overrides, then one validation that reports every
 * problem at once (key, bad value, what is wrong). Pure apart from the injected `readFile`.
 */
import { readFileSync } from "node:fs";
import type { z } from "zod";
import { ConfigError, type ConfigProblem } from "../errors/fatal.js";
import { errorMessage } from "../errors/message.js";
import type { Env } from "./env.js";
import { s3EndpointProblems } from "./endpoint-override.js";
import { checkQueueUrl, sqsEndpointOverride } from "./queue-url.js";
import { CONFIG_KEYS, configSchema, envNameOf, type Config } from "./schema.js";

export const DEFAULT_CONFIG_PATH = "/etc/doc-processor/config.json";
export const CONFIG_PATH_ENV = "DOC_PROCESSOR_CONFIG";

export interface LoadConfigOptions {
  /** From `--config`; wins over DOC_PROCESSOR_CONFIG and the default path. */
  configPath?: string | undefined;
  env: Env;
  readFile?: (path: string) => string;
}

const readUtf8 = (path: string): string => readFileSync(path, "utf8");

export function loadConfig(options: LoadConfigOptions): Config {
  const { env } = options;
  const readFile = options.readFile ?? readUtf8;
  const fromEnv = nonEmpty(env[CONFIG_PATH_ENV]);
  const path = configPathOf(options.configPath, env);
  const givenBy = options.configPath !== undefined ? "--config" : fromEnv !== undefined ? CONFIG_PATH_ENV : undefined;
  const problems: ConfigProblem[] = [];

  const raw: Record<string, unknown> = {};
  const file = readConfigFile(path, givenBy, readFile);
  if (file.kind === "failed") problems.push({ key: "(file)", message: file.message });
  if (file.kind === "loaded") Object.assign(raw, file.settings);
  Object.assign(raw, readEnvOverrides(env, problems));

  const parsed = configSchema.safeParse(raw);
  // Settings missing because the file could not be read are that one problem, not one more per key.
  if (!parsed.success) problems.push(...zodProblems(parsed.error, raw).filter((p) => file.kind !== "failed" || p.message !== "is required"));
  problems.push(...crossFieldProblems(raw));
  if (parsed.success) problems.push(...timeoutProblems(parsed.data));
  if (parsed.success || !parsed.error.issues.some((i) => i.path[0] === "queueUrl")) problems.push(...queueUrlProblems(raw, env));
  problems.push(...s3EndpointProblems(env));

  const source = file.kind === "absent" ? `${path} not found; environment only` : path;
  if (problems.length > 0 || !parsed.success) throw new ConfigError(dedupe(problems), source);
  return Object.freeze(parsed.data);
}

/** The config file's path: `--config`, else DOC_PROCESSOR_CONFIG (when not empty), else the default. */
export function configPathOf(configPath: string | undefined, env: Env): string {
  return configPath ?? nonEmpty(env[CONFIG_PATH_ENV]) ?? DEFAULT_CONFIG_PATH;
}

type FileRead =
  | { kind: "loaded"; settings: Record<string, unknown> }
  /** The default path is absent: everything comes from the environment. */
  | { kind: "absent" }
  | { kind: "failed"; message: string };

/** Where the path came from, for the fix. */
function pathOrigin(givenBy: string | undefined): string {
  return givenBy === undefined ? `the default path; --config or ${CONFIG_PATH_ENV} choose another` : `given by ${givenBy}`;
}

/** `givenBy` is "--config" or DOC_PROCESSOR_CONFIG for a path given explicitly, undefined for the default path. */
function readConfigFile(path: string, givenBy: string | undefined, readFile: (path: string) => string): FileRead {
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // The default path may be absent when everything comes from the environment; a path given explicitly may not.
    if (code === "ENOENT" && givenBy === undefined) return { kind: "absent" };
    return { kind: "failed", message: unreadable(path, givenBy, code, err) };
  }
  // A byte-order mark (some Windows editors write one) is not JSON, but it is not a mistake in the settings either.
  if (text.startsWith("\uFEFF")) text = text.slice(1);
  if (text.trim() === "") {
    return { kind: "failed", message: `${path} is empty. Fix: write the settings into it as one JSON object ({"queueUrl": …}), or delete it to configure from DOC_PROCESSOR_* variables only` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return {
      kind: "failed",
      message: `${path} is not valid JSON (${(err as Error).message}). Fix: correct the syntax there (\`jq . ${path}\` points at it); comments and trailing commas are not JSON`,
    };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { kind: "failed", message: `${path} must hold a JSON object of settings ({"queueUrl": …}), not ${Array.isArray(value) ? "an array" : value === null ? "null" : `a ${typeof value}`}` };
  }
  return { kind: "loaded", settings: value as Record<string, unknown> };
}

function unreadable(path: string, givenBy: string | undefined, code: string | undefined, err: unknown): string {
  switch (code) {
    case "ENOENT":
      return `${path} does not exist (${pathOrigin(givenBy)}). Fix: create it, or correct the path`;
    case "EISDIR":
      return `${path} is a directory, not a file (${pathOrigin(givenBy)}). Fix: give the JSON file itself, for example ${path.replace(/\/+$/, "")}/config.json`;
    case "EACCES":
    case "EPERM":
      return (
        `${path} exists but this user may not read it (${code}). Fix: make it readable by the service user and no one else: ` +
        `chown root:doc-processor ${path} && chmod 0640 ${path} (and let that user traverse its directories)`
      );
    case "ENOTDIR":
      return `${path}: a part of this path is a file, not a directory (ENOTDIR). Fix: correct the path (${pathOrigin(givenBy)})`;
    default:
      return `cannot read ${path}: ${code ?? "error"} (${errorMessage(err)}). Fix: make it a readable regular file`;
  }
}

/** queueUrl (and AWS_ENDPOINT_URL_SQS) decide where the role's signed SQS requests go: see queue-url.ts. */
function queueUrlProblems(raw: Record<string, unknown>, env: Env): ConfigProblem[] {
  const { queueUrl, region } = raw;
  if (typeof queueUrl !== "string") return [];
  const checked = checkQueueUrl({
    queueUrl,
    region: typeof region === "string" ? region : undefined,
    endpointOverride: sqsEndpointOverride(env),
  });
  return checked.ok ? [] : checked.problems;
}

const CREDENTIAL_LIKE = /access.?key|secret|session.?token|credential|password/i;

const ENV_TO_KEY = new Map(CONFIG_KEYS.map((k) => [envNameOf(k), k]));

function readEnvOverrides(env: Env, problems: ConfigProblem[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith("DOC_PROCESSOR_") || name === CONFIG_PATH_ENV) continue;
    const v = nonEmpty(value);
    if (v === undefined) continue; // an empty line in an EnvironmentFile means "unset"
    const key = ENV_TO_KEY.get(name);
    if (key === undefined) {
      problems.push({ key: name, message: `unknown environment setting${suggest(name, [...ENV_TO_KEY.keys()])}` });
      continue;
    }
    out[key] = coerceEnvValue(key, v);
  }
  return out;
}

/** Environment values are strings; give the schema the type it expects, or the string so it reports it. */
function coerceEnvValue(key: keyof Config, value: string): unknown {
  const type = baseType(configSchema.shape[key]);
  if (type === "number") {
    const n = Number(value);
    return value.trim() !== "" && Number.isFinite(n) ? n : value;
  }
  if (key === "processor") {
    if (value.trim().startsWith("[")) {
      try {
        return JSON.parse(value) as unknown;
      } catch {
        return value;
      }
    }
    const parts = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
    return parts.length === 1 ? parts[0] : parts;
  }
  return value;
}

function baseType(schema: z.ZodType): string {
  let s = schema;
  for (;;) {
    const def = s.def as { type: string; innerType?: z.ZodType; in?: z.ZodType };
    if ((def.type === "default" || def.type === "optional") && def.innerType) s = def.innerType;
    else if (def.type === "pipe" && def.in) s = def.in;
    else return def.type;
  }
}

function zodProblems(error: z.ZodError, raw: Record<string, unknown>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const k of issue.keys) {
        const message = CREDENTIAL_LIKE.test(k)
          ? "unknown key: static credentials do not belong in the config; credentials come only from the instance profile (IMDS)"
          : `unknown key${suggest(k, CONFIG_KEYS)}`;
        // Never echo what looks like a secret back into the logs.
        problems.push(CREDENTIAL_LIKE.test(k) ? { key: k, message } : { key: k, message, value: raw[k] });
      }
      continue;
    }
    const key = issue.path.map(String).join(".") || "(root)";
    const value = valueAt(raw, issue.path);
    const message = value === undefined ? "is required" : issue.message;
    problems.push(value === undefined ? { key, message } : { key, message, value });
  }
  return problems;
}

function crossFieldProblems(raw: Record<string, unknown>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const { sourceBucket, outputBucket } = raw;
  if (typeof sourceBucket === "string" && sourceBucket !== "" && sourceBucket === outputBucket) {
    problems.push({
      key: "outputBucket",
      value: outputBucket,
      message:
        "must differ from sourceBucket: results written into the watched bucket would be processed again, forever",
    });
  }
  const vt = raw["visibilityTimeoutSeconds"] ?? 60;
  const cap = raw["maxProcessingSeconds"] ?? 900;
  if (typeof vt === "number" && typeof cap === "number" && cap < vt) {
    problems.push({
      key: "maxProcessingSeconds",
      value: cap,
      message: `must be at least visibilityTimeoutSeconds (${vt})`,
    });
  }
  return problems;
}

/** A processor's own time limit, which must end a document before the heartbeat's cap does. */
const PROCESSOR_TIMEOUTS = [
  { processor: "text", key: "extractionTimeoutSeconds" },
  { processor: "ocr", key: "ocrTimeoutSeconds" },
] as const;

/**
 * On the validated settings (defaults applied): a configured processor's time limit at or above maxProcessingSeconds
 * never fires. The cap aborts the document first and it is retried instead of getting its TIMEOUT error record, so
 * one slow scan would be received, run for the whole cap and aborted again until the DLQ takes it.
 */
export function timeoutProblems(config: Config): ConfigProblem[] {
  const cap = config.maxProcessingSeconds;
  return PROCESSOR_TIMEOUTS.filter(({ processor, key }) => config.processor.includes(processor) && config[key] >= cap).map(({ processor, key }) => ({
    key,
    value: config[key],
    message:
      `must be below maxProcessingSeconds (${cap}) while the \`${processor}\` processor runs: at the cap the document is ` +
      "aborted and retried, so this limit would never end it with its TIMEOUT record (raise maxProcessingSeconds or lower this)",
  }));
}

function valueAt(raw: Record<string, unknown>, path: readonly PropertyKey[]): unknown {
  let v: unknown = raw;
  for (const p of path) {
    if (typeof v !== "object" || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const id = `${p.key}\u0000${p.message}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === "" ? undefined : v;
}

function suggest(input: string, candidates: readonly string[]): string {
  const lower = input.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(lower, c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(input.length / 4)) ? ` (did you mean ${best}?)` : "";
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}
