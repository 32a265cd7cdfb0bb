// The audit's verdicts, from what IAM answered: one row per check (pair, expected, got, as designed or not) and, for
// each row that is not as designed, the fix. Pure: main.ts does the calls.
import type { Expectation } from "./matrix.js";
import { statementAt, statementsIn } from "./statements.js";

export interface FetchedPolicy {
  name: string;
  kind: "managed" | "inline";
  /** The policy's text, URL-decoded, as IAM stores it. */
  text: string;
  versionId?: string;
}

/** One simulated (action, resource): IAM's decision and why. */
export interface SimulatedPair {
  action: string;
  resource: string;
  decision: string;
  matched: { policyId?: string; policyType?: string; start?: { Line?: number; Column?: number } }[];
  missingContext: string[];
}

export interface Row {
  section: string;
  pair: string;
  expected: string;
  got: string;
  ok: boolean;
  /** For a row that is not as designed: what is wrong and how to fix it. */
  fix?: string;
}

const SHIPPED = "scripts/iam/DocumentProcessorS3Access.json";

const pairKey = (action: string, resource: string): string => `${action} ${resource}`;

/** "statement "Sid" (lines 20-27) of managed policy X", or as much of it as can be found. */
function describeSource(match: SimulatedPair["matched"][number], policies: readonly FetchedPolicy[]): string {
  const policy = policies.find((p) => p.name === match.policyId);
  if (!policy) return `policy ${match.policyId ?? "(unnamed)"}${match.policyType ? ` (${match.policyType})` : ""}`;
  const where = `${policy.kind} policy ${policy.name}`;
  const statement = statementAt(policy.text, match.start);
  if (!statement) return where;
  const name = statement.sid === undefined ? `statement ${statement.index + 1}` : `statement "${statement.sid}"`;
  return `${name} (lines ${statement.startLine}-${statement.endLine}: ${statement.actions.join(", ")} on ${statement.resources.join(", ")}) of ${where}`;
}

function fixFor(expectation: Expectation, got: SimulatedPair | undefined, policies: readonly FetchedPolicy[]): string {
  const { action } = expectation;
  if (!got) return "IAM returned no result for it: rerun the audit; if it persists, simulate it by hand";
  if (got.missingContext.length > 0) {
    return (
      `depends on condition keys the simulation was not given (${got.missingContext.join(", ")}), so it is proven ` +
      `neither way: keep Conditions out of the role's policies, or check this pair by hand`
    );
  }
  if (expectation.expected === "denied") {
    const sources = got.matched.map((m) => describeSource(m, policies));
    const by = sources.length > 0 ? sources.join("; and by ") : "a policy IAM did not name";
    return `allowed by ${by}: remove ${action} from it (${SHIPPED} as shipped, redeployed with scripts/deploy.sh, has no such grant)`;
  }
  if (got.decision === "explicitDeny") {
    return `needed by the daemon and denied explicitly by ${got.matched.map((m) => describeSource(m, policies)).join("; ")}: remove that Deny`;
  }
  return `needed by the daemon and not granted: attach ${SHIPPED} as shipped (scripts/deploy.sh does)`;
}

function gotText(got: SimulatedPair | undefined): string {
  if (got === undefined) return "no answer";
  if (got.missingContext.length > 0) return "undecided";
  if (got.decision === "allowed") return "allowed";
  return got.decision === "explicitDeny" ? "denied (explicit)" : "denied";
}

/** One row per expectation. */
export function judgeMatrix(expectations: readonly Expectation[], simulated: readonly SimulatedPair[], policies: readonly FetchedPolicy[]): Row[] {
  const byPair = new Map(simulated.map((s) => [pairKey(s.action, s.resource), s]));
  return expectations.map((expectation) => {
    const got = byPair.get(pairKey(expectation.action, expectation.resource));
    const decided = got !== undefined && got.missingContext.length === 0;
    const ok = decided && (expectation.expected === "allowed" ? got.decision === "allowed" : got.decision !== "allowed");
    return {
      section: expectation.claim,
      pair: `${expectation.action} ${expectation.resource}`,
      expected: expectation.expected,
      got: gotText(got),
      ok,
      ...(!ok && { fix: fixFor(expectation, got, policies) }),
    };
  });
}

const asList = (value: unknown): unknown[] => (Array.isArray(value) ? value : value === undefined ? [] : [value]);

/** The trust policy: only the EC2 service may assume the role, and only with sts:AssumeRole. */
export function judgeTrust(text: string): Row[] {
  const section = "trust policy: only EC2 may assume the role";
  let doc: { Statement?: unknown };
  try {
    doc = JSON.parse(text) as { Statement?: unknown };
  } catch {
    return [{ section, pair: "trust policy", expected: "JSON", got: "unreadable", ok: false, fix: "the trust policy is not JSON: replace it with scripts/iam/ec2-trust-policy.json" }];
  }
  const allows = asList(doc.Statement).filter((s): s is Record<string, unknown> => typeof s === "object" && s !== null && (s as Record<string, unknown>)["Effect"] === "Allow");
  const principals = new Set<string>();
  const actions = new Set<string>();
  for (const statement of allows) {
    if ("NotPrincipal" in statement) principals.add(`NotPrincipal ${JSON.stringify(statement["NotPrincipal"])}`);
    if ("NotAction" in statement) actions.add(`NotAction ${JSON.stringify(statement["NotAction"])}`);
    const principal = statement["Principal"];
    if (principal === "*") principals.add("*");
    else if (typeof principal === "object" && principal !== null) {
      for (const [kind, values] of Object.entries(principal)) for (const value of asList(values)) principals.add(`${kind}:${String(value)}`);
    }
    for (const action of asList(statement["Action"])) actions.add(String(action));
  }
  const got = (set: Set<string>): string => (set.size === 0 ? "nobody" : [...set].sort().join(", "));
  const principalOk = principals.size === 1 && principals.has("Service:ec2.amazonaws.com");
  const actionOk = actions.size === 1 && actions.has("sts:AssumeRole");
  const fix = "replace the trust policy with scripts/iam/ec2-trust-policy.json (aws iam update-assume-role-policy --role-name <role> --policy-document file://scripts/iam/ec2-trust-policy.json)";
  return [
    {
      section,
      pair: "trust: who may assume the role",
      expected: "Service:ec2.amazonaws.com only",
      got: got(principals),
      ok: principalOk,
      ...(!principalOk && {
        fix:
          principals.size === 0
            ? `no Allow statement lets ec2.amazonaws.com assume the role (instances would get no credentials): ${fix}`
            : `the trust policy lets ${[...principals].filter((p) => p !== "Service:ec2.amazonaws.com").join(", ") || "nobody"} assume the role${principals.has("Service:ec2.amazonaws.com") ? " besides EC2" : " and not EC2"}: ${fix}`,
      }),
    },
    {
      section,
      pair: "trust: what they may do",
      expected: "sts:AssumeRole only",
      got: got(actions),
      ok: actionOk,
      ...(!actionOk && { fix: `the trust policy allows ${got(actions)}, not sts:AssumeRole alone: ${fix}` }),
    },
  ];
}

/** Exactly the one managed policy provisioning attaches, and no inline policy. */
export function judgeAttachments(policyName: string, policies: readonly FetchedPolicy[]): Row[] {
  const section = "the role's policies: only what provisioning attaches";
  const managed = policies.filter((p) => p.kind === "managed").map((p) => p.name);
  const inline = policies.filter((p) => p.kind === "inline").map((p) => p.name);
  const managedOk = managed.length === 1 && managed[0] === policyName;
  return [
    {
      section,
      pair: "attached managed policies",
      expected: policyName,
      got: managed.join(", ") || "none",
      ok: managedOk,
      ...(!managedOk && {
        fix: managed.includes(policyName)
          ? `detach ${managed.filter((m) => m !== policyName).join(", ")} (aws iam detach-role-policy): every permission the role needs is in ${policyName}`
          : `attach ${policyName} (${SHIPPED}; scripts/deploy.sh does)${managed.length > 0 ? ` and detach ${managed.join(", ")}` : ""}`,
      }),
    },
    {
      section,
      pair: "inline policies",
      expected: "none",
      got: inline.join(", ") || "none",
      ok: inline.length === 0,
      ...(inline.length > 0 && { fix: `delete the inline policies ${inline.join(", ")} (aws iam delete-role-policy)` }),
    },
  ];
}

type Statement = Record<string, unknown>;

/** A statement in a comparable form: single strings as one-item lists, keys sorted. */
function normalized(statement: Statement): string {
  const entries = Object.entries(statement)
    .map(([key, value]) => [key, ["Action", "NotAction", "Resource", "NotResource"].includes(key) ? [...asList(value)].map(String).sort() : value] as const)
    .sort(([a], [b]) => a.localeCompare(b));
  return JSON.stringify(Object.fromEntries(entries));
}

/** The attached policy's document against the shipped file rendered for these buckets and queue. */
export function judgeDocument(policyName: string, deployed: FetchedPolicy | undefined, shipped: { Statement: unknown }): Row {
  const section = "the role's policies: only what provisioning attaches";
  const pair = `${policyName} document`;
  const expected = "as shipped";
  if (!deployed) return { section, pair, expected, got: "not attached", ok: false, fix: `attach ${policyName} (scripts/deploy.sh does)` };
  let statements: Statement[];
  try {
    statements = asList((JSON.parse(deployed.text) as { Statement?: unknown }).Statement) as Statement[];
  } catch {
    return { section, pair, expected, got: "unreadable", ok: false, fix: `${policyName}'s document is not JSON: redeploy ${SHIPPED}` };
  }
  const want = (asList(shipped.Statement) as Statement[]).map(normalized);
  const have = statements.map(normalized);
  const views = statementsIn(deployed.text);
  const extra = have.flatMap((n, i) => (want.includes(n) ? [] : [views[i]?.sid ?? `statement ${i + 1}`]));
  const sidOf = (statement: Statement, i: number): string => (typeof statement["Sid"] === "string" ? statement["Sid"] : `statement ${i + 1}`);
  const missing = want.flatMap((n, i) => (have.includes(n) ? [] : [sidOf(asList(shipped.Statement)[i] as Statement, i)]));
  const ok = extra.length === 0 && missing.length === 0;
  const what = [extra.length > 0 && `not in the shipped file: ${extra.join(", ")}`, missing.length > 0 && `shipped but absent or changed: ${missing.join(", ")}`]
    .filter(Boolean)
    .join("; ");
  return {
    section,
    pair,
    expected,
    got: ok ? `as shipped (${deployed.versionId ?? "?"})` : "differs",
    ok,
    ...(!ok && { fix: `version ${deployed.versionId ?? "?"} differs from ${SHIPPED}: ${what}; redeploy it (scripts/deploy.sh) or restore that document as the default version` }),
  };
}
