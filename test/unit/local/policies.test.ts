// The policy files in scripts/iam/ are what provisioning deploys and what the stand-in's gateway enforces. These tests
// pin them to the seed, so a widened grant (or a drifted copy) fails here before it reaches AWS.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { evaluate, loadPolicyFile, repoPath, statementsOf, type PolicyStatement } from "../../local/iam/index.js";

const ACCOUNT = "123456789012";
const SOURCE = `cloudboxio-lab-source-${ACCOUNT}`;
const OUTPUT = `cloudboxio-lab-output-${ACCOUNT}`;
const QUEUE = `arn:aws:sqs:us-east-1:${ACCOUNT}:doc-processor-notifications`;

const ACCESS_FILE = repoPath("scripts", "iam", "DocumentProcessorS3Access.json");
const TRUST_FILE = repoPath("scripts", "iam", "ec2-trust-policy.json");

// Copied from the seed ("Core Implementation — EC2 Instance Role", section "Creating the Role"): the trust policy AWS
// generates for an EC2 role.
const SEED_TRUST_POLICY = {
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
};

// Copied from the seed (same page, "Creating the Permission Policy", DocumentProcessorS3Access), with the seed's
// `{your-account-id}` filled in as ACCOUNT.
const SEED_STATEMENTS = [
  {
    Sid: "ReadFromSource",
    Effect: "Allow",
    Action: "s3:GetObject",
    Resource: `arn:aws:s3:::cloudboxio-lab-source-${ACCOUNT}/*`,
  },
  {
    Sid: "WriteToOutput",
    Effect: "Allow",
    Action: "s3:PutObject",
    Resource: `arn:aws:s3:::cloudboxio-lab-output-${ACCOUNT}/*`,
  },
];

// Our one addition: consuming the notification queue.
const QUEUE_STATEMENT = {
  Sid: "ConsumeNotifications",
  Effect: "Allow",
  Action: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"],
  Resource: QUEUE,
};

const rendered = loadPolicyFile(ACCESS_FILE, { SourceBucket: SOURCE, OutputBucket: OUTPUT, QueueArn: QUEUE });
const statements = statementsOf(rendered);
const list = (value: string | string[] | undefined): string[] => (value === undefined ? [] : [value].flat());

describe("scripts/iam/ec2-trust-policy.json", () => {
  it("is the seed's EC2 trust policy, exactly", () => {
    expect(JSON.parse(readFileSync(TRUST_FILE, "utf8"))).toEqual(SEED_TRUST_POLICY);
  });
});

describe("scripts/iam/DocumentProcessorS3Access.json", () => {
  it("uses CloudFormation Fn::Sub placeholders, not concrete names", () => {
    const raw = JSON.parse(readFileSync(ACCESS_FILE, "utf8")) as { Statement: PolicyStatement[] };
    expect(raw.Statement.map((s) => s.Resource)).toEqual([
      "arn:aws:s3:::${SourceBucket}/*",
      "arn:aws:s3:::${OutputBucket}/*",
      "${QueueArn}",
    ]);
  });

  it("starts with the seed's two statements, exactly", () => {
    expect(rendered.Version).toBe("2012-10-17");
    expect(statements.slice(0, 2)).toEqual(SEED_STATEMENTS);
  });

  it("adds only the queue statement", () => {
    expect(statements).toHaveLength(3);
    expect(statements[2]).toEqual(QUEUE_STATEMENT);
  });

  it("grants nothing beyond the listed actions", () => {
    for (const statement of statements) {
      expect(statement.Effect).toBe("Allow");
      expect(statement.NotAction).toBeUndefined();
      expect(statement.NotResource).toBeUndefined();
      for (const action of list(statement.Action)) expect(action).not.toMatch(/[*?]/);
      for (const resource of list(statement.Resource)) expect(resource).not.toBe("*");
    }
    const actions = statements.flatMap((s) => list(s.Action)).sort();
    expect(actions).toEqual(
      ["s3:GetObject", "s3:PutObject", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:ReceiveMessage"].sort(),
    );
    expect(actions.map((a) => a.toLowerCase())).not.toContain("s3:listbucket");
  });

  it("denies, through the evaluator, what the daemon must not do", () => {
    const mustBeDenied: [string, string][] = [
      ["s3:ListBucket", `arn:aws:s3:::${SOURCE}`],
      ["s3:GetObjectVersion", `arn:aws:s3:::${SOURCE}/k`],
      ["s3:AbortMultipartUpload", `arn:aws:s3:::${OUTPUT}/k`],
      ["s3:GetObject", `arn:aws:s3:::${OUTPUT}/k`],
      ["s3:PutObject", `arn:aws:s3:::${SOURCE}/k`],
      ["s3:DeleteObject", `arn:aws:s3:::${SOURCE}/k`],
      ["sqs:SendMessage", QUEUE],
      ["sqs:GetQueueUrl", QUEUE],
      ["sqs:GetQueueAttributes", QUEUE],
      ["sqs:PurgeQueue", QUEUE],
      ["ec2:DescribeInstances", "*"],
      ["iam:PassRole", `arn:aws:iam::${ACCOUNT}:role/EC2DocumentProcessorRole`],
    ];
    for (const [action, resource] of mustBeDenied) {
      expect(evaluate([rendered], { action, resource }), `${action} on ${resource}`).toEqual({ effect: "implicit-deny" });
    }
  });
});
