// The lean transport's pure decisions as tables: SQS error names (checked against what @aws-sdk/client-sqs does
// with the same answers), S3 XML errors, retry classification, S3 addressing and key encoding, checksum helpers.
import { DeleteMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { retryAfterHint, retryErrorType } from "../../../../src/aws/lean/client.js";
import { isCompositeChecksum, responseChecksum } from "../../../../src/aws/lean/checksums.js";
import { LeanServiceError, bareErrorCode, s3Error, sqsError, sqsErrorName } from "../../../../src/aws/lean/errors.js";
import { S3Addressing, defaultS3Endpoint, encodeKey, isVirtualHostableBucket } from "../../../../src/aws/lean/s3.js";

const meta = () => ({ attempts: 1, totalRetryDelay: 0 });

// [x-amzn-query-error, __type, status]: the answers SQS gives.
const SQS_ANSWERS: [string | undefined, string | undefined, number][] = [
  ["AWS.SimpleQueueService.NonExistentQueue;Sender", "com.amazonaws.sqs#QueueDoesNotExist", 400],
  ["ReceiptHandleIsInvalid;Sender", "com.amazonaws.sqs#ReceiptHandleIsInvalid", 400],
  ["InvalidParameterValue;Sender", "com.amazon.coral.validate#ValidationException", 400],
  ["AWS.SimpleQueueService.MessageNotInflight;Sender", "com.amazonaws.sqs#MessageNotInflight", 400],
  ["AccessDenied;Sender", "com.amazon.coral.service#AccessDeniedException", 400],
  ["RequestThrottled;Sender", "com.amazonaws.sqs#RequestThrottled", 403],
  ["KMS.ThrottlingException;Sender", "com.amazonaws.sqs#KmsThrottled", 400],
  [undefined, "com.amazonaws.sqs#InvalidAddress", 400],
  [undefined, "ThrottlingException:http://internal.amazon.com/coral/", 400],
  ["InternalError;Receiver", "com.amazon.coral.service#InternalFailure", 500],
];

describe("SQS error names", () => {
  it("match @aws-sdk/client-sqs's for the same answers", async () => {
    let current = 0;
    const server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        const [query, type, status] = SQS_ANSWERS[current]!;
        const headers: Record<string, string> = { "content-type": "application/x-amz-json-1.0" };
        if (query !== undefined) headers["x-amzn-query-error"] = query;
        res.writeHead(status, headers);
        res.end(JSON.stringify({ __type: type, message: "m" }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const sdk = new SQSClient({ region: "us-east-1", endpoint, credentials: { accessKeyId: "a", secretAccessKey: "b" }, maxAttempts: 1 });
    try {
      for (current = 0; current < SQS_ANSWERS.length; current++) {
        const [query, type, status] = SQS_ANSWERS[current]!;
        const sdkError = (await sdk.send(new DeleteMessageCommand({ QueueUrl: `${endpoint}/1/q`, ReceiptHandle: "x" })).then(
          () => undefined,
          (e: unknown) => e,
        )) as { name: string; Code?: string; $fault: string };
        const headers = query === undefined ? {} : { "x-amzn-query-error": query };
        const ours = sqsError(status, headers, Buffer.from(JSON.stringify({ __type: type, message: "m" })), meta());
        expect([ours.name, ours.Code, ours.$fault], `${query} / ${type}`).toEqual([sdkError.name, sdkError.Code, sdkError.$fault]);
      }
    } finally {
      sdk.destroy();
      server.close();
    }
  });

  it.each([
    ["com.amazonaws.sqs#QueueDoesNotExist", "QueueDoesNotExist"],
    ["ThrottlingException:http://internal", "ThrottlingException"],
    ["a#b,c", "b"],
    ["Plain", "Plain"],
  ])("bareErrorCode(%s) = %s", (raw, bare) => {
    expect(bareErrorCode(raw)).toBe(bare);
  });

  it("keeps the query code of a modeled error as Code", () => {
    expect(sqsErrorName("AWS.SimpleQueueService.NonExistentQueue;Sender", undefined)).toEqual({ name: "QueueDoesNotExist", code: "AWS.SimpleQueueService.NonExistentQueue" });
    expect(sqsErrorName(undefined, undefined)).toEqual({ name: "Unknown" });
  });
});

describe("S3 errors", () => {
  it.each([
    [404, "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><RequestId>R1</RequestId></Error>", "NoSuchKey", "R1"],
    [412, '<?xml version="1.0"?>\n<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-Match</Condition></Error>', "PreconditionFailed", undefined],
    [403, "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>", "AccessDenied", undefined],
    [503, "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>", "SlowDown", undefined],
    [404, "", "NotFound", undefined],
    [403, "<html><body>Forbidden</body></html>", "Forbidden", undefined],
    [500, "<Error><Code>Intern", "InternalError", undefined],
    [400, "<Error><Code>bad code with spaces</Code></Error>", "BadRequest", undefined],
  ])("%i %s -> %s", (status, body, name, requestId) => {
    const err = s3Error(status, Buffer.from(body), meta());
    expect(err).toBeInstanceOf(LeanServiceError);
    expect(err.name).toBe(name);
    expect(err.$fault).toBe(status >= 500 ? "server" : "client");
    expect(err.$metadata.httpStatusCode === undefined || typeof err.$metadata.httpStatusCode === "number").toBe(true);
    expect(err.$metadata.requestId).toBe(requestId);
  });
});

describe("retry decisions (the SDK's classification)", () => {
  const svc = (name: string, status: number) => new LeanServiceError(name, "m", status >= 500 ? "server" : "client", { httpStatusCode: status, attempts: 1, totalRetryDelay: 0 });
  const node = (code: string) => Object.assign(new Error(code), { code });
  it.each([
    [svc("ThrottlingException", 400), "THROTTLING"],
    [svc("RequestThrottled", 403), "THROTTLING"],
    [svc("SlowDown", 503), "THROTTLING"],
    [svc("RequestLimitExceeded", 400), "THROTTLING"],
    [svc("TooManyRequests", 429), "THROTTLING"],
    [svc("InternalError", 500), "TRANSIENT"],
    [svc("ServiceUnavailable", 503), "TRANSIENT"],
    [svc("BadGateway", 502), "TRANSIENT"],
    [svc("RequestTimeout", 400), "TRANSIENT"],
    [svc("NotImplemented", 501), "SERVER_ERROR"],
    [svc("AccessDenied", 403), "CLIENT_ERROR"],
    [svc("NoSuchKey", 404), "CLIENT_ERROR"],
    [svc("PreconditionFailed", 412), "CLIENT_ERROR"],
    [node("ECONNRESET"), "TRANSIENT"],
    [node("EPIPE"), "TRANSIENT"],
    [node("ETIMEDOUT"), "TRANSIENT"],
    [node("ECONNREFUSED"), "TRANSIENT"],
    [Object.assign(new Error("t"), { name: "TimeoutError" }), "TRANSIENT"],
    [Object.assign(new Error("a"), { name: "AbortError", code: "ECONNRESET" }), "CLIENT_ERROR"],
  ])("%s -> %s", (error, type) => {
    expect(retryErrorType(error)).toBe(type);
  });

  it("a skew error is transient only once the offset was corrected", () => {
    const e = svc("RequestTimeTooSkewed", 403);
    expect(retryErrorType(e)).toBe("CLIENT_ERROR");
    e.$metadata.clockSkewCorrected = true;
    expect(retryErrorType(e)).toBe("TRANSIENT");
  });

  it("reads Retry-After as seconds or a date", () => {
    expect(retryAfterHint("3", 1_000)?.getTime()).toBe(4_000);
    expect(retryAfterHint("Wed, 01 Jan 2025 00:00:00 GMT", 0)?.toISOString()).toBe("2025-01-01T00:00:00.000Z");
    expect(retryAfterHint("soon", 0)).toBeUndefined();
    expect(retryAfterHint(undefined, 0)).toBeUndefined();
  });
});

describe("S3 addressing", () => {
  it.each([
    ["http://127.0.0.1:4566", "my-bucket", "a/b c.txt", "127.0.0.1:4566", "/my-bucket/a/b%20c.txt"],
    ["http://[::1]:4566", "my-bucket", "k", "[::1]:4566", "/my-bucket/k"],
    ["https://s3.us-east-1.amazonaws.com", "my-bucket", "k", "my-bucket.s3.us-east-1.amazonaws.com", "/k"],
    ["https://s3.us-east-1.amazonaws.com", "my.dotted.bucket", "k", "s3.us-east-1.amazonaws.com", "/my.dotted.bucket/k"],
    ["http://s3.local:9000", "my.dotted.bucket", "k", "my.dotted.bucket.s3.local:9000", "/k"],
    ["https://s3.us-east-1.amazonaws.com", "Upper_Case", "k", "s3.us-east-1.amazonaws.com", "/Upper_Case/k"],
    ["https://s3.cn-north-1.amazonaws.com.cn", "b-1x", "k", "b-1x.s3.cn-north-1.amazonaws.com.cn", "/k"],
    ["https://minio.example:9000/base", "b-1x", "k", "b-1x.minio.example:9000", "/base/k"],
  ])("%s %s %s -> %s %s", (endpoint, bucket, key, host, path) => {
    const addressed = new S3Addressing(endpoint).address(bucket, key);
    expect(addressed.target.host).toBe(host);
    expect(addressed.path).toBe(path);
  });

  it("defaults to the regional endpoint, amazonaws.com.cn in China", () => {
    expect(defaultS3Endpoint("eu-west-1")).toBe("https://s3.eu-west-1.amazonaws.com");
    expect(defaultS3Endpoint("cn-northwest-1")).toBe("https://s3.cn-northwest-1.amazonaws.com.cn");
  });

  it.each([
    ["plain.txt", "plain.txt"],
    ["dir/sub/file.pdf", "dir/sub/file.pdf"],
    ["a b+c=d&e", "a%20b%2Bc%3Dd%26e"],
    ["ü/é", "%C3%BC/%C3%A9"],
    ["!'()*~-_.", "%21%27%28%29%2A~-_."],
    ["a//b/", "a//b/"],
    ["%41", "%2541"],
  ])("encodes key %s as %s", (key, encoded) => {
    expect(encodeKey(key)).toBe(encoded);
  });

  it.each([
    ["abc", false, true],
    ["ab", false, false],
    ["a-b-c", false, true],
    ["-abc", false, false],
    ["a.b.c", false, false],
    ["a.b.c", true, true],
    ["a..b", true, false],
    ["192.168.1.1", true, false],
    ["ABC", false, false],
  ])("isVirtualHostableBucket(%s, dots %s) = %s", (bucket, dots, expected) => {
    expect(isVirtualHostableBucket(bucket, dots)).toBe(expected);
  });
});

describe("response checksums", () => {
  it("picks the SDK's priority order and skips composite ones", () => {
    expect(responseChecksum({ "x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-sha256": "x" })?.algorithm).toBe("SHA256");
    expect(responseChecksum({ "x-amz-checksum-crc32c": "AAAAAA==", "x-amz-checksum-crc32": "AAAAAA==" })?.algorithm).toBe("CRC32");
    expect(responseChecksum({ "x-amz-checksum-crc64nvme": "AAAAAAAAAAA=" })?.algorithm).toBe("CRC64NVME");
    expect(responseChecksum({ "x-amz-checksum-crc32": "AAAAAA==-12" })).toBeUndefined();
    expect(responseChecksum({})).toBeUndefined();
  });

  it.each([
    ["AAAAAA==-1", true],
    ["AAAAAA==-10000", true],
    ["AAAAAA==-10001", false],
    ["AAAAAA==-01", false],
    ["AAAAAA==", false],
  ])("isCompositeChecksum(%s) = %s", (value, composite) => {
    expect(isCompositeChecksum(value)).toBe(composite);
  });
});
