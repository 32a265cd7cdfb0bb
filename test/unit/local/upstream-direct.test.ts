// The upstream's direct path (fauxqs's store and SQS actions called in-process) against fauxqs's own HTTP routes: for
// every request the direct path takes, the same status, headers (those the gateway passes on), body and stored
// object; for every request it must not take (conditions, ranges, copies, encoded keys, missing objects…), undefined.
import type http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readAll, startUpstream, type BufferedAnswer, type Upstream, type UpstreamRequest } from "../../local/gateway/upstream.js";

// What the gateway drops from fauxqs's answers (server.ts NOT_RETURNED): framing and fauxqs's own request ids.
const NOT_COMPARED = new Set(["connection", "keep-alive", "transfer-encoding", "date", "x-amz-request-id", "x-amz-id-2"]);

let upstream: Upstream;

beforeAll(async () => {
  upstream = await startUpstream({ region: "us-east-1" });
  for (const bucket of ["src", "out"]) {
    const created = await overHttp({ method: "PUT", path: `/${bucket}`, headers: {} });
    expect(created.status).toBe(200);
  }
});
afterAll(async () => upstream.close());

async function overHttp(req: UpstreamRequest): Promise<BufferedAnswer> {
  const response = await upstream.request(req);
  return { status: response.statusCode ?? 0, headers: response.headers, body: await readAll(response) };
}

function compared(answer: BufferedAnswer): { status: number; headers: [string, unknown][]; body: string } {
  const headers = Object.entries(answer.headers).filter(([name]) => !NOT_COMPARED.has(name));
  return { status: answer.status, headers, body: answer.body.toString("base64") };
}

const put = (path: string, body: string | Buffer, headers: http.OutgoingHttpHeaders = {}): UpstreamRequest => ({
  method: "PUT",
  path,
  headers: { "content-type": "text/plain", ...headers },
  body: Buffer.from(body),
});
// md5("conditional"), as fauxqs quotes it.
const ETAG_OF_COND = '"715387e1ada6d9fc5cc5d038118c3073"';
const get = (path: string, headers: http.OutgoingHttpHeaders = {}): UpstreamRequest => ({ method: "GET", path, headers });

describe("direct S3 path", () => {
  const keys = ["bench/doc-00001.txt", "a", "x/y/z.json", "under_score~tilde-dash.txt", ".doc-processor-check/probe", "k".repeat(400)];

  it.each(keys)("PutObject then GetObject of %s answer as fauxqs's HTTP routes do", async (key) => {
    const headers = { "content-type": "application/json; charset=utf-8", "x-amz-meta-source": "s3://src/a b", "x-amz-meta-empty": "" };
    const viaHttp = await overHttp(put(`/out/${key}?x-id=PutObject`, `{"key":"${key}"}`, headers));
    const storedByHttp = await overHttp(get(`/out/${key}`));
    const direct = upstream.direct(put(`/out/${key}?x-id=PutObject`, `{"key":"${key}"}`, headers));
    expect(direct).toBeDefined();
    expect(compared(direct!)).toEqual(compared(viaHttp));
    // The object the direct PutObject stored, read over HTTP, is the one the HTTP PutObject stored.
    const storedByDirect = await overHttp(get(`/out/${key}`));
    const withoutDate = (a: BufferedAnswer) => ({ ...compared(a), headers: compared(a).headers.filter(([n]) => n !== "last-modified") });
    expect(withoutDate(storedByDirect)).toEqual(withoutDate(storedByHttp));
    // And reading it directly gives what HTTP gives, last-modified included.
    for (const path of [`/out/${key}`, `/out/${key}?x-id=GetObject`]) {
      const read = upstream.direct(get(path));
      expect(read).toBeDefined();
      expect(compared(read!)).toEqual(compared(await overHttp(get(path))));
    }
  });

  it("a binary body of 1 MiB is stored and read back byte for byte", async () => {
    const bytes = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31) & 0xff;
    const direct = upstream.direct(put("/src/bin/blob", bytes, { "content-type": "application/octet-stream" }));
    expect(direct?.status).toBe(200);
    const viaHttp = await overHttp(get("/src/bin/blob"));
    expect(viaHttp.body.equals(bytes)).toBe(true);
    expect(compared(upstream.direct(get("/src/bin/blob"))!)).toEqual(compared(viaHttp));
  });

  it("stores a copy, not the caller's buffer", async () => {
    const body = Buffer.from("original");
    upstream.direct(put("/src/copy/check", body));
    body.write("changed!");
    expect(upstream.direct(get("/src/copy/check"))!.body.toString()).toBe("original");
  });

  it("If-Match and If-None-Match that let the object through answer as over HTTP", async () => {
    expect((await overHttp(put("/src/cond/k", "conditional"))).headers.etag).toBe(ETAG_OF_COND);
    for (const headers of [{ "if-match": ETAG_OF_COND }, { "if-none-match": '"other"' }, { "if-match": "" }, { "if-none-match": "" }, { "if-match": ETAG_OF_COND, "if-none-match": "*" }]) {
      const direct = upstream.direct(get("/src/cond/k", headers));
      expect(direct?.status).toBe(200);
      expect(compared(direct!)).toEqual(compared(await overHttp(get("/src/cond/k", headers))));
    }
  });

  it.each<[string, UpstreamRequest]>([
    ["a missing key (NoSuchKey)", get("/src/never-written")],
    ["a missing bucket (NoSuchBucket)", get("/nope/k")],
    ["a put into a missing bucket", put("/nope/k", "x")],
    ["a range", get("/src/bin/blob", { range: "bytes=0-9" })],
    ["If-Match that fails (412)", get("/src/bin/blob", { "if-match": '"x"' })],
    ["If-None-Match that holds (304)", get("/src/cond/k", { "if-none-match": ETAG_OF_COND })],
    ["If-Modified-Since", get("/src/bin/blob", { "if-modified-since": new Date().toUTCString() })],
    ["If-Unmodified-Since", get("/src/bin/blob", { "if-unmodified-since": new Date().toUTCString() })],
    ["another query parameter", get("/src/bin/blob?versionId=1")],
    ["an upload part", put("/src/k?partNumber=1&uploadId=u&x-id=UploadPart", "x")],
    ["a copy", put("/src/k2", "", { "x-amz-copy-source": "/src/bin/blob" })],
    ["an empty body", put("/src/k3", "")],
    ["no content type", { method: "PUT", path: "/src/k4", headers: {}, body: Buffer.from("x") }],
    ["an SQS JSON content type", put("/src/k5", "{}", { "content-type": "application/x-amz-json-1.0" })],
    ["a form content type", put("/src/k6", "a=b", { "content-type": "application/x-www-form-urlencoded" })],
    ["aws-chunked content", put("/src/k7", "x", { "content-encoding": "aws-chunked" })],
    ["a percent-encoded key", get("/src/a%20b")],
    ["a '+' in the key", get("/src/a+b")],
    ["an empty segment", get("/src/a//b")],
    ["a dot segment", get("/src/a/../bin/blob")],
    ["a trailing slash", get("/src/bin/")],
    ["a bucket-level request", get("/src")],
    ["HEAD", { method: "HEAD", path: "/src/bin/blob", headers: {} }],
    ["DELETE", { method: "DELETE", path: "/src/bin/blob", headers: {} }],
  ])("leaves %s to the HTTP routes", (_why, req) => {
    expect(upstream.direct(req)).toBeUndefined();
  });

  it("leaves a request whose caller has gone to the HTTP path (which refuses it)", () => {
    const controller = new AbortController();
    controller.abort();
    expect(upstream.direct({ ...get("/src/bin/blob"), signal: controller.signal })).toBeUndefined();
  });
});

describe("direct SQS path", () => {
  let queueUrl = "";
  const sqsOverHttp = async (operation: string, input: Record<string, unknown>) => {
    const answer = await overHttp({
      method: "POST",
      path: "/",
      headers: { "content-type": "application/x-amz-json-1.0", "x-amz-target": `AmazonSQS.${operation}` },
      body: Buffer.from(JSON.stringify(input)),
    });
    const text = answer.body.toString("utf8");
    return { status: answer.status, queryError: answer.headers["x-amzn-query-error"], json: text.trim() === "" ? {} : (JSON.parse(text) as Record<string, unknown>) };
  };
  const sqsDirect = async (operation: string, input: Record<string, unknown>) => {
    const result = await upstream.sqs(operation, input);
    return { status: result.status, queryError: result.headers["x-amzn-query-error"], json: result.json };
  };

  beforeAll(async () => {
    const created = await upstream.sqs("CreateQueue", { QueueName: "direct-test", Attributes: { VisibilityTimeout: "30" } });
    queueUrl = String(created.json["QueueUrl"]);
  });

  it.each<[string, string, Record<string, unknown>]>([
    ["a missing queue", "ReceiveMessage", { QueueUrl: "http://sqs.us-east-1.localhost:1/000000000000/none" }],
    ["no QueueUrl", "SendMessage", { MessageBody: "x" }],
    ["a bad MaxNumberOfMessages", "ReceiveMessage", { QueueUrl: "QUEUE", MaxNumberOfMessages: 11 }],
    ["an empty batch", "DeleteMessageBatch", { QueueUrl: "QUEUE", Entries: [] }],
    ["duplicate batch ids", "DeleteMessageBatch", { QueueUrl: "QUEUE", Entries: [{ Id: "a", ReceiptHandle: "h" }, { Id: "a", ReceiptHandle: "h" }] }],
    ["unknown handles", "DeleteMessageBatch", { QueueUrl: "QUEUE", Entries: [{ Id: "a", ReceiptHandle: "h" }] }],
    ["an unknown handle", "ChangeMessageVisibility", { QueueUrl: "QUEUE", ReceiptHandle: "h", VisibilityTimeout: 0 }],
    ["an empty queue", "ReceiveMessage", { QueueUrl: "QUEUE", WaitTimeSeconds: 0, MaxNumberOfMessages: 10 }],
    ["attributes", "GetQueueAttributes", { QueueUrl: "QUEUE", AttributeNames: ["VisibilityTimeout", "MaximumMessageSize", "QueueArn"] }],
  ])("%s: %s answers as over HTTP", async (_why, operation, template) => {
    const input = JSON.parse(JSON.stringify(template).replace('"QUEUE"', JSON.stringify(queueUrl))) as Record<string, unknown>;
    expect(await sqsDirect(operation, input)).toEqual(await sqsOverHttp(operation, input));
  });

  it("send, receive, change visibility and delete give the HTTP answers' shapes and effects", async () => {
    const sent = await sqsDirect("SendMessage", { QueueUrl: queueUrl, MessageBody: "héllo", MessageAttributes: { a: { DataType: "String", StringValue: "b" } } });
    const sentHttp = await sqsOverHttp("SendMessage", { QueueUrl: queueUrl, MessageBody: "héllo", MessageAttributes: { a: { DataType: "String", StringValue: "b" } } });
    const mask = (json: Record<string, unknown>) => JSON.parse(JSON.stringify(json).replace(/"MessageId":"[^"]+"/g, '"MessageId":"-"')) as unknown;
    expect(mask(sent.json)).toEqual(mask(sentHttp.json));
    expect(sent.status).toBe(200);

    const received = await sqsDirect("ReceiveMessage", { QueueUrl: queueUrl, MaxNumberOfMessages: 10, AttributeNames: ["ApproximateReceiveCount"], MessageAttributeNames: ["All"] });
    const messages = received.json["Messages"] as { ReceiptHandle: string; Body: string; Attributes: Record<string, string>; MessageAttributes: unknown }[];
    expect(messages.map((m) => m.Body)).toEqual(["héllo", "héllo"]);
    expect(messages[0]!.Attributes).toEqual({ ApproximateReceiveCount: "1" });
    expect(messages[0]!.MessageAttributes).toEqual({ a: { DataType: "String", StringValue: "b" } });

    // Visible again at once, then received over HTTP: the same store behind both paths.
    const handles = messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0 }));
    expect(await sqsDirect("ChangeMessageVisibilityBatch", { QueueUrl: queueUrl, Entries: handles })).toMatchObject({ status: 200, json: { Successful: [{ Id: "0" }, { Id: "1" }], Failed: [] } });
    const again = await sqsOverHttp("ReceiveMessage", { QueueUrl: queueUrl, MaxNumberOfMessages: 10 });
    const againHandles = (again.json["Messages"] as { ReceiptHandle: string }[]).map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle }));
    expect(await sqsDirect("DeleteMessageBatch", { QueueUrl: queueUrl, Entries: againHandles })).toMatchObject({ status: 200, json: { Successful: [{ Id: "0" }, { Id: "1" }], Failed: [] } });
    expect(await sqsDirect("ReceiveMessage", { QueueUrl: queueUrl, WaitTimeSeconds: 0 })).toEqual({ status: 200, queryError: undefined, json: {} });
  });

  it("a long poll ends when a message arrives, and an aborted one rejects while the poll goes on", async () => {
    const polling = upstream.sqs("ReceiveMessage", { QueueUrl: queueUrl, WaitTimeSeconds: 5 });
    await upstream.sqs("SendMessage", { QueueUrl: queueUrl, MessageBody: "late" });
    const got = await polling;
    const message = (got.json["Messages"] as { Body: string; ReceiptHandle: string }[])[0]!;
    expect(message.Body).toBe("late");
    await upstream.sqs("DeleteMessage", { QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle });

    const controller = new AbortController();
    const aborted = upstream.sqs("ReceiveMessage", { QueueUrl: queueUrl, WaitTimeSeconds: 5 }, controller.signal);
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ name: "AbortError" });
    const before = new AbortController();
    before.abort();
    await expect(upstream.sqs("SendMessage", { QueueUrl: queueUrl, MessageBody: "never" }, before.signal)).rejects.toMatchObject({ name: "AbortError" });
  });
});
