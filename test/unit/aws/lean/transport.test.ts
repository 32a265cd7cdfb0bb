// The lean transport against a scripted node:http server on 127.0.0.1: the wire form of each call, errors in the
// SDK's shape, retries (503 then 200, throttling, resets, a consumed stream never replayed), abort, timeouts,
// checksums, clock skew, credentials failures. Backoff jitter is 0 (random: () => 0) so retries are immediate.
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { crc32 } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLeanTransport, LeanServiceError, type LeanTransportOptions } from "../../../../src/aws/lean/index.js";
import type { Transport } from "../../../../src/aws/transport.js";
import { decodeAwsChunked } from "../../../local/gateway/payload.js";
import { json, startServer, type TestServer } from "./server.js";

const CREDS = { accessKeyId: "AKIDLEAN", secretAccessKey: "secret", sessionToken: "token-1" };
const QUEUE_URL = "http://127.0.0.1/123456789012/q";
const md5 = (body: string): string => createHash("md5").update(body).digest("hex");

let server: TestServer;
let transport: Transport;

function make(overrides: Partial<LeanTransportOptions> = {}): Transport {
  transport?.destroy();
  transport = createLeanTransport({
    region: "us-east-1",
    credentials: async () => CREDS,
    sqsEndpoint: server.url,
    s3Endpoint: server.url,
    maxSockets: 8,
    connectionTimeoutMs: 1_000,
    requestTimeoutMs: 2_000,
    maxAttempts: 4,
    random: () => 0,
    ...overrides,
  });
  return transport;
}

const receiveInput = { queueUrl: QUEUE_URL, maxMessages: 10, waitTimeSeconds: 20, visibilityTimeoutSeconds: 30, systemAttributes: ["ApproximateReceiveCount"] };
const never = new AbortController().signal;

async function caught(promise: Promise<unknown>): Promise<LeanServiceError & { code?: string; Code?: string }> {
  try {
    await promise;
  } catch (err) {
    return err as LeanServiceError;
  }
  throw new Error("expected a rejection");
}

function b64(n: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b.toString("base64");
}

beforeEach(async () => {
  server = await startServer();
  make();
});
afterEach(async () => {
  transport.destroy();
  await server.close();
});

describe("SQS (AWS JSON 1.0)", () => {
  it("sends ReceiveMessage in the SDK's wire form and passes Messages through", async () => {
    const messages = [{ MessageId: "m1", ReceiptHandle: "rh1", Body: "{}", MD5OfBody: md5("{}"), Attributes: { ApproximateReceiveCount: "1" } }];
    server.handle((_req, res) => json(res, 200, { Messages: messages }));
    await expect(transport.queue.receiveMessages(receiveInput, never)).resolves.toEqual(messages);
    const [r] = server.requests;
    expect(r!.method).toBe("POST");
    expect(r!.path).toBe("/");
    expect(r!.headers["content-type"]).toBe("application/x-amz-json-1.0");
    expect(r!.headers["x-amz-target"]).toBe("AmazonSQS.ReceiveMessage");
    expect(r!.headers["x-amzn-query-mode"]).toBe("true");
    expect(r!.headers["x-amz-security-token"]).toBe("token-1");
    expect(r!.headers["authorization"]).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDLEAN\/\d{8}\/us-east-1\/sqs\/aws4_request, SignedHeaders=[^,]*x-amz-target[^,]*, Signature=[0-9a-f]{64}$/);
    expect(JSON.parse(r!.body.toString())).toEqual({
      QueueUrl: QUEUE_URL,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 20,
      VisibilityTimeout: 30,
      MessageSystemAttributeNames: ["ApproximateReceiveCount"],
    });
  });

  it("fails a receive whose message body does not match its MD5OfBody, as the SDK does", async () => {
    server.handle((_req, res) =>
      json(res, 200, {
        Messages: [
          { MessageId: "ok", ReceiptHandle: "a", Body: "fine", MD5OfBody: md5("fine") },
          { MessageId: "bad", ReceiptHandle: "b", Body: "changed", MD5OfBody: md5("original") },
        ],
      }),
    );
    const err = await caught(transport.queue.receiveMessages(receiveInput, never));
    expect(err.name).toBe("UnexpectedResponse");
    expect(err.message).toBe("Invalid MD5 checksum on messages: bad");
  });

  it("answers [] for an empty long poll", async () => {
    server.handle((_req, res) => json(res, 200, {}));
    await expect(transport.queue.receiveMessages(receiveInput, never)).resolves.toEqual([]);
  });

  it("lists a batch's failed entries and sends the entries as the SDK does", async () => {
    server.handle((_req, res) =>
      json(res, 200, { Successful: [{ Id: "m0" }], Failed: [{ Id: "m1", Code: "ReceiptHandleIsInvalid", Message: "bad", SenderFault: true }] }),
    );
    const failures = await transport.queue.deleteMessageBatch(QUEUE_URL, [
      { id: "m0", receiptHandle: "a" },
      { id: "m1", receiptHandle: "b" },
    ]);
    expect(failures).toEqual([{ id: "m1", code: "ReceiptHandleIsInvalid", message: "bad", senderFault: true }]);
    expect(JSON.parse(server.requests[0]!.body.toString())).toEqual({
      QueueUrl: QUEUE_URL,
      Entries: [
        { Id: "m0", ReceiptHandle: "a" },
        { Id: "m1", ReceiptHandle: "b" },
      ],
    });
    await transport.queue.changeVisibilityBatch(QUEUE_URL, [{ id: "m0", receiptHandle: "a" }], 60);
    expect(server.requests[1]!.headers["x-amz-target"]).toBe("AmazonSQS.ChangeMessageVisibilityBatch");
    expect((JSON.parse(server.requests[1]!.body.toString()) as { Entries: unknown }).Entries).toEqual([{ Id: "m0", ReceiptHandle: "a", VisibilityTimeout: 60 }]);
    await transport.queue.changeVisibility(QUEUE_URL, "a", 0);
    await transport.queue.deleteMessage(QUEUE_URL, "a");
    expect(server.requests.map((r) => r.headers["x-amz-target"])).toEqual([
      "AmazonSQS.DeleteMessageBatch",
      "AmazonSQS.ChangeMessageVisibilityBatch",
      "AmazonSQS.ChangeMessageVisibility",
      "AmazonSQS.DeleteMessage",
    ]);
  });

  it("throws the SDK's error shape: modeled name, query Code, status, request id, attempts, fault", async () => {
    server.handle((_req, res) =>
      json(res, 400, { __type: "com.amazonaws.sqs#QueueDoesNotExist", message: "The specified queue does not exist." }, {
        "x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender",
      }),
    );
    const err = await caught(transport.queue.deleteMessage(QUEUE_URL, "x"));
    expect(err).toBeInstanceOf(LeanServiceError);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe("QueueDoesNotExist");
    expect(err.Code).toBe("AWS.SimpleQueueService.NonExistentQueue");
    expect(err.message).toBe("The specified queue does not exist.");
    expect(err.$fault).toBe("client");
    expect(err.$metadata).toMatchObject({ httpStatusCode: 400, requestId: "req-1", attempts: 1 });
    expect(server.requests).toHaveLength(1);
  });

  it("retries a 503 and then succeeds", async () => {
    server.handle((_req, res, _body, i) => (i === 0 ? json(res, 503, { __type: "InternalFailure", message: "busy" }) : json(res, 200, {})));
    await expect(transport.queue.deleteMessage(QUEUE_URL, "x")).resolves.toBeUndefined();
    expect(server.requests).toHaveLength(2);
  });

  it("retries throttling (ThrottlingException, RequestThrottled, 429) and gives up after maxAttempts", async () => {
    const answers = [
      () => ({ status: 400, body: { __type: "com.amazon.coral.availability#ThrottlingException", message: "slow" }, q: "ThrottlingException;Sender" }),
      () => ({ status: 403, body: { __type: "com.amazonaws.sqs#RequestThrottled", message: "slow" }, q: "RequestThrottled;Sender" }),
      () => ({ status: 429, body: { message: "slow" }, q: undefined }),
    ];
    server.handle((_req, res, _b, i) => {
      const a = answers[i]?.();
      if (a === undefined) return json(res, 200, {});
      json(res, a.status, a.body, a.q === undefined ? {} : { "x-amzn-query-error": a.q });
    });
    await transport.queue.deleteMessage(QUEUE_URL, "x");
    expect(server.requests).toHaveLength(4);

    server.requests.length = 0;
    server.handle((_req, res) => json(res, 400, { __type: "ThrottlingException", message: "slow" }));
    const err = await caught(transport.queue.deleteMessage(QUEUE_URL, "x"));
    expect(err.name).toBe("ThrottlingException");
    expect(err.$metadata.attempts).toBe(4);
    expect(server.requests).toHaveLength(4);
  });

  it("spends the retry quota (the SDK's token bucket): once it is empty a 503 is no longer retried", async () => {
    server.handle((_req, res) => json(res, 503, { __type: "ServiceUnavailable", message: "busy" }));
    const attempts: number[] = [];
    for (let i = 0; i < 20; i++) attempts.push((await caught(transport.queue.deleteMessage(QUEUE_URL, "x"))).$metadata.attempts);
    expect(attempts[0]).toBe(4);
    expect(attempts.at(-1)).toBe(1);
    // Successes refill it.
    server.handle((_req, res) => json(res, 200, {}));
    for (let i = 0; i < 100; i++) await transport.queue.deleteMessage(QUEUE_URL, "x");
    server.handle((_req, res, _b, i) => (i % 2 === 0 ? json(res, 503, { __type: "ServiceUnavailable", message: "busy" }) : json(res, 200, {})));
    server.requests.length = 0;
    await transport.queue.deleteMessage(QUEUE_URL, "x");
    expect(server.requests).toHaveLength(2);
  });

  it("does not retry a client error", async () => {
    server.handle((_req, res) => json(res, 400, { __type: "com.amazonaws.sqs#ReceiptHandleIsInvalid", message: "no" }, { "x-amzn-query-error": "ReceiptHandleIsInvalid;Sender" }));
    const err = await caught(transport.queue.changeVisibility(QUEUE_URL, "x", 10));
    expect(err.name).toBe("ReceiptHandleIsInvalid");
    expect(server.requests).toHaveLength(1);
  });

  it("retries a connection reset (socket hang up) and then succeeds", async () => {
    server.handle((req, res, _b, i) => (i === 0 ? req.socket.destroy() : json(res, 200, {})));
    await transport.queue.deleteMessage(QUEUE_URL, "x");
    expect(server.requests).toHaveLength(2);
  });

  it("retries a refused connection and fails with its code after maxAttempts", async () => {
    const url = server.url;
    await server.close();
    make({ sqsEndpoint: url, maxAttempts: 3 });
    const err = await caught(transport.queue.deleteMessage(QUEUE_URL, "x"));
    expect(err.code).toBe("ECONNREFUSED");
    expect(err.$metadata.attempts).toBe(3);
    server = await startServer();
  });

  it("fails a non-JSON 200 (an HTML page) with a typed error, not retried", async () => {
    server.handle((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<html><body>captive portal</body></html>");
    });
    const err = await caught(transport.queue.receiveMessages(receiveInput, never));
    expect(err).toBeInstanceOf(LeanServiceError);
    expect(err.name).toBe("UnexpectedResponse");
    expect(err.$metadata.httpStatusCode).toBe(200);
    expect(server.requests).toHaveLength(1);
  });

  it("names an HTML error page by its status", async () => {
    server.handle((_req, res) => {
      res.writeHead(502, { "content-type": "text/html" });
      res.end("<html>bad gateway</html>");
    });
    make({ maxAttempts: 1 });
    const err = await caught(transport.queue.deleteMessage(QUEUE_URL, "x"));
    expect(err.name).toBe("UnknownServerError");
    expect(err.$fault).toBe("server");
    expect(err.$metadata.httpStatusCode).toBe(502);
  });

  it("reads at most 64 KiB of a huge error body and does not hang", async () => {
    server.handle((_req, res) => {
      res.writeHead(400, { "content-type": "application/x-amz-json-1.0", "x-amzn-query-error": "InvalidParameterValue;Sender" });
      const chunk = Buffer.alloc(1024 * 1024, 0x61);
      let sent = 0;
      const pump = (): void => {
        while (sent < 64) {
          sent++;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        res.end();
      };
      res.on("error", () => undefined);
      pump();
    });
    const started = Date.now();
    const err = await caught(transport.queue.deleteMessage(QUEUE_URL, "x"));
    expect(err.name).toBe("InvalidParameterValue");
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("aborts a long poll at once with AbortError and does not retry", async () => {
    server.handle(() => undefined); // never answers
    const controller = new AbortController();
    const pending = transport.queue.receiveMessages(receiveInput, controller.signal);
    setTimeout(() => controller.abort(), 100);
    const err = await caught(pending);
    expect(err.name).toBe("AbortError");
    expect(server.requests).toHaveLength(1);
  });

  // The receive loop retries receives itself, so the consumer knows of every long poll it opened (a retry here would
  // be a poll it never heard of, possibly still open at SQS when it hands messages back on stop).
  it("attempts a receive once: a 503 or a reset is final", async () => {
    server.handle((_req, res) => json(res, 503, { __type: "InternalFailure", message: "busy" }));
    const err = await caught(transport.queue.receiveMessages(receiveInput, never));
    expect(err).toMatchObject({ name: "InternalFailure", $metadata: { httpStatusCode: 503, attempts: 1 } });
    expect(server.requests).toHaveLength(1);
    server.handle((req) => req.socket.destroy());
    const reset = await caught(transport.queue.receiveMessages(receiveInput, never));
    expect(reset.$metadata).toMatchObject({ attempts: 1 });
    expect(server.requests).toHaveLength(2);
  });

  it("fails with TimeoutError when the socket idles past requestTimeoutMs, after retrying", async () => {
    make({ requestTimeoutMs: 150, maxAttempts: 2 });
    server.handle(() => undefined);
    const err = await caught(transport.queue.deleteMessage(QUEUE_URL, "x"));
    expect(err.name).toBe("TimeoutError");
    expect(server.requests).toHaveLength(2);
  });

  it("propagates the credentials provider's error unchanged, sending nothing", async () => {
    const failure = Object.assign(new Error("IMDS unavailable"), { name: "CredentialsProviderError" });
    make({
      credentials: async () => {
        throw failure;
      },
    });
    await expect(transport.queue.deleteMessage(QUEUE_URL, "x")).rejects.toBe(failure);
    expect(server.requests).toHaveLength(0);
  });

  it("signs with the credentials the provider gives at each request", async () => {
    let n = 0;
    make({ credentials: async () => ({ accessKeyId: `AKID${++n}`, secretAccessKey: "s" }) });
    server.handle((_req, res) => json(res, 200, {}));
    await transport.queue.deleteMessage(QUEUE_URL, "x");
    await transport.queue.deleteMessage(QUEUE_URL, "x");
    expect(server.requests.map((r) => /Credential=(\w+)\//.exec(String(r.headers["authorization"]))![1])).toEqual(["AKID1", "AKID2"]);
    expect(server.requests[0]!.headers["x-amz-security-token"]).toBeUndefined();
  });
});

describe("clock skew", () => {
  it("corrects from a server whose clock is 1 h ahead and retries the skew error once", async () => {
    const HOUR = 3_600_000;
    const serverNow = (): number => Date.now() + HOUR;
    server.handle((req, res) => {
      const amz = String(req.headers["x-amz-date"]);
      const signed = Date.UTC(+amz.slice(0, 4), +amz.slice(4, 6) - 1, +amz.slice(6, 8), +amz.slice(9, 11), +amz.slice(11, 13), +amz.slice(13, 15));
      const date = new Date(serverNow()).toUTCString();
      if (Math.abs(signed - serverNow()) > 15 * 60_000) {
        json(res, 400, { __type: "com.amazon.coral.service#InvalidSignatureException", message: "Signature expired" }, { date });
      } else json(res, 200, {}, { date });
    });
    await transport.queue.deleteMessage(QUEUE_URL, "x");
    expect(server.requests).toHaveLength(2);
    // The offset is kept: the next call is signed with the corrected time at once.
    await transport.queue.deleteMessage(QUEUE_URL, "x");
    expect(server.requests).toHaveLength(3);
  });

  it("does not loop when the skew error persists", async () => {
    let shift = 0;
    server.handle((_req, res) => {
      shift += 3_600_000;
      json(res, 403, { __type: "SignatureDoesNotMatch", message: "skewed" }, { date: new Date(Date.now() + shift).toUTCString() });
    });
    const err = await caught(transport.queue.deleteMessage(QUEUE_URL, "x"));
    expect(err.name).toBe("SignatureDoesNotMatch");
    expect(server.requests).toHaveLength(2);
  });

  it("signs with the injected clock", async () => {
    make({ clock: () => Date.UTC(2030, 0, 2, 3, 4, 5) });
    server.handle((_req, res) => json(res, 200, {}));
    await transport.queue.deleteMessage(QUEUE_URL, "x");
    expect(server.requests[0]!.headers["x-amz-date"]).toBe("20300102T030405Z");
  });
});

describe("S3 GetObject", () => {
  it("streams the body path-style with If-Match and checksum mode, and returns the headers", async () => {
    const body = Buffer.from("hello object");
    server.handle((_req, res) => {
      res.writeHead(200, {
        "content-length": body.length,
        etag: '"abc"',
        "content-type": "text/plain",
        "last-modified": "Wed, 01 Jan 2025 00:00:00 GMT",
        "x-amz-checksum-crc32": b64(crc32(body)),
      });
      res.end(body);
    });
    const out = await transport.objects.getObject({ bucket: "src-bucket", key: "a dir/ü+x!.txt", ifMatch: '"abc"' }, never);
    expect(await text(out.body)).toBe("hello object");
    expect(out).toMatchObject({ contentLength: body.length, eTag: '"abc"', contentType: "text/plain", lastModified: new Date("2025-01-01T00:00:00Z") });
    const [r] = server.requests;
    expect(r!.method).toBe("GET");
    expect(r!.path).toBe("/src-bucket/a%20dir/%C3%BC%2Bx%21.txt");
    expect(r!.headers["if-match"]).toBe('"abc"');
    expect(r!.headers["x-amz-checksum-mode"]).toBe("ENABLED");
    expect(r!.headers["x-amz-content-sha256"]).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(String(r!.headers["authorization"])).toContain("/us-east-1/s3/aws4_request");
  });

  for (const [algorithm, header, sum] of [
    ["CRC32", "x-amz-checksum-crc32", (b: Buffer) => b64(crc32(b))],
    ["SHA256", "x-amz-checksum-sha256", (b: Buffer) => createHash("sha256").update(b).digest("base64")],
    ["SHA1", "x-amz-checksum-sha1", (b: Buffer) => createHash("sha1").update(b).digest("base64")],
    ["CRC32C", "x-amz-checksum-crc32c", (b: Buffer) => b64(crc32cOf(b))],
  ] as const) {
    it(`fails the body stream when its ${algorithm} differs from S3's (a corrupted body)`, async () => {
      const good = Buffer.from("hello object");
      const expected = sum(good);
      server.handle((_req, res) => {
        res.writeHead(200, { "content-length": good.length, [header]: expected });
        res.end(Buffer.from("hellO object"));
      });
      const out = await transport.objects.getObject({ bucket: "b-1", key: "k" }, never);
      const err = await caught(text(out.body));
      expect(err.name).toBe("ChecksumMismatch");
      expect(err.message).toContain(algorithm);

      server.handle((_req, res) => {
        res.writeHead(200, { "content-length": good.length, [header]: expected });
        res.end(good);
      });
      const ok = await transport.objects.getObject({ bucket: "b-1", key: "k" }, never);
      expect(await text(ok.body)).toBe("hello object");
    });
  }

  it("skips a composite (multipart) checksum, as the SDK does", async () => {
    server.handle((_req, res) => {
      res.writeHead(200, { "content-length": 3, "x-amz-checksum-crc32": "AAAAAA==-3" });
      res.end("abc");
    });
    const out = await transport.objects.getObject({ bucket: "b-1", key: "k" }, never);
    expect(await text(out.body)).toBe("abc");
  });

  const xmlError = (code: string, message: string) =>
    `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message><RequestId>RID</RequestId></Error>`;
  for (const [status, code] of [
    [404, "NoSuchKey"],
    [412, "PreconditionFailed"],
    [403, "AccessDenied"],
  ] as const) {
    it(`maps ${status} ${code} from S3's XML error`, async () => {
      server.handle((_req, res) => {
        res.writeHead(status, { "content-type": "application/xml", "x-amz-request-id": "RID" });
        res.end(xmlError(code, "no &amp; no"));
      });
      const err = await caught(transport.objects.getObject({ bucket: "b-1", key: "k" }, never));
      expect(err.name).toBe(code);
      expect(err.message).toBe("no & no");
      expect(err.$metadata).toMatchObject({ httpStatusCode: status, requestId: "RID", attempts: 1 });
      expect(err.$fault).toBe("client");
      expect(server.requests).toHaveLength(1);
    });
  }

  it("names a truncated XML error and a body-less 412 by their status", async () => {
    server.handle((_req, res, _b, i) => {
      res.writeHead(i === 0 ? 404 : 412);
      res.end(i === 0 ? "<Error><Code>NoSu" : "");
    });
    expect((await caught(transport.objects.getObject({ bucket: "b-1", key: "k" }, never))).name).toBe("NotFound");
    expect((await caught(transport.objects.getObject({ bucket: "b-1", key: "k" }, never))).name).toBe("PreconditionFailed");
  });

  it("retries SlowDown 503 and 500 InternalError before the body", async () => {
    server.handle((_req, res, _b, i) => {
      if (i < 2) {
        res.writeHead(i === 0 ? 503 : 500);
        res.end(xmlError(i === 0 ? "SlowDown" : "InternalError", "later"));
        return;
      }
      res.writeHead(200, { "content-length": 2 });
      res.end("ok");
    });
    const out = await transport.objects.getObject({ bucket: "b-1", key: "k" }, never);
    expect(await text(out.body)).toBe("ok");
    expect(server.requests).toHaveLength(3);
  });

  it("aborting mid-body destroys the body stream with AbortError", async () => {
    server.handle((_req, res) => {
      res.writeHead(200, { "content-length": 1_000_000 });
      res.write(Buffer.alloc(1000));
    });
    const controller = new AbortController();
    const out = await transport.objects.getObject({ bucket: "b-1", key: "k" }, controller.signal);
    const reading = caught(text(out.body));
    setTimeout(() => controller.abort(), 50);
    const err = await reading;
    expect(err.name).toBe("AbortError");
  });

  it("a body that stalls mid-way errors with TimeoutError", async () => {
    make({ requestTimeoutMs: 200 });
    server.handle((_req, res) => {
      res.writeHead(200, { "content-length": 1_000_000 });
      res.write(Buffer.alloc(1000));
    });
    const out = await transport.objects.getObject({ bucket: "b-1", key: "k" }, never);
    const err = await caught(text(out.body));
    expect(err.name).toBe("TimeoutError");
  });

  it("a body cut short of its Content-Length errors", async () => {
    server.handle((req, res) => {
      res.writeHead(200, { "content-length": 100 });
      res.write(Buffer.alloc(10), () => req.socket.destroy());
    });
    const out = await transport.objects.getObject({ bucket: "b-1", key: "k" }, never);
    await expect(text(out.body)).rejects.toThrow();
  });

  it("reuses the keep-alive socket across calls", async () => {
    const ports = new Set<number>();
    server.handle((req, res) => {
      ports.add(req.socket.remotePort!);
      res.writeHead(200, { "content-length": 2 });
      res.end("ok");
    });
    for (let i = 0; i < 5; i++) await text((await transport.objects.getObject({ bucket: "b-1", key: "k" }, never)).body);
    expect(ports.size).toBe(1);
  });
});

describe("S3 PutObject", () => {
  it("sends a buffer with its CRC32, Content-Length and x-amz-meta-* headers", async () => {
    server.handle((_req, res) => {
      res.writeHead(200, { etag: '"e"' });
      res.end();
    });
    const body = Buffer.from("output bytes");
    await transport.objects.putObject(
      { bucket: "out-bucket", key: "docs/a.txt", body, contentLength: body.length, contentType: "text/plain", metadata: { "source-etag": "abc", processor: "text" } },
      never,
    );
    const [r] = server.requests;
    expect(r!.method).toBe("PUT");
    expect(r!.path).toBe("/out-bucket/docs/a.txt");
    expect(r!.body.equals(body)).toBe(true);
    expect(r!.headers["content-length"]).toBe(String(body.length));
    expect(r!.headers["content-type"]).toBe("text/plain");
    expect(r!.headers["x-amz-checksum-crc32"]).toBe(b64(crc32(body)));
    expect(r!.headers["x-amz-meta-source-etag"]).toBe("abc");
    expect(r!.headers["x-amz-meta-processor"]).toBe("text");
    expect(String(r!.headers["authorization"])).toMatch(/SignedHeaders=[^,]*x-amz-checksum-crc32[^,]*x-amz-meta-processor/);
  });

  it("sends a string body as UTF-8", async () => {
    server.handle((_req, res) => res.end());
    await transport.objects.putObject({ bucket: "out-bucket", key: "k", body: "héllo", contentLength: 6, contentType: "text/plain", metadata: {} }, never);
    expect(server.requests[0]!.body.toString()).toBe("héllo");
  });

  it("streams a Readable aws-chunked with a CRC32 trailer the stand-in's decoder accepts", async () => {
    server.handle((_req, res) => res.end());
    const parts = [Buffer.alloc(70_000, 1), Buffer.from("tail")];
    const whole = Buffer.concat(parts);
    await transport.objects.putObject(
      { bucket: "out-bucket", key: "big.bin", body: Readable.from(parts), contentLength: whole.length, contentType: "application/octet-stream", metadata: { a: "b" } },
      never,
    );
    const [r] = server.requests;
    expect(r!.headers["content-encoding"]).toBe("aws-chunked");
    expect(r!.headers["x-amz-content-sha256"]).toBe("STREAMING-UNSIGNED-PAYLOAD-TRAILER");
    expect(r!.headers["x-amz-decoded-content-length"]).toBe(String(whole.length));
    expect(r!.headers["x-amz-trailer"]).toBe("x-amz-checksum-crc32");
    const decoded = decodeAwsChunked(r!.body)!;
    expect(decoded.payload.equals(whole)).toBe(true);
    expect(decoded.trailers["x-amz-checksum-crc32"]).toBe(b64(crc32(whole)));
  });

  it("never retries a stream body once it was read: the 503 is thrown as is", async () => {
    server.handle((_req, res) => {
      res.writeHead(503);
      res.end("<Error><Code>SlowDown</Code><Message>later</Message></Error>");
    });
    const err = await caught(
      transport.objects.putObject({ bucket: "out-bucket", key: "k", body: Readable.from([Buffer.from("abc")]), contentLength: 3, contentType: "x/y", metadata: {} }, never),
    );
    expect(err.name).toBe("SlowDown");
    expect(server.requests).toHaveLength(1);
  });

  it("retries a buffer body after a reset", async () => {
    server.handle((req, res, _b, i) => (i === 0 ? req.socket.destroy() : res.end()));
    await transport.objects.putObject({ bucket: "out-bucket", key: "k", body: Buffer.from("abc"), contentLength: 3, contentType: "x/y", metadata: {} }, never);
    expect(server.requests).toHaveLength(2);
    expect(server.requests[1]!.body.toString()).toBe("abc");
  });

  it("fails a stream longer than its declared length", async () => {
    server.handle((_req, res) => res.end());
    await expect(
      transport.objects.putObject({ bucket: "out-bucket", key: "k", body: Readable.from([Buffer.from("abcdef")]), contentLength: 3, contentType: "x/y", metadata: {} }, never),
    ).rejects.toThrow(/longer than its declared length/);
  });
});

/** CRC32C (Castagnoli), bitwise: the reference for the CRC32C case. */
function crc32cOf(data: Buffer): number {
  let c = 0xffffffff;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}
