// The judgements behind `check`'s permission lines: which answers prove a check, and which fail it (and why).
import { Readable } from "node:stream";
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { sdkStreamMixin } from "@smithy/core/serde";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import { ExitCode } from "../../../src/errors/fatal.js";
import {
  expiryDetail,
  judgeOtherServiceCall,
  judgeQueueProbes,
  judgeSourceRead,
  judgeSourceWrite,
  judgeTokenlessStatus,
  type ProbeResult,
} from "../../../src/service/check-verdicts.js";
import { deniedProbes, judgeDeniedProbe, runDeniedProbe, type DeniedProbe } from "../../../src/service/denied-probes.js";

const sdkError = (name: string, status: number, message = name): ProbeResult => ({
  ok: false,
  error: Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } }),
});
const answered: ProbeResult = { ok: true };
const WHERE = "s3://source/.doc-processor-check/i-1.txt";

describe("judgeTokenlessStatus (IMDSv2 enforced)", () => {
  it("401 passes", () => {
    expect(judgeTokenlessStatus(401)).toEqual({ ok: true, detail: "HTTP 401 without a token" });
  });

  it("200 fails as an identity problem (77) with the modify-instance-metadata-options fix", () => {
    const v = judgeTokenlessStatus(200);
    expect(v).toMatchObject({ ok: false, exitCode: ExitCode.noPerm });
    expect(!v.ok && v.reason).toContain("--http-tokens required");
  });

  it("anything else fails as unexpected (exit 1)", () => {
    expect(judgeTokenlessStatus(403)).toEqual({ ok: false, reason: expect.stringContaining("HTTP 403, expected 401") as unknown });
  });
});

describe("judgeSourceRead", () => {
  it("a read passes with the size; an empty object (InvalidRange) passes too", () => {
    expect(judgeSourceRead({ ok: true, size: 19 }, "s3://b/k")).toEqual({ ok: true, detail: "read s3://b/k (19 bytes)" });
    expect(judgeSourceRead(sdkError("InvalidRange", 416), "s3://b/k")).toEqual({ ok: true, detail: "read s3://b/k (empty)" });
  });

  it("AccessDenied fails, explaining that a missing key looks the same", () => {
    const v = judgeSourceRead(sdkError("AccessDenied", 403), "s3://b/k");
    expect(v.ok).toBe(false);
    expect(!v.ok && v.reason).toContain("the key does not exist or the role may not read it");
    expect(!v.ok && v.reason).toContain("ReadFromSource");
  });

  it("another error fails with its name", () => {
    expect(judgeSourceRead(sdkError("NoSuchBucket", 404), "s3://b/k")).toMatchObject({ ok: false, reason: expect.stringContaining("NoSuchBucket 404") as unknown });
  });
});

describe("judgeSourceWrite (write to source must be denied)", () => {
  it("AccessDenied passes", () => {
    expect(judgeSourceWrite(sdkError("AccessDenied", 403), WHERE)).toEqual({ ok: true, detail: "AccessDenied, as it must be" });
  });

  it("a successful write fails and asks for the object to be deleted", () => {
    const v = judgeSourceWrite(answered, WHERE);
    expect(v.ok).toBe(false);
    expect(!v.ok && v.reason).toContain("SUCCEEDED");
    expect(!v.ok && v.reason).toContain("delete that object");
  });

  it.each([
    ["PreconditionFailed", 412],
    ["NoSuchKey", 404],
    ["ConditionalRequestConflict", 409],
  ])("%s (the If-Match guard stopped an authorized write) fails: the role may write there", (name, status) => {
    const v = judgeSourceWrite(sdkError(name, status), WHERE);
    expect(v.ok).toBe(false);
    expect(!v.ok && v.reason).toContain("S3 authorized s3:PutObject");
  });

  it("a missing bucket and other errors fail without claiming anything about permissions", () => {
    expect(judgeSourceWrite(sdkError("NoSuchBucket", 404), WHERE)).toMatchObject({
      ok: false,
      reason: expect.stringContaining("the source bucket does not exist") as unknown,
    });
    expect(judgeSourceWrite(sdkError("InternalError", 500), WHERE)).toMatchObject({
      ok: false,
      reason: expect.stringContaining("expected AccessDenied, got InternalError 500") as unknown,
    });
  });
});

describe("judgeOtherServiceCall (sts:GetAccessKeyInfo must be denied)", () => {
  it("AccessDenied passes; success fails", () => {
    expect(judgeOtherServiceCall(sdkError("AccessDenied", 403))).toEqual({ ok: true, detail: "AccessDenied, as it must be" });
    const v = judgeOtherServiceCall(answered);
    expect(v.ok).toBe(false);
    expect(!v.ok && v.reason).toContain("SUCCEEDED");
  });

  it("an unrelated error (throttling) fails instead of passing", () => {
    expect(judgeOtherServiceCall(sdkError("Throttling", 400)).ok).toBe(false);
  });
});

describe("judgeQueueProbes", () => {
  const Q = "https://sqs.us-east-1.amazonaws.com/123456789012/q";

  it.each(["ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight"])(
    "'%s' for the impossible handle means authorized",
    (name) => {
      const v = judgeQueueProbes({ changeMessageVisibility: sdkError(name, 400), deleteMessage: sdkError(name, 400) }, Q);
      expect(v).toEqual({ ok: true, detail: expect.stringContaining("authorized") as unknown });
    },
  );

  it("a denied call fails naming the action and the policy statement", () => {
    const v = judgeQueueProbes({ changeMessageVisibility: sdkError("ReceiptHandleIsInvalid", 400), deleteMessage: sdkError("AccessDenied", 403) }, Q);
    expect(v.ok).toBe(false);
    expect(!v.ok && v.reason).toContain("sqs:DeleteMessage is denied");
    expect(!v.ok && v.reason).not.toContain("ChangeMessageVisibility is denied");
    expect(!v.ok && v.reason).toContain("ConsumeNotifications");
  });

  it("a missing queue fails with the error", () => {
    const missing = sdkError("QueueDoesNotExist", 400);
    const v = judgeQueueProbes({ changeMessageVisibility: missing, deleteMessage: missing }, Q);
    expect(!v.ok && v.reason).toContain("sqs:ChangeMessageVisibility failed: QueueDoesNotExist");
  });
});

describe("expiryDetail (the credentials line)", () => {
  const now = Date.parse("2026-11-29T12:00:00Z");
  const keys = { accessKeyId: "ASIA1", secretAccessKey: "s", sessionToken: "t" };

  it("fresh credentials: their expiry", () => {
    expect(expiryDetail({ ...keys, expiration: new Date("2026-11-29T18:00:00Z") }, now)).toBe("expire 2026-11-29T18:00:00.000Z");
  });

  it("after an IMDS outage (ExpiredToken): the real, original expiry, not the SDK's stretched one", () => {
    const stretched = { ...keys, expiration: new Date("2026-11-29T12:08:00Z"), originalExpiration: new Date("2026-11-29T11:55:00Z") };
    const line = expiryDetail(stretched, now);
    expect(line).toBe("expired 2026-11-29T11:55:00.000Z (IMDS could not renew them; reused until it can)");
    expect(line).not.toContain("12:08");
  });

  it("reused before their real expiry: still the real one", () => {
    const reused = { ...keys, expiration: new Date("2026-11-29T12:05:30Z"), originalExpiration: new Date("2026-11-29T12:02:00Z") };
    expect(expiryDetail(reused, now)).toBe("expire 2026-11-29T12:02:00.000Z (IMDS could not renew them; reused until it can)");
  });

  it("without any expiry", () => {
    expect(expiryDetail(keys, now)).toBe("no expiry");
  });
});

describe("the probes of the denied side (S3, through aws-sdk-client-mock)", () => {
  const s3Mock = mockClient(S3Client);
  const s3 = new S3Client({ region: "us-east-1", credentials: { accessKeyId: "ASIAX", secretAccessKey: "s" } });
  afterEach(() => {
    s3Mock.reset();
  });
  const probes = deniedProbes({
    sourceBucket: "src",
    outputBucket: "out",
    outputPrefix: "processed/",
    outputProbeKey: "processed/.doc-processor-check/i-1.txt",
    nonce: "n0nce",
    partition: "aws",
  });
  const byName = (start: string): DeniedProbe => probes.find((p) => p.name.startsWith(start))!;
  const s3Error = (name: string, status: number | undefined) =>
    new S3ServiceException({ name, $fault: status !== undefined && status >= 500 ? "server" : "client", $metadata: status === undefined ? {} : { httpStatusCode: status }, message: name });
  const oneByte = () => ({ Body: sdkStreamMixin(Readable.from([Buffer.from("d")])), ContentRange: "bytes 0-0/40" });

  // Each probe: how it is sent, what an allowed answer looks like, and the permission its ✗ line must name.
  const cases = [
    {
      line: "reading the output",
      command: GetObjectCommand,
      allow: () => s3Mock.on(GetObjectCommand).resolves(oneByte()),
      permission: "s3:GetObject on arn:aws:s3:::out/processed/.doc-processor-check/i-1.txt",
      fix: "s3:GetObject on arn:aws:s3:::out/*",
      input: { Bucket: "out", Key: "processed/.doc-processor-check/i-1.txt", Range: "bytes=0-0" },
    },
    {
      line: "deleting in the source",
      command: DeleteObjectCommand,
      allow: () => s3Mock.on(DeleteObjectCommand).resolves({ $metadata: { httpStatusCode: 204 } }),
      permission: "s3:DeleteObject on arn:aws:s3:::src/.doc-processor-check/never-n0nce",
      fix: "s3:DeleteObject on arn:aws:s3:::src/*",
      input: { Bucket: "src", Key: ".doc-processor-check/never-n0nce" },
    },
    {
      line: "deleting in the output",
      command: DeleteObjectCommand,
      allow: () => s3Mock.on(DeleteObjectCommand).resolves({ $metadata: { httpStatusCode: 204 } }),
      permission: "s3:DeleteObject on arn:aws:s3:::out/processed/.doc-processor-check/never-n0nce",
      fix: "s3:DeleteObject on arn:aws:s3:::out/*",
      input: { Bucket: "out", Key: "processed/.doc-processor-check/never-n0nce" },
    },
    {
      line: "listing the source bucket",
      command: ListObjectsV2Command,
      allow: () => s3Mock.on(ListObjectsV2Command).resolves({ KeyCount: 0 }),
      permission: "s3:ListBucket on arn:aws:s3:::src",
      fix: "s3:ListBucket on arn:aws:s3:::src",
      input: { Bucket: "src", MaxKeys: 0, Prefix: ".doc-processor-check/never-n0nce" },
    },
    {
      line: "listing the output bucket",
      command: ListObjectsV2Command,
      allow: () => s3Mock.on(ListObjectsV2Command).resolves({ KeyCount: 0 }),
      permission: "s3:ListBucket on arn:aws:s3:::out",
      fix: "s3:ListBucket on arn:aws:s3:::out",
      input: { Bucket: "out", MaxKeys: 0, Prefix: "processed/.doc-processor-check/never-n0nce" },
    },
  ] as const;

  it("one probe per line, in checklist order", () => {
    expect(probes.map((p) => p.name)).toEqual([
      "reading the output is denied (s3:GetObject)",
      "deleting in the source is denied (s3:DeleteObject)",
      "deleting in the output is denied (s3:DeleteObject)",
      "listing the source bucket is denied (s3:ListBucket)",
      "listing the output bucket is denied (s3:ListBucket)",
    ]);
  });

  describe.each(cases)("$line", ({ line, command, allow, permission, fix, input }) => {
    const probe = byName(line);

    it("sends only the harmless form (max-keys 0, a never-written key, one byte of check's own object)", async () => {
      allow();
      await runDeniedProbe(s3, probe);
      const calls = s3Mock.calls();
      expect(calls).toHaveLength(1);
      expect(calls[0]!.args[0]).toBeInstanceOf(command);
      expect(calls[0]!.args[0].input).toEqual(input);
    });

    it("an allowed answer is ✗ naming the permission, its resource and the fix", async () => {
      allow();
      const v = judgeDeniedProbe(probe, await runDeniedProbe(s3, probe));
      expect(v.ok).toBe(false);
      expect(!v.ok && v.reason).toContain(`the role may use ${permission}`);
      expect(!v.ok && v.reason).toContain(`Fix: remove ${fix} (or whichever resource pattern covers it) from the role's policies`);
    });

    it("AccessDenied is ✓", async () => {
      s3Mock.onAnyCommand().rejects(s3Error("AccessDenied", 403));
      expect(judgeDeniedProbe(probe, await runDeniedProbe(s3, probe))).toEqual({ ok: true, detail: "AccessDenied 403, as it must be" });
    });

    it.each([
      ["no answer at all (connection refused)", Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" }), "S3 did not answer"],
      ["a server error", s3Error("InternalError", 500), "S3 answered InternalError 500"],
      ["throttling", s3Error("SlowDown", 503), "S3 answered SlowDown 503"],
      ["a missing bucket", s3Error("NoSuchBucket", 404), "S3 answered NoSuchBucket 404"],
      ["an authentication failure (not a policy decision)", s3Error("InvalidAccessKeyId", 403), "S3 answered InvalidAccessKeyId 403"],
    ])("%s: ✗ could not check, claiming neither allow nor deny", async (_what, error, cause) => {
      s3Mock.onAnyCommand().rejects(error);
      const v = judgeDeniedProbe(probe, await runDeniedProbe(s3, probe));
      expect(v.ok).toBe(false);
      expect(!v.ok && v.reason).toMatch(/^could not check: /);
      expect(!v.ok && v.reason).toContain(cause);
      expect(!v.ok && v.reason).not.toContain("the role may use");
    });
  });

  it.each([
    ["InvalidRange", 416],
    ["NoSuchKey", 404],
    ["PreconditionFailed", 412],
  ])("reading the output: %s is an answer S3 gives only once authorized, so ✗", async (name, status) => {
    s3Mock.on(GetObjectCommand).rejects(s3Error(name, status));
    const probe = byName("reading the output");
    const v = judgeDeniedProbe(probe, await runDeniedProbe(s3, probe));
    expect(!v.ok && v.reason).toContain("S3 authorized it");
  });

  it("the never-written keys and the listing prefix are new with every nonce", () => {
    const again = deniedProbes({
      sourceBucket: "src",
      outputBucket: "out",
      outputPrefix: "",
      outputProbeKey: ".doc-processor-check/i-1.txt",
      nonce: "other",
      partition: "aws-cn",
    });
    expect(again.map((p) => p.key)).toEqual([
      ".doc-processor-check/i-1.txt",
      ".doc-processor-check/never-other",
      ".doc-processor-check/never-other",
      ".doc-processor-check/never-other",
      ".doc-processor-check/never-other",
    ]);
    expect(again[0]!.resource).toBe("arn:aws-cn:s3:::out/.doc-processor-check/i-1.txt");
  });
});
