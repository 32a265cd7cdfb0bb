// The lean transport against the local AWS stand-in, whose gateway verifies SigV4 and enforces the role's policy:
// the independent check that its signing (SQS JSON, S3 GET/PUT with buffers and aws-chunked streams) is right.
// Credentials are the mock IMDS's role session, so the shipped policy applies; where a call must fail, the SDK
// client with the same credentials makes the same call and both errors must read alike.
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { ReceiveMessageCommand, SQSClient, SendMessageCommand } from "@aws-sdk/client-sqs";
import type { AwsCredentialIdentity } from "@smithy/types";
import { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLeanTransport } from "../../src/aws/lean/index.js";
import type { Message, Transport } from "../../src/aws/transport.js";
import { startStandIn, type StandIn } from "../local/stand-in.js";

let stand: StandIn;
let lean: Transport;
let creds: AwsCredentialIdentity;
const never = new AbortController().signal;

/** The role session the mock IMDS serves (IMDSv2: token, role name, credentials). */
async function imdsCredentials(): Promise<AwsCredentialIdentity> {
  const base = stand.urls.imds;
  const token = await (await fetch(`${base}latest/api/token`, { method: "PUT", headers: { "x-aws-ec2-metadata-token-ttl-seconds": "60" } })).text();
  const headers = { "x-aws-ec2-metadata-token": token };
  const role = (await (await fetch(`${base}latest/meta-data/iam/security-credentials/`, { headers })).text()).trim();
  const json = (await (await fetch(`${base}latest/meta-data/iam/security-credentials/${role}`, { headers })).json()) as Record<string, string>;
  return { accessKeyId: json["AccessKeyId"]!, secretAccessKey: json["SecretAccessKey"]!, sessionToken: json["Token"]! };
}

async function caught(promise: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number; attempts?: number }; $fault?: string; Code?: string }> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected the call to fail");
}

/** Receives with the lean transport until `count` messages came (or the deadline passed). */
async function receive(count: number): Promise<Message[]> {
  const got: Message[] = [];
  const deadline = Date.now() + 15_000;
  while (got.length < count && Date.now() < deadline) {
    got.push(
      ...(await lean.queue.receiveMessages(
        { queueUrl: stand.queue.url, maxMessages: 10, waitTimeSeconds: 1, visibilityTimeoutSeconds: 30, systemAttributes: ["ApproximateReceiveCount", "SentTimestamp"] },
        never,
      )),
    );
  }
  return got;
}

beforeAll(async () => {
  stand = await startStandIn();
  creds = await imdsCredentials();
  expect(creds.accessKeyId).toMatch(/^ASIA/);
  lean = createLeanTransport({
    region: stand.region,
    credentials: async () => creds,
    sqsEndpoint: stand.urls.gateway,
    s3Endpoint: stand.urls.gateway,
    maxSockets: 8,
    connectionTimeoutMs: 5_000,
    requestTimeoutMs: 60_000,
    maxAttempts: 4,
  });
});

afterAll(async () => {
  lean?.destroy();
  await stand?.close();
});

describe("lean transport against the stand-in (SigV4 verified, the role's policy enforced)", () => {
  it("receives the S3 notification of an upload, with the asked system attributes", async () => {
    await stand.clients.uploader.s3.send(new PutObjectCommand({ Bucket: stand.config.sourceBucket, Key: "lean/notified.txt", Body: "x" }));
    const messages = await receive(1);
    const mine = messages.find((m) => m.Body?.includes("lean/notified.txt"));
    expect(mine, JSON.stringify(messages)).toBeDefined();
    expect(mine!.ReceiptHandle).toBeTruthy();
    expect(mine!.Attributes?.ApproximateReceiveCount).toBe("1");
    expect(mine!.Attributes?.SentTimestamp).toMatch(/^\d+$/);
    expect(await lean.queue.deleteMessageBatch(stand.queue.url, messages.map((m, i) => ({ id: `m${i}`, receiptHandle: m.ReceiptHandle! })))).toEqual([]);
  });

  it("gets an object, with and without IfMatch; a changed object is PreconditionFailed", async () => {
    const { sourceBucket } = stand.config;
    const key = "lean/dir with space/é+doc.txt";
    await stand.clients.uploader.s3.send(new PutObjectCommand({ Bucket: sourceBucket, Key: key, Body: "first version", ContentType: "text/plain" }));
    const plain = await lean.objects.getObject({ bucket: sourceBucket, key }, never);
    expect(await text(plain.body)).toBe("first version");
    expect(plain.contentLength).toBe(13);
    expect(plain.contentType).toBe("text/plain");
    expect(plain.eTag).toMatch(/^".+"$/);
    expect(plain.lastModified).toBeInstanceOf(Date);

    const matched = await lean.objects.getObject({ bucket: sourceBucket, key, ifMatch: plain.eTag! }, never);
    expect(await text(matched.body)).toBe("first version");

    await stand.clients.uploader.s3.send(new PutObjectCommand({ Bucket: sourceBucket, Key: key, Body: "second version" }));
    const err = await caught(lean.objects.getObject({ bucket: sourceBucket, key, ifMatch: plain.eTag! }, never));
    expect(err.name).toBe("PreconditionFailed");
    expect(err.$metadata?.httpStatusCode).toBe(412);
  });

  it("puts a buffer and a stream to the output bucket; the bytes and the metadata arrive", async () => {
    const { outputBucket } = stand.config;
    const admin = stand.clients.admin.s3;
    const small = Buffer.from('{"text":"hello"}');
    await lean.objects.putObject(
      { bucket: outputBucket, key: "lean/out.json", body: small, contentLength: small.length, contentType: "application/json", metadata: { "source-etag": "abc123", processor: "text" } },
      never,
    );
    const head = await admin.send(new HeadObjectCommand({ Bucket: outputBucket, Key: "lean/out.json" }));
    expect(head.Metadata).toEqual({ "source-etag": "abc123", processor: "text" });
    expect(head.ContentType).toBe("application/json");
    expect(await (await admin.send(new GetObjectCommand({ Bucket: outputBucket, Key: "lean/out.json" }))).Body!.transformToString()).toBe(small.toString());

    await lean.objects.putObject({ bucket: outputBucket, key: "lean/str.txt", body: "héllo", contentLength: 6, contentType: "text/plain", metadata: {} }, never);
    expect(await (await admin.send(new GetObjectCommand({ Bucket: outputBucket, Key: "lean/str.txt" }))).Body!.transformToString()).toBe("héllo");

    const big = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < big.length; i += 997) big[i] = i % 251;
    const parts = [big.subarray(0, 1_000_000), big.subarray(1_000_000, 2_500_000), big.subarray(2_500_000)];
    await lean.objects.putObject(
      { bucket: outputBucket, key: "lean/big.bin", body: Readable.from(parts), contentLength: big.length, contentType: "application/octet-stream", metadata: { kind: "stream" } },
      never,
    );
    const back = await admin.send(new GetObjectCommand({ Bucket: outputBucket, Key: "lean/big.bin" }));
    expect(back.Metadata).toEqual({ kind: "stream" });
    expect(Buffer.from(await back.Body!.transformToByteArray()).equals(big)).toBe(true);
  });

  it("changes visibility in a batch and deletes a batch of one valid and one bad handle", async () => {
    const sqsAdmin = stand.clients.admin.sqs;
    await sqsAdmin.send(new SendMessageCommand({ QueueUrl: stand.queue.url, MessageBody: "lean-batch-1" }));
    await sqsAdmin.send(new SendMessageCommand({ QueueUrl: stand.queue.url, MessageBody: "lean-batch-2" }));
    const messages = (await receive(2)).filter((m) => m.Body?.startsWith("lean-batch-"));
    expect(messages).toHaveLength(2);
    const entries = messages.map((m, i) => ({ id: `m${i}`, receiptHandle: m.ReceiptHandle! }));

    expect(await lean.queue.changeVisibilityBatch(stand.queue.url, entries, 0)).toEqual([]);
    // Visibility 0: they are back at once.
    const again = (await receive(2)).filter((m) => m.Body?.startsWith("lean-batch-"));
    expect(again).toHaveLength(2);
    await lean.queue.changeVisibility(stand.queue.url, again[1]!.ReceiptHandle!, 60);

    const failures = await lean.queue.deleteMessageBatch(stand.queue.url, [
      { id: "m0", receiptHandle: again[0]!.ReceiptHandle! },
      { id: "m1", receiptHandle: "not-a-receipt-handle" },
    ]);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ id: "m1", senderFault: true });
    expect(failures[0]!.code).toMatch(/ReceiptHandleIsInvalid|InvalidParameterValue/);
    await lean.queue.deleteMessage(stand.queue.url, again[1]!.ReceiptHandle!);
    const left = await stand.clients.admin.sqs.send(new ReceiveMessageCommand({ QueueUrl: stand.queue.url, WaitTimeSeconds: 0, MaxNumberOfMessages: 10 }));
    expect((left.Messages ?? []).filter((m) => m.Body?.startsWith("lean-batch-"))).toEqual([]);
  });

  it("GetObject on the output bucket is AccessDenied, as the SDK reads it", async () => {
    const { outputBucket } = stand.config;
    const err = await caught(lean.objects.getObject({ bucket: outputBucket, key: "lean/out.json" }, never));
    const sdk = new S3Client({ ...stand.clientConfig(creds), maxAttempts: 1 });
    const sdkErr = await caught(sdk.send(new GetObjectCommand({ Bucket: outputBucket, Key: "lean/out.json" })));
    sdk.destroy();
    expect(err.name).toBe("AccessDenied");
    expect([err.name, err.message, err.$metadata?.httpStatusCode, err.$fault]).toEqual([sdkErr.name, sdkErr.message, 403, sdkErr.$fault]);
    expect(err.$metadata?.attempts).toBe(1);
  });

  it("a queue that does not exist is QueueDoesNotExist (Code AWS.SimpleQueueService.NonExistentQueue), as the SDK reads it", async () => {
    // The role's policy refuses any other queue first (AccessDenied), so this one call signs with the admin's keys.
    const adminKeys = { accessKeyId: stand.users.admin.accessKeyId, secretAccessKey: stand.users.admin.secretAccessKey };
    const asAdmin = createLeanTransport({
      region: stand.region,
      credentials: async () => adminKeys,
      sqsEndpoint: stand.urls.gateway,
      maxSockets: 1,
      connectionTimeoutMs: 5_000,
      requestTimeoutMs: 60_000,
      maxAttempts: 4,
    });
    const queueUrl = stand.queue.url.replace(/[^/]+$/, "lean-no-such-queue");
    const input = { queueUrl, maxMessages: 1, waitTimeSeconds: 0, visibilityTimeoutSeconds: 30, systemAttributes: [] };
    const err = await caught(asAdmin.queue.receiveMessages(input, never));
    asAdmin.destroy();
    const sdk = new SQSClient({ ...stand.clientConfig(adminKeys), maxAttempts: 1 });
    const sdkErr = await caught(sdk.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 0 })));
    sdk.destroy();
    expect(err.name).toBe("QueueDoesNotExist");
    expect(err.Code).toBe("AWS.SimpleQueueService.NonExistentQueue");
    expect([err.name, err.Code, err.message, err.$metadata?.httpStatusCode, err.$fault]).toEqual([
      sdkErr.name,
      sdkErr.Code,
      sdkErr.message,
      (sdkErr as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode,
      sdkErr.$fault,
    ]);
    expect(err.$metadata?.attempts).toBe(1);
  });
});
