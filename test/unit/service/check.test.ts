// The judgements behind `check`'s permission lines: which answers prove a check, and which fail it (and why).
import { describe, expect, it } from "vitest";
import { ExitCode } from "../../../src/errors.js";
import {
  expiryDetail,
  judgeOtherServiceCall,
  judgeQueueProbes,
  judgeSourceRead,
  judgeSourceWrite,
  judgeTokenlessStatus,
  type ProbeResult,
} from "../../../src/service/check.js";

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
