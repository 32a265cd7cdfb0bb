// Adversarial cases for the lean transport: listeners left on a long-lived AbortSignal, an abort while the
// credentials provider is slow, malformed SQS answers, an empty key, redirects, early destroys.
import { createHash } from "node:crypto";
import { getEventListeners } from "node:events";
import { createServer } from "node:http";
import { createServer as createNetServer, type AddressInfo, type Socket } from "node:net";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLeanTransport, type LeanTransportOptions } from "../../../../src/aws/lean/index.js";
import type { Transport } from "../../../../src/aws/transport.js";
import { json, startServer, type TestServer } from "./server.js";

const CREDS = { accessKeyId: "AKIDLEAN", secretAccessKey: "secret", sessionToken: "token-1" };
const QUEUE_URL = "http://127.0.0.1/123456789012/q";
const md5 = (body: string): string => createHash("md5").update(body).digest("hex");
const receiveInput = { queueUrl: QUEUE_URL, maxMessages: 10, waitTimeSeconds: 20, visibilityTimeoutSeconds: 30, systemAttributes: [] };

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
    maxAttempts: 3,
    random: () => 0,
    ...overrides,
  });
  return transport;
}

async function caught(promise: Promise<unknown>): Promise<Error & { code?: string; $metadata?: { attempts: number } }> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a rejection");
}

beforeEach(async () => {
  server = await startServer();
  make();
});
afterEach(async () => {
  transport.destroy();
  await server.close();
});

describe("a long-lived AbortSignal", () => {
  it("keeps no abort listener after successes, retries, errors, streamed and early-destroyed bodies", async () => {
    const controller = new AbortController();
    const { signal } = controller;
    server.handle((req, res, _body, index) => {
      if (req.method === "POST") {
        if (index % 3 === 1) json(res, 503, { __type: "ServiceUnavailable" });
        else if (index % 7 === 2) json(res, 400, { __type: "InvalidParameterValue" });
        else json(res, 200, {});
        return;
      }
      if (req.url!.endsWith("/missing")) {
        res.writeHead(404, { "content-type": "application/xml" });
        res.end("<Error><Code>NoSuchKey</Code></Error>");
        return;
      }
      res.writeHead(200, { "content-length": "100000" });
      res.end(Buffer.alloc(100_000, 1));
    });
    for (let i = 0; i < 20; i++) await transport.queue.receiveMessages(receiveInput, signal).catch(() => undefined);
    for (let i = 0; i < 5; i++) {
      const out = await transport.objects.getObject({ bucket: "b", key: `k${i}` }, signal);
      for await (const _ of out.body) void _;
    }
    for (let i = 0; i < 5; i++) {
      const out = await transport.objects.getObject({ bucket: "b", key: `k${i}` }, signal);
      out.body.destroy();
      await new Promise((r) => setImmediate(r));
    }
    for (let i = 0; i < 5; i++) await transport.objects.getObject({ bucket: "b", key: "missing" }, signal).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    expect(getEventListeners(signal, "abort")).toHaveLength(0);
  });
});

describe("abort", () => {
  it("rejects at once when aborted while the credentials provider is still resolving", async () => {
    make({ credentials: () => new Promise(() => undefined) });
    const controller = new AbortController();
    const call = transport.queue.receiveMessages(receiveInput, controller.signal);
    setTimeout(() => controller.abort(), 20);
    const started = Date.now();
    const err = await Promise.race([caught(call), new Promise<Error>((r) => setTimeout(() => r(new Error("still pending")), 1_000))]);
    expect(err.name).toBe("AbortError");
    expect(Date.now() - started).toBeLessThan(900);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });

  it("an abort after the body was read to the end changes nothing", async () => {
    server.handle((_req, res) => {
      res.writeHead(200, { "content-length": "3", "x-amz-checksum-crc32": "NSRBwg==" });
      res.end("abc");
    });
    const controller = new AbortController();
    const out = await transport.objects.getObject({ bucket: "b", key: "k" }, controller.signal);
    let text = "";
    for await (const c of out.body) text += String(c);
    controller.abort();
    expect(text).toBe("abc");
    expect(out.body.errored).toBeNull();
  });
});

describe("misbehaving answers", () => {
  it("fails a ReceiveMessage whose Messages holds a non-object with a typed error", async () => {
    server.handle((_req, res) => json(res, 200, { Messages: [null] }));
    const err = await caught(transport.queue.receiveMessages(receiveInput, new AbortController().signal));
    expect(err.name).toBe("UnexpectedResponse");
  });

  it("fails a ReceiveMessage whose Body is not a string with a typed error", async () => {
    server.handle((_req, res) => json(res, 200, { Messages: [{ MessageId: "m", Body: 5, MD5OfBody: md5("5") }] }));
    const err = await caught(transport.queue.receiveMessages(receiveInput, new AbortController().signal));
    expect(err.name).toBe("UnexpectedResponse");
  });

  it("reads a batch answer whose Failed holds a non-object without a TypeError", async () => {
    server.handle((_req, res) => json(res, 200, { Successful: [], Failed: [null, 3] }));
    const err = await caught(transport.queue.deleteMessageBatch(QUEUE_URL, [{ id: "m0", receiptHandle: "r" }]));
    expect(err.name).toBe("UnexpectedResponse");
  });

  it("does not follow a redirect (credentials never go to another host)", async () => {
    server.handle((_req, res) => {
      res.writeHead(307, { location: "http://127.0.0.2:1/elsewhere" });
      res.end();
    });
    const err = await caught(transport.objects.getObject({ bucket: "b", key: "k" }, new AbortController().signal));
    expect(err.name).toBe("UnknownError");
    expect(server.requests).toHaveLength(1);
  });
});

describe("S3 keys", () => {
  it("refuses an empty key (it would address the bucket: ListObjects, CreateBucket) and sends nothing", async () => {
    server.handle((_req, res) => {
      res.writeHead(200);
      res.end("<ListBucketResult/>");
    });
    const get = await caught(transport.objects.getObject({ bucket: "b", key: "" }, new AbortController().signal));
    expect(get.name).toBe("ValidationError");
    const put = await caught(
      transport.objects.putObject(
        { bucket: "b", key: "", body: "x", contentLength: 1, contentType: "text/plain", metadata: {} },
        new AbortController().signal,
      ),
    );
    expect(put.name).toBe("ValidationError");
    expect(server.requests).toHaveLength(0);
  });

  it("streams a PUT whose source fails before its first byte, without a retry that hangs", async () => {
    const source = new Readable({
      read() {
        this.destroy(new Error("processor failed"));
      },
    });
    const err = await caught(
      transport.objects.putObject({ bucket: "b", key: "k", body: source, contentLength: 10, contentType: "text/plain", metadata: {} }, new AbortController().signal),
    );
    expect(err.message).toContain("processor failed");
  });
});

describe("abort at more stages", () => {
  it("aborting mid-upload rejects with AbortError, leaves no listener and no unhandled error", async () => {
    server.handle(() => undefined);
    const controller = new AbortController();
    const source = new Readable({ read() {} });
    source.push(Buffer.alloc(1000));
    const put = transport.objects.putObject(
      { bucket: "b", key: "k", body: source, contentLength: 100_000, contentType: "text/plain", metadata: {} },
      controller.signal,
    );
    setTimeout(() => controller.abort(), 50);
    const err = await caught(put);
    expect(err.name).toBe("AbortError");
    await new Promise((r) => setTimeout(r, 20));
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    source.destroy();
  });

  it("aborting during the retry backoff rejects at once and leaves no listener", async () => {
    // A GetObject: receives are attempted once (the receive loop retries them).
    server.handle((_req, res) => {
      res.writeHead(503, { "content-type": "application/xml", "retry-after": "3" });
      res.end("<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>");
    });
    make({ random: () => 0.999 });
    const controller = new AbortController();
    const call = transport.objects.getObject({ bucket: "b", key: "k" }, controller.signal);
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    const err = await caught(call);
    expect(err.name).toBe("AbortError");
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });

});

describe("an answer before the request body was sent", () => {
  it("does not leave the socket stuck: a 200 to an unfinished stream PUT frees the pool", async () => {
    const early = createServer((req, res) => {
      // Answers as soon as the headers arrive, never reading the body.
      if (req.method === "PUT") {
        res.writeHead(200, { "content-length": "0" });
        res.end();
        return;
      }
      req.resume();
      req.on("end", () => json(res, 200, {}));
    });
    await new Promise<void>((r) => early.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(early.address() as AddressInfo).port}`;
    try {
      make({ s3Endpoint: url, sqsEndpoint: url, maxSockets: 1, requestTimeoutMs: 60_000 });
      const source = new Readable({ read() {} });
      source.push(Buffer.alloc(1000));
      await transport.objects
        .putObject({ bucket: "b", key: "k", body: source, contentLength: 100_000, contentType: "text/plain", metadata: {} }, new AbortController().signal)
        .catch(() => undefined);
      // What the sink does with a body that did not end.
      source.destroy();
      const next = transport.queue.receiveMessages(receiveInput, new AbortController().signal);
      const outcome = await Promise.race([next.then(() => "answered"), new Promise((r) => setTimeout(() => r("stuck in the pool"), 1_500))]);
      expect(outcome).toBe("answered");
    } finally {
      transport.destroy();
      early.closeAllConnections();
      await new Promise((r) => early.close(r));
    }
  });
});

/** A raw TCP server answering each request (headers only, bodies ignored) with `answer`'s bytes. */
async function rawServer(answer: string): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const srv = createNetServer((socket) => {
    sockets.add(socket);
    socket.on("data", (d: Buffer) => {
      if (d.includes("\r\n\r\n")) socket.write(answer);
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const socket of sockets) socket.destroy();
        srv.close(() => r());
      }),
  };
}

const within = <T>(promise: Promise<T>, ms: number): Promise<T | "hung"> =>
  Promise.race([promise, new Promise<"hung">((r) => setTimeout(() => r("hung"), ms))]);

describe("bytes after a complete 2xx answer (a parse error once the headers were handed over)", () => {
  it("a buffered call settles instead of waiting forever for a body node already dumped", async () => {
    const raw = await rawServer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}garbage");
    try {
      make({ sqsEndpoint: raw.url, maxAttempts: 1 });
      const outcome = await within(
        transport.queue.receiveMessages(receiveInput, new AbortController().signal).then(
          () => "resolved",
          (e: Error) => e.name,
        ),
        1_500,
      );
      expect(outcome).not.toBe("hung");
    } finally {
      await raw.close();
    }
  });

  it("a streamed body fails rather than ending empty as if the object had no bytes", async () => {
    const raw = await rawServer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\ngarbage");
    try {
      make({ s3Endpoint: raw.url, maxAttempts: 1 });
      const read = async (): Promise<string> => {
        const out = await transport.objects.getObject({ bucket: "b", key: "k" }, new AbortController().signal);
        let text = "";
        for await (const c of out.body) text += String(c);
        return text;
      };
      const outcome = await within(read().catch((e: Error) => `failed: ${e.name}`), 1_500);
      expect(outcome).not.toBe("");
      expect(outcome).not.toBe("hung");
    } finally {
      await raw.close();
    }
  });
});
