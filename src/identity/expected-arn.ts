/**
 * Pure identity judgement: is the caller ARN from sts:GetCallerIdentity the expected role's session for this
 * instance? The caller ARN never carries the role's IAM path, so account + role name + session name (the
 * instance id) are compared, never the role ARN.
 */

export type CallerArn =
  | { kind: "assumed-role"; partition: string; account: string; roleName: string; sessionName: string }
  | { kind: "user"; partition: string; account: string; userName: string }
  | { kind: "root"; partition: string; account: string }
  | { kind: "federated-user"; partition: string; account: string; name: string }
  | { kind: "unknown"; arn: string };

export function parseCallerArn(arn: string): CallerArn {
  const m = /^arn:([\w-]+):(sts|iam)::(\d{12}):(.+)$/.exec(arn);
  if (!m) return { kind: "unknown", arn };
  const [, partition = "", service, account = "", rest = ""] = m;
  if (service === "sts") {
    const role = /^assumed-role\/([^/]+)\/(.+)$/.exec(rest);
    if (role?.[1] && role[2]) {
      return { kind: "assumed-role", partition, account, roleName: role[1], sessionName: role[2] };
    }
    const fed = /^federated-user\/(.+)$/.exec(rest);
    if (fed?.[1]) return { kind: "federated-user", partition, account, name: fed[1] };
    return { kind: "unknown", arn };
  }
  if (rest === "root") return { kind: "root", partition, account };
  const user = /^user\/(?:.*\/)?([^/]+)$/.exec(rest);
  if (user?.[1]) return { kind: "user", partition, account, userName: user[1] };
  return { kind: "unknown", arn };
}

export interface IdentityExpectation {
  roleName: string;
  accountId: string;
  /** Where the expected account came from, for the message ("config expectedAccountId" or "the instance identity document"). */
  accountSource: string;
  instanceId: string;
}

export type IdentityProblem = "iam-user" | "root" | "federated-user" | "other-role" | "other-account" | "other-instance" | "unrecognized";

export type IdentityVerdict =
  | { ok: true; arn: string; account: string; roleName: string; instanceId: string }
  | { ok: false; problem: IdentityProblem; arn: string; message: string };

const ATTACH_FIX =
  "the instance profile is not attached (or static keys are in use). In the EC2 console select the instance, " +
  "Actions > Security > Modify IAM role, choose the instance profile of {role}, save, and restart the service " +
  "(systemctl restart doc-processor).";

export function judgeIdentity(arn: string, expected: IdentityExpectation): IdentityVerdict {
  const caller = parseCallerArn(arn);
  const fail = (problem: IdentityProblem, what: string, fix: string): IdentityVerdict => ({
    ok: false,
    problem,
    arn,
    message: `refusing to start: the caller is ${arn}: ${what}.\nFix: ${fix}`,
  });
  const attachFix = ATTACH_FIX.replace("{role}", expected.roleName);

  switch (caller.kind) {
    case "user":
      return fail("iam-user", `an IAM user (${caller.userName}), not the role ${expected.roleName}`, attachFix);
    case "root":
      return fail("root", "the account's root user, not a role", attachFix);
    case "federated-user":
      return fail("federated-user", `a federated user (${caller.name}), not the role ${expected.roleName}`, attachFix);
    case "unknown":
      return fail("unrecognized", `not an assumed-role session`, attachFix);
    case "assumed-role":
      break;
  }
  // IAM role names are unique case-insensitively, so a differently cased name is the same role.
  if (caller.roleName.toLowerCase() !== expected.roleName.toLowerCase()) {
    return fail(
      "other-role",
      `the role ${caller.roleName}, but this daemon expects ${expected.roleName}`,
      `attach the instance profile that carries ${expected.roleName} (Actions > Security > Modify IAM role), or, if ` +
        `${caller.roleName} is intended, set expectedRoleName to it in /etc/doc-processor/config.json; then restart.`,
    );
  }
  if (caller.account !== expected.accountId) {
    return fail(
      "other-account",
      `account ${caller.account}, but ${expected.accountSource} says ${expected.accountId}`,
      `use the role in account ${expected.accountId}, or correct expectedAccountId in /etc/doc-processor/config.json; then restart.`,
    );
  }
  if (caller.sessionName !== expected.instanceId) {
    return fail(
      "other-instance",
      `a session of ${caller.roleName} for ${caller.sessionName}, not for this instance (${expected.instanceId}); ` +
        "these credentials were not issued to this instance by its metadata service",
      "let the daemon take credentials from this instance's own IMDS only: remove any proxy or copied credentials " +
        "and restart.",
    );
  }
  return { ok: true, arn, account: caller.account, roleName: caller.roleName, instanceId: caller.sessionName };
}
