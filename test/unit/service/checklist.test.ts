// `check`'s steps without the CLI: the runner's lines and exit code (checklist.ts), and the real steps' order and
// skipping (check.ts) with the start-up stages replaced and S3/STS/SQS answered by aws-sdk-client-mock.
import { sdkTransport } from "../../../src/aws/sdk-transport.js";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { ChangeMessageVisibilityCommand, DeleteMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { GetAccessKeyInfoCommand, STSClient } from "@aws-sdk/client-sts";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { InstanceIdentity } from "../../../src/aws/imds.js";
import { configSchema } from "../../../src/config/schema.js";
import { ConfigError, ErrorCode, ExitCode, IdentityError } from "../../../src/errors/fatal.js";
import { silentLogger } from "../../../src/logging/logger.js";
import { runChecks, realStages, type CheckStages } from "../../../src/service/check.js";
import { NotChecked, need, runChecklist, verdict, type CheckStep } from "../../../src/service/checklist.js";

describe("runChecklist", () => {
  const step = (name: string, run: CheckStep["run"]): CheckStep => ({ name, run });

  it("one line per step in order, ✓/✗/–, the count of passed steps, and the first failure's exit code", async () => {
    const lines: string[] = [];
    let provided: string | undefined;
    const code = await runChecklist(
      [
        step("a", async () => "fine"),
        step("b", async () => new NotChecked("not checked: no key")),
        step("c", async () => verdict({ ok: false, reason: "denied\nFix: grant it", exitCode: ExitCode.noPerm })),
        step("d", async () => need(provided, "what c provides")),
        step("e", async () => {
          throw new Error("refusing to start: the caller is someone else");
        }),
        step("f", async () => {
          provided = "now";
          return verdict({ ok: true, detail: "judged" });
        }),
      ],
      (line) => lines.push(line),
    );
    expect(lines).toEqual([
      "✓ a: fine",
      "– b: not checked: no key",
      "✗ c: denied\n    Fix: grant it",
      "✗ d: skipped: needs what c provides",
      "✗ e: someone else",
      "✓ f: judged",
      "2 of 6 completed",
    ]);
    expect(code).toBe(ExitCode.noPerm);
  });

  it("a skipped or not-checked step is no failure: exit 0", async () => {
    const lines: string[] = [];
    const code = await runChecklist(
      [step("a", async () => need<string>(undefined, "x")), step("b", async () => new NotChecked("later"))],
      (line) => lines.push(line),
    );
    expect(code).toBe(0);
    expect(lines.at(-1)).toBe("0 of 2 completed");
  });

  it("typed errors keep their exit code, anything else is 1", async () => {
    const run = (err: Error) => runChecklist([step("a", async () => Promise.reject(err))], () => {});
    await expect(run(new IdentityError(ErrorCode.identityMismatch, "x"))).resolves.toBe(77);
    await expect(run(new ConfigError([{ key: "k", message: "bad" }], "f"))).resolves.toBe(78);
    await expect(run(new Error("plain"))).resolves.toBe(1);
  });
});

const ACCOUNT = "123456789012";
const QUEUE_URL = `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/doc-events`;
const INSTANCE: InstanceIdentity = { instanceId: "i-1", accountId: ACCOUNT, region: "us-east-1", availabilityZone: "us-east-1a", roleName: "R" };
const CONFIG = configSchema.parse({ queueUrl: QUEUE_URL, sourceBucket: "src-bucket", outputBucket: "out-bucket", outputPrefix: "processed/" });
const STEP_NAMES = [
  "configuration is valid",
  "no static AWS credentials on this machine",
  "IMDSv2 is enforced (a request without a token is refused)",
  "an instance profile role is attached",
  "the caller is the expected role on this instance (not a user)",
  "the credentials are temporary (session token, expiry)",
  "read from source works",
  "write to output works",
  "write to source is denied",
  "reading the output is denied (s3:GetObject)",
  "deleting in the source is denied (s3:DeleteObject)",
  "deleting in the output is denied (s3:DeleteObject)",
  "listing the source bucket is denied (s3:ListBucket)",
  "listing the output bucket is denied (s3:ListBucket)",
  "another service is denied (sts:GetAccessKeyInfo)",
  "the queue can be consumed",
  "the queue cannot be written to or purged, bucket policies and IAM cannot be changed",
];

describe("check's steps (stages replaced, AWS mocked)", () => {
  const s3Mock = mockClient(S3Client);
  const stsMock = mockClient(STSClient);
  const sqsMock = mockClient(SQSClient);
  const credentials = { accessKeyId: "ASIAEXAMPLE", secretAccessKey: "s", sessionToken: "t", expiration: new Date("2030-01-01T00:00:00Z") };
  let destroyed = 0;
  let connected = 0;

  const s3Error = (name: string, status: number) =>
    new S3ServiceException({ name, $fault: "client", $metadata: { httpStatusCode: status }, message: name });
  const sdkError = (name: string, status: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });

  beforeEach(() => {
    destroyed = 0;
    connected = 0;
    // The role's policy as shipped: writes only to the output, everything of the denied side refused.
    s3Mock.on(PutObjectCommand, { Bucket: "out-bucket" }).resolves({});
    s3Mock.on(PutObjectCommand, { Bucket: "src-bucket" }).rejects(s3Error("AccessDenied", 403));
    s3Mock.on(GetObjectCommand).rejects(s3Error("AccessDenied", 403));
    s3Mock.on(DeleteObjectCommand).rejects(s3Error("AccessDenied", 403));
    s3Mock.on(ListObjectsV2Command).rejects(s3Error("AccessDenied", 403));
    stsMock.on(GetAccessKeyInfoCommand).rejects(sdkError("AccessDenied", 403));
    sqsMock.on(ChangeMessageVisibilityCommand).rejects(sdkError("ReceiptHandleIsInvalid", 404));
    sqsMock.on(DeleteMessageCommand).rejects(sdkError("ReceiptHandleIsInvalid", 404));
  });
  afterEach(() => {
    s3Mock.reset();
    stsMock.reset();
    sqsMock.reset();
  });

  const healthy: CheckStages = {
    loadConfig: () => CONFIG,
    loadProcessors: async () => [{ name: "metadata" }],
    assertNoStaticCredentials: () => {},
    tokenlessStatus: async () => 401,
    readInstance: async () => INSTANCE,
    connect: ({ queue }) => {
      connected++;
      const common = { region: "us-east-1", credentials };
      const s3 = new S3Client(common);
      const sqs = new SQSClient(common);
      const clients = {
        s3: async () => s3,
        sqs,
        sts: new STSClient(common),
        transport: sdkTransport(async () => s3, sqs),
        destroy: () => void destroyed++,
      };
      return { queue, region: "us-east-1", clients };
    },
    verifyCaller: async () => ({ arn: `arn:aws:sts::${ACCOUNT}:assumed-role/R/i-1`, account: ACCOUNT, roleName: "R", instanceId: "i-1" }),
  };

  async function check(stages: Partial<CheckStages>, sourceKey?: string) {
    const lines: string[] = [];
    const code = await runChecks(
      { configPath: "/etc/doc-processor/config.json", sourceKey, env: {}, log: silentLogger(), out: (l) => lines.push(l) },
      { ...healthy, ...stages },
    );
    return { code, lines, names: lines.slice(0, -1).map((l) => l.slice(2, l.indexOf(": "))) };
  }

  it("every step in the checklist's order; a healthy role passes all but the two not checked; clients destroyed", async () => {
    const { code, lines, names } = await check({});
    expect(names).toEqual(STEP_NAMES);
    expect(lines.filter((l) => !l.startsWith("✓"))).toEqual([
      expect.stringMatching(/^– read from source works: not checked: pass --source-key KEY/) as unknown,
      expect.stringMatching(/^– the queue cannot be written to or purged/) as unknown,
      "15 of 17 completed",
    ]);
    expect(lines[0]).toBe("✓ configuration is valid: /etc/doc-processor/config.json; processors metadata");
    expect(lines[7]).toBe("✓ write to output works: wrote s3://out-bucket/processed/.doc-processor-check/i-1.txt (overwritten on every check)");
    expect(code).toBe(0);
    expect([connected, destroyed]).toEqual([1, 1]);
  });

  it("no role attached: that step fails (77), every step needing the role or the identity is skipped, none is run", async () => {
    const { code, lines } = await check({ readInstance: async () => ({ ...INSTANCE, roleName: undefined }) });
    expect(lines.slice(3, 8)).toEqual([
      expect.stringMatching(/^✗ an instance profile role is attached: IMDS lists no instance-profile role on i-1\./) as unknown,
      "✗ the caller is the expected role on this instance (not a user): skipped: needs an attached role",
      "✗ the credentials are temporary (session token, expiry): skipped: needs a valid configuration and an attached role",
      "✗ read from source works: skipped: needs the expected identity",
      "✗ write to output works: skipped: needs the expected identity",
    ]);
    expect(lines.slice(8, 16).every((l) => l.endsWith(": skipped: needs the expected identity"))).toBe(true);
    expect(lines.at(-1)).toBe("3 of 17 completed");
    expect(code).toBe(77);
    expect(connected).toBe(0);
    expect([s3Mock.calls(), stsMock.calls(), sqsMock.calls()].flat()).toEqual([]);
  });

  it("an invalid configuration: 78, IMDS still checked with the defaults, the caller skipped for want of a configuration", async () => {
    let imdsTimeout: number | undefined;
    const { code, lines } = await check({
      loadConfig: () => {
        throw new ConfigError([{ key: "queueUrl", message: "is required" }], "/etc/doc-processor/config.json");
      },
      tokenlessStatus: async (options) => {
        imdsTimeout = options.timeoutMs;
        return 401;
      },
    });
    expect(lines[0]).toMatch(/^✗ configuration is valid: invalid configuration/);
    expect(lines[2]).toBe("✓ IMDSv2 is enforced (a request without a token is refused): HTTP 401 without a token");
    expect(imdsTimeout).toBe(configSchema.shape.imdsTimeoutMs.parse(undefined));
    expect(lines[4]).toBe("✗ the caller is the expected role on this instance (not a user): skipped: needs a valid configuration");
    expect(code).toBe(78);
  });

  it("a caller that is not the expected role: clients exist, so the credentials line still runs; the rest is skipped", async () => {
    const { code, lines } = await check({
      verifyCaller: async () => {
        throw new IdentityError(ErrorCode.identityMismatch, "refusing to start: the caller is arn:aws:iam::1:user/x");
      },
    });
    expect(lines[4]).toBe("✗ the caller is the expected role on this instance (not a user): arn:aws:iam::1:user/x");
    expect(lines[5]).toBe("✓ the credentials are temporary (session token, expiry): expire 2030-01-01T00:00:00.000Z");
    expect(lines[6]).toBe("✗ read from source works: skipped: needs the expected identity");
    expect(code).toBe(77);
    expect(destroyed).toBe(1);
  });

  it("write to output fails: reading the output is skipped (no probe object), the other denied probes still run", async () => {
    s3Mock.on(PutObjectCommand, { Bucket: "out-bucket" }).rejects(s3Error("AccessDenied", 403));
    const { code, lines } = await check({}, "docs/a.pdf");
    expect(lines[7]).toMatch(/^✗ write to output works: PutObject s3:\/\/out-bucket\/processed\/.doc-processor-check\/i-1.txt failed \(AccessDenied 403/);
    expect(lines[9]).toBe('✗ reading the output is denied (s3:GetObject): skipped: needs the probe object from "write to output works"');
    expect(lines[10]).toBe("✓ deleting in the source is denied (s3:DeleteObject): AccessDenied 403, as it must be");
    expect(code).toBe(1);
    expect(s3Mock.commandCalls(GetObjectCommand).map((c) => c.args[0].input.Bucket)).toEqual(["src-bucket"]);
  });

  it("the real stages are the start-up's own (no second copy for check)", async () => {
    const startup = await import("../../../src/service/startup.js");
    expect(realStages.loadProcessors).toBe(startup.loadProcessors);
    expect(realStages.connect).toBe(startup.connect);
    expect(realStages.verifyCaller).toBe(startup.verifyCaller);
    expect(realStages.readInstance).toBe(startup.readInstance);
  });
});
