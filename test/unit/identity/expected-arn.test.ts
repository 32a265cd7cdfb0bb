import { describe, expect, it } from "vitest";
import { judgeIdentity, parseCallerArn, type IdentityExpectation } from "../../../src/identity/expected-arn.js";

const expected: IdentityExpectation = {
  roleName: "EC2DocumentProcessorRole",
  accountId: "123456789012",
  accountSource: "this instance's identity document",
  instanceId: "i-0123456789abcdef0",
};
const good = "arn:aws:sts::123456789012:assumed-role/EC2DocumentProcessorRole/i-0123456789abcdef0";

describe("parseCallerArn", () => {
  it.each([
    [good, { kind: "assumed-role", partition: "aws", account: "123456789012", roleName: "EC2DocumentProcessorRole", sessionName: "i-0123456789abcdef0" }],
    ["arn:aws-cn:sts::123456789012:assumed-role/R/s", { kind: "assumed-role", partition: "aws-cn", roleName: "R", sessionName: "s" }],
    ["arn:aws:iam::123456789012:user/cli-user", { kind: "user", userName: "cli-user" }],
    ["arn:aws:iam::123456789012:user/division/team/dev", { kind: "user", userName: "dev" }],
    ["arn:aws:iam::123456789012:root", { kind: "root", account: "123456789012" }],
    ["arn:aws:sts::123456789012:federated-user/bob", { kind: "federated-user", name: "bob" }],
    ["arn:aws:iam::123456789012:role/EC2DocumentProcessorRole", { kind: "unknown" }],
    ["garbage", { kind: "unknown" }],
  ])("parses %s", (arn, shape) => {
    expect(parseCallerArn(arn)).toMatchObject(shape);
  });
});

describe("judgeIdentity", () => {
  it("accepts the expected role's session for this instance", () => {
    expect(judgeIdentity(good, expected)).toEqual({
      ok: true,
      arn: good,
      account: "123456789012",
      roleName: "EC2DocumentProcessorRole",
      instanceId: "i-0123456789abcdef0",
    });
  });

  it("accepts other partitions", () => {
    expect(judgeIdentity(good.replace("arn:aws:", "arn:aws-us-gov:"), expected).ok).toBe(true);
  });

  const cases: [string, string, RegExp[]][] = [
    ["arn:aws:iam::123456789012:user/cli-user", "iam-user", [/an IAM user \(cli-user\)/, /instance profile is not attached/, /Actions > Security > Modify IAM role/]],
    ["arn:aws:iam::123456789012:root", "root", [/root user/]],
    ["arn:aws:sts::123456789012:assumed-role/SomeOtherRole/i-0123456789abcdef0", "other-role", [/the role SomeOtherRole/, /expects EC2DocumentProcessorRole/, /expectedRoleName/]],
    ["arn:aws:sts::999999999999:assumed-role/EC2DocumentProcessorRole/i-0123456789abcdef0", "other-account", [/account 999999999999/, /identity document says 123456789012/]],
    ["arn:aws:sts::123456789012:assumed-role/EC2DocumentProcessorRole/i-0fedcba9876543210", "other-instance", [/for i-0fedcba9876543210/, /not for this instance \(i-0123456789abcdef0\)/]],
    ["arn:aws:sts::123456789012:assumed-role/EC2DocumentProcessorRole/", "unrecognized", [/not an assumed-role session/]],
  ];
  it.each(cases)("refuses %s as %s, naming what was found and the fix", (arn, problem, patterns) => {
    const verdict = judgeIdentity(arn, expected);
    expect(verdict.ok).toBe(false);
    if (verdict.ok) return;
    expect(verdict.problem).toBe(problem);
    expect(verdict.message).toContain(arn);
    expect(verdict.message).toMatch(/Fix: /);
    for (const p of patterns) expect(verdict.message).toMatch(p);
  });

  it("compares role names case-insensitively, as IAM does", () => {
    expect(judgeIdentity(good.replace("EC2DocumentProcessorRole", "ec2documentprocessorrole"), expected).ok).toBe(true);
    expect(judgeIdentity(good.replace("EC2DocumentProcessorRole", "EC2DocumentProcessorRole2"), expected).ok).toBe(false);
  });
});
