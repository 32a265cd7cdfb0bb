// The daemon's IMDSv2 client against the mock IMDS over real HTTP on loopback.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { fetchInstanceIdentity } from "../../../src/aws/imds.js";
import { ErrorCode, ExitCode, IdentityError } from "../../../src/errors/fatal.js";
import { HTML_ANSWER_MARKER, startMockImds, type MockImds } from "../../local/imds/index.js";

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
      SecretAccessKey: "example-secret-access-key",
      Token: "example-session-token",
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

  it.each([
    ["html", /with something that is not JSON \(content-type text\/html, \d+ bytes, first character '<' \(markup, such as an HTML page\)\)/],
    ["truncated", /with JSON that is cut short or broken \(content-type text\/plain, \d+ bytes, first character '\{' \(a JSON object\)\)/],
    ["bad-expiration", /with JSON whose Expiration is not a date \(20 characters\) \(content-type text\/plain/],
  ] as const)("an unusable credentials answer (%s) through the whole wait: temporary (75), described, never quoted", async (answer, described) => {
    const m = await start("EC2DocumentProcessorRole");
    m.setCredentialsAnswer(answer);
    const err = await fetchInstanceIdentity({ timeoutMs: 1_000, maxRetries: 0, endpoint: m.url, roleWaitMs: 600 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IdentityError);
    const { code, exitCode, message } = err as IdentityError;
    expect(code).toBe(ErrorCode.imdsCredentialsInvalid);
    expect(exitCode).toBe(ExitCode.tempFail);
    expect(message).toContain(`IMDS at ${m.url.replace(/\/$/, "")} answered the role's credentials (/latest/meta-data/iam/security-credentials/EC2DocumentProcessorRole)`);
    expect(message).toMatch(described);
    expect(message).toContain("still did after 1 s (instanceProfileWaitSeconds); STS was not asked");
    for (const secret of ["example-secret", "example-session", "ASIAEXAMPLE", HTML_ANSWER_MARKER, "9999-99"]) expect(message).not.toContain(secret);
    // Asked again within the wait.
    const asked = m.requests.filter((r) => r.path === "/latest/meta-data/iam/security-credentials/EC2DocumentProcessorRole");
    expect(asked.length).toBeGreaterThanOrEqual(2);
  });

  it("an unusable credentials answer that IMDS corrects within the wait: the identity, as if nothing happened", async () => {
    const m = await start("EC2DocumentProcessorRole");
    m.setCredentialsAnswer("html");
    const pending = fetchInstanceIdentity({ timeoutMs: 1_000, maxRetries: 0, endpoint: m.url, roleWaitMs: 10_000 });
    const credentialsPath = "/latest/meta-data/iam/security-credentials/EC2DocumentProcessorRole";
    while (!m.requests.some((r) => r.path === credentialsPath)) await new Promise((r) => setImmediate(r));
    m.setCredentialsAnswer("valid");
    expect((await pending).roleName).toBe("EC2DocumentProcessorRole");
  });

  it("a role listing that is not a role name (an HTML page): temporary (75), described", async () => {
    const m = await start("<!DOCTYPE html><html><body>intercepted</body></html>");
    const err = await fetchInstanceIdentity({ timeoutMs: 1_000, maxRetries: 0, endpoint: m.url }).catch((e: unknown) => e);
    expect((err as IdentityError).code).toBe(ErrorCode.imdsCredentialsInvalid);
    expect((err as IdentityError).message).toMatch(/answered the role listing \(\/latest\/meta-data\/iam\/security-credentials\/\) with something that is not a role name \(\d+ bytes, first character '<'/);
    expect((err as IdentityError).message).not.toContain("intercepted");
  });

  it("an endless credentials answer is read only up to 64 KiB, then described as oversized (75)", async () => {
    let sent = 0;
    const server = createServer((req, res) => {
      if (req.method === "PUT") return res.end("token");
      if (req.url === "/latest/dynamic/instance-identity/document") {
        return res.end(JSON.stringify({ instanceId: "i-0123456789abcdef0", accountId: "123456789012", region: "eu-west-1", availabilityZone: "eu-west-1a" }));
      }
      if (req.url === "/latest/meta-data/iam/security-credentials/") return res.end("EC2DocumentProcessorRole");
      res.writeHead(200, { "content-type": "application/octet-stream" });
      const chunk = Buffer.alloc(16 * 1024, "{");
      const more = (): void => {
        while (sent < 64 * 1024 * 1024 && !res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", more);
        }
        res.end();
      };
      more();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const { port } = server.address() as AddressInfo;
      const err = await fetchInstanceIdentity({ timeoutMs: 2_000, maxRetries: 0, endpoint: `http://127.0.0.1:${port}` }).catch((e: unknown) => e);
      expect((err as IdentityError).code).toBe(ErrorCode.imdsCredentialsInvalid);
      expect((err as IdentityError).message).toMatch(/with an oversized body \(content-type application\/octet-stream, at least \d+ bytes \(not read further\)/);
      expect(sent).toBeLessThan(64 * 1024 * 1024);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
