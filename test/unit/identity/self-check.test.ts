import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import type { InstanceIdentity } from "../../../src/aws/imds.js";
import { ErrorCode, ExitCode, IdentityError } from "../../../src/errors/fatal.js";
import { verifyIdentity } from "../../../src/identity/self-check.js";

const instance: InstanceIdentity = {
  instanceId: "i-0123456789abcdef0",
  accountId: "123456789012",
  region: "us-east-1",
  availabilityZone: "us-east-1a",
  roleName: "EC2DocumentProcessorRole",
};
const roleArn = "arn:aws:sts::123456789012:assumed-role/EC2DocumentProcessorRole/i-0123456789abcdef0";
const sts = mockClient(STSClient);
afterEach(() => sts.reset());

const check = (overrides: Partial<Parameters<typeof verifyIdentity>[0]> = {}) =>
  verifyIdentity({
    sts: new STSClient({ region: "us-east-1" }),
    instance,
    expectedRoleName: "EC2DocumentProcessorRole",
    expectedAccountId: undefined,
    ...overrides,
  });

async function failure(p: Promise<unknown>): Promise<IdentityError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof IdentityError) return err;
    throw err;
  }
  throw new Error("expected an IdentityError");
}

describe("verifyIdentity", () => {
  it("returns the verified identity for the expected role on this instance", async () => {
    sts.on(GetCallerIdentityCommand).resolves({ Arn: roleArn, Account: "123456789012" });
    await expect(check()).resolves.toEqual({
      arn: roleArn,
      account: "123456789012",
      roleName: "EC2DocumentProcessorRole",
      instanceId: "i-0123456789abcdef0",
    });
  });

  it("refuses without calling STS when IMDS lists no role", async () => {
    const err = await failure(check({ instance: { ...instance, roleName: undefined } }));
    expect(err.exitCode).toBe(ExitCode.noPerm);
    expect(err.message).toMatch(/has no IAM role/);
    expect(err.message).toMatch(/Modify IAM role/);
    expect(sts.commandCalls(GetCallerIdentityCommand)).toHaveLength(0);
  });

  it("compares the account with expectedAccountId when it is set", async () => {
    sts.on(GetCallerIdentityCommand).resolves({ Arn: roleArn });
    const err = await failure(check({ expectedAccountId: "999999999999" }));
    expect(err.code).toBe(ErrorCode.identityMismatch);
    expect(err.message).toMatch(/expectedAccountId in the config says 999999999999/);
  });

  it("treats a network failure reaching STS as temporary (75)", async () => {
    sts.on(GetCallerIdentityCommand).rejects(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }));
    const err = await failure(check());
    expect(err.code).toBe(ErrorCode.stsUnavailable);
    expect(err.exitCode).toBe(ExitCode.tempFail);
  });

  it("treats STS rejecting the credentials as a refusal (77)", async () => {
    sts.on(GetCallerIdentityCommand).rejects(
      Object.assign(new Error("The security token included in the request is invalid."), {
        name: "InvalidClientTokenId",
        $metadata: { httpStatusCode: 403 },
      }),
    );
    const err = await failure(check());
    expect(err.exitCode).toBe(ExitCode.noPerm);
    expect(err.message).toMatch(/STS rejected the instance credentials \(InvalidClientTokenId, HTTP 403/);
  });

  it("an unparseable credentials answer (the provider's SyntaxError): temporary (75), names IMDS, not 'STS rejected', quotes nothing", async () => {
    let parseError: unknown;
    try {
      JSON.parse('<html><body>AKIA-secret-content</body></html>');
    } catch (err) {
      parseError = err;
    }
    sts.on(GetCallerIdentityCommand).rejects(parseError as Error);
    const err = await failure(check());
    expect(err.code).toBe(ErrorCode.imdsCredentialsInvalid);
    expect(err.exitCode).toBe(ExitCode.tempFail);
    expect(err.message).toMatch(/^IMDS answered the role's credentials with something that is not JSON/);
    expect(err.message).not.toMatch(/STS rejected|instance clock/);
    expect(err.message).not.toContain("<html");
    expect(err.message).not.toContain("AKIA");
  });

  it("JSON without the credential fields (the provider's CredentialsProviderError): temporary (75)", async () => {
    sts.on(GetCallerIdentityCommand).rejects(
      Object.assign(new Error("Invalid response received from instance metadata service."), { name: "CredentialsProviderError" }),
    );
    const err = await failure(check());
    expect(err.code).toBe(ErrorCode.imdsCredentialsInvalid);
    expect(err.exitCode).toBe(ExitCode.tempFail);
  });

  it("passes the provider wrapper's typed error (a bad Expiration) through unchanged", async () => {
    const typed = new IdentityError(ErrorCode.imdsCredentialsInvalid, "IMDS answered the role's credentials with an Expiration that is not a date");
    sts.on(GetCallerIdentityCommand).rejects(typed);
    expect(await failure(check())).toBe(typed);
  });

  it("explains a blocked IMDSv1 fallback as an IMDSv2 configuration problem (77)", async () => {
    sts.on(GetCallerIdentityCommand).rejects(Object.assign(new Error("v1 fallback blocked"), { name: "InstanceMetadataV1FallbackError" }));
    const err = await failure(check());
    expect(err.exitCode).toBe(ExitCode.noPerm);
    expect(err.message).toMatch(/modify-instance-metadata-options --instance-id i-0123456789abcdef0/);
  });
});
