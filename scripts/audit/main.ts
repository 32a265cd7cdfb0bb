// The operator audit's calls, in order: who is asking (never the role itself), what IAM holds for the role (trust
// policy, attached and inline policies), then iam:SimulatePrincipalPolicy for every pair of the matrix, one call per
// resource. What SimulatePrincipalPolicy evaluates, and what it does not, is printed with the results (see CAVEATS).
import {
  GetPolicyCommand,
  GetPolicyVersionCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  IAMClient,
  paginateListAttachedRolePolicies,
  paginateListRolePolicies,
  paginateSimulatePrincipalPolicy,
  type EvaluationResult,
} from "@aws-sdk/client-iam";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { USAGE, UsageError, parseAuditArgs, type AuditTarget } from "./args.js";
import { judgeAttachments, judgeDocument, judgeMatrix, judgeTrust, type FetchedPolicy, type SimulatedPair } from "./judge.js";
import { buildMatrix, type Expectation } from "./matrix.js";
import { formatReport } from "./report.js";

// IAM API reference, SimulatePrincipalPolicy (https://docs.amazonaws.cn/goto/WebAPI/iam-2010-05-08/SimulatePrincipalPolicy)
// and the IAM User Guide, "Testing IAM policies with the IAM policy simulator"
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_testing-policies.html).
export const CAVEATS = [
  "evaluated by iam:SimulatePrincipalPolicy: the role's identity policies (attached and inline) and its permissions",
  "boundary, and in an organization its SCPs without conditions; not bucket or queue policies (a resource policy is",
  "simulated for IAM users only), nor session policies. A pair that depends on a Condition's context key is undecided.",
];

const SHIPPED_POLICY = fileURLToPath(new URL("../iam/DocumentProcessorS3Access.json", import.meta.url));

export interface AuditIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Clients with the deployer's credentials; default the SDK's usual credential and endpoint sources. */
  clients?: (region: string) => { iam: IAMClient; sts: STSClient };
}

class CannotAudit extends Error {
  override name = "CannotAudit";
}

function describeError(error: unknown): string {
  const e = error as { name?: string; message?: string };
  return `${e.name ?? "Error"}: ${e.message ?? String(error)}`;
}

async function step<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    const denied = (error as { name?: string }).name === "AccessDenied" || (error as { name?: string }).name === "AccessDeniedException";
    const hint = denied
      ? " (run the audit with the deployer's credentials: it needs iam:GetRole, iam:ListAttachedRolePolicies, iam:GetPolicy, iam:GetPolicyVersion, iam:ListRolePolicies, iam:GetRolePolicy and iam:SimulatePrincipalPolicy)"
      : "";
    throw new CannotAudit(`${what}: ${describeError(error)}${hint}`, { cause: error });
  }
}

const decoded = (text: string | undefined): string => decodeURIComponent(text ?? "");

async function readPolicies(iam: IAMClient, roleName: string): Promise<FetchedPolicy[]> {
  const policies: FetchedPolicy[] = [];
  for await (const page of paginateListAttachedRolePolicies({ client: iam }, { RoleName: roleName })) {
    for (const attached of page.AttachedPolicies ?? []) {
      const arn = attached.PolicyArn!;
      const { Policy } = await step(`iam:GetPolicy ${arn}`, () => iam.send(new GetPolicyCommand({ PolicyArn: arn })));
      const versionId = Policy?.DefaultVersionId;
      const { PolicyVersion } = await step(`iam:GetPolicyVersion ${arn} ${versionId}`, () =>
        iam.send(new GetPolicyVersionCommand({ PolicyArn: arn, VersionId: versionId })),
      );
      policies.push({ name: attached.PolicyName ?? arn, kind: "managed", text: decoded(PolicyVersion?.Document), ...(versionId && { versionId }) });
    }
  }
  for await (const page of paginateListRolePolicies({ client: iam }, { RoleName: roleName })) {
    for (const name of page.PolicyNames ?? []) {
      const inline = await step(`iam:GetRolePolicy ${name}`, () => iam.send(new GetRolePolicyCommand({ RoleName: roleName, PolicyName: name })));
      policies.push({ name, kind: "inline", text: decoded(inline.PolicyDocument) });
    }
  }
  return policies;
}

/** A result per (action, resource): from ResourceSpecificResults when IAM gives them, else the result itself. */
function pairsOf(result: EvaluationResult): SimulatedPair[] {
  const action = result.EvalActionName ?? "";
  const top = result.MissingContextValues ?? [];
  const matched = (statements: EvaluationResult["MatchedStatements"]): SimulatedPair["matched"] =>
    (statements ?? []).map((s) => ({
      ...(s.SourcePolicyId !== undefined && { policyId: s.SourcePolicyId }),
      ...(s.SourcePolicyType !== undefined && { policyType: s.SourcePolicyType }),
      ...(s.StartPosition !== undefined && { start: { Line: s.StartPosition.Line, Column: s.StartPosition.Column } }),
    }));
  const specific = result.ResourceSpecificResults ?? [];
  if (specific.length > 0) {
    return specific.map((r) => ({
      action,
      resource: r.EvalResourceName ?? "",
      decision: r.EvalResourceDecision ?? "",
      matched: matched(r.MatchedStatements),
      missingContext: [...top, ...(r.MissingContextValues ?? [])],
    }));
  }
  return [{ action, resource: result.EvalResourceName ?? "", decision: result.EvalDecision ?? "", matched: matched(result.MatchedStatements), missingContext: top }];
}

async function simulateAll(iam: IAMClient, roleArn: string, matrix: readonly Expectation[]): Promise<SimulatedPair[]> {
  const byResource = new Map<string, string[]>();
  for (const { action, resource } of matrix) byResource.set(resource, [...(byResource.get(resource) ?? []), action]);
  const pairs: SimulatedPair[] = [];
  // One resource per call, so each answer is about exactly the resource asked, however IAM groups its results.
  for (const [resource, actions] of byResource) {
    const input = { PolicySourceArn: roleArn, ActionNames: actions, ...(resource !== "*" && { ResourceArns: [resource] }) };
    await step(`iam:SimulatePrincipalPolicy on ${resource}`, async () => {
      for await (const page of paginateSimulatePrincipalPolicy({ client: iam }, input)) {
        for (const result of page.EvaluationResults ?? []) pairs.push(...pairsOf(result).map((p) => (resource === "*" ? { ...p, resource: "*" } : p)));
      }
    });
  }
  return pairs;
}

function shippedPolicy(target: AuditTarget, partition: string): { Statement: unknown } {
  const queueArn = `arn:${partition}:sqs:${target.queue.region}:${target.queue.accountId}:${target.queue.name}`;
  const vars: Record<string, string> = { SourceBucket: target.sourceBucket, OutputBucket: target.outputBucket, QueueArn: queueArn };
  const text = readFileSync(SHIPPED_POLICY, "utf8").replace(/\$\{(\w+)\}/g, (match, name: string) => vars[name] ?? match);
  return JSON.parse(text) as { Statement: unknown };
}

function defaultClients(region: string): { iam: IAMClient; sts: STSClient } {
  return { iam: new IAMClient({ region }), sts: new STSClient({ region }) };
}

/** Runs the audit; the exit status (0 as designed, 1 not, 2 could not audit, 64 usage). */
export async function runAudit(argv: readonly string[], env: Record<string, string | undefined>, io: AuditIo): Promise<number> {
  let target: AuditTarget | "help";
  try {
    target = parseAuditArgs(argv, env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`doc-processor audit: ${error.message}\n\n${USAGE}`);
    return 64;
  }
  if (target === "help") {
    io.out(USAGE);
    return 0;
  }
  const { iam, sts } = (io.clients ?? defaultClients)(target.queue.region);
  try {
    return await audit(target, iam, sts, io);
  } catch (error) {
    if (!(error instanceof CannotAudit)) throw error;
    io.err(`doc-processor audit: cannot audit: ${error.message}`);
    return 2;
  } finally {
    iam.destroy();
    sts.destroy();
  }
}

async function audit(target: AuditTarget, iam: IAMClient, sts: STSClient, io: AuditIo): Promise<number> {
  const caller = await step("sts:GetCallerIdentity", () => sts.send(new GetCallerIdentityCommand({})));
  const callerArn = caller.Arn ?? "";
  // The role's own sessions cannot read IAM anyway; say so plainly rather than as an AccessDenied.
  if (callerArn.includes(`:assumed-role/${target.roleName}/`)) {
    throw new CannotAudit(`these are the role's own credentials (${callerArn}): run the audit on your machine with the deployer's credentials`);
  }
  const { Role } = await step(`iam:GetRole ${target.roleName}`, () => iam.send(new GetRoleCommand({ RoleName: target.roleName })));
  const roleArn = Role?.Arn ?? "";
  const [, partition = "aws", , , accountId = ""] = roleArn.split(":");
  const policies = await readPolicies(iam, target.roleName);
  const matrix = buildMatrix({ ...target, partition, accountId, roleArn });
  const simulated = await simulateAll(iam, roleArn, matrix);

  const rows = [
    ...judgeTrust(decoded(Role?.AssumeRolePolicyDocument)),
    ...judgeAttachments(target.policyName, policies),
    judgeDocument(target.policyName, policies.find((p) => p.kind === "managed" && p.name === target.policyName), shippedPolicy(target, partition)),
    ...judgeMatrix(matrix, simulated, policies),
  ];
  const boundary = Role?.PermissionsBoundary?.PermissionsBoundaryArn;
  io.out(`doc-processor audit of ${roleArn}, as ${callerArn}`);
  io.out(`source s3://${target.sourceBucket}, output s3://${target.outputBucket}, queue ${target.queueUrl}`);
  io.out(
    `policies: ${policies.map((p) => `${p.kind} ${p.name}${p.versionId ? ` (${p.versionId})` : ""}`).join(", ") || "none"}; ` +
      `permissions boundary: ${boundary ?? "none"}`,
  );
  if (target.queue.accountId !== accountId) io.out(`note: the queue is in account ${target.queue.accountId}, the role in ${accountId}`);
  for (const line of CAVEATS) io.out(line);
  io.out("");
  for (const line of formatReport(rows)) io.out(line);
  return rows.every((r) => r.ok) ? 0 : 1;
}
