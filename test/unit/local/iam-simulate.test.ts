// The stand-in's IAM service for the operator audit: statement positions, explain(), SimulatePrincipalPolicy over a
// role's policies, the directory, and the query-protocol answers (documents URL-encoded, errors, pagination).
import { describe, expect, it } from "vitest";
import { answerIam, iamAuthorization, memberList } from "../../local/gateway/iam-service.js";
import { AwsError } from "../../local/gateway/errors.js";
import {
  IamDirectory,
  explain,
  loadPolicyFile,
  repoPath,
  simulate,
  statementPositions,
  type PolicyDocument,
} from "../../local/iam/index.js";

const ACCOUNT = "123456789012";
const SOURCE = "src-bucket";
const OUTPUT = "out-bucket";
const QUEUE = `arn:aws:sqs:us-east-1:${ACCOUNT}:events`;
const shipped = loadPolicyFile(repoPath("scripts", "iam", "DocumentProcessorS3Access.json"), { SourceBucket: SOURCE, OutputBucket: OUTPUT, QueueArn: QUEUE });
const trust = loadPolicyFile(repoPath("scripts", "iam", "ec2-trust-policy.json"), {}, "trust");

function directory(): { iam: IamDirectory; roleArn: string } {
  const iam = new IamDirectory();
  const role = { name: "R", accountId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:role/R`, roleId: "AROAEXAMPLEEXAMPLE123" };
  iam.putRole(role, trust);
  iam.attachRolePolicy(ACCOUNT, "R", iam.createPolicy(ACCOUNT, "DocumentProcessorS3Access", shipped).arn);
  return { iam, roleArn: role.arn };
}

const params = (entries: Record<string, string>): Map<string, string> => new Map(Object.entries(entries));

describe("statementPositions", () => {
  it("reproduces AWS's own example: a one-line document's statement at Column 38 to 167", () => {
    // From the AWS CLI's simulate-custom-policy example: StartPosition {1, 38}, EndPosition {1, 167}.
    const text =
      '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*",' +
      '"Condition":{"DateGreaterThan":{"aws:CurrentTime":"2018-08-16T12:00:00Z"}}}}';
    expect(statementPositions(text)).toEqual([{ start: { Line: 1, Column: 38 }, end: { Line: 1, Column: 167 } }]);
  });

  it("finds each statement of an array across lines, ignoring braces inside strings and nested objects", () => {
    const text = JSON.stringify(
      { Version: "2012-10-17", Statement: [{ Sid: "A", Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::b/{x}*" }, { Sid: "B", Effect: "Allow", Action: "*", Resource: "*" }] },
      null,
      2,
    );
    const spans = statementPositions(text);
    expect(spans.map((s) => [s.start.Line, s.end.Line])).toEqual([
      [4, 9],
      [10, 15],
    ]);
    expect(spans[0]!.start.Column).toBe(6);
  });
});

describe("explain", () => {
  const doc = (...Statement: PolicyDocument["Statement"][]): PolicyDocument => ({ Version: "2012-10-17", Statement: Statement.flat() });
  const request = { action: "s3:GetObject", resource: "arn:aws:s3:::b/k" };

  it("an allow names every allowing statement; an explicit deny only the denying one; an implicit deny none", () => {
    const a = doc({ Effect: "Allow", Action: "s3:Get*", Resource: "*" }, { Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::b/*" });
    expect(explain([a], request)).toEqual({ effect: "allow", matched: [{ policy: 0, statement: 0 }, { policy: 0, statement: 1 }] });
    const d = doc({ Effect: "Deny", Action: "s3:*", Resource: "*" });
    expect(explain([a, d], request)).toEqual({ effect: "explicit-deny", matched: [{ policy: 1, statement: 0 }] });
    expect(explain([a], { action: "s3:PutObject", resource: "arn:aws:s3:::b/k" })).toEqual({ effect: "implicit-deny", matched: [] });
  });
});

describe("simulate", () => {
  it("one result per action and resource, with the deciding statement's policy and position", () => {
    const { iam, roleArn } = directory();
    const role = iam.roleByArn(roleArn)!;
    const results = simulate(iam.sourcesOf(role), ["s3:GetObject", "s3:DeleteObject"], [`arn:aws:s3:::${SOURCE}/k`, `arn:aws:s3:::${OUTPUT}/k`]);
    expect(results.map((r) => [r.EvalActionName, r.EvalResourceName, r.EvalDecision])).toEqual([
      ["s3:GetObject", `arn:aws:s3:::${SOURCE}/k`, "allowed"],
      ["s3:GetObject", `arn:aws:s3:::${OUTPUT}/k`, "implicitDeny"],
      ["s3:DeleteObject", `arn:aws:s3:::${SOURCE}/k`, "implicitDeny"],
      ["s3:DeleteObject", `arn:aws:s3:::${OUTPUT}/k`, "implicitDeny"],
    ]);
    expect(results[0]!.MatchedStatements).toEqual([
      { SourcePolicyId: "DocumentProcessorS3Access", SourcePolicyType: "user-managed", StartPosition: { Line: 4, Column: 6 }, EndPosition: { Line: 9, Column: 6 } },
    ]);
    expect(results[0]!.ResourceSpecificResults).toEqual([
      expect.objectContaining({ EvalResourceName: `arn:aws:s3:::${SOURCE}/k`, EvalResourceDecision: "allowed" }),
    ]);
  });

  it("without resources: '*', and no resource-specific results", () => {
    const { iam, roleArn } = directory();
    const [result] = simulate(iam.sourcesOf(iam.roleByArn(roleArn)!), ["ec2:RunInstances"], []);
    expect(result).toMatchObject({ EvalResourceName: "*", EvalDecision: "implicitDeny", ResourceSpecificResults: [] });
  });

  it("inline policies count too, named by their policy name and type role", () => {
    const { iam, roleArn } = directory();
    iam.putRolePolicy(ACCOUNT, "R", "Extra", { Version: "2012-10-17", Statement: [{ Sid: "X", Effect: "Allow", Action: "ec2:*", Resource: "*" }] });
    const role = iam.roleByArn(roleArn)!;
    const [result] = simulate(iam.sourcesOf(role), ["ec2:RunInstances"], []);
    expect(result!.MatchedStatements.map((s) => [s.SourcePolicyId, s.SourcePolicyType])).toEqual([["Extra", "role"]]);
    expect(iam.enforcedPolicies(ACCOUNT, "R")).toHaveLength(2);
    expect(iam.enforcedPolicies(ACCOUNT, "Unknown")).toBeUndefined();
  });
});

describe("the IAM query API for the audit", () => {
  const answer = (iam: IamDirectory, op: string, p: Record<string, string>) => answerIam(iam, ACCOUNT, op, params({ Action: op, ...p }), "REQ");

  it("authorizes each call on the role or policy it names", () => {
    expect(iamAuthorization("GetRole", params({ RoleName: "R" }), ACCOUNT)).toEqual({ action: "iam:GetRole", resource: `arn:aws:iam::${ACCOUNT}:role/R` });
    expect(iamAuthorization("GetPolicyVersion", params({ PolicyArn: "arn:aws:iam::1:policy/P" }), ACCOUNT)).toEqual({
      action: "iam:GetPolicyVersion",
      resource: "arn:aws:iam::1:policy/P",
    });
    expect(iamAuthorization("SimulatePrincipalPolicy", params({ PolicySourceArn: "arn:aws:iam::1:role/R" }), ACCOUNT)).toEqual({
      action: "iam:SimulatePrincipalPolicy",
      resource: "arn:aws:iam::1:role/R",
    });
    expect(iamAuthorization("CreateUser", params({ UserName: "u" }), ACCOUNT)).toEqual({ action: "iam:CreateUser", resource: `arn:aws:iam::${ACCOUNT}:user/u` });
    expect(iamAuthorization("GetPolicy", params({}), ACCOUNT)).toBeInstanceOf(AwsError);
    expect(iamAuthorization("Get Role", params({}), ACCOUNT)).toMatchObject({ code: "InvalidAction" });
  });

  it("GetRole sends the trust policy URL-encoded, as IAM does; an unknown role is NoSuchEntity (404)", () => {
    const { iam } = directory();
    const xml = answer(iam, "GetRole", { RoleName: "R" }) as string;
    const encoded = /<AssumeRolePolicyDocument>([^<]*)</.exec(xml)![1]!;
    expect(encoded).not.toContain("{");
    expect(JSON.parse(decodeURIComponent(encoded))).toEqual(trust);
    expect(xml).toMatch(/^<GetRoleResponse xmlns="https:\/\/iam\.amazonaws\.com\/doc\/2010-05-08\/"><GetRoleResult><Role>/);
    expect(answer(iam, "GetRole", { RoleName: "Nope" })).toMatchObject({ code: "NoSuchEntity", status: 404 });
  });

  it("lists page with MaxItems and an opaque Marker", () => {
    const { iam } = directory();
    iam.attachRolePolicy(ACCOUNT, "R", iam.createPolicy(ACCOUNT, "Second", shipped).arn);
    const first = answer(iam, "ListAttachedRolePolicies", { RoleName: "R", MaxItems: "1" }) as string;
    expect(first).toContain("<PolicyName>DocumentProcessorS3Access</PolicyName>");
    expect(first).toContain("<IsTruncated>true</IsTruncated>");
    const marker = /<Marker>([^<]*)</.exec(first)![1]!;
    const second = answer(iam, "ListAttachedRolePolicies", { RoleName: "R", MaxItems: "1", Marker: marker }) as string;
    expect(second).toContain("<PolicyName>Second</PolicyName>");
    expect(second).toContain("<IsTruncated>false</IsTruncated>");
    expect(answer(iam, "ListAttachedRolePolicies", { RoleName: "R", Marker: "bm9wZQ" })).toMatchObject({ code: "InvalidInput" });
  });

  it("GetPolicyVersion sends the document URL-encoded; another version is NoSuchEntity", () => {
    const { iam } = directory();
    const arn = `arn:aws:iam::${ACCOUNT}:policy/DocumentProcessorS3Access`;
    const xml = answer(iam, "GetPolicyVersion", { PolicyArn: arn, VersionId: "v1" }) as string;
    expect(JSON.parse(decodeURIComponent(/<Document>([^<]*)</.exec(xml)![1]!))).toEqual(shipped);
    expect(answer(iam, "GetPolicyVersion", { PolicyArn: arn, VersionId: "v2" })).toMatchObject({ code: "NoSuchEntity" });
  });

  it("SimulatePrincipalPolicy refuses what it does not model instead of ignoring it", () => {
    const { iam, roleArn } = directory();
    const base = { PolicySourceArn: roleArn, "ActionNames.member.1": "s3:GetObject" };
    expect(answer(iam, "SimulatePrincipalPolicy", { ...base, ResourcePolicy: "{}" })).toMatchObject({ code: "InvalidInput" });
    expect(answer(iam, "SimulatePrincipalPolicy", { ...base, "ContextEntries.member.1.ContextKeyName": "aws:SourceIp" })).toMatchObject({
      code: "InvalidInput",
    });
    expect(answer(iam, "SimulatePrincipalPolicy", { ...base, "ActionNames.member.1": "s3:Get*" })).toMatchObject({ code: "InvalidInput" });
    expect(answer(iam, "SimulatePrincipalPolicy", { PolicySourceArn: roleArn })).toMatchObject({ code: "ValidationError" });
    expect(answer(iam, "SimulatePrincipalPolicy", { ...base, PolicySourceArn: `arn:aws:iam::${ACCOUNT}:role/Nope` })).toMatchObject({
      code: "NoSuchEntity",
    });
    const xml = answer(iam, "SimulatePrincipalPolicy", { ...base, "ResourceArns.member.1": `arn:aws:s3:::${SOURCE}/k` }) as string;
    expect(xml).toContain("<EvalDecision>allowed</EvalDecision>");
    expect(xml).toContain("<SourcePolicyType>user-managed</SourcePolicyType>");
  });

  it("reads query lists in index order", () => {
    expect(memberList(params({ "A.member.2": "b", "A.member.10": "c", "A.member.1": "a", "B.member.1": "x" }), "A")).toEqual(["a", "b", "c"]);
  });
});
