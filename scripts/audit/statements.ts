// Which statement of a policy the simulator meant: MatchedStatements name a policy and a position in its text, so
// the audit finds the statement object around (or nearest to) that position and can name its Sid and lines. Pure;
// independent of the local stand-in on purpose (the stand-in is what tests this).

export interface PolicyStatementView {
  index: number;
  sid?: string;
  effect?: string;
  actions: string[];
  resources: string[];
  startLine: number;
  endLine: number;
  /** Character offsets of the statement's "{" and "}" in the text. */
  start: number;
  end: number;
}

interface Span {
  start: number;
  end: number;
}

/** Offsets of the objects in the top-level "Statement" (an array of objects, or one object). */
function statementSpans(text: string): Span[] {
  const spans: Span[] = [];
  let depth = 0;
  let key: string | undefined;
  let statementDepth: number | undefined;
  let open: number | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (depth === 1) key = JSON.parse(text.slice(i, j + 1)) as string;
      i = j;
    } else if (c === ":" && depth === 1 && key === "Statement") {
      statementDepth = text.slice(i + 1).trimStart().startsWith("[") ? 2 : 1;
    } else if (c === "{" || c === "[") {
      depth += 1;
      if (c === "{" && statementDepth !== undefined && depth === statementDepth + 1) open = i;
    } else if (c === "}" || c === "]") {
      if (c === "}" && open !== undefined && statementDepth !== undefined && depth === statementDepth + 1) {
        spans.push({ start: open, end: i });
        open = undefined;
        if (statementDepth === 1) statementDepth = undefined;
      } else if (c === "]" && statementDepth === 2 && depth === 2) {
        statementDepth = undefined;
      }
      depth -= 1;
    }
  }
  return spans;
}

const text = (value: unknown): string => (typeof value === "string" ? value : JSON.stringify(value));
const list = (value: unknown): string[] => (Array.isArray(value) ? value.map(text) : value === undefined ? [] : [text(value)]);

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (text[i] === "\n") line += 1;
  return line;
}

/** The statements of a policy's text, with what each grants and where it is. */
export function statementsIn(text: string): PolicyStatementView[] {
  return statementSpans(text).map((span, index) => {
    const parsed = JSON.parse(text.slice(span.start, span.end + 1)) as Record<string, unknown>;
    return {
      index,
      ...(typeof parsed["Sid"] === "string" && parsed["Sid"] !== "" && { sid: parsed["Sid"] }),
      ...(typeof parsed["Effect"] === "string" && { effect: parsed["Effect"] }),
      actions: parsed["Action"] !== undefined ? list(parsed["Action"]) : list(parsed["NotAction"]).map((a) => `NotAction ${a}`),
      resources: parsed["Resource"] !== undefined ? list(parsed["Resource"]) : list(parsed["NotResource"]).map((r) => `NotResource ${r}`),
      startLine: lineOf(text, span.start),
      endLine: lineOf(text, span.end),
      start: span.start,
      end: span.end,
    };
  });
}

function offsetOf(text: string, line: number, column: number): number {
  let offset = 0;
  for (let l = 1; l < line; l++) {
    const next = text.indexOf("\n", offset);
    if (next === -1) return text.length;
    offset = next + 1;
  }
  return offset + Math.max(0, column - 1);
}

/**
 * The statement a simulator position points at: the one containing it, else the nearest (AWS's columns are off by
 * one from a 1-based count in its own examples, so an exact match is not relied on).
 */
export function statementAt(text: string, position: { Line?: number; Column?: number } | undefined): PolicyStatementView | undefined {
  const statements = statementsIn(text);
  if (position?.Line === undefined) return statements.length === 1 ? statements[0] : undefined;
  const at = offsetOf(text, position.Line, position.Column ?? 1);
  const distance = (s: PolicyStatementView): number => (at >= s.start && at <= s.end + 1 ? 0 : Math.min(Math.abs(at - s.start), Math.abs(at - s.end)));
  return [...statements].sort((a, b) => distance(a) - distance(b))[0];
}
