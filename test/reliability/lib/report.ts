// What a scenario hands back to the runner: its figures (printed on its one line), the failed checks, and detail
// lines (duplicate explanations, diagnostics) printed indented under it. Pure formatting, no I/O.
import {
  CAUSE_TEXT,
  summarizeCauses,
  type DocumentAudit,
  type DuplicateExplanation,
} from "./accounting.js";

export type Mode = "quick" | "full";

/** How many per-key duplicate lines a scenario prints before summarising the rest. */
const MAX_DUPLICATE_LINES = 12;
const MAX_LISTED_KEYS = 10;

export class Report {
  readonly figures = new Map<string, string>();
  readonly failures: string[] = [];
  readonly details: string[] = [];

  figure(name: string, value: number | string): void {
    this.figures.set(name, typeof value === "number" && !Number.isInteger(value) ? value.toFixed(1) : String(value));
  }

  /** Records `failure` unless `ok`; returns `ok`. */
  check(ok: boolean, failure: string): boolean {
    if (!ok) this.failures.push(failure);
    return ok;
  }

  fail(failure: string): void {
    this.failures.push(failure);
  }

  detail(text: string): void {
    this.details.push(text);
  }

  /** The document figures every scenario prints, the checks that nothing was lost or corrupted, and why duplicates happened. */
  documents(audit: DocumentAudit, duplicates: readonly DuplicateExplanation[], opts: { allProcessed: boolean }): void {
    this.figure("uploaded", audit.uploaded);
    this.figure("processed", audit.correct);
    this.figure("lost", audit.lost.length);
    this.figure("duplicates", audit.duplicates);
    this.check(audit.lost.length === 0, `${audit.lost.length} document(s) lost (no output, no message): ${listKeys(audit.lost)}`);
    this.check(audit.wrong.length === 0, `${audit.wrong.length} output(s) do not match their source: ${listKeys(audit.wrong)}`);
    if (opts.allProcessed) {
      this.check(
        audit.waiting.length === 0,
        `${audit.waiting.length} document(s) not processed, their message still queued or in the DLQ: ${listKeys(audit.waiting)}`,
      );
    }
    if (duplicates.length === 0) return;
    const causes = summarizeCauses(duplicates);
    this.detail(
      `duplicates (expected: delivery is at least once and the output write is idempotent): ${causes
        .map(([cause, n]) => `${n} ${cause}`)
        .join(", ")}`,
    );
    for (const [cause] of causes) this.detail(`  ${cause}: ${CAUSE_TEXT[cause]}`);
    for (const d of duplicates.slice(0, MAX_DUPLICATE_LINES)) {
      this.detail(`  ${JSON.stringify(d.key)} processed ${d.count}x: ${d.causes.join(", ")}`);
    }
    if (duplicates.length > MAX_DUPLICATE_LINES) this.detail(`  … and ${duplicates.length - MAX_DUPLICATE_LINES} more key(s)`);
  }
}

export function listKeys(keys: readonly string[]): string {
  const shown = keys.slice(0, MAX_LISTED_KEYS).map((k) => JSON.stringify(k));
  return keys.length > MAX_LISTED_KEYS ? `${shown.join(", ")} … (+${keys.length - MAX_LISTED_KEYS})` : shown.join(", ");
}

/** The scenario's one line: verdict, name, figures, wall time. */
export function scenarioLine(name: string, report: Report, wallMs: number): string {
  const verdict = report.failures.length === 0 ? "PASS" : "FAIL";
  const figures = [...report.figures].map(([k, v]) => `${k}=${v}`);
  return [`${verdict} ${name.padEnd(12)}`, ...figures, `wall=${(wallMs / 1000).toFixed(1)}s`].join(" ");
}

/** The last line of a run, alone on its line. */
export function summaryLine(passed: number, failed: number): string {
  return `${passed} passed, ${failed} failed`;
}
