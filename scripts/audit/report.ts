// The audit's printout: a table of every check (pair, expected, got, ✓/✗) grouped by claim, then "N of N as
// designed" or what is not, each with its fix. Pure.
import type { Row } from "./judge.js";

function pad(text: string, width: number): string {
  return text + " ".repeat(Math.max(0, width - [...text].length));
}

export function formatReport(rows: readonly Row[]): string[] {
  const pairWidth = Math.max(4, ...rows.map((r) => [...r.pair].length));
  const expectedWidth = Math.max(8, ...rows.map((r) => [...r.expected].length));
  const gotWidth = Math.max(3, ...rows.map((r) => [...r.got].length));
  const lines = [`  ${pad("pair", pairWidth)}  ${pad("expected", expectedWidth)}  ${pad("got", gotWidth)}  ✓/✗`];
  let section: string | undefined;
  for (const row of rows) {
    if (row.section !== section) {
      section = row.section;
      lines.push(section);
    }
    lines.push(`  ${pad(row.pair, pairWidth)}  ${pad(row.expected, expectedWidth)}  ${pad(row.got, gotWidth)}  ${row.ok ? "✓" : "✗"}`);
  }
  const failed = rows.filter((r) => !r.ok);
  lines.push("");
  if (failed.length === 0) {
    lines.push(`${rows.length} of ${rows.length} as designed`);
  } else {
    lines.push(`${rows.length - failed.length} of ${rows.length} as designed; ${failed.length} not:`);
    for (const row of failed) lines.push(`✗ ${row.pair}: ${row.fix ?? "not as designed"}`);
  }
  return lines;
}
