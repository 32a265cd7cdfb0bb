// The bench's results: the daemon's targets (to reach, not asserted) and the printed tables (whole run, then steady
// state after a warm-up, then the t2.micro budget line). Pure functions.
import { formatT2MicroLine, ratio, type SteadyFigures } from "./steady.js";

export interface ContenderResult {
  name: string;
  /** Distinct documents finished. */
  documents: number;
  /** "document" lines beyond the first per key (redeliveries). */
  duplicates: number;
  failures: number;
  /** First ReceiveMessage to the last finished document (the shell loop: its whole run). */
  seconds: number;
  docsPerSecond: number;
  mbPerSecond: number;
  /** CPU (utime+stime) from READY to the last document, per document. */
  cpuMsPerDoc: number | null;
  /** CPU of the process over its whole life until the last document (startup included). */
  cpuMsTotal: number | null;
  /** Requests signed by the role, from the first receive to exit, per document. */
  requestsPerDoc: number;
  requestsByAction: Record<string, number>;
  peakRssMb: number | null;
  /** Process start to its "ready" line. */
  readyMs: number | null;
  pinned: boolean;
  exit: number | string | null;
  /** The same after the warm-up documents (test/bench/steady.ts); null for the shell loop and too short runs. */
  steady: SteadyFigures | null;
  /** With --rounds > 1: each round's steady documents/s and CPU ms/document (whole-run where none), in round order. */
  rounds?: { docsPerSecond: number; cpuMsPerDoc: number | null }[];
}

export interface TargetCheck {
  target: string;
  value: number | null;
  limit: number;
  met: boolean | null;
  /** How far off, in the figure's unit and relative to the limit; "" when met. */
  missedBy: string;
}

const DAEMON = "daemon";
/** The daemon running test/bench/sha256-processor.mjs: the baselines' exact job, so only the framework differs. */
export const DAEMON_SHA256 = "daemon (sha256 only)";
/** The same job on another build (--compare): an A/B in one run. */
export const DAEMON_SHA256_COMPARED = "daemon (sha256, compared build)";
/** The same on `transport: "sdk"`: how far the SDK clients alone get. */
export const DAEMON_SHA256_SDK = "daemon (sha256, sdk)";
export const RAW = "raw SDK loop";
export const LEAN_LOOP = "lean loop";
export const AWS_LITE_LOOP = "aws-lite loop";
export const SQS_CONSUMER = "sqs-consumer";

function check(target: string, value: number | null, limit: number, atMost: boolean, unit: string): TargetCheck {
  if (value === null || !Number.isFinite(value)) return { target, value: null, limit, met: null, missedBy: "not measured" };
  const met = atMost ? value <= limit : value >= limit;
  const gap = Math.abs(value - limit);
  return {
    target,
    value,
    limit,
    met,
    missedBy: met ? "" : `${round(gap)}${unit} (${Math.round((gap / limit) * 100)}%)`,
  };
}

const quotient = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a === null || a === undefined || b === null || b === undefined || b === 0 ? null : a / b;

/** The daemon's targets (issue 15), checked against this run's figures: steady state first, then the whole run. */
export function checkTargets(results: readonly ContenderResult[]): TargetCheck[] {
  const by = (name: string) => results.find((r) => r.name === name);
  const daemon = by(DAEMON);
  const raw = by(RAW);
  const sameJob = by(DAEMON_SHA256);
  const peer = by(SQS_CONSUMER);
  return [
    check("steady: raw loop's job >= 2.0x its docs/s", quotient(sameJob?.steady?.docsPerSecond, raw?.steady?.docsPerSecond), 2, false, "x"),
    check("steady: raw loop's job <= 0.5x its CPU/doc", quotient(sameJob?.steady?.cpuMsPerDoc, raw?.steady?.cpuMsPerDoc), 0.5, true, "x"),
    check("steady: daemon >= 1.5x sqs-consumer", quotient(daemon?.steady?.docsPerSecond, peer?.steady?.docsPerSecond), 1.5, false, "x"),
    check("whole run: raw loop's job >= 1.5x raw", quotient(sameJob?.docsPerSecond, raw?.docsPerSecond), 1.5, false, "x"),
    check("whole run: raw loop's job >= 1.5x sqs-consumer", quotient(sameJob?.docsPerSecond, peer?.docsPerSecond), 1.5, false, "x"),
    check("<= 2.2 requests/document", daemon?.requestsPerDoc ?? null, 2.2, true, " req"),
    check("peak RSS <= 96 MB", daemon?.peakRssMb ?? null, 96, true, " MB"),
    check("READY <= 0.8 s", daemon?.readyMs ?? null, 800, true, " ms"),
  ];
}

/** The figure a round is ranked by: steady documents/s, or the whole run's where there are no steady figures. */
function pace(r: ContenderResult): number {
  return r.steady?.docsPerSecond ?? r.docsPerSecond;
}

/**
 * One result per contender from several interleaved rounds: the round whose pace is the median (its figures stay
 * together as one consistent row), with the highest peak RSS of all rounds (the target is a ceiling) and every
 * round's pace. The machine is a shared VM whose speed drifts by 5-25% over a minute: contenders that run at
 * different moments of one pass are compared at different speeds; the median of rounds taken in turns is not.
 * Contenders keep their first-seen order; a contender missing from some rounds is combined over those it ran in.
 */
export function medianOfRounds(rounds: readonly (readonly ContenderResult[])[]): ContenderResult[] {
  const byName = new Map<string, ContenderResult[]>();
  for (const results of rounds) for (const r of results) byName.set(r.name, [...(byName.get(r.name) ?? []), r]);
  return [...byName.values()].map((runs) => {
    if (runs.length === 1) return runs[0]!;
    // Lower median for an even count: the slower of the middle two, never flattering.
    const median = [...runs].sort((a, b) => pace(a) - pace(b))[Math.floor((runs.length - 1) / 2)]!;
    const rss = runs.map((r) => r.peakRssMb).filter((v): v is number => v !== null);
    const perRound = runs.map((r) => ({ docsPerSecond: pace(r), cpuMsPerDoc: r.steady !== null ? r.steady.cpuMsPerDoc : r.cpuMsPerDoc }));
    return { ...median, peakRssMb: rss.length === 0 ? null : Math.max(...rss), rounds: perRound };
  });
}

export function round(n: number): string {
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2);
}
export const fmt = (n: number | null | undefined, suffix = ""): string =>
  n === null || n === undefined || !Number.isFinite(n) ? "n/a" : `${round(n)}${suffix}`;

/** The p-th percentile of ascending `sorted` values (nearest rank); null when there are none. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? null;
}

/** Rows as aligned columns: the first left-aligned, the rest right-aligned. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ")).join("\n");
}

/** The table (one row per contender, ratios of each to every other queue consumer), then the targets. */
export function formatReport(results: readonly ContenderResult[], targets: readonly TargetCheck[]): string {
  const header = ["", "docs", "s", "docs/s", "MB/s", ...results.map((r) => `x ${r.name}`), "CPU ms/doc", "req/doc", "peak RSS MB", "READY ms", "dup"];
  const rows = results.map((r) => [
    r.name,
    String(r.documents),
    fmt(r.seconds),
    fmt(r.docsPerSecond),
    fmt(r.mbPerSecond),
    ...results.map((o) => fmt(r.docsPerSecond / o.docsPerSecond, "x")),
    fmt(r.cpuMsPerDoc),
    fmt(r.requestsPerDoc),
    fmt(r.peakRssMb),
    fmt(r.readyMs),
    String(r.duplicates),
  ]);
  const breakdown = results.map(
    (r) => `  ${r.name}: ${Object.entries(r.requestsByAction).map(([a, n]) => `${a}=${(n / r.documents).toFixed(2)}`).join(" ")}`,
  );
  const withRounds = results.filter((r) => r.rounds !== undefined && r.rounds.length > 1);
  const roundLines =
    withRounds.length === 0
      ? []
      : [
          `Rounds (contenders run in turns; each row above is the median round, peak RSS the highest of all), docs/s (CPU ms/doc) per round:`,
          ...withRounds.map((r) => `  ${r.name}: ${r.rounds!.map((n) => `${fmt(n.docsPerSecond)} (${fmt(n.cpuMsPerDoc)})`).join(" / ")}`),
          "",
        ];
  const steady = results.flatMap((r) => (r.steady === null ? [] : [{ name: r.name, ...r.steady }]));
  const steadyHeader = ["steady state", "warm-up", "docs", "s", "docs/s", ...steady.map((r) => `x ${r.name}`), "CPU ms/doc", "stand-in busy", "stand-in ms/doc"];
  const steadyRows = steady.map((r) => [
    r.name,
    String(r.warmupDocuments),
    String(r.documents),
    fmt(r.seconds),
    fmt(r.docsPerSecond),
    ...steady.map((o) => fmt(ratio(r.docsPerSecond, o.docsPerSecond), "x")),
    fmt(r.cpuMsPerDoc),
    r.standInBusy === undefined || r.standInBusy === null ? "n/a" : `${Math.round(r.standInBusy * 100)}%`,
    fmt(r.standInCpuMsPerDoc ?? null),
  ]);
  const without = results.filter((r) => r.steady === null).map((r) => r.name);
  const steadyLines =
    steady.length === 0
      ? ["steady state: no contender finished enough documents past the warm-up"]
      : [
          "Steady state (from the warm-up's last document to the last one; CPU read from /proc at both):",
          table([steadyHeader, ...steadyRows]),
          ...(without.length > 0 ? [`  (no steady figures: ${without.join(", ")})`] : []),
          "",
          formatT2MicroLine(steady),
        ];
  const targetLines = targets.map((t) => {
    const mark = t.met === null ? "?" : t.met ? "✓" : "✗";
    const value = t.value === null ? "n/a" : round(t.value);
    return `  ${mark} ${t.target.padEnd(48)} measured ${value}${t.met === false ? `, missed by ${t.missedBy}` : t.met === null ? " (not measured)" : ""}`;
  });
  return [
    table([header, ...rows]),
    "",
    ...steadyLines,
    "",
    ...roundLines,
    "IAM checks per document, by action (role sessions, first receive to exit):",
    ...breakdown,
    "",
    "daemon targets (to reach, not asserted):",
    ...targetLines,
    "",
  ].join("\n");
}
