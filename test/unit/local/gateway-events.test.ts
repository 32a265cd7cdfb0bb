// S3 event notification bodies and the error formats: what the daemon parses and what the SDKs/CLI parse must look
// exactly like AWS's.
import { describe, expect, it } from "vitest";
import { authError, deniedMessage, renderError, AwsError } from "../../local/gateway/errors.js";
import { Sequencer, encodeEventKey, objectEvent, ruleMatches, testEvent } from "../../local/gateway/notifications.js";

describe("encodeEventKey (form-urlencoded like S3, '/' kept)", () => {
  it.each([
    ["plain/key.txt", "plain/key.txt"],
    ["dir/with space.txt", "dir/with+space.txt"],
    ["plus+sign.txt", "plus%2Bsign.txt"],
    ["pct%20literal.txt", "pct%2520literal.txt"],
    ["unicode/ñandú/日本語.txt", "unicode/%C3%B1and%C3%BA/%E6%97%A5%E6%9C%AC%E8%AA%9E.txt"],
    ["shot (1)!~'.png", "shot+%281%29%21%7E%27.png"],
    ["a=b&c?d#e*f-g_h.i", "a%3Db%26c%3Fd%23e*f-g_h.i"],
    ["emoji 😀", "emoji+%F0%9F%98%80"],
  ])("%j -> %j", (key, encoded) => {
    expect(encodeEventKey(key)).toBe(encoded);
    // What the daemon does to get the key back.
    expect(decodeURIComponent(encoded.replace(/\+/g, " "))).toBe(key);
  });
});

describe("objectEvent", () => {
  it("has AWS's shape, eTag without quotes", () => {
    const body = objectEvent({
      eventName: "ObjectCreated:Put",
      region: "us-east-1",
      time: new Date("2026-01-02T03:04:05.678Z"),
      bucket: "src",
      bucketOwnerId: "AOWNER",
      key: "a b.txt",
      size: 12,
      eTag: '"abc123"',
      sequencer: "0055AED6DCD90281E5",
      principalId: "AWS:AIDAEXAMPLE",
      sourceIp: "127.0.0.1",
      requestId: "REQ",
      hostId: "HOST",
      configurationId: "cfg",
    });
    expect(JSON.parse(body)).toEqual({
      Records: [
        {
          eventVersion: "2.1",
          eventSource: "aws:s3",
          awsRegion: "us-east-1",
          eventTime: "2026-01-02T03:04:05.678Z",
          eventName: "ObjectCreated:Put",
          userIdentity: { principalId: "AWS:AIDAEXAMPLE" },
          requestParameters: { sourceIPAddress: "127.0.0.1" },
          responseElements: { "x-amz-request-id": "REQ", "x-amz-id-2": "HOST" },
          s3: {
            s3SchemaVersion: "1.0",
            configurationId: "cfg",
            bucket: { name: "src", ownerIdentity: { principalId: "AOWNER" }, arn: "arn:aws:s3:::src" },
            object: { key: "a+b.txt", size: 12, eTag: "abc123", sequencer: "0055AED6DCD90281E5" },
          },
        },
      ],
    });
  });

  it("test event", () => {
    expect(JSON.parse(testEvent("src", new Date("2026-01-01T00:00:00.000Z"), "R", "H"))).toEqual({
      Service: "Amazon S3",
      Event: "s3:TestEvent",
      Time: "2026-01-01T00:00:00.000Z",
      Bucket: "src",
      RequestId: "R",
      HostId: "H",
    });
  });

  it("sequencers are hex and strictly increasing, even within one millisecond", () => {
    const sequencer = new Sequencer(() => 1_700_000_000_000);
    const values = [sequencer.next(), sequencer.next(), sequencer.next()];
    for (const v of values) expect(v).toMatch(/^[0-9A-F]{18}$/);
    expect(values.map((v) => BigInt(`0x${v}`))).toEqual([...values.map((v) => BigInt(`0x${v}`))].sort((a, b) => (a < b ? -1 : 1)));
    expect(new Set(values).size).toBe(3);
  });

  it("rules filter on bucket, prefix, suffix and event type", () => {
    const rule = { bucket: "src", queueName: "q", configurationId: "c", prefix: "in/", suffix: ".pdf" };
    expect(ruleMatches(rule, "src", "in/a.pdf", "ObjectCreated:Put")).toBe(true);
    expect(ruleMatches(rule, "src", "in/a.pdf", "ObjectCreated:Copy")).toBe(true);
    expect(ruleMatches(rule, "out", "in/a.pdf", "ObjectCreated:Put")).toBe(false);
    expect(ruleMatches(rule, "src", "x/a.pdf", "ObjectCreated:Put")).toBe(false);
    expect(ruleMatches(rule, "src", "in/a.txt", "ObjectCreated:Put")).toBe(false);
    expect(ruleMatches(rule, "src", "in/a.pdf", "ObjectRemoved:Delete")).toBe(false);
    expect(ruleMatches({ ...rule, events: ["s3:ObjectRemoved:*"] }, "src", "in/a.pdf", "ObjectRemoved:Delete")).toBe(true);
  });
});

describe("errors in each protocol's format", () => {
  const denied = new AwsError("AccessDenied", "User: u is not <allowed>", 403, "AccessDenied");

  it("S3 XML", () => {
    const r = renderError("s3", denied, "RID");
    expect(r.status).toBe(403);
    expect(r.body).toContain("<Error><Code>AccessDenied</Code><Message>User: u is not &lt;allowed&gt;</Message><RequestId>RID</RequestId>");
  });

  it("SQS JSON with x-amzn-query-error", () => {
    const r = renderError("sqs-json", denied, "RID");
    expect(JSON.parse(r.body)).toEqual({ __type: "com.amazonaws.sqs#AccessDenied", message: "User: u is not <allowed>" });
    expect(r.headers["x-amzn-query-error"]).toBe("AccessDenied;Sender");
    const fauxqsCode = renderError("sqs-json", new AwsError("QueueDoesNotExist", "x", 400, "AWS.SimpleQueueService.NonExistentQueue"), "R");
    expect(fauxqsCode.headers["x-amzn-query-error"]).toBe("AWS.SimpleQueueService.NonExistentQueue;Sender");
  });

  it("SQS query, STS and EC2 XML", () => {
    expect(renderError("sqs-query", denied, "RID").body).toContain(
      "<ErrorResponse xmlns=\"http://queue.amazonaws.com/doc/2012-11-05/\"><Error><Type>Sender</Type><Code>AccessDenied</Code>",
    );
    expect(renderError("sts", new AwsError("ExpiredToken", "m", 403), "RID").body).toContain(
      '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>ExpiredToken</Code>',
    );
    expect(renderError("ec2", new AwsError("UnauthorizedOperation", "m", 403), "RID").body).toContain(
      "<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>m</Message></Error></Errors><RequestID>RID</RequestID></Response>",
    );
    expect(renderError("sqs-query", new AwsError("InternalError", "m", 500), "R").body).toContain("<Type>Receiver</Type>");
  });

  it("authentication failures use each service's code", () => {
    expect(authError({ kind: "unknown-key" }, "s3")).toMatchObject({ code: "InvalidAccessKeyId", status: 403 });
    expect(authError({ kind: "unknown-key" }, "sqs")).toMatchObject({ code: "InvalidClientTokenId", status: 403 });
    expect(authError({ kind: "unknown-key" }, "sts")).toMatchObject({ code: "InvalidClientTokenId" });
    expect(authError({ kind: "expired" }, "s3")).toMatchObject({ code: "ExpiredToken", status: 400 });
    expect(authError({ kind: "expired" }, "sqs")).toMatchObject({ code: "ExpiredToken", status: 403 });
    expect(authError({ kind: "skew" }, "sqs")).toMatchObject({ code: "RequestTimeTooSkewed", status: 403 });
    expect(authError({ kind: "signature" }, "s3")).toMatchObject({ code: "SignatureDoesNotMatch", status: 403 });
    expect(authError({ kind: "invalid-token" }, "s3")).toMatchObject({ code: "InvalidToken" });
    expect(authError({ kind: "payload-hash" }, "s3")).toMatchObject({ code: "XAmzContentSHA256Mismatch", status: 400 });
  });

  it("denied messages read like AWS's", () => {
    const arn = "arn:aws:sts::123456789012:assumed-role/R/i-1";
    expect(deniedMessage(arn, "s3:PutObject", "arn:aws:s3:::b/k", false, "s3")).toBe(
      `User: ${arn} is not authorized to perform: s3:PutObject on resource: "arn:aws:s3:::b/k" because no identity-based policy allows the s3:PutObject action`,
    );
    expect(deniedMessage(arn, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q", false, "sqs")).toBe(
      `User: ${arn} is not authorized to perform: sqs:sendmessage on resource: arn:aws:sqs:us-east-1:1:q because no identity-based policy allows the sqs:sendmessage action`,
    );
    expect(deniedMessage(arn, "ec2:DescribeInstances", "*", false, "ec2")).toBe(
      `You are not authorized to perform this operation. User: ${arn} is not authorized to perform: ec2:DescribeInstances because no identity-based policy allows the ec2:DescribeInstances action`,
    );
    expect(deniedMessage(arn, "s3:GetObject", "arn:aws:s3:::b/k", true, "s3")).toContain("with an explicit deny in an identity-based policy");
  });
});
