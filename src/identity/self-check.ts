/**
 * The start-up identity check: before any S3 or SQS call, sts:GetCallerIdentity (which needs no permission) must
 * show the expected role's session for this very instance. Thin I/O around the pure judgement in expected-arn.ts.
 */
import { GetCallerIdentityCommand, type STSClient } from "@aws-sdk/client-sts";
import { awsErrorInfo } from "../errors/aws.js";
import { ErrorCode, IdentityError } from "../errors/fatal.js";
import { errorMessage } from "../errors/message.js";
import type { InstanceIdentity } from "../aws/imds.js";
import { asCredentialsAnswerError } from "../aws/imds-answer.js";
import { judgeIdentity } from "./expected-arn.js";

export interface VerifiedIdentity {
  arn: string;
  account: string;
  roleName: string;
  instanceId: string;
}

export interface SelfCheckInput {
  sts: STSClient;
  instance: InstanceIdentity;
  expectedRoleName: string;
  expectedAccountId: string | undefined;
  signal?: AbortSignal;
}

// Network-level failures: worth a restart, not a refusal.
const TRANSIENT = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENOTFOUND", "EAI_AGAIN", "TimeoutError", "RequestTimeout"]);

export async function verifyIdentity(input: SelfCheckInput): Promise<VerifiedIdentity> {
  const { instance, expectedRoleName } = input;
  if (instance.roleName === undefined) {
    throw new IdentityError(
      ErrorCode.identityMismatch,
      [
        `refusing to start: instance ${instance.instanceId} has no IAM role: IMDS lists no instance-profile credentials.`,
        `Fix: attach the instance profile of ${expectedRoleName}: in the EC2 console select the instance,`,
        "Actions > Security > Modify IAM role, choose it, save, and restart the service (systemctl restart doc-processor).",
      ].join("\n"),
    );
  }

  let arn: string;
  try {
    const out = await input.sts.send(new GetCallerIdentityCommand({}), { abortSignal: input.signal });
    if (!out.Arn) throw new Error("GetCallerIdentity returned no Arn");
    arn = out.Arn;
  } catch (err) {
    throw stsFailure(err, instance);
  }

  const verdict = judgeIdentity(arn, {
    roleName: expectedRoleName,
    accountId: input.expectedAccountId ?? instance.accountId,
    accountSource: input.expectedAccountId ? "expectedAccountId in the config" : "this instance's identity document",
    instanceId: instance.instanceId,
  });
  if (!verdict.ok) throw new IdentityError(ErrorCode.identityMismatch, verdict.message);
  return { arn: verdict.arn, account: verdict.account, roleName: verdict.roleName, instanceId: verdict.instanceId };
}

function stsFailure(err: unknown, instance: InstanceIdentity): IdentityError {
  // An unparseable credentials answer from IMDS (the provider's SyntaxError or CredentialsProviderError, or our typed
  // error for a bad Expiration): STS was never called, and it is temporary (75), not a refusal.
  const answer = asCredentialsAnswerError(err);
  if (answer !== undefined) return answer;
  const { name, status } = awsErrorInfo(err);
  const code = (err as { code?: string }).code;
  const credentialsFailed = name === "CredentialsProviderError" || name === "ProviderError" || name === "InstanceMetadataV1FallbackError";
  if (name === "InstanceMetadataV1FallbackError") {
    return new IdentityError(
      ErrorCode.identityMismatch,
      "refusing to start: IMDS refused the IMDSv2 token request, and the IMDSv1 fallback is disabled on purpose.\n" +
        "Fix: aws ec2 modify-instance-metadata-options --instance-id " +
        `${instance.instanceId} --http-endpoint enabled --http-tokens required, then restart the service.`,
      { cause: err },
    );
  }
  if (TRANSIENT.has(name) || (code !== undefined && TRANSIENT.has(code)) || (status !== undefined && status >= 500)) {
    const what = credentialsFailed ? "fetch role credentials from IMDS" : "reach STS";
    return new IdentityError(
      credentialsFailed ? ErrorCode.imdsUnavailable : ErrorCode.stsUnavailable,
      `cannot ${what} to verify the identity (${name}: ${errorMessage(err)}); will be retried by systemd.`,
      { cause: err },
    );
  }
  if (credentialsFailed) {
    const statusCode = (err as { statusCode?: number }).statusCode;
    return new IdentityError(
      statusCode === undefined ? ErrorCode.imdsUnavailable : ErrorCode.identityMismatch,
      `cannot obtain role credentials from IMDS (${errorMessage(err)}${statusCode ? `, HTTP ${statusCode}` : ""}).\n` +
        "Fix: check that the instance profile is attached and its role exists (Actions > Security > Modify IAM role).",
      { cause: err },
    );
  }
  return new IdentityError(
    ErrorCode.identityMismatch,
    `refusing to start: STS rejected the instance credentials (${name}${status ? `, HTTP ${status}` : ""}: ${errorMessage(err)}).\n` +
      "Fix: check the instance clock (chronyd) and that the credentials come from this instance's IMDS; then restart.",
    { cause: err },
  );
}
