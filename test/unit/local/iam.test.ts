import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  evaluate,
  loadPolicyFile,
  PolicyValidationError,
  renderPolicy,
  repoPath,
  sealPolicy,
  validatePolicy,
  type Decision,
  type PolicyDocument,
} from "../../local/iam/index.js";

const ACCOUNT = "123456789012";
const SOURCE = `cloudboxio-lab-source-${ACCOUNT}`;
const OUTPUT = `cloudboxio-lab-output-${ACCOUNT}`;
const QUEUE = `arn:aws:sqs:us-east-1:${ACCOUNT}:doc-processor-notifications`;
const VARS = { SourceBucket: SOURCE, OutputBucket: OUTPUT, QueueArn: QUEUE };

// The role's policy exactly as provisioning deploys it, so these rows also guard the shipped file.
const rolePolicy = loadPolicyFile(repoPath("scripts", "iam", "DocumentProcessorS3Access.json"), VARS);

const allow = (sid?: string): Decision => (sid ? { effect: "allow", sid } : { effect: "allow" });
const deny = (sid?: string): Decision => (sid ? { effect: "explicit-deny", sid } : { effect: "explicit-deny" });
const implicit: Decision = { effect: "implicit-deny" };

function policy(...Statement: PolicyDocument["Statement"][]): PolicyDocument {
  return { Version: "2012-10-17", Statement: Statement.flat() };
}
const admin = policy({ Sid: "Admin", Effect: "Allow", Action: "*", Resource: "*" });

type Row = [name: string, policies: PolicyDocument[], action: string, resource: string, expected: Decision];

const rows: Row[] = [
  // The seed's expectations, against the shipped policy.
  ["seed: read from source", [rolePolicy], "s3:GetObject", `arn:aws:s3:::${SOURCE}/x.txt`, allow("ReadFromSource")],
  ["seed: write to output", [rolePolicy], "s3:PutObject", `arn:aws:s3:::${OUTPUT}/result.txt`, allow("WriteToOutput")],
  ["seed: write to source denied", [rolePolicy], "s3:PutObject", `arn:aws:s3:::${SOURCE}/attempt.txt`, implicit],
  ["seed: list source denied", [rolePolicy], "s3:ListBucket", `arn:aws:s3:::${SOURCE}`, implicit],
  ["seed: read output denied", [rolePolicy], "s3:GetObject", `arn:aws:s3:::${OUTPUT}/x.txt`, implicit],
  ["seed: delete in source denied", [rolePolicy], "s3:DeleteObject", `arn:aws:s3:::${SOURCE}/x.txt`, implicit],
  ["seed: delete in output denied", [rolePolicy], "s3:DeleteObject", `arn:aws:s3:::${OUTPUT}/x.txt`, implicit],
  ["seed: ec2 denied", [rolePolicy], "ec2:DescribeInstances", "*", implicit],
  ["queue: receive", [rolePolicy], "sqs:ReceiveMessage", QUEUE, allow("ConsumeNotifications")],
  ["queue: delete", [rolePolicy], "sqs:DeleteMessage", QUEUE, allow("ConsumeNotifications")],
  ["queue: change visibility", [rolePolicy], "sqs:ChangeMessageVisibility", QUEUE, allow("ConsumeNotifications")],
  ["queue: receive from another queue", [rolePolicy], "sqs:ReceiveMessage", `${QUEUE}-dlq`, implicit],
  ["queue: send denied", [rolePolicy], "sqs:SendMessage", QUEUE, implicit],
  ["queue: attributes denied", [rolePolicy], "sqs:GetQueueAttributes", QUEUE, implicit],
  ["no permission needed is not granted", [rolePolicy], "sts:GetCallerIdentity", "*", implicit],
  ["action case: lower", [rolePolicy], "s3:getobject", `arn:aws:s3:::${SOURCE}/x.txt`, allow("ReadFromSource")],
  ["action case: upper", [rolePolicy], "S3:GETOBJECT", `arn:aws:s3:::${SOURCE}/x.txt`, allow("ReadFromSource")],
  ["action is not a prefix match", [rolePolicy], "s3:GetObjectVersion", `arn:aws:s3:::${SOURCE}/x.txt`, implicit],
  ["bucket ARN is not an object ARN", [rolePolicy], "s3:GetObject", `arn:aws:s3:::${SOURCE}`, implicit],
  ["bucket name prefix is not the bucket", [rolePolicy], "s3:GetObject", `arn:aws:s3:::${SOURCE}-evil/x`, implicit],
  ["resource case-sensitive", [rolePolicy], "s3:GetObject", `arn:aws:s3:::${SOURCE.toUpperCase()}/x`, implicit],
  ["tricky key", [rolePolicy], "s3:GetObject", `arn:aws:s3:::${SOURCE}/dir/a b+ñ:%2F?.txt`, allow("ReadFromSource")],
  ["nested key", [rolePolicy], "s3:GetObject", `arn:aws:s3:::${SOURCE}/a/b/c/d.pdf`, allow("ReadFromSource")],
  ["output bucket ARN without key", [rolePolicy], "s3:PutObject", `arn:aws:s3:::${OUTPUT}`, implicit],
  // Wildcards.
  ["action *", [admin], "ec2:DescribeInstances", "*", allow("Admin")],
  ["action prefix *", [policy({ Effect: "Allow", Action: "s3:Get*", Resource: "*" })], "s3:GetObjectVersion", "arn:aws:s3:::b/k", allow()],
  ["action prefix * other verb", [policy({ Effect: "Allow", Action: "s3:Get*", Resource: "*" })], "s3:PutObject", "arn:aws:s3:::b/k", implicit],
  ["action ?", [policy({ Effect: "Allow", Action: "sqs:?eceiveMessage", Resource: "*" })], "sqs:ReceiveMessage", QUEUE, allow()],
  ["action ? is one character", [policy({ Effect: "Allow", Action: "sqs:?eceiveMessage", Resource: "*" })], "sqs:ReReceiveMessage", QUEUE, implicit],
  ["resource ?", [policy({ Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::bucket-?/*" })], "s3:GetObject", "arn:aws:s3:::bucket-a/k", allow()],
  ["resource ? not two", [policy({ Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::bucket-?/*" })], "s3:GetObject", "arn:aws:s3:::bucket-ab/k", implicit],
  ["resource * within a segment", [policy({ Effect: "Allow", Action: "sqs:*", Resource: `arn:aws:sqs:us-*-1:${ACCOUNT}:q` })], "sqs:SendMessage", `arn:aws:sqs:us-east-1:${ACCOUNT}:q`, allow()],
  ["resource mid-segment * stops at a colon", [policy({ Effect: "Allow", Action: "sqs:*", Resource: `arn:aws:sqs:us-*-1:${ACCOUNT}:q` })], "sqs:SendMessage", `arn:aws:sqs:us-east:x-1:${ACCOUNT}:q`, implicit],
  ["resource segment-ending * spans colons", [policy({ Effect: "Allow", Action: "sqs:*", Resource: "arn:aws:sqs:*" })], "sqs:SendMessage", QUEUE, allow()],
  ["resource * is not the literal ARN star", [policy({ Effect: "Allow", Action: "ec2:*", Resource: "arn:aws:ec2:*" })], "ec2:DescribeInstances", "*", implicit],
  // Explicit deny, in the same or another policy, in any order.
  ["deny beats allow", [admin, policy({ Sid: "NoDelete", Effect: "Deny", Action: "s3:DeleteObject", Resource: "*" })], "s3:DeleteObject", "arn:aws:s3:::b/k", deny("NoDelete")],
  ["deny beats allow listed later", [policy({ Sid: "NoDelete", Effect: "Deny", Action: "s3:Delete*", Resource: "*" }), admin], "s3:deleteobject", "arn:aws:s3:::b/k", deny("NoDelete")],
  ["deny beats the role's own allow", [rolePolicy, policy({ Effect: "Deny", Action: "s3:*", Resource: `arn:aws:s3:::${SOURCE}/secret/*` })], "s3:GetObject", `arn:aws:s3:::${SOURCE}/secret/x`, deny()],
  ["non-matching deny leaves the allow", [rolePolicy, policy({ Effect: "Deny", Action: "s3:*", Resource: `arn:aws:s3:::${SOURCE}/secret/*` })], "s3:GetObject", `arn:aws:s3:::${SOURCE}/public/x`, allow("ReadFromSource")],
  // NotAction / NotResource.
  ["NotAction allows the others", [policy({ Effect: "Allow", NotAction: "s3:DeleteObject", Resource: "arn:aws:s3:::b/*" })], "s3:GetObject", "arn:aws:s3:::b/k", allow()],
  ["NotAction excludes the named action", [policy({ Effect: "Allow", NotAction: ["s3:Delete*"], Resource: "arn:aws:s3:::b/*" })], "s3:DeleteObject", "arn:aws:s3:::b/k", implicit],
  ["NotResource deny outside the safe prefix", [admin, policy({ Sid: "OnlySafe", Effect: "Deny", Action: "s3:*", NotResource: "arn:aws:s3:::safe/*" })], "s3:GetObject", "arn:aws:s3:::other/k", deny("OnlySafe")],
  ["NotResource deny spares the safe prefix", [admin, policy({ Sid: "OnlySafe", Effect: "Deny", Action: "s3:*", NotResource: "arn:aws:s3:::safe/*" })], "s3:GetObject", "arn:aws:s3:::safe/k", allow("Admin")],
  ["Deny NotAction fences a service", [admin, policy({ Effect: "Deny", NotAction: "sqs:*", Resource: "*" })], "s3:GetObject", "arn:aws:s3:::b/k", deny()],
  ["Deny NotAction spares the service", [admin, policy({ Effect: "Deny", NotAction: "sqs:*", Resource: "*" })], "sqs:ReceiveMessage", QUEUE, allow("Admin")],
  // Shape.
  ["no policies", [], "s3:GetObject", "arn:aws:s3:::b/k", implicit],
  ["single statement object", [{ Version: "2012-10-17", Statement: { Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k" } }], "s3:GetObject", "arn:aws:s3:::b/k", allow()],
];

describe("evaluate", () => {
  it("has a table of at least 25 cases", () => {
    expect(rows.length).toBeGreaterThanOrEqual(25);
  });

  it.each(rows)("%s", (_name, policies, action, resource, expected) => {
    expect(evaluate(policies, { action, resource })).toEqual(expected);
  });

  it("refuses an inline policy it cannot evaluate instead of ignoring the unknown part", () => {
    const conditional = policy({
      Effect: "Deny",
      Action: "s3:*",
      Resource: "*",
      Condition: { Bool: { "aws:SecureTransport": "false" } },
    });
    expect(() => evaluate([admin, conditional], { action: "s3:GetObject", resource: "arn:aws:s3:::b/k" })).toThrow(
      /Condition is not supported/,
    );
  });

  it("refuses a malformed request rather than deciding it", () => {
    expect(() => evaluate([admin], { action: "GetObject", resource: "arn:aws:s3:::b/k" })).toThrow(TypeError);
    expect(() => evaluate([admin], { action: "s3:Get*", resource: "arn:aws:s3:::b/k" })).toThrow(TypeError);
    expect(() => evaluate([admin], { action: "s3:GetObject", resource: "" })).toThrow(TypeError);
  });
});

describe("validatePolicy", () => {
  const ok = { Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::b/*" };
  const invalid: [name: string, doc: unknown, message: RegExp][] = [
    ["not an object", [], /must be a JSON object/],
    ["missing Version", { Statement: [ok] }, /Version must be "2012-10-17"/],
    ["old Version", { Version: "2008-10-17", Statement: [ok] }, /Version must be/],
    ["unknown top-level key", { Version: "2012-10-17", Statement: [ok], Statements: [] }, /unsupported key "Statements"/],
    ["empty Statement", { Version: "2012-10-17", Statement: [] }, /at least one statement/],
    ["lower-case Effect", { Version: "2012-10-17", Statement: [{ ...ok, Effect: "allow" }] }, /Effect must be/],
    ["Condition", { Version: "2012-10-17", Statement: [{ ...ok, Condition: {} }] }, /Condition is not supported/],
    ["misspelt key", { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "s3:GetObject", Resources: "*" }] }, /unsupported key "Resources"/],
    ["Action and NotAction", { Version: "2012-10-17", Statement: [{ ...ok, NotAction: "s3:PutObject" }] }, /exactly one of Action or NotAction/],
    ["no Action", { Version: "2012-10-17", Statement: [{ Effect: "Allow", Resource: "*" }] }, /exactly one of Action or NotAction/],
    ["no Resource", { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "s3:GetObject" }] }, /exactly one of Resource or NotResource/],
    ["Principal in an identity policy", { Version: "2012-10-17", Statement: [{ ...ok, Principal: "*" }] }, /must not name a Principal/],
    ["bad action", { Version: "2012-10-17", Statement: [{ ...ok, Action: "GetObject" }] }, /invalid action/],
    ["empty action list", { Version: "2012-10-17", Statement: [{ ...ok, Action: [] }] }, /empty list/],
    ["wildcard service in resource", { Version: "2012-10-17", Statement: [{ ...ok, Resource: "arn:aws:*:::b" }] }, /invalid resource/],
    ["not an ARN", { Version: "2012-10-17", Statement: [{ ...ok, Resource: "my-bucket/*" }] }, /invalid resource/],
    ["policy variable", { Version: "2012-10-17", Statement: [{ ...ok, Resource: "arn:aws:s3:::b/${aws:username}/*" }] }, /policy variables/],
    ["duplicate Sid", { Version: "2012-10-17", Statement: [{ ...ok, Sid: "A" }, { ...ok, Sid: "A" }] }, /duplicate Sid/],
    ["Sid with punctuation", { Version: "2012-10-17", Statement: [{ ...ok, Sid: "read-source" }] }, /Sid must be/],
  ];

  it.each(invalid)("refuses %s", (_name, doc, message) => {
    expect(() => validatePolicy(doc)).toThrow(PolicyValidationError);
    expect(() => validatePolicy(doc)).toThrow(message);
  });

  it("accepts the shipped trust policy as a trust policy only", () => {
    const trust = loadPolicyFile(repoPath("scripts", "iam", "ec2-trust-policy.json"), {}, "trust");
    expect(trust.Statement).toHaveLength(1);
    expect(() => loadPolicyFile(repoPath("scripts", "iam", "ec2-trust-policy.json"), {})).toThrow(/Principal/);
    expect(() => validatePolicy({ Version: "2012-10-17", Statement: [ok] }, "trust")).toThrow(/needs a Principal/);
  });
});

describe("sealPolicy", () => {
  const doc = (): PolicyDocument => ({ Version: "2012-10-17", Statement: [{ Sid: "A", Effect: "Allow", Action: ["s3:GetObject"], Resource: "arn:aws:s3:::b/*" }] });
  const get = { action: "s3:GetObject", resource: "arn:aws:s3:::b/k" };

  it("returns a validated, deeply frozen copy that later edits of the original do not reach", () => {
    const original = doc();
    const sealed = sealPolicy(original);
    expect(sealed).toEqual(original);
    expect(sealed).not.toBe(original);
    expect(Object.isFrozen(sealed) && Object.isFrozen((sealed.Statement as object[])[0])).toBe(true);
    expect(() => (((sealed.Statement as { Action: string[] }[])[0]!.Action).push("s3:*"))).toThrow(TypeError);
    ((original.Statement as { Effect: string }[])[0]!).Effect = "Deny";
    expect(evaluate([sealed], get)).toEqual({ effect: "allow", sid: "A" });
  });

  it("refuses what validatePolicy refuses, and a document sealed as a trust policy is still checked as an identity one", () => {
    expect(() => sealPolicy({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "s3:*", Resource: "*", Condition: {} }] })).toThrow(PolicyValidationError);
    const trust = sealPolicy({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }] }, "trust");
    expect(() => evaluate([trust], get)).toThrow(PolicyValidationError);
  });
});

describe("renderPolicy", () => {
  const template = {
    Version: "2012-10-17",
    Statement: [{ Sid: "S", Effect: "Allow", Action: ["s3:GetObject"], Resource: ["arn:aws:s3:::${Bucket}/${Prefix}*"] }],
  };

  it("fills every placeholder in string values", () => {
    const doc = renderPolicy(template, { Bucket: "b1", Prefix: "in/" });
    expect(doc.Statement).toEqual([{ Sid: "S", Effect: "Allow", Action: ["s3:GetObject"], Resource: ["arn:aws:s3:::b1/in/*"] }]);
    // The template is not modified.
    expect(template.Statement[0]?.Resource).toEqual(["arn:aws:s3:::${Bucket}/${Prefix}*"]);
  });

  it("throws on an unknown placeholder", () => {
    expect(() => renderPolicy(template, { Bucket: "b1" })).toThrow(/unknown placeholder \$\{Prefix\}/);
  });

  it("throws on a leftover placeholder", () => {
    const unterminated = { ...template, Statement: [{ ...template.Statement[0], Resource: "arn:aws:s3:::${Bucket/*" }] };
    expect(() => renderPolicy(unterminated, { Bucket: "b1" })).toThrow(/unresolved placeholder/);
    expect(() => renderPolicy(template, { Bucket: "${Prefix}", Prefix: "" })).toThrow(/unresolved placeholder/);
  });

  it("keeps a value inside its string (no JSON injection)", () => {
    const doc = renderPolicy(template, { Bucket: 'b1/*"],"Action":"*', Prefix: "" });
    const statement = Array.isArray(doc.Statement) ? doc.Statement[0] : doc.Statement;
    expect(statement?.Action).toEqual(["s3:GetObject"]);
    expect(evaluate([doc], { action: "s3:PutObject", resource: "arn:aws:s3:::x/y" })).toEqual(implicit);
  });

  it("validates the rendered document", () => {
    expect(() => renderPolicy({ ...template, Version: "2008-10-17" }, { Bucket: "b", Prefix: "" })).toThrow(/Version/);
  });
});

describe("loadPolicyFile and repoPath", () => {
  it("resolves paths inside the repository", () => {
    expect(existsSync(repoPath("package.json"))).toBe(true);
    expect(existsSync(repoPath("scripts", "iam", "DocumentProcessorS3Access.json"))).toBe(true);
  });

  it("refuses paths outside the repository", () => {
    expect(() => repoPath("..", "elsewhere")).toThrow(/outside the repository/);
  });

  it("names the file when it cannot be read", () => {
    expect(() => loadPolicyFile(repoPath("scripts", "iam", "missing.json"), VARS)).toThrow(/missing\.json: cannot read/);
  });

  it("names the file when a placeholder is missing", () => {
    expect(() => loadPolicyFile(repoPath("scripts", "iam", "DocumentProcessorS3Access.json"), { SourceBucket: SOURCE })).toThrow(
      /DocumentProcessorS3Access\.json: .*unknown placeholder \$\{OutputBucket\}/,
    );
  });
});
