// Where each statement of a policy document sits in its text, as IAM's policy simulator reports it in
// MatchedStatements (StartPosition/EndPosition). AWS's own example (`aws iam simulate-custom-policy` on a one-line
// document) gives Column 38 for a statement whose "{" is the 37th character and 167 for a "}" that is the 166th:
// both one past the 1-based column, which is what this reproduces.

export interface TextPosition {
  Line: number;
  Column: number;
}

export interface StatementSpan {
  start: TextPosition;
  end: TextPosition;
}

/** Spans of the statements of the top-level "Statement" (an array of objects, or one object), in order. */
export function statementPositions(text: string): StatementSpan[] {
  const spans: StatementSpan[] = [];
  let line = 1;
  let column = 0;
  let depth = 0;
  // Set once the top-level key "Statement" is read; its value's depth (1 for one object, 2 inside an array).
  let statementDepth: number | undefined;
  let lastKey: string | undefined;
  let open: TextPosition | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "\n") {
      line += 1;
      column = 0;
      continue;
    }
    column += 1;
    if (c === '"') {
      // A string: read to its closing quote; at depth 1 it may be the key "Statement".
      let j = i + 1;
      let value = "";
      while (j < text.length && text[j] !== '"') {
        if (text[j] === "\\") j += 1;
        value += text[j] ?? "";
        j += 1;
      }
      column += j - i;
      i = j;
      if (depth === 1) lastKey = value;
      continue;
    }
    if (c === ":" && depth === 1 && lastKey === "Statement") {
      const next = text.slice(i + 1).trimStart()[0];
      statementDepth = next === "[" ? 2 : 1;
      continue;
    }
    if (c === "{" || c === "[") {
      depth += 1;
      if (c === "{" && statementDepth !== undefined && depth === statementDepth + 1 && open === undefined) {
        open = { Line: line, Column: column + 1 };
      }
      continue;
    }
    if (c === "}" || c === "]") {
      if (c === "}" && open !== undefined && depth === (statementDepth ?? 0) + 1) {
        spans.push({ start: open, end: { Line: line, Column: column + 1 } });
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
