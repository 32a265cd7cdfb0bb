// The operator audit's pure parts (scripts/audit/): arguments, the matrix, the verdicts and their fixes, the report.
// The matrix is also held against the shipped policy through the stand-in's evaluator, so the two cannot drift.
import { describe, expect, it } from "vitest";
import { UsageError, parseAuditArgs, parseQueueUrl } from "../../../scripts/audit/args.js";
import { judgeAttachments, judgeDocument, judgeMatrix, judgeTrust, type FetchedPolicy, type SimulatedPair } from "../../../scripts/audit/judge.js";
import { CLAIMS, buildMatrix, type Expectation } from "../../../scripts/audit/matrix.js";
import { formatReport } from "../../../scripts/audit/report.js";
import { statementAt, statementsIn } from "../../../scripts/audit/statements.js";
import { evaluate, loadPolicyFile, repoPath, shippedPolicyDocument } from "../../local/iam/index.js";

const ACCOUNT = "123456789012";
const SOURCE = "cloudboxio-lab-source-123456789012";
const OUTPUT = "cloudboxio-lab-output-123456789012";
const QUEUE_URL = `https://sqs.eu-west-1.amazonaws.com/${ACCOUNT}/doc-processor-documents`;
const QUEUE_ARN = `arn:aws:sqs:eu-west-1:${ACCOUNT}:doc-processor-documents`;
const ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/EC2DocumentProcessorRole`;
const args = ["--source-bucket", SOURCE, "--output-bucket", OUTPUT, "--queue-url", QUEUE_URL];

const matrix = buildMatrix({
  partition: "aws",
  accountId: ACCOUNT,
  roleArn: ROLE_ARN,
  policyName: "DocumentProcessorS3Access",
  sourceBucket: SOURCE,
  outputBucket: OUTPUT,
  queue: { accountId: ACCOUNT, name: "doc-processor-documents", region: "eu-west-1" },
});
const vars = { SourceBucket: SOURCE, OutputBucket: OUTPUT, QueueArn: QUEUE_ARN };
const shippedText = JSON.stringify(loadPolicyFile(repoPath("scripts", "iam", "DocumentProcessorS3Access.json"), vars), null, 2);
const shippedPolicy: FetchedPolicy = { name: "DocumentProcessorS3Access", kind: "managed", text: shippedText, versionId: "v1" };

describe("arguments", () => {
  it("defaults the role and policy names; takes region and account from the queue URL", () => {
    expect(parseAuditArgs(args, {})).toEqual({
      roleName: "EC2DocumentProcessorRole",
      policyName: "DocumentProcessorS3Access",
      sourceBucket: SOURCE,
      outputBucket: OUTPUT,
      queueUrl: QUEUE_URL,
      queue: { accountId: ACCOUNT, name: "doc-processor-documents", region: "eu-west-1" },
    });
    expect(parseAuditArgs(["--help"], {})).toBe("help");
  });

  it("queue URLs: regional, FIPS, China, legacy; another host needs --region or AWS_REGION", () => {
    expect(parseQueueUrl(`https://sqs-fips.us-gov-west-1.amazonaws.com/${ACCOUNT}/q`, undefined).region).toBe("us-gov-west-1");
    expect(parseQueueUrl(`https://sqs.cn-north-1.amazonaws.com.cn/${ACCOUNT}/q`, undefined).region).toBe("cn-north-1");
    expect(parseQueueUrl(`https://ap-south-1.queue.amazonaws.com/${ACCOUNT}/q`, undefined).region).toBe("ap-south-1");
    expect(parseQueueUrl(`https://queue.amazonaws.com/${ACCOUNT}/q`, undefined).region).toBe("us-east-1");
    expect(parseQueueUrl(`http://127.0.0.1:4566/${ACCOUNT}/q`, "us-east-2")).toEqual({ accountId: ACCOUNT, name: "q", region: "us-east-2" });
    expect(() => parseQueueUrl(`http://127.0.0.1:4566/${ACCOUNT}/q`, undefined)).toThrow(/--region/);
    expect(parseAuditArgs([...args.slice(0, 4), "--queue-url", `http://127.0.0.1:1/${ACCOUNT}/q`], { AWS_REGION: "us-west-2" })).toMatchObject({
      queue: { region: "us-west-2" },
    });
  });

  it("refuses what cannot be audited: missing values, one bucket for both, a bad bucket, an unknown option", () => {
    expect(() => parseAuditArgs(["--queue-url", QUEUE_URL], {})).toThrow("missing --source-bucket, --output-bucket");
    expect(() => parseAuditArgs(["--source-bucket", SOURCE, "--output-bucket", SOURCE, "--queue-url", QUEUE_URL], {})).toThrow(/must differ/);
    expect(() => parseAuditArgs(["--source-bucket", "Bad_Bucket", "--output-bucket", OUTPUT, "--queue-url", QUEUE_URL], {})).toThrow(UsageError);
    expect(() => parseAuditArgs([...args, "--profile", "x"], {})).toThrow(UsageError);
    expect(() => parseAuditArgs([...args.slice(0, 4), "--queue-url", "https://sqs.us-east-1.amazonaws.com/q"], {})).toThrow(/queue-url/);
  });
});

describe("the matrix", () => {
  it("at least 30 distinct pairs, every claim of the seed covered, exactly five allowed", () => {
    expect(matrix.length).toBeGreaterThanOrEqual(30);
    expect(new Set(matrix.map((e) => `${e.action} ${e.resource}`)).size).toBe(matrix.length);
    expect(new Set(matrix.map((e) => e.claim))).toEqual(new Set(Object.values(CLAIMS)));
    expect(matrix.filter((e) => e.expected === "allowed").map((e) => e.action)).toEqual([
      "s3:GetObject",
      "s3:PutObject",
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
    ]);
  });

  it("names what the issue lists as must-be-denied", () => {
    const pairs = matrix.filter((e) => e.expected === "denied").map((e) => `${e.action} ${e.resource}`);
    for (const expected of [
      `s3:ListBucket arn:aws:s3:::${SOURCE}`,
      "s3:ListAllMyBuckets *",
      `s3:DeleteObjectVersion arn:aws:s3:::${OUTPUT}/doc-processor-audit/any-document.pdf.json`,
      `s3:GetObject arn:aws:s3:::${OUTPUT}/doc-processor-audit/any-document.pdf.json`,
      `s3:PutObject arn:aws:s3:::${SOURCE}/doc-processor-audit/any-document.pdf`,
      `s3:PutBucketPolicy arn:aws:s3:::${SOURCE}`,
      `iam:CreateUser arn:aws:iam::${ACCOUNT}:user/doc-processor-audit-probe`,
      `iam:AttachRolePolicy ${ROLE_ARN}`,
      `iam:PassRole ${ROLE_ARN}`,
      `sts:AssumeRole arn:aws:iam::${ACCOUNT}:role/doc-processor-audit-another-role`,
      "ec2:RunInstances *",
      "ec2:ModifyInstanceMetadataOptions *",
      `sqs:SendMessage ${QUEUE_ARN}`,
      `sqs:PurgeQueue ${QUEUE_ARN}`,
      `sqs:SetQueueAttributes ${QUEUE_ARN}`,
      "kms:Decrypt *",
    ]) {
      expect(pairs).toContain(expected);
    }
  });

  it("the shipped policy answers every pair as the matrix expects (the stand-in's evaluator)", () => {
    const policy = loadPolicyFile(repoPath("scripts", "iam", "DocumentProcessorS3Access.json"), vars);
    const wrong = matrix.filter((e) => (evaluate([policy], e).effect === "allow") !== (e.expected === "allowed"));
    expect(wrong).toEqual([]);
  });
});

/** A simulator answer for every pair: allowed where `allowed` says, with the statement at `start`. */
function answers(allowed: (e: Expectation) => boolean, start?: { Line: number; Column: number }, policyId = "DocumentProcessorS3Access"): SimulatedPair[] {
  return matrix.map((e) => ({
    action: e.action,
    resource: e.resource,
    decision: allowed(e) ? "allowed" : "implicitDeny",
    matched: allowed(e) && start ? [{ policyId, policyType: "user-managed", start }] : [],
    missingContext: [],
  }));
}

const asDesigned = (e: Expectation): boolean => e.expected === "allowed";

describe("judgeMatrix", () => {
  it("the designed answers: every row ✓", () => {
    expect(judgeMatrix(matrix, answers(asDesigned), [shippedPolicy]).filter((r) => !r.ok)).toEqual([]);
  });

  it("an extra grant: ✗ with the statement (Sid, lines, what it grants) found from the simulator's position", () => {
    const text = JSON.stringify(
      {
        Version: "2012-10-17",
        Statement: [
          { Sid: "ReadFromSource", Effect: "Allow", Action: "s3:GetObject", Resource: `arn:aws:s3:::${SOURCE}/*` },
          { Sid: "Cleanup", Effect: "Allow", Action: ["s3:DeleteObject", "s3:DeleteObjectVersion"], Resource: `arn:aws:s3:::${SOURCE}/*` },
        ],
      },
      null,
      2,
    );
    const policy: FetchedPolicy = { name: "DocumentProcessorS3Access", kind: "managed", text };
    const cleanup = statementsIn(text)[1]!;
    const extra = (e: Expectation) => asDesigned(e) || (e.action.startsWith("s3:DeleteObject") && e.resource.includes(SOURCE));
    const rows = judgeMatrix(matrix, answers(extra, { Line: cleanup.startLine, Column: 6 }), [policy]);
    const failed = rows.filter((r) => !r.ok);
    expect(failed.map((r) => [r.pair.split(" ")[0], r.expected, r.got])).toEqual([
      ["s3:DeleteObject", "denied", "allowed"],
      ["s3:DeleteObjectVersion", "denied", "allowed"],
    ]);
    expect(failed[0]!.fix).toBe(
      `allowed by statement "Cleanup" (lines 10-18: s3:DeleteObject, s3:DeleteObjectVersion on arn:aws:s3:::${SOURCE}/*) of managed policy ` +
        "DocumentProcessorS3Access: remove s3:DeleteObject from it (scripts/iam/DocumentProcessorS3Access.json as shipped, redeployed with scripts/deploy.sh, has no such grant)",
    );
  });

  it("finds the statement from AWS's own position convention (one-line document, Column 38)", () => {
    const text = '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"}}';
    expect(statementAt(text, { Line: 1, Column: 38 })).toMatchObject({ index: 0, actions: ["dynamodb:*"], startLine: 1 });
    expect(statementAt(text, undefined)).toMatchObject({ index: 0 });
  });

  it("a missing permission, an explicit deny, a condition left undecided, no answer: each ✗ with its own fix", () => {
    const simulated = answers((e) => asDesigned(e) && e.action !== "sqs:ReceiveMessage").map((s) => {
      if (s.action === "s3:PutObject" && s.resource.includes(OUTPUT)) return { ...s, decision: "explicitDeny", matched: [{ policyId: "Guard", policyType: "role" }] };
      if (s.action === "ec2:RunInstances") return { ...s, missingContext: ["aws:RequestedRegion"] };
      return s;
    });
    const rows = judgeMatrix(matrix, simulated.filter((s) => s.action !== "kms:Decrypt"), [shippedPolicy]);
    const fix = (action: string) => rows.find((r) => r.pair.startsWith(`${action} `) && !r.ok)?.fix;
    expect(fix("sqs:ReceiveMessage")).toMatch(/^needed by the daemon and not granted: attach scripts\/iam\/DocumentProcessorS3Access.json/);
    expect(fix("s3:PutObject")).toBe("needed by the daemon and denied explicitly by policy Guard (role): remove that Deny");
    expect(fix("ec2:RunInstances")).toContain("depends on condition keys the simulation was not given (aws:RequestedRegion)");
    expect(rows.find((r) => r.pair.startsWith("ec2:RunInstances"))?.got).toBe("undecided");
    expect(fix("kms:Decrypt")).toContain("IAM returned no result");
    expect(rows.filter((r) => !r.ok)).toHaveLength(4);
  });
});

describe("judgeTrust", () => {
  const trust = (...Statement: unknown[]) => JSON.stringify({ Version: "2012-10-17", Statement });
  const ec2 = { Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" };

  it("the shipped trust policy: both rows ✓; a Deny beside it changes nothing", () => {
    expect(judgeTrust(trust(ec2)).every((r) => r.ok)).toBe(true);
    expect(judgeTrust(trust({ ...ec2, Principal: { Service: ["ec2.amazonaws.com"] }, Action: ["sts:AssumeRole"] })).every((r) => r.ok)).toBe(true);
    expect(judgeTrust(trust(ec2, { Effect: "Deny", Principal: "*", Action: "sts:*" })).every((r) => r.ok)).toBe(true);
  });

  it("anyone else, any other action, NotPrincipal, or no EC2 at all: ✗ naming it", () => {
    const [who] = judgeTrust(trust(ec2, { Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" }));
    expect(who).toMatchObject({ ok: false, got: "Service:ec2.amazonaws.com, Service:lambda.amazonaws.com" });
    expect(who!.fix).toContain("lets Service:lambda.amazonaws.com assume the role besides EC2");
    expect(judgeTrust(trust({ ...ec2, Principal: "*" }))[0]).toMatchObject({ ok: false, got: "*" });
    expect(judgeTrust(trust({ ...ec2, Principal: undefined, NotPrincipal: { AWS: "x" } }))[0]!.ok).toBe(false);
    expect(judgeTrust(trust({ ...ec2, Action: ["sts:AssumeRole", "sts:SetSourceIdentity"] }))[1]).toMatchObject({ ok: false });
    expect(judgeTrust(trust({ Effect: "Deny", Principal: "*", Action: "sts:*" }))[0]!.fix).toContain("instances would get no credentials");
    expect(judgeTrust("not json")[0]).toMatchObject({ ok: false, got: "unreadable" });
  });
});

describe("judgeAttachments and judgeDocument", () => {
  it("only the one managed policy and no inline policy; anything else ✗ with what to detach or delete", () => {
    expect(judgeAttachments("DocumentProcessorS3Access", [shippedPolicy]).every((r) => r.ok)).toBe(true);
    const more = judgeAttachments("DocumentProcessorS3Access", [
      shippedPolicy,
      { name: "AmazonSSMManagedInstanceCore", kind: "managed", text: "{}" },
      { name: "Debug", kind: "inline", text: "{}" },
    ]);
    expect(more.map((r) => r.fix)).toEqual([
      "detach AmazonSSMManagedInstanceCore (aws iam detach-role-policy): every permission the role needs is in DocumentProcessorS3Access",
      "delete the inline policies Debug (aws iam delete-role-policy)",
    ]);
    expect(judgeAttachments("DocumentProcessorS3Access", [])[0]!.fix).toMatch(/^attach DocumentProcessorS3Access/);
  });

  it("the document as shipped (whatever its layout) ✓; a statement added or changed ✗, named", () => {
    const shipped = JSON.parse(shippedText) as { Statement: Record<string, unknown>[] };
    const compact = JSON.stringify({ ...shipped, Statement: shipped.Statement.map((s) => (s["Sid"] === "ReadFromSource" ? { ...s, Action: ["s3:GetObject"] } : s)) });
    expect(judgeDocument("DocumentProcessorS3Access", { ...shippedPolicy, text: compact }, shipped).ok).toBe(true);
    const changed = JSON.stringify({
      ...shipped,
      Statement: [...shipped.Statement.map((s) => (s["Sid"] === "WriteToOutput" ? { ...s, Resource: "*" } : s)), { Sid: "Extra", Effect: "Allow", Action: "s3:*", Resource: "*" }],
    });
    const row = judgeDocument("DocumentProcessorS3Access", { ...shippedPolicy, text: changed }, shipped);
    expect(row).toMatchObject({ ok: false, got: "differs" });
    expect(row.fix).toContain("not in the shipped file: WriteToOutput, Extra; shipped but absent or changed: WriteToOutput");
    expect(judgeDocument("DocumentProcessorS3Access", undefined, shipped)).toMatchObject({ ok: false, got: "not attached" });
    // The audit renders scripts/iam/ the same way the stand-in does.
    expect(shippedPolicyDocument().Statement).toHaveLength(3);
  });
});

describe("formatReport", () => {
  it("a table row per check with ✓/✗, then N of N as designed, or the failures with their fixes", () => {
    const rows = judgeMatrix(matrix, answers(asDesigned), [shippedPolicy]);
    const lines = formatReport(rows);
    expect(lines[0]).toMatch(/^ {2}pair +expected +got +✓\/✗$/);
    expect(lines).toContain(CLAIMS.read);
    expect(lines.at(-1)).toBe(`${rows.length} of ${rows.length} as designed`);
    const bad = formatReport([...rows, { section: "x", pair: "p q", expected: "denied", got: "allowed", ok: false, fix: "remove it" }]);
    expect(bad.at(-2)).toBe(`${rows.length} of ${rows.length + 1} as designed; 1 not:`);
    expect(bad.at(-1)).toBe("✗ p q: remove it");
    expect(bad.find((l) => l.startsWith("  p q"))).toMatch(/denied +allowed +✗$/);
  });
});
