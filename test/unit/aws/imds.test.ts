// The daemon's IMDSv2 client against the mock IMDS over real HTTP on loopback.
import { afterEach, describe, expect, it } from "vitest";
import { fetchInstanceIdentity } from "../../../src/aws/imds.js";
import { ErrorCode, ExitCode, IdentityError } from "../../../src/errors.js";
import { startMockImds, type MockImds } from "../../local/imds/index.js";

let imds: MockImds | undefined;
afterEach(async () => {
  await imds?.close();
  imds = undefined;
});

const start = async (roleName: string | null) => {
  imds = await startMockImds({
    instanceId: "i-0123456789abcdef0",
    accountId: "123456789012",
    region: "eu-west-1",
    availabilityZone: "eu-west-1a",
    roleName,
    issueCredentials: () => ({
      AccessKeyId: "ASIAEXAMPLEEXAMPLE01",
      SecretAccessKey: "secret",
      Token: "token",
      Expiration: new Date(Date.now() + 6 * 3600_000),
    }),
  });
  return imds;
};

describe("fetchInstanceIdentity", () => {
  it("reads instance id, account, region and the attached role with an IMDSv2 token", async () => {
    const m = await start("EC2DocumentProcessorRole");
    const identity = await fetchInstanceIdentity({ timeoutMs: 1_000, maxRetries: 0, endpoint: m.url });
    expect(identity).toEqual({
      instanceId: "i-0123456789abcdef0",
      accountId: "123456789012",
      region: "eu-west-1",
      availabilityZone: "eu-west-1a",
      roleName: "EC2DocumentProcessorRole",
    });
    expect(m.requests.filter((r) => r.method === "GET").every((r) => r.tokenPresent)).toBe(true);
  });

  it("reports no role when none appears within the wait", async () => {
    const m = await start(null);
    const identity = await fetchInstanceIdentity({ timeoutMs: 1_000, maxRetries: 0, endpoint: m.url, roleWaitMs: 0 });
    expect(identity.roleName).toBeUndefined();
  });

  it("waits for an instance profile that appears shortly after start (fresh launch)", async () => {
    const m = await start(null);
    let listings = 0;
    const pending = fetchInstanceIdentity({ timeoutMs: 1_000, maxRetries: 0, endpoint: m.url, roleWaitMs: 10_000 });
    // Attach the role once the client has seen the empty listing at least once.
    while (listings === 0) {
      await new Promise((r) => setImmediate(r));
      listings = m.requests.filter((r) => r.path === "/latest/meta-data/iam/security-credentials/").length;
    }
    m.setRole("EC2DocumentProcessorRole");
    expect((await pending).roleName).toBe("EC2DocumentProcessorRole");
  });

  it("refuses an IMDS that only speaks IMDSv1 with the fix (77)", async () => {
    const m = await start("EC2DocumentProcessorRole");
    m.setMode("v1-only");
    const err = await fetchInstanceIdentity({ timeoutMs: 1_000, maxRetries: 0, endpoint: m.url }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IdentityError);
    expect((err as IdentityError).exitCode).toBe(ExitCode.noPerm);
    expect((err as IdentityError).message).toMatch(/--http-tokens required/);
  });

  it("treats an IMDS outage as temporary (75)", async () => {
    const m = await start("EC2DocumentProcessorRole");
    m.setMode("error-500");
    const err = await fetchInstanceIdentity({ timeoutMs: 1_000, maxRetries: 1, endpoint: m.url }).catch((e: unknown) => e);
    expect((err as IdentityError).code).toBe(ErrorCode.imdsUnavailable);
    expect((err as IdentityError).exitCode).toBe(ExitCode.tempFail);
  });
});
