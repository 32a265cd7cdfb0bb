/**
 * Log lines of bounded size. journald splits lines longer than its LineMax (48 KiB by default), which breaks JSON
 * logs; and a hostile message (a thousand records for another bucket) must not make the daemon write a 160 KB line.
 * Lists that grow with input are summarised where they are logged (summarize); boundLine is the last resort for
 * whatever still comes out too long. Pure.
 */

/** Every line the logger writes is at most this long, newline included. */
export const MAX_LOG_LINE_BYTES = 16 * 1024;
/** How many entries of a list a log line shows; the rest are only counted. */
export const LIST_SAMPLE = 5;
/** Longest string (key, reason, detail) a summarised entry shows. */
export const MAX_FIELD_CHARS = 256;

/** `value` cut to `max` characters (never inside a surrogate pair), with "…" and how much was cut. */
export function truncate(value: string, max = MAX_FIELD_CHARS): string {
  if (value.length <= max) return value;
  let end = max;
  const code = value.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1;
  return `${value.slice(0, end)}… (${value.length - end} more characters)`;
}

export interface ListSummary<T> {
  /** The first LIST_SAMPLE entries, their strings truncated. */
  sample: T[];
  count: number;
  /** How many entries per reason (or code): bounded by the number of reasons, not by the input. */
  byReason: Record<string, number>;
}

/** A list as a log line can carry it: a few entries with their strings truncated, a count, and counts per reason. */
export function summarize<T extends object>(items: readonly T[], reasonOf: (item: T) => string): ListSummary<T> {
  const byReason: Record<string, number> = {};
  for (const item of items) {
    const reason = truncate(reasonOf(item), 64);
    byReason[reason] = (byReason[reason] ?? 0) + 1;
  }
  return { sample: items.slice(0, LIST_SAMPLE).map(truncateStrings), count: items.length, byReason };
}

function truncateStrings<T extends object>(item: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(item)) out[k] = typeof v === "string" ? truncate(v) : v;
  return out as T;
}

// Fields kept whole when a line is cut down (the rest are cut to FIELD_BUDGET).
const ESSENTIAL = new Set(["level", "time", "service", "msg", "component", "command", "messageId", "code", "outcome"]);
const FIELD_BUDGET = 1024;

/**
 * The line itself when it is at most `max` bytes; otherwise a shorter JSON line with the same level, time and
 * message, each large field replaced by the start of its JSON, and `logTruncated` saying how long the line was.
 */
export function boundLine(line: string, max = MAX_LOG_LINE_BYTES): string {
  // UTF-16 units * 3 bounds the UTF-8 bytes: most lines are decided without counting.
  if (line.length * 3 <= max || Buffer.byteLength(line) <= max) return line;
  const bytes = Buffer.byteLength(line);
  const newline = line.endsWith("\n") ? "\n" : "";
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    parsed = undefined;
  }
  const note = { bytes, limit: max };
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return JSON.stringify({ level: "error", msg: "log line too long to write", logTruncated: { ...note, start: truncate(line, FIELD_BUDGET) } }) + newline;
  }
  const cut: Record<string, unknown> = {};
  const fields: string[] = [];
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    const json = JSON.stringify(value) ?? "";
    if (ESSENTIAL.has(key) && json.length <= FIELD_BUDGET) cut[key] = value;
    else if (json.length <= FIELD_BUDGET / 4) cut[key] = value;
    else {
      cut[key] = truncate(typeof value === "string" ? value : json, FIELD_BUDGET);
      fields.push(key);
    }
  }
  cut["logTruncated"] = { ...note, fields };
  const shorter = JSON.stringify(cut) + newline;
  if (Buffer.byteLength(shorter) <= max) return shorter;
  // Many mid-sized fields: keep only what identifies the line.
  const minimal: Record<string, unknown> = {};
  for (const key of ["level", "time", "service", "msg"]) {
    const value = (parsed as Record<string, unknown>)[key];
    if (value !== undefined) minimal[key] = typeof value === "string" ? truncate(value, FIELD_BUDGET) : value;
  }
  minimal["logTruncated"] = { ...note, fields: Object.keys(parsed as Record<string, unknown>).slice(0, 50).map((k) => truncate(k, 64)) };
  return JSON.stringify(minimal) + newline;
}
