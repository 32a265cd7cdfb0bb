import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  classifyGetObjectError,
  MISSING_OR_FORBIDDEN,
  openSource,
  unquoteETag,
} from "../../../src/storage/source.js";
import { sdkTransport } from "../../../src/aws/sdk-transport.js";
import { awsError, chunked, docRef, readAll, sdkBody, sendOptions, testS3Client } from "../pipeline/helpers.js";

describe("classifyGetObjectError", () => {
  it.each([
    [awsError("PreconditionFailed", 412), "superseded", "SOURCE_SUPERSEDED"],
    [awsError("AccessDenied", 403), "missing-or-forbidden", "SOURCE_MISSING_OR_FORBIDDEN"],
    [awsError("NoSuchKey", 404), "missing-or-forbidden", "SOURCE_MISSING_OR_FORBIDDEN"],
    [awsError("InternalError", 500), "read-failed", "SOURCE_READ_FAILED"],
    [awsError("SlowDown", 503), "read-failed", "SOURCE_READ_FAILED"],
    [Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }), "read-failed", "SOURCE_READ_FAILED"],
    [awsError("AbortError", 0), "aborted", "ABORTED"],
  ])("%s -> %s", (err, kind, code) => {
    expect(classifyGetObjectError(err)).toMatchObject({ kind, code });
  });

  it("explains a 403 as missing or forbidden", () => {
    expect(classifyGetObjectError(awsError("AccessDenied", 403)).reason).toContain(MISSING_OR_FORBIDDEN);
    expect(MISSING_OR_FORBIDDEN).toBe(
      "missing or forbidden: without s3:ListBucket S3 reports a missing key as AccessDenied",
    );
  });

  it("calls any error after the signal aborted an abort", () => {
    const ac = new AbortController();
    ac.abort();
    expect(classifyGetObjectError(awsError("InternalError", 500), ac.signal).kind).toBe("aborted");
  });
});

describe("unquoteETag", () => {
  it("removes S3's quotes and nothing else", () => {
    expect(unquoteETag('"abc-2"')).toBe("abc-2");
    expect(unquoteETag("abc")).toBe("abc");
    expect(unquoteETag('W/"abc"')).toBe("abc");
  });
});

describe("openSource", () => {
  let s3: S3Client;
  const objects = () => sdkTransport(async () => s3, new SQSClient({ region: "us-east-1" })).objects;
  let s3Mock: ReturnType<typeof mockClient>;
  beforeEach(() => {
    s3 = testS3Client();
    s3Mock = mockClient(s3);
  });
  afterEach(() => s3Mock.restore());

  it("sends IfMatch with the event's eTag quoted, never VersionId, and the signal", async () => {
    s3Mock.on(GetObjectCommand).resolves({
      Body: sdkBody(chunked(["abc"])) as never,
      ContentLength: 3,
      ETag: '"e1"',
      ContentType: "text/csv",
      LastModified: new Date("2026-01-02T03:04:05Z"),
    });
    const signal = new AbortController().signal;
    const res = await openSource(objects(), docRef({ eTag: "e1", versionId: "v9" }), signal);

    const call = s3Mock.commandCalls(GetObjectCommand)[0]!;
    expect(call.args[0].input).toEqual({ Bucket: "source-bucket", Key: "in/report 1.txt", IfMatch: '"e1"' });
    expect(sendOptions(call)?.abortSignal).toBe(signal);
    expect(res.ok).toBe(true);
    if (!res.ok) return;
    expect(res.object.info).toEqual({
      bucket: "source-bucket",
      key: "in/report 1.txt",
      size: 3,
      eTag: "e1",
      contentType: "text/csv",
      lastModified: new Date("2026-01-02T03:04:05Z"),
    });
    expect(res.object.contentLength).toBe(3);
    expect((await readAll(res.object.body)).toString()).toBe("abc");
  });

  it("does not double-quote an eTag that already has quotes", async () => {
    s3Mock.on(GetObjectCommand).resolves({ Body: sdkBody(chunked([])) as never, ContentLength: 0 });
    await openSource(objects(), docRef({ eTag: '"e2"' }), new AbortController().signal);
    expect(s3Mock.commandCalls(GetObjectCommand)[0]!.args[0].input.IfMatch).toBe('"e2"');
  });

  it("maps a 412 to a superseded failure instead of throwing", async () => {
    s3Mock.on(GetObjectCommand).rejects(awsError("PreconditionFailed", 412));
    const res = await openSource(objects(), docRef(), new AbortController().signal);
    expect(res).toMatchObject({ ok: false, failure: { kind: "superseded" } });
  });

  it("fails without a request when the signal is already aborted", async () => {
    const ac = new AbortController();
    ac.abort();
    const res = await openSource(objects(), docRef(), ac.signal);
    expect(res).toMatchObject({ ok: false, failure: { kind: "aborted" } });
    expect(s3Mock.calls()).toHaveLength(0);
  });

  it("treats a response without a body as a read failure", async () => {
    s3Mock.on(GetObjectCommand).resolves({ ContentLength: 3 });
    const res = await openSource(objects(), docRef(), new AbortController().signal);
    expect(res).toMatchObject({ ok: false, failure: { kind: "read-failed", code: "SOURCE_READ_FAILED" } });
  });
});
