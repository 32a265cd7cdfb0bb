// The IAM calls an operator's audit makes (query protocol, version 2010-05-08), answered from the stand-in's
// IamDirectory: GetRole, ListAttachedRolePolicies, GetPolicy, GetPolicyVersion, ListRolePolicies, GetRolePolicy and
// SimulatePrincipalPolicy. Documents go out URL-encoded, as IAM sends them. Any other IAM action is authorized (so a
// role session gets its AccessDenied) and then refused as not implemented.
import type { IamDirectory, RoleEntry, StoredDocument } from "../iam/directory.js";
import { simulate, type SimulatedStatement } from "../iam/simulate.js";
import { AwsError, IAM_NS } from "./errors.js";
import { escapeXml } from "./xml.js";

export interface IamCheck {
  action: string;
  resource: string;
}

const ACTION_NAME = /^[a-z0-9-]+:[A-Za-z0-9]+$/i;
// Parameters the stand-in does not model: refused rather than ignored, so a caller never gets a simulation that
// silently left out a resource policy, a boundary or a context it asked for.
const UNSUPPORTED_SIMULATION_INPUTS = [
  "PolicyInputList",
  "PermissionsBoundaryPolicyInputList",
  "ResourcePolicy",
  "ResourceOwner",
  "CallerArn",
  "ContextEntries",
  "ResourceHandlingOption",
];

const roleArn = (accountId: string, name: string): string => `arn:aws:iam::${accountId}:role/${name}`;

function required(params: ReadonlyMap<string, string>, name: string): string | AwsError {
  const value = params.get(name);
  if (value === undefined || value === "") {
    return new AwsError("ValidationError", `1 validation error detected: Value null at '${name[0]!.toLowerCase()}${name.slice(1)}' failed to satisfy constraint: Member must not be null`, 400);
  }
  return value;
}

/** `Name.member.1`, `Name.member.2`, … in index order. */
export function memberList(params: ReadonlyMap<string, string>, name: string): string[] {
  const prefix = `${name}.member.`;
  return [...params]
    .filter(([key]) => key.startsWith(prefix))
    .map(([key, value]) => [Number(key.slice(prefix.length)), value] as const)
    .filter(([index]) => Number.isInteger(index) && index >= 1)
    .sort((a, b) => a[0] - b[0])
    .map(([, value]) => value);
}

/** The IAM check a request needs (IAM authorizes the role or policy it names), or the error IAM would answer. */
export function iamAuthorization(operation: string, params: ReadonlyMap<string, string>, accountId: string): IamCheck | AwsError {
  if (!/^[A-Za-z]{1,64}$/.test(operation)) {
    return new AwsError("InvalidAction", `Could not find operation ${operation} for version 2010-05-08`, 400);
  }
  const action = `iam:${operation}`;
  if (operation === "SimulatePrincipalPolicy") {
    const source = required(params, "PolicySourceArn");
    return source instanceof AwsError ? source : { action, resource: source };
  }
  const policyArn = params.get("PolicyArn");
  if (operation === "GetPolicy" || operation === "GetPolicyVersion") {
    const arn = required(params, "PolicyArn");
    return arn instanceof AwsError ? arn : { action, resource: arn };
  }
  const roleName = params.get("RoleName");
  const userName = params.get("UserName");
  if (roleName) return { action, resource: roleArn(accountId, roleName) };
  if (userName) return { action, resource: `arn:aws:iam::${accountId}:user/${userName}` };
  return { action, resource: policyArn ?? "*" };
}

const isoSeconds = (date: Date): string => date.toISOString().replace(/\.\d{3}Z$/, "Z");
const el = (name: string, value: string | number | boolean): string => `<${name}>${escapeXml(String(value))}</${name}>`;
const encoded = (doc: StoredDocument): string => encodeURIComponent(doc.text);

function response(operation: string, requestId: string, result: string): string {
  return (
    `<${operation}Response xmlns="${IAM_NS}"><${operation}Result>${result}</${operation}Result>` +
    `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${operation}Response>`
  );
}

/** One page of `items` (MaxItems, default 100 as in IAM; Marker is the next index, opaque to callers). */
function page<T>(items: readonly T[], params: ReadonlyMap<string, string>): { items: T[]; truncation: string } | AwsError {
  const max = params.has("MaxItems") ? Number(params.get("MaxItems")) : 100;
  if (!Number.isInteger(max) || max < 1 || max > 1000) {
    return new AwsError("ValidationError", "1 validation error detected: Value at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000", 400);
  }
  const marker = params.get("Marker");
  const start = marker === undefined ? 0 : Number(Buffer.from(marker, "base64url").toString("utf8"));
  if (!Number.isInteger(start) || start < 0 || start > items.length) return new AwsError("InvalidInput", "Invalid Marker.", 400);
  const end = Math.min(items.length, start + max);
  const truncated = end < items.length;
  return {
    items: items.slice(start, end),
    truncation: el("IsTruncated", truncated) + (truncated ? el("Marker", Buffer.from(String(end)).toString("base64url")) : ""),
  };
}

function noSuchRole(name: string): AwsError {
  return new AwsError("NoSuchEntity", `The role with name ${name} cannot be found.`, 404);
}

function roleXml(role: RoleEntry): string {
  return (
    `<Role>${el("Path", role.path)}${el("RoleName", role.name)}${el("RoleId", role.roleId)}${el("Arn", role.arn)}` +
    `${el("CreateDate", isoSeconds(role.createDate))}${el("AssumeRolePolicyDocument", encoded(role.trust))}` +
    `${el("MaxSessionDuration", 3600)}<RoleLastUsed/></Role>`
  );
}

function statementXml(s: SimulatedStatement): string {
  return (
    `<member>${el("SourcePolicyId", s.SourcePolicyId)}${el("SourcePolicyType", s.SourcePolicyType)}` +
    `<StartPosition>${el("Line", s.StartPosition.Line)}${el("Column", s.StartPosition.Column)}</StartPosition>` +
    `<EndPosition>${el("Line", s.EndPosition.Line)}${el("Column", s.EndPosition.Column)}</EndPosition></member>`
  );
}

const members = (values: readonly string[], render: (v: string) => string = (v) => `<member>${escapeXml(v)}</member>`): string =>
  values.map(render).join("");

/** The answer to an authorized IAM request: the response XML, or the error IAM would send. */
export function answerIam(
  directory: IamDirectory,
  accountId: string,
  operation: string,
  params: ReadonlyMap<string, string>,
  requestId: string,
): string | AwsError {
  const roleNamed = (): RoleEntry | AwsError => {
    const name = required(params, "RoleName");
    if (name instanceof AwsError) return name;
    return directory.role(accountId, name) ?? noSuchRole(name);
  };
  switch (operation) {
    case "GetRole": {
      const role = roleNamed();
      return role instanceof AwsError ? role : response(operation, requestId, roleXml(role));
    }
    case "ListAttachedRolePolicies": {
      const role = roleNamed();
      if (role instanceof AwsError) return role;
      const listed = page(role.attached, params);
      if (listed instanceof AwsError) return listed;
      const policies = listed.items.map((arn) => `<member>${el("PolicyName", directory.policy(arn)!.name)}${el("PolicyArn", arn)}</member>`);
      return response(operation, requestId, `<AttachedPolicies>${policies.join("")}</AttachedPolicies>${listed.truncation}`);
    }
    case "ListRolePolicies": {
      const role = roleNamed();
      if (role instanceof AwsError) return role;
      const listed = page([...role.inline.keys()], params);
      if (listed instanceof AwsError) return listed;
      return response(operation, requestId, `<PolicyNames>${members(listed.items)}</PolicyNames>${listed.truncation}`);
    }
    case "GetRolePolicy": {
      const role = roleNamed();
      if (role instanceof AwsError) return role;
      const name = required(params, "PolicyName");
      if (name instanceof AwsError) return name;
      const doc = role.inline.get(name);
      if (!doc) return new AwsError("NoSuchEntity", `The role policy with name ${name} cannot be found.`, 404);
      return response(operation, requestId, el("RoleName", role.name) + el("PolicyName", name) + el("PolicyDocument", encoded(doc)));
    }
    case "GetPolicy": {
      const arn = params.get("PolicyArn") ?? "";
      const policy = directory.policy(arn);
      if (!policy) return new AwsError("NoSuchEntity", `Policy ${arn} does not exist or is not attachable.`, 404);
      return response(
        operation,
        requestId,
        `<Policy>${el("PolicyName", policy.name)}${el("PolicyId", policy.policyId)}${el("Arn", policy.arn)}${el("Path", policy.path)}` +
          `${el("DefaultVersionId", policy.versionId)}${el("IsAttachable", true)}` +
          `${el("CreateDate", isoSeconds(policy.createDate))}${el("UpdateDate", isoSeconds(policy.createDate))}</Policy>`,
      );
    }
    case "GetPolicyVersion": {
      const arn = params.get("PolicyArn") ?? "";
      const version = required(params, "VersionId");
      if (version instanceof AwsError) return version;
      const policy = directory.policy(arn);
      if (!policy || policy.versionId !== version) {
        return new AwsError("NoSuchEntity", `Policy ${arn} version ${version} does not exist or is not attachable.`, 404);
      }
      return response(
        operation,
        requestId,
        `<PolicyVersion>${el("Document", encoded(policy))}${el("VersionId", policy.versionId)}${el("IsDefaultVersion", true)}` +
          `${el("CreateDate", isoSeconds(policy.createDate))}</PolicyVersion>`,
      );
    }
    case "SimulatePrincipalPolicy":
      return simulatePrincipalPolicy(directory, params, requestId);
    default:
      return new AwsError("InvalidAction", `The local stand-in does not implement ${operation}.`, 400);
  }
}

function simulatePrincipalPolicy(directory: IamDirectory, params: ReadonlyMap<string, string>, requestId: string): string | AwsError {
  const unsupported = UNSUPPORTED_SIMULATION_INPUTS.find((name) => [...params.keys()].some((k) => k === name || k.startsWith(`${name}.`)));
  if (unsupported) return new AwsError("InvalidInput", `The local stand-in does not simulate with ${unsupported}.`, 400);
  const sourceArn = params.get("PolicySourceArn") ?? "";
  const role = directory.roleByArn(sourceArn);
  if (!role) return new AwsError("NoSuchEntity", `The role or user ${sourceArn} cannot be found (the stand-in simulates roles only).`, 404);
  const actions = memberList(params, "ActionNames");
  if (actions.length === 0) return new AwsError("ValidationError", "1 validation error detected: Value null at 'actionNames' failed to satisfy constraint: Member must not be null", 400);
  const invalid = actions.find((a) => !ACTION_NAME.test(a));
  if (invalid !== undefined) return new AwsError("InvalidInput", `Invalid action name: ${invalid}.`, 400);
  const resources = memberList(params, "ResourceArns");
  const results = page(simulate(directory.sourcesOf(role), actions, resources), params);
  if (results instanceof AwsError) return results;
  const xml = results.items.map((r) => {
    const specific = r.ResourceSpecificResults.map(
      (s) =>
        `<member>${el("EvalResourceName", s.EvalResourceName)}${el("EvalResourceDecision", s.EvalResourceDecision)}` +
        `<MatchedStatements>${s.MatchedStatements.map(statementXml).join("")}</MatchedStatements>` +
        `<MissingContextValues>${members(s.MissingContextValues)}</MissingContextValues></member>`,
    );
    return (
      `<member>${el("EvalActionName", r.EvalActionName)}${el("EvalResourceName", r.EvalResourceName)}${el("EvalDecision", r.EvalDecision)}` +
      `<MatchedStatements>${r.MatchedStatements.map(statementXml).join("")}</MatchedStatements>` +
      `<MissingContextValues>${members(r.MissingContextValues)}</MissingContextValues>` +
      `<ResourceSpecificResults>${specific.join("")}</ResourceSpecificResults></member>`
    );
  });
  return response("SimulatePrincipalPolicy", requestId, `<EvaluationResults>${xml.join("")}</EvaluationResults>${results.truncation}`);
}
