// IAM identity-policy evaluation for the subset the stand-in needs: explicit Deny wins, then any Allow, else the
// implicit deny. Our own small implementation (the npm evaluator that does this is AGPL).
import type { AuthorizationRequest, Decision, PolicyDocument, PolicyStatement } from "./types.js";
import { statementsOf, validated } from "./validate.js";

const patternCache = new Map<string, RegExp>();

function cached(key: string, build: () => RegExp): RegExp {
  let regex = patternCache.get(key);
  if (!regex) {
    regex = build();
    patternCache.set(key, regex);
  }
  return regex;
}

function escapeRegex(char: string): string {
  return /[\\^$.*+?()[\]{}|/-]/.test(char) ? `\\${char}` : char;
}

/** Action patterns: `*` any run, `?` one character, case-insensitive (AWS treats action names so). */
function actionRegex(pattern: string): RegExp {
  return cached(`a:${pattern}`, () => {
    const body = [...pattern].map((c) => (c === "*" ? ".*" : c === "?" ? "." : escapeRegex(c))).join("");
    return new RegExp(`^${body}$`, "is");
  });
}

/**
 * Resource patterns, case-sensitive. AWS matches wildcards within one ARN segment (the parts between the first five
 * colons), except that a `*` ending a segment may run on across colons; the resource part after the fifth colon is
 * one segment that may itself contain colons.
 */
function resourceRegex(pattern: string): RegExp {
  return cached(`r:${pattern}`, () => {
    let colons = 0;
    let body = "";
    const chars = [...pattern];
    chars.forEach((c, i) => {
      const inResourcePart = colons >= 5;
      if (c === ":") colons += 1;
      if (c === "*") {
        const endsSegment = i === chars.length - 1 || chars[i + 1] === ":";
        body += inResourcePart || endsSegment ? ".*" : "[^:]*";
      } else if (c === "?") {
        body += inResourcePart ? "." : "[^:]";
      } else {
        body += escapeRegex(c);
      }
    });
    return new RegExp(`^${body}$`, "s");
  });
}

function asList(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function actionMatches(statement: PolicyStatement, action: string): boolean {
  if (statement.Action !== undefined) return asList(statement.Action).some((p) => actionRegex(p).test(action));
  return !asList(statement.NotAction).some((p) => actionRegex(p).test(action));
}

function resourceMatches(statement: PolicyStatement, resource: string): boolean {
  if (statement.Resource !== undefined) return asList(statement.Resource).some((p) => resourceRegex(p).test(resource));
  return !asList(statement.NotResource).some((p) => resourceRegex(p).test(resource));
}

function withSid<T extends { effect: "allow" | "explicit-deny" }>(decision: T, sid: string | undefined): T {
  return sid ? { ...decision, sid } : decision;
}

/** Whether `statement` applies to `request` (its Effect aside). */
export function statementMatches(statement: PolicyStatement, request: AuthorizationRequest): boolean {
  return actionMatches(statement, request.action) && resourceMatches(statement, request.resource);
}

function checkRequest(request: AuthorizationRequest): void {
  if (typeof request.action !== "string" || !/^[a-z0-9-]+:[A-Za-z0-9]+$/i.test(request.action)) {
    throw new TypeError(`evaluate: invalid action ${JSON.stringify(request.action)}`);
  }
  if (typeof request.resource !== "string" || request.resource === "") {
    throw new TypeError(`evaluate: invalid resource ${JSON.stringify(request.resource)}`);
  }
}

/**
 * Decides `request` against a principal's identity policies. Every document is validated on each call, so a policy
 * built in code is held to the same rules as one loaded from scripts/iam/; a sealed one (IAM's stored documents,
 * frozen once validated) was checked when it was sealed.
 */
export function evaluate(policies: readonly PolicyDocument[], request: AuthorizationRequest): Decision {
  checkRequest(request);
  let allow: Decision | undefined;
  for (const policy of policies) {
    for (const statement of statementsOf(validated(policy, "identity"))) {
      if (!statementMatches(statement, request)) continue;
      // A matching Deny decides at once: nothing later can override it.
      if (statement.Effect === "Deny") return withSid({ effect: "explicit-deny" as const }, statement.Sid);
      allow ??= withSid({ effect: "allow" as const }, statement.Sid);
    }
  }
  return allow ?? { effect: "implicit-deny" };
}

/** A statement that decided a request: which policy (index in the list given) and which statement in it. */
export interface MatchedStatement {
  policy: number;
  statement: number;
}

/**
 * evaluate() with its reasons, as IAM's policy simulator reports them: for an explicit deny only the denying
 * statement, for an allow every allowing statement, for an implicit deny none.
 */
export function explain(
  policies: readonly PolicyDocument[],
  request: AuthorizationRequest,
): { effect: Decision["effect"]; matched: MatchedStatement[] } {
  checkRequest(request);
  const allows: MatchedStatement[] = [];
  for (const [p, policy] of policies.entries()) {
    for (const [s, statement] of statementsOf(validated(policy, "identity")).entries()) {
      if (!statementMatches(statement, request)) continue;
      if (statement.Effect === "Deny") return { effect: "explicit-deny", matched: [{ policy: p, statement: s }] };
      allows.push({ policy: p, statement: s });
    }
  }
  return allows.length > 0 ? { effect: "allow", matched: allows } : { effect: "implicit-deny", matched: [] };
}
