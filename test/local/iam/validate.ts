// Structural validation of policy documents. Anything outside the subset the evaluator understands is refused
// (thrown), never skipped: a silently ignored Condition or misspelt key would make the stand-in more permissive
// than AWS, and the whole point of the stand-in is to fail where AWS would.
import type { PolicyDocument, PolicyKind, PolicyStatement } from "./types.js";

export const POLICY_VERSION = "2012-10-17";

const DOCUMENT_KEYS = new Set(["Version", "Id", "Statement"]);
const STATEMENT_KEYS = new Set(["Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition", "Principal"]);
// "service:ActionName" with wildcards only in the action part; "*" alone means every action.
const ACTION_PATTERN = /^[a-z0-9-]+:[A-Za-z0-9*?]+$/i;
const SID_PATTERN = /^[A-Za-z0-9]*$/;

export class PolicyValidationError extends Error {
  override name = "PolicyValidationError";
}

function fail(where: string, message: string): never {
  throw new PolicyValidationError(`${where}: ${message}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringList(where: string, value: unknown): string[] {
  const list: unknown[] = Array.isArray(value) ? value : [value];
  if (list.length === 0) fail(where, "must not be an empty list");
  return list.map((item) => {
    if (typeof item !== "string" || item === "") fail(where, "must be a non-empty string or a list of them");
    return item;
  });
}

function checkActions(where: string, value: unknown): void {
  for (const action of stringList(where, value)) {
    if (action !== "*" && !ACTION_PATTERN.test(action)) fail(where, `invalid action ${JSON.stringify(action)}`);
  }
}

function checkResources(where: string, value: unknown): void {
  for (const resource of stringList(where, value)) {
    if (resource === "*") continue;
    if (resource.includes("${")) fail(where, `policy variables are not supported: ${JSON.stringify(resource)}`);
    const segments = resource.split(":");
    const service = segments[2];
    // AWS refuses a wildcard in the service segment; an ARN without one names nothing.
    if (segments[0] !== "arn" || segments.length < 3 || !service || /[*?]/.test(service)) {
      fail(where, `invalid resource ${JSON.stringify(resource)} (expected "*" or an ARN)`);
    }
  }
}

function checkStatement(where: string, statement: unknown, kind: PolicyKind): asserts statement is PolicyStatement {
  if (!isRecord(statement)) fail(where, "a statement must be an object");
  for (const key of Object.keys(statement)) {
    if (!STATEMENT_KEYS.has(key)) fail(where, `unsupported key ${JSON.stringify(key)}`);
  }
  if (statement["Sid"] !== undefined) {
    if (typeof statement["Sid"] !== "string" || !SID_PATTERN.test(statement["Sid"])) {
      fail(where, "Sid must be a string of letters and digits");
    }
  }
  if (statement["Effect"] !== "Allow" && statement["Effect"] !== "Deny") {
    fail(where, `Effect must be "Allow" or "Deny", got ${JSON.stringify(statement["Effect"])}`);
  }
  if ("Condition" in statement) {
    // The evaluator has no request context, so it cannot decide a condition: refuse rather than ignore it.
    fail(where, "Condition is not supported by this evaluator (refused so it cannot be ignored)");
  }

  const hasAction = "Action" in statement;
  if (hasAction === "NotAction" in statement) fail(where, "needs exactly one of Action or NotAction");
  checkActions(`${where}.${hasAction ? "Action" : "NotAction"}`, hasAction ? statement["Action"] : statement["NotAction"]);

  const hasResource = "Resource" in statement;
  const hasNotResource = "NotResource" in statement;
  if (kind === "identity") {
    if ("Principal" in statement) fail(where, "an identity policy must not name a Principal");
    if (hasResource === hasNotResource) fail(where, "needs exactly one of Resource or NotResource");
    checkResources(
      `${where}.${hasResource ? "Resource" : "NotResource"}`,
      hasResource ? statement["Resource"] : statement["NotResource"],
    );
  } else {
    if (!isRecord(statement["Principal"]) && statement["Principal"] !== "*") {
      fail(where, "a trust policy statement needs a Principal");
    }
    if (hasResource || hasNotResource) fail(where, "a trust policy statement must not have Resource or NotResource");
  }
}

/** Checks that `doc` is a policy of the supported subset and returns it typed; throws PolicyValidationError. */
export function validatePolicy(doc: unknown, kind: PolicyKind = "identity"): PolicyDocument {
  if (!isRecord(doc)) fail("policy", "must be a JSON object");
  for (const key of Object.keys(doc)) {
    if (!DOCUMENT_KEYS.has(key)) fail("policy", `unsupported key ${JSON.stringify(key)}`);
  }
  if (doc["Version"] !== POLICY_VERSION) {
    fail("policy", `Version must be "${POLICY_VERSION}", got ${JSON.stringify(doc["Version"])}`);
  }
  const raw = doc["Statement"];
  const statements: unknown[] = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  if (statements.length === 0) fail("policy", "Statement must hold at least one statement");
  const sids = new Set<string>();
  statements.forEach((statement, index) => {
    checkStatement(`Statement[${index}]`, statement, kind);
    if (statement.Sid !== undefined && statement.Sid !== "") {
      // AWS refuses duplicate Sids within one policy.
      if (sids.has(statement.Sid)) fail(`Statement[${index}]`, `duplicate Sid ${JSON.stringify(statement.Sid)}`);
      sids.add(statement.Sid);
    }
  });
  return doc as unknown as PolicyDocument;
}

// Documents validatePolicy passed, then deep-copied and frozen by sealPolicy, with the kind they passed as: nothing can
// change them afterwards, so evaluate() need not validate them on every request.
const sealed = new WeakMap<object, PolicyKind>();

function deepFreeze(value: unknown): void {
  if (typeof value !== "object" || value === null) return;
  for (const child of Object.values(value)) deepFreeze(child);
  Object.freeze(value);
}

/** validatePolicy on a frozen deep copy of `doc`, which is returned (what IAM stores: later edits of `doc` do not reach it). */
export function sealPolicy(doc: unknown, kind: PolicyKind = "identity"): PolicyDocument {
  // The original first, so what cannot be cloned is refused as invalid rather than failing the copy.
  const copy = validatePolicy(structuredClone(validatePolicy(doc, kind)), kind);
  deepFreeze(copy);
  sealed.set(copy, kind);
  return copy;
}

/** `doc` as validatePolicy returns it, checked once for a sealed document and on every call otherwise. */
export function validated(doc: unknown, kind: PolicyKind = "identity"): PolicyDocument {
  return typeof doc === "object" && doc !== null && sealed.get(doc) === kind ? (doc as PolicyDocument) : validatePolicy(doc, kind);
}

export function statementsOf(doc: PolicyDocument): PolicyStatement[] {
  return Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement];
}
