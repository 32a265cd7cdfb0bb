// Used versus granted: from the IAM decisions the gateway made for the role's sessions, which (action, resource)
// grants of a policy were never exercised, and which requests the policy does not cover. Pure.
import { evaluate, statementMatches } from "./evaluate.js";
import type { PolicyDocument, PolicyStatement } from "./types.js";
import { statementsOf } from "./validate.js";

/** The fields of a gateway decision this needs (DecisionEntry from gateway/server.ts has them). */
export interface DecisionLike {
  operation: string;
  action: string;
  resource: string;
  decision: string;
}

/** One action pattern on one resource pattern of an Allow statement. */
export interface Grant {
  sid?: string;
  action: string;
  resource: string;
}

/** A request the policy was expected to deny: `check`'s probes of the denied side. */
export interface ExpectedDenial {
  why: string;
  matches: (decision: DecisionLike) => boolean;
}

export interface UsageReport {
  grants: Grant[];
  /** Distinct allowed (action, resource) pairs, sorted. */
  used: string[];
  /** Grants no allowed request fell under: the policy grants more than the daemon uses. */
  unused: Grant[];
  /** Requests the policy does not allow and nothing expected to be denied: the daemon needs more than is granted. */
  ungranted: string[];
  /** Probes of the denied side that were allowed (then `check` reports them ✗): never counted as use. */
  probesAllowed: string[];
}

// Needs no permission: it works even under an explicit deny (the gateway records it as allowed).
const NO_PERMISSION_NEEDED = new Set(["sts:GetCallerIdentity"]);

/**
 * Checks S3 makes on its own, not requests the caller made: a GetObject/HeadObject of a missing key is answered 404 only
 * with s3:ListBucket on the bucket, 403 without. Whether it is allowed changes only the error code.
 */
export function isIncidental(d: DecisionLike): boolean {
  return d.action === "s3:ListBucket" && (d.operation === "GetObject" || d.operation === "HeadObject");
}

/**
 * `doc-processor check`'s deliberate probes of what must be denied (README "Commands"; src/service/denied-probes.ts).
 * Matched by the probes' own keys (…/.doc-processor-check/…), so a request of the daemon's never hides behind one; the
 * output bucket is recognised as "not the source" (the probe object lives under outputPrefix).
 */
export function checkProbes(sourceBucket: string): ExpectedDenial[] {
  const inSource = (resource: string) => resource.startsWith(`arn:aws:s3:::${sourceBucket}/`) || resource === `arn:aws:s3:::${sourceBucket}`;
  return [
    {
      why: "check: an If-Match-guarded write to the source must be denied",
      matches: (d) => d.action === "s3:PutObject" && d.resource.startsWith(`arn:aws:s3:::${sourceBucket}/.doc-processor-check/`),
    },
    {
      why: "check: reading the output (one byte of check's own probe object) must be denied",
      matches: (d) => d.operation === "GetObject" && d.action === "s3:GetObject" && !inSource(d.resource) && d.resource.includes("/.doc-processor-check/"),
    },
    {
      why: "check: deleting a never-written key in either bucket must be denied",
      matches: (d) => d.operation === "DeleteObject" && d.action === "s3:DeleteObject" && d.resource.includes("/.doc-processor-check/never-"),
    },
    {
      // The daemon never lists; ListObjectsV2 (max-keys 0) is checked as s3:ListBucket on the bucket.
      why: "check: listing either bucket must be denied",
      matches: (d) => d.operation === "ListObjectsV2" && d.action === "s3:ListBucket",
    },
    { why: "check: another service (sts:GetAccessKeyInfo) must be denied", matches: (d) => d.action === "sts:GetAccessKeyInfo" },
  ];
}

const asList = (value: string | string[] | undefined): string[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

/** Every (action, resource) an Allow statement grants; NotAction/NotResource grants are kept as written ("NotAction …"). */
export function grantsOf(policy: PolicyDocument): Grant[] {
  return statementsOf(policy)
    .filter((s) => s.Effect === "Allow")
    .flatMap((s) => {
      const actions = s.Action !== undefined ? asList(s.Action) : asList(s.NotAction).map((a) => `NotAction ${a}`);
      const resources = s.Resource !== undefined ? asList(s.Resource) : asList(s.NotResource).map((r) => `NotResource ${r}`);
      return actions.flatMap((action) => resources.map((resource) => ({ ...(s.Sid !== undefined && { sid: s.Sid }), action, resource })));
    });
}

function covers(grant: Grant, d: DecisionLike): boolean {
  // A NotAction/NotResource grant covers an open-ended set: it can never be shown to be needed as written.
  if (grant.action.startsWith("NotAction ") || grant.resource.startsWith("NotResource ")) return false;
  const statement: PolicyStatement = { Effect: "Allow", Action: grant.action, Resource: grant.resource };
  return statementMatches(statement, { action: d.action, resource: d.resource });
}

export function compareUsage(policy: PolicyDocument, decisions: readonly DecisionLike[], expectedDenials: readonly ExpectedDenial[]): UsageReport {
  const requests = decisions.filter((d) => d.action !== "" && !NO_PERMISSION_NEEDED.has(d.action) && !isIncidental(d));
  const isProbe = (d: DecisionLike): boolean => expectedDenials.some((e) => e.matches(d));
  const allowed = requests.filter((d) => d.decision === "allow" && !isProbe(d));
  const grants = grantsOf(policy);
  const ungranted = requests.filter((d) => !isProbe(d) && evaluate([policy], { action: d.action, resource: d.resource }).effect !== "allow");
  const pair = (d: DecisionLike): string => `${d.action} ${d.resource}`;
  const distinct = (list: DecisionLike[]): string[] => [...new Set(list.map(pair))].sort();
  return {
    grants,
    used: distinct(allowed),
    unused: grants.filter((g) => !allowed.some((d) => covers(g, d))),
    ungranted: distinct(ungranted),
    probesAllowed: distinct(requests.filter((d) => isProbe(d) && d.decision === "allow")),
  };
}

/** "s3:ListBucket on arn:aws:s3:::b (statement Extra)" */
export function describeGrant(grant: Grant): string {
  return `${grant.action} on ${grant.resource}${grant.sid === undefined ? "" : ` (statement ${grant.sid})`}`;
}
