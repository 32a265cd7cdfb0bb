// The stand-in's gateway through real SDK clients over loopback HTTP: the role's shipped policy is enforced, errors
// look like AWS's, S3 events have AWS's shape, the queue protocol the AWS CLI speaks works, and faults are injected.
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ListQueuesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
  type Message,
} from "@aws-sdk/client-sqs";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { Upload } from "@aws-sdk/lib-storage";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { createHash } from "node:crypto";
import http from "node:http";
import { Readable } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_POLICY, ROLE_NAME, type RoleSession } from "../local/gateway/identities.js";
import type { DecisionEntry } from "../local/gateway/server.js";
import { QUEUE_MAXIMUM_MESSAGE_SIZE, startStandIn, type StandIn } from "../local/stand-in.js";

type Creds = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };

let stand: StandIn;
let session: RoleSession;
let roleS3: S3Client;
let roleSqs: SQSClient;
const logged: DecisionEntry[] = [];
let initialMessages: string[] = [];
const MiB = 1024 * 1024;

const sessionCreds = (s: RoleSession): Creds => ({
  accessKeyId: s.accessKeyId,
  secretAccessKey: s.secretAccessKey,
  sessionToken: s.sessionToken,
});
const s3For = (creds: Creds, extra: Record<string, unknown> = {}) => new S3Client({ ...stand.clientConfig(creds), ...extra });
const sqsFor = (creds: Creds, extra: Record<string, unknown> = {}) => new SQSClient({ ...stand.clientConfig(creds), ...extra });
const stsFor = (creds: Creds, extra: Record<string, unknown> = {}) =>
  new STSClient({ endpoint: stand.urls.gateway, region: stand.region, credentials: creds, ...extra });

async function caught(promise: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number }; code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { $metadata?: { httpStatusCode?: number } };
  }
  throw new Error("expected the call to fail");
}

/** Receives and deletes everything now in the queue (events are queued before the upload's answer). */
async function drainQueue(): Promise<string[]> {
  const bodies: string[] = [];
  for (;;) {
    const { Messages = [] } = await stand.clients.admin.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: stand.queue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    if (Messages.length === 0) return bodies;
    bodies.push(...Messages.map((m) => m.Body ?? ""));
    await stand.clients.admin.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: stand.queue.url,
        Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
      }),
    );
  }
}

interface S3EventRecord {
  eventName: string;
  eventVersion: string;
  eventSource: string;
  awsRegion: string;
  eventTime: string;
  userIdentity: { principalId: string };
  s3: {
    s3SchemaVersion: string;
    configurationId: string;
    bucket: { name: string; arn: string; ownerIdentity: { principalId: string } };
    object: { key: string; size?: number; eTag?: string; sequencer: string };
  };
}

function recordsOf(bodies: string[]): S3EventRecord[] {
  return bodies.flatMap((b) => (JSON.parse(b) as { Records?: S3EventRecord[] }).Records ?? []);
}

/** A signed form POST, the way the AWS CLI sends query-protocol requests (no x-amz-content-sha256). */
async function signedFormPost(service: string, creds: Creds, form: string): Promise<{ status: number; body: string }> {
  const url = new URL(stand.urls.gateway);
  const signer = new SignatureV4({
    service,
    region: stand.region,
    credentials: creds,
    sha256: Hash.bind(null, "sha256"),
    applyChecksum: false,
  });
  const signed = await signer.sign({
    method: "POST",
    protocol: "http:",
    hostname: url.hostname,
    port: Number(url.port),
    path: "/",
    query: {},
    headers: { host: url.host, "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
    body: form,
  });
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, method: "POST", path: "/", headers: signed.headers as Record<string, string> },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(form);
  });
}

beforeAll(async () => {
  stand = await startStandIn({ logger: (entry) => logged.push(entry) });
  session = stand.identities.issueRoleSession(ROLE_NAME, stand.instanceId(), 3600);
  roleS3 = s3For(sessionCreds(session));
  roleSqs = sqsFor(sessionCreds(session));
  initialMessages = await drainQueue();
});

afterAll(async () => {
  roleS3?.destroy();
  roleSqs?.destroy();
  await stand?.close();
});

afterEach(() => {
  stand.faults.clear();
});

describe("S3 as the role (the shipped policy)", () => {
  it("reads the source bucket and writes the output bucket, single PUTs, streams and a 20 MiB multipart upload", async () => {
    await stand.clients.uploader.s3.send(new PutObjectCommand({ Bucket: stand.config.sourceBucket, Key: "in/doc.txt", Body: "document" }));
    const got = await roleS3.send(new GetObjectCommand({ Bucket: stand.config.sourceBucket, Key: "in/doc.txt" }));
    expect(await got.Body!.transformToString()).toBe("document");

    await roleS3.send(new PutObjectCommand({ Bucket: stand.config.outputBucket, Key: "out/doc.json", Body: "{}" }));
    const streamed = Buffer.alloc(300_000, "s");
    await roleS3.send(
      new PutObjectCommand({ Bucket: stand.config.outputBucket, Key: "out/stream.bin", Body: Readable.from([streamed]), ContentLength: streamed.length }),
    );
    const big = Buffer.alloc(20 * MiB);
    for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
    await new Upload({
      client: roleS3,
      params: { Bucket: stand.config.outputBucket, Key: "out/big.bin", Body: big },
      partSize: 5 * MiB,
      queueSize: 2,
      leavePartsOnError: true,
    }).done();

    const admin = stand.clients.admin.s3;
    const head = await admin.send(new HeadObjectCommand({ Bucket: stand.config.outputBucket, Key: "out/big.bin" }));
    expect(head.ContentLength).toBe(20 * MiB);
    expect(head.ETag).toMatch(/-4"$/);
    const back = await admin.send(new GetObjectCommand({ Bucket: stand.config.outputBucket, Key: "out/big.bin" }));
    const digest = createHash("sha256").update(await back.Body!.transformToByteArray()).digest("hex");
    expect(digest).toBe(createHash("sha256").update(big).digest("hex"));
    const streamedBack = await admin.send(new GetObjectCommand({ Bucket: stand.config.outputBucket, Key: "out/stream.bin" }));
    expect(Buffer.from(await streamedBack.Body!.transformToByteArray()).equals(streamed)).toBe(true);
  });

  it("is refused everything else, with AWS's AccessDenied message", async () => {
    const { sourceBucket, outputBucket } = stand.config;
    const arn = session.principal.arn;
    const put = await caught(roleS3.send(new PutObjectCommand({ Bucket: sourceBucket, Key: "attempt.txt", Body: "x" })));
    expect(put.name).toBe("AccessDenied");
    expect(put.$metadata?.httpStatusCode).toBe(403);
    expect(put.message).toBe(
      `User: ${arn} is not authorized to perform: s3:PutObject on resource: "arn:aws:s3:::${sourceBucket}/attempt.txt" ` +
        "because no identity-based policy allows the s3:PutObject action",
    );
    const list = await caught(roleS3.send(new ListObjectsV2Command({ Bucket: sourceBucket })));
    expect(list.name).toBe("AccessDenied");
    expect(list.message).toContain(`s3:ListBucket on resource: "arn:aws:s3:::${sourceBucket}"`);
    const del = await caught(roleS3.send(new DeleteObjectCommand({ Bucket: sourceBucket, Key: "in/doc.txt" })));
    expect(del.name).toBe("AccessDenied");
    const readOutput = await caught(roleS3.send(new GetObjectCommand({ Bucket: outputBucket, Key: "out/doc.json" })));
    expect(readOutput.name).toBe("AccessDenied");
    expect(readOutput.message).toContain("s3:GetObject");

    const denied = logged.filter((e) => e.principal === arn && e.decision === "implicit-deny").map((e) => e.action);
    expect(denied).toEqual(expect.arrayContaining(["s3:PutObject", "s3:ListBucket", "s3:DeleteObject", "s3:GetObject"]));
    // The object the role could not delete is still there.
    await stand.clients.admin.s3.send(new HeadObjectCommand({ Bucket: sourceBucket, Key: "in/doc.txt" }));
  });

  it("a missing key is 403 for the role (no s3:ListBucket) and 404 NoSuchKey for admin", async () => {
    const key = { Bucket: stand.config.sourceBucket, Key: "in/never-uploaded.txt" };
    const get = await caught(roleS3.send(new GetObjectCommand(key)));
    expect(get.name).toBe("AccessDenied");
    expect(get.$metadata?.httpStatusCode).toBe(403);
    expect(get.message).toContain("s3:ListBucket");
    const head = await caught(roleS3.send(new HeadObjectCommand(key)));
    expect(head.$metadata?.httpStatusCode).toBe(403);
    const adminGet = await caught(stand.clients.admin.s3.send(new GetObjectCommand(key)));
    expect(adminGet.name).toBe("NoSuchKey");
    expect(adminGet.$metadata?.httpStatusCode).toBe(404);
  });

  it("GetObject IfMatch takes the event's unquoted eTag; a stale one is 412", async () => {
    const put = await stand.clients.uploader.s3.send(new PutObjectCommand({ Bucket: stand.config.sourceBucket, Key: "in/etag.txt", Body: "v1" }));
    const eTag = put.ETag!.replace(/"/g, "");
    const got = await roleS3.send(new GetObjectCommand({ Bucket: stand.config.sourceBucket, Key: "in/etag.txt", IfMatch: eTag }));
    expect(await got.Body!.transformToString()).toBe("v1");
    await stand.clients.uploader.s3.send(new PutObjectCommand({ Bucket: stand.config.sourceBucket, Key: "in/etag.txt", Body: "v2" }));
    const stale = await caught(roleS3.send(new GetObjectCommand({ Bucket: stand.config.sourceBucket, Key: "in/etag.txt", IfMatch: eTag })));
    expect(stale.$metadata?.httpStatusCode).toBe(412);
    await drainQueue();
  });

  it("a role of another account is refused the configured account's resources", async () => {
    stand.identities.addRole(ROLE_NAME, [ADMIN_POLICY], "999999999999");
    const foreign = stand.identities.issueRoleSession(ROLE_NAME, stand.instanceId(), 3600, "999999999999");
    const client = s3For(sessionCreds(foreign));
    const error = await caught(client.send(new GetObjectCommand({ Bucket: stand.config.sourceBucket, Key: "in/doc.txt" })));
    expect(error.name).toBe("AccessDenied");
    const identity = await stsFor(sessionCreds(foreign)).send(new GetCallerIdentityCommand({}));
    expect(identity.Account).toBe("999999999999");
    client.destroy();
  });
});

describe("S3 conditional writes (fauxqs ignores them: the gateway evaluates them)", () => {
  // What `doc-processor check` sends to prove the source is read-only: an ETag no object has.
  const IMPOSSIBLE_ETAG = '"00000000000000000000000000000000"';
  const body = async (bucket: string, key: string) =>
    (await stand.clients.admin.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();

  it("If-None-Match: * creates once; the second write is 412 PreconditionFailed and the first object stays", async () => {
    const key = { Bucket: stand.config.outputBucket, Key: "cond/once.txt" };
    await stand.clients.admin.s3.send(new PutObjectCommand({ ...key, Body: "first", IfNoneMatch: "*" }));
    const again = await caught(stand.clients.admin.s3.send(new PutObjectCommand({ ...key, Body: "second", IfNoneMatch: "*" })));
    expect(again.name).toBe("PreconditionFailed");
    expect(again.$metadata?.httpStatusCode).toBe(412);
    expect(await body(key.Bucket, key.Key)).toBe("first");
  });

  it("If-Match: the current ETag overwrites; a stale one is 412; a missing key is 404 NoSuchKey; neither stores anything", async () => {
    const key = { Bucket: stand.config.outputBucket, Key: "cond/versions.txt" };
    const v1 = await stand.clients.admin.s3.send(new PutObjectCommand({ ...key, Body: "v1" }));
    // Unquoted, as S3 accepts it too.
    await stand.clients.admin.s3.send(new PutObjectCommand({ ...key, Body: "v2", IfMatch: v1.ETag!.replace(/"/g, "") }));
    const stale = await caught(stand.clients.admin.s3.send(new PutObjectCommand({ ...key, Body: "v3", IfMatch: v1.ETag! })));
    expect(stale.name).toBe("PreconditionFailed");
    expect(stale.$metadata?.httpStatusCode).toBe(412);
    expect(await body(key.Bucket, key.Key)).toBe("v2");

    const missing = { Bucket: stand.config.outputBucket, Key: "cond/never-written.txt" };
    const notFound = await caught(stand.clients.admin.s3.send(new PutObjectCommand({ ...missing, Body: "x", IfMatch: IMPOSSIBLE_ETAG })));
    expect(notFound.name).toBe("NoSuchKey");
    expect(notFound.$metadata?.httpStatusCode).toBe(404);
    const head = await caught(stand.clients.admin.s3.send(new HeadObjectCommand(missing)));
    expect(head.$metadata?.httpStatusCode).toBe(404);
  });

  it("IAM first: the role's guarded write to the source stays AccessDenied; If-Match also needs s3:GetObject", async () => {
    const { sourceBucket, outputBucket } = stand.config;
    const probe = { Bucket: sourceBucket, Key: ".doc-processor-check/role.txt", Body: "", ContentLength: 0, IfMatch: IMPOSSIBLE_ETAG };
    const denied = await caught(roleS3.send(new PutObjectCommand(probe)));
    expect(denied.name).toBe("AccessDenied");
    expect(denied.$metadata?.httpStatusCode).toBe(403);
    expect(denied.message).toContain("s3:PutObject");
    // The role may write the output but not read it: a write that compares ETags is a read as well.
    const guarded = await caught(roleS3.send(new PutObjectCommand({ Bucket: outputBucket, Key: "cond/role.txt", Body: "x", IfMatch: IMPOSSIBLE_ETAG })));
    expect(guarded.name).toBe("AccessDenied");
    expect(guarded.message).toContain(`s3:GetObject on resource: "arn:aws:s3:::${outputBucket}/cond/role.txt"`);
    await roleS3.send(new PutObjectCommand({ Bucket: outputBucket, Key: "cond/role.txt", Body: "x", IfNoneMatch: "*" }));
  });

  it("an identity that may write the source: the If-Match-guarded probe is 404 and leaves no object and no event", async () => {
    await drainQueue();
    const probe = { Bucket: stand.config.sourceBucket, Key: ".doc-processor-check/over-broad.txt" };
    const refused = await caught(
      stand.clients.uploader.s3.send(new PutObjectCommand({ ...probe, Body: "", ContentLength: 0, IfMatch: IMPOSSIBLE_ETAG })),
    );
    expect(refused.name).toBe("NoSuchKey");
    const head = await caught(stand.clients.admin.s3.send(new HeadObjectCommand(probe)));
    expect(head.$metadata?.httpStatusCode).toBe(404);
    expect(await drainQueue()).toEqual([]);
  });

  it("If-None-Match with an ETag is NotImplemented (501), not a silent overwrite", async () => {
    const key = { Bucket: stand.config.outputBucket, Key: "cond/etag-none-match.txt" };
    const put = await stand.clients.admin.s3.send(new PutObjectCommand({ ...key, Body: "kept" }));
    const refused = await caught(stand.clients.admin.s3.send(new PutObjectCommand({ ...key, Body: "overwritten", IfNoneMatch: put.ETag! })));
    expect(refused.name).toBe("NotImplemented");
    expect(refused.$metadata?.httpStatusCode).toBe(501);
    expect(await body(key.Bucket, key.Key)).toBe("kept");
  });

  it("concurrent If-None-Match writers: exactly one lands, the others are 412", async () => {
    const key = { Bucket: stand.config.outputBucket, Key: "cond/race.txt" };
    const writers = Array.from({ length: 8 }, (_, i) =>
      stand.clients.admin.s3.send(new PutObjectCommand({ ...key, Body: `writer ${i}`, IfNoneMatch: "*" })),
    );
    const results = await Promise.allSettled(writers);
    const won = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
    expect(won).toHaveLength(1);
    for (const r of results) {
      if (r.status === "rejected") expect((r.reason as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode).toBe(412);
    }
    expect(await body(key.Bucket, key.Key)).toBe(`writer ${won[0]}`);
  });

  it("CompleteMultipartUpload and CopyObject honour them too", async () => {
    const admin = stand.clients.admin.s3;
    const key = { Bucket: stand.config.outputBucket, Key: "cond/multipart.bin" };
    const existing = await admin.send(new PutObjectCommand({ ...key, Body: "already here" }));
    const { UploadId } = await admin.send(new CreateMultipartUploadCommand(key));
    const part = await admin.send(new UploadPartCommand({ ...key, UploadId, PartNumber: 1, Body: "multipart body" }));
    const complete = (extra: { IfMatch?: string; IfNoneMatch?: string }) =>
      admin.send(new CompleteMultipartUploadCommand({ ...key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag! }] }, ...extra }));
    const refused = await caught(complete({ IfNoneMatch: "*" }));
    expect(refused.$metadata?.httpStatusCode).toBe(412);
    expect(await body(key.Bucket, key.Key)).toBe("already here");
    await complete({ IfMatch: existing.ETag! });
    expect(await body(key.Bucket, key.Key)).toBe("multipart body");

    const copy = await caught(
      admin.send(new CopyObjectCommand({ ...key, CopySource: `${stand.config.outputBucket}/cond/once.txt`, IfNoneMatch: "*" })),
    );
    expect(copy.$metadata?.httpStatusCode).toBe(412);
    expect(await body(key.Bucket, key.Key)).toBe("multipart body");
  });
});

describe("S3 event notifications", () => {
  it("sent one s3:TestEvent when notifications were configured", () => {
    const tests = initialMessages.map((b) => JSON.parse(b) as { Event?: string; Bucket?: string }).filter((m) => m.Event === "s3:TestEvent");
    expect(tests).toEqual([expect.objectContaining({ Service: "Amazon S3", Event: "s3:TestEvent", Bucket: stand.config.sourceBucket })]);
  });

  it("one correctly shaped event per upload, keys encoded like S3 (space as '+')", async () => {
    await drainQueue();
    const keys = ["in/with space.txt", "in/plus+sign.txt", "in/pct%20literal.txt", "in/ñandú/日本語.txt", "in/shot (1).png"];
    const etags: string[] = [];
    for (const key of keys) {
      const put = await stand.clients.uploader.s3.send(new PutObjectCommand({ Bucket: stand.config.sourceBucket, Key: key, Body: `body of ${key}` }));
      etags.push(put.ETag!.replace(/"/g, ""));
    }
    await roleS3.send(new PutObjectCommand({ Bucket: stand.config.outputBucket, Key: "out/no-event.txt", Body: "x" }));
    const records = recordsOf(await drainQueue());
    expect(records).toHaveLength(keys.length);
    const { sourceBucket } = stand.config;
    records.forEach((record, i) => {
      const key = keys[i]!;
      expect(decodeURIComponent(record.s3.object.key.replace(/\+/g, " "))).toBe(key);
      expect(record).toMatchObject({
        eventVersion: "2.1",
        eventSource: "aws:s3",
        awsRegion: stand.region,
        eventName: "ObjectCreated:Put",
        userIdentity: { principalId: `AWS:${stand.users.uploader.principal.userId}` },
        s3: {
          s3SchemaVersion: "1.0",
          configurationId: expect.any(String) as unknown,
          bucket: { name: sourceBucket, arn: `arn:aws:s3:::${sourceBucket}`, ownerIdentity: { principalId: expect.any(String) as unknown } },
          object: { size: Buffer.byteLength(`body of ${key}`), eTag: etags[i] },
        },
      });
      expect(record.s3.object.sequencer).toMatch(/^[0-9A-F]+$/);
      expect(new Date(record.eventTime).toISOString()).toBe(record.eventTime);
    });
    expect(records.map((r) => r.s3.object.key)).toEqual([
      "in/with+space.txt",
      "in/plus%2Bsign.txt",
      "in/pct%2520literal.txt",
      "in/%C3%B1and%C3%BA/%E6%97%A5%E6%9C%AC%E8%AA%9E.txt",
      "in/shot+%281%29.png",
    ]);
    const sequencers = records.map((r) => BigInt(`0x${r.s3.object.sequencer}`));
    expect([...sequencers].sort((a, b) => (a < b ? -1 : 1))).toEqual(sequencers);
  });

  it("multipart uploads and copies produce CompleteMultipartUpload and Copy events", async () => {
    await drainQueue();
    const { sourceBucket } = stand.config;
    const body = Buffer.alloc(6 * MiB, "m");
    await new Upload({ client: stand.clients.uploader.s3, params: { Bucket: sourceBucket, Key: "in/multi part.bin", Body: body }, partSize: 5 * MiB }).done();
    await stand.clients.admin.s3.send(
      new CopyObjectCommand({ Bucket: sourceBucket, Key: "in/copy.txt", CopySource: `${sourceBucket}/${encodeURIComponent("in/doc.txt")}` }),
    );
    const records = recordsOf(await drainQueue());
    expect(records.map((r) => [r.eventName, r.s3.object.key, r.s3.object.size])).toEqual([
      ["ObjectCreated:CompleteMultipartUpload", "in/multi+part.bin", 6 * MiB],
      ["ObjectCreated:Copy", "in/copy.txt", Buffer.byteLength("document")],
    ]);
    expect(records[0]!.s3.object.eTag).toMatch(/^[0-9a-f]+-2$/);
  });
});

describe("SQS", () => {
  it("the role may receive, change visibility and delete, but not send or read the DLQ", async () => {
    await drainQueue();
    await stand.clients.uploader.s3.send(new PutObjectCommand({ Bucket: stand.config.sourceBucket, Key: "in/sqs.txt", Body: "x" }));
    const queueUrl = stand.config.queueUrl;
    const first = await roleSqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    const message: Message = first.Messages![0]!;
    expect(recordsOf([message.Body!])[0]!.s3.object.key).toBe("in/sqs.txt");
    await roleSqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle!, VisibilityTimeout: 0 }));
    const again = await roleSqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageSystemAttributeNames: ["All"] }),
    );
    const redelivered = again.Messages![0]!;
    expect(redelivered.MessageId).toBe(message.MessageId);
    expect(redelivered.Attributes?.ApproximateReceiveCount).toBe("2");
    await roleSqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: redelivered.ReceiptHandle! }));
    expect(await drainQueue()).toEqual([]);

    const send = await caught(roleSqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "forged" })));
    expect(send.name).toBe("AccessDenied");
    expect(send.$metadata?.httpStatusCode).toBe(403);
    expect(send.message).toBe(
      `User: ${session.principal.arn} is not authorized to perform: sqs:sendmessage on resource: ${stand.queue.arn} ` +
        "because no identity-based policy allows the sqs:sendmessage action",
    );
    const dlq = await caught(roleSqs.send(new ReceiveMessageCommand({ QueueUrl: stand.queue.dlqUrl, WaitTimeSeconds: 0 })));
    expect(dlq.name).toBe("AccessDenied");
  });

  it("callers see the configured account in queue URLs and ARNs, and the DLQ redrive policy", async () => {
    expect(stand.config.queueUrl).toBe(`${stand.urls.gateway}/${stand.accountId}/${stand.queue.name}`);
    const { QueueUrls } = await stand.clients.admin.sqs.send(new ListQueuesCommand({}));
    expect(QueueUrls?.sort()).toEqual([stand.queue.url, stand.queue.dlqUrl].sort());
    const { Attributes } = await stand.clients.admin.sqs.send(new GetQueueAttributesCommand({ QueueUrl: stand.queue.url, AttributeNames: ["All"] }));
    expect(Attributes?.QueueArn).toBe(stand.queue.arn);
    expect(JSON.parse(Attributes!.RedrivePolicy!)).toEqual({ deadLetterTargetArn: stand.queue.dlqArn, maxReceiveCount: 5 });
  });

  it("the query protocol (what AWS CLI 2.9.19 sends) is answered in XML", async () => {
    await stand.clients.uploader.s3.send(new PutObjectCommand({ Bucket: stand.config.sourceBucket, Key: "in/query.txt", Body: "q" }));
    const creds = sessionCreds(session);
    const queueUrl = encodeURIComponent(stand.config.queueUrl);
    const receive = await signedFormPost(
      "sqs",
      creds,
      `Action=ReceiveMessage&Version=2012-11-05&QueueUrl=${queueUrl}&MaxNumberOfMessages=10&AttributeName.1=All`,
    );
    expect(receive.status).toBe(200);
    expect(receive.body).toContain("<ReceiveMessageResponse");
    expect(receive.body).toContain("in/query.txt");
    expect(receive.body).toContain("<Name>ApproximateReceiveCount</Name><Value>1</Value>");
    const handle = /<ReceiptHandle>([^<]+)<\/ReceiptHandle>/.exec(receive.body)![1]!;
    const del = await signedFormPost(
      "sqs",
      creds,
      `Action=DeleteMessage&Version=2012-11-05&QueueUrl=${queueUrl}&ReceiptHandle=${encodeURIComponent(handle)}`,
    );
    expect(del).toMatchObject({ status: 200, body: expect.stringContaining("<DeleteMessageResponse") as unknown });
    const send = await signedFormPost("sqs", creds, `Action=SendMessage&Version=2012-11-05&QueueUrl=${queueUrl}&MessageBody=x`);
    expect(send.status).toBe(403);
    expect(send.body).toContain("<ErrorResponse");
    expect(send.body).toContain("<Code>AccessDenied</Code>");
    await drainQueue();
  });
});

describe("SQS refuses what AWS refuses (fauxqs would accept it)", () => {
  const bogus = "doc-processor-check-not-a-receipt-handle";
  const admin = () => stand.clients.admin.sqs;
  const dlqUrl = () => stand.queue.dlqUrl;

  /** Sends `bodies` to the DLQ (no S3 events arrive there) and receives them: handles in the order sent. */
  async function inFlightOnDlq(bodies: string[]): Promise<string[]> {
    for (const MessageBody of bodies) await admin().send(new SendMessageCommand({ QueueUrl: dlqUrl(), MessageBody }));
    const { Messages = [] } = await admin().send(new ReceiveMessageCommand({ QueueUrl: dlqUrl(), MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    expect(Messages.map((m) => m.Body).sort()).toEqual([...bodies].sort());
    return bodies.map((b) => Messages.find((m) => m.Body === b)!.ReceiptHandle!);
  }

  async function emptyDlq(): Promise<string[]> {
    const bodies: string[] = [];
    for (;;) {
      const { Messages = [] } = await admin().send(
        new ReceiveMessageCommand({ QueueUrl: dlqUrl(), MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
      );
      if (Messages.length === 0) return bodies;
      for (const m of Messages) {
        bodies.push(m.Body ?? "");
        await admin().send(new DeleteMessageCommand({ QueueUrl: dlqUrl(), ReceiptHandle: m.ReceiptHandle! }));
      }
    }
  }

  it("a receipt handle it never issued is ReceiptHandleIsInvalid (after IAM: on the DLQ the role is AccessDenied)", async () => {
    const queueUrl = stand.config.queueUrl;
    const remove = await caught(roleSqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: bogus })));
    expect(remove.name).toBe("ReceiptHandleIsInvalid");
    expect(remove.$metadata?.httpStatusCode).toBe(404);
    expect(remove.message).toBe(`The input receipt handle "${bogus}" is not a valid receipt handle.`);
    const visibility = await caught(
      roleSqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: bogus, VisibilityTimeout: 0 })),
    );
    expect(visibility.name).toBe("ReceiptHandleIsInvalid");
    const dlq = await caught(roleSqs.send(new DeleteMessageCommand({ QueueUrl: dlqUrl(), ReceiptHandle: bogus })));
    expect(dlq.name).toBe("AccessDenied");

    const query = await signedFormPost(
      "sqs",
      sessionCreds(session),
      `Action=DeleteMessage&Version=2012-11-05&QueueUrl=${encodeURIComponent(queueUrl)}&ReceiptHandle=${bogus}`,
    );
    expect(query.status).toBe(404);
    expect(query.body).toContain("<Code>ReceiptHandleIsInvalid</Code>");
  });

  it("batches fail only the entries whose handle is forged, mangled or another queue's; an old handle still deletes", async () => {
    await emptyDlq();
    const [first, second] = await inFlightOnDlq(["batch one", "batch two"]);
    const mangled = `${second!.slice(0, -2)}${second!.endsWith("A=") ? "B=" : "A="}`;
    const deleted = await admin().send(
      new DeleteMessageBatchCommand({
        QueueUrl: dlqUrl(),
        Entries: [
          { Id: "good", ReceiptHandle: first! },
          { Id: "mangled", ReceiptHandle: mangled },
          { Id: "forged", ReceiptHandle: bogus },
        ],
      }),
    );
    expect(deleted.Successful?.map((e) => e.Id)).toEqual(["good"]);
    expect(deleted.Failed?.map((e) => [e.Id, e.Code, e.SenderFault])).toEqual([
      ["mangled", "ReceiptHandleIsInvalid", true],
      ["forged", "ReceiptHandleIsInvalid", true],
    ]);
    // A handle of the DLQ is not one of the queue's; the DLQ's message is untouched.
    const elsewhere = await caught(admin().send(new DeleteMessageCommand({ QueueUrl: stand.queue.url, ReceiptHandle: second! })));
    expect(elsewhere.name).toBe("ReceiptHandleIsInvalid");
    const changed = await admin().send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: dlqUrl(),
        Entries: [
          { Id: "good", ReceiptHandle: second!, VisibilityTimeout: 0 },
          { Id: "forged", ReceiptHandle: bogus, VisibilityTimeout: 0 },
        ],
      }),
    );
    expect(changed.Successful?.map((e) => e.Id)).toEqual(["good"]);
    expect(changed.Failed?.map((e) => [e.Id, e.Code])).toEqual([["forged", "ReceiptHandleIsInvalid"]]);
    // SQS: "If you use an old ReceiptHandle, the request will succeed" (the message is already gone).
    await admin().send(new DeleteMessageCommand({ QueueUrl: dlqUrl(), ReceiptHandle: first! }));
    expect(await emptyDlq()).toEqual(["batch two"]);
  });

  it(`messages over the queue's ${QUEUE_MAXIMUM_MESSAGE_SIZE} bytes, alone or summed in a batch, are refused and not stored`, async () => {
    await emptyDlq();
    const max = QUEUE_MAXIMUM_MESSAGE_SIZE;
    const send = (MessageBody: string, extra: Record<string, unknown> = {}) =>
      admin().send(new SendMessageCommand({ QueueUrl: dlqUrl(), MessageBody, ...extra }));
    await send("a".repeat(max));
    const tooLong = await caught(send("b".repeat(max + 1)));
    expect(tooLong.name).toBe("InvalidParameterValue");
    expect(tooLong.$metadata?.httpStatusCode).toBe(400);
    expect(tooLong.message).toContain(`Message must be shorter than ${max} bytes`);
    // Bytes, not characters; attributes count.
    expect((await caught(send("é".repeat(max / 2 + 1)))).name).toBe("InvalidParameterValue");
    const attribute = { MessageAttributes: { source: { DataType: "String", StringValue: "test" } } };
    expect((await caught(send("c".repeat(max - 10), attribute))).name).toBe("InvalidParameterValue");
    const batch = await caught(
      admin().send(
        new SendMessageBatchCommand({
          QueueUrl: dlqUrl(),
          Entries: [
            { Id: "one", MessageBody: "d".repeat(max / 2) },
            { Id: "two", MessageBody: "e".repeat(max / 2 + 1) },
          ],
        }),
      ),
    );
    expect(batch.name).toBe("BatchRequestTooLong");
    expect(batch.$metadata?.httpStatusCode).toBe(400);
    const stored = await emptyDlq();
    expect(stored.map((b) => b.length)).toEqual([max]);
  });
});

describe("STS and EC2", () => {
  it("GetCallerIdentity answers the assumed-role ARN for the role and the user ARN for users", async () => {
    const role = await stsFor(sessionCreds(session)).send(new GetCallerIdentityCommand({}));
    expect(role).toMatchObject({
      Account: stand.accountId,
      Arn: `arn:aws:sts::${stand.accountId}:assumed-role/${ROLE_NAME}/${stand.instanceId()}`,
      UserId: expect.stringMatching(new RegExp(`^AROA[A-Z2-7]{17}:${stand.instanceId()}$`)) as unknown,
    });
    const cli = stand.users.cliUser;
    const user = await stsFor({ accessKeyId: cli.accessKeyId, secretAccessKey: cli.secretAccessKey }).send(new GetCallerIdentityCommand({}));
    expect(user.Arn).toBe(`arn:aws:iam::${stand.accountId}:user/cli-user`);
  });

  it("EC2 DescribeInstances is UnauthorizedOperation for the role, allowed for admin", async () => {
    const denied = await signedFormPost("ec2", sessionCreds(session), "Action=DescribeInstances&Version=2016-11-15");
    expect(denied.status).toBe(403);
    expect(denied.body).toContain("<Code>UnauthorizedOperation</Code>");
    expect(denied.body).toContain(
      `You are not authorized to perform this operation. User: ${session.principal.arn} is not authorized to perform: ` +
        "ec2:DescribeInstances because no identity-based policy allows the ec2:DescribeInstances action",
    );
    const admin = stand.users.admin;
    const allowed = await signedFormPost("ec2", { accessKeyId: admin.accessKeyId, secretAccessKey: admin.secretAccessKey }, "Action=DescribeInstances&Version=2016-11-15");
    expect(allowed).toMatchObject({ status: 200, body: expect.stringContaining("<reservationSet/>") as unknown });
  });
});

describe("authentication", () => {
  it("a wrong secret is SignatureDoesNotMatch (S3 and SQS)", async () => {
    const wrong = { ...sessionCreds(session), secretAccessKey: "x".repeat(40) };
    const s3Error = await caught(s3For(wrong, { maxAttempts: 1 }).send(new GetObjectCommand({ Bucket: stand.config.sourceBucket, Key: "in/doc.txt" })));
    expect(s3Error.name).toBe("SignatureDoesNotMatch");
    const sqsError = await caught(sqsFor(wrong, { maxAttempts: 1 }).send(new ReceiveMessageCommand({ QueueUrl: stand.config.queueUrl, WaitTimeSeconds: 0 })));
    expect(sqsError.name).toBe("SignatureDoesNotMatch");
    expect(stand.decisions.at(-1)).toMatchObject({ decision: "unauthenticated", code: "SignatureDoesNotMatch", principal: session.principal.arn });
  });

  it("expired session credentials are ExpiredToken; rotation leaves the old ones working until they expire", async () => {
    const old = stand.identities.issueRoleSession(ROLE_NAME, stand.instanceId(), 3600);
    const rotated = stand.identities.issueRoleSession(ROLE_NAME, stand.instanceId(), 3600);
    for (const creds of [old, rotated]) {
      await s3For(sessionCreds(creds)).send(new GetObjectCommand({ Bucket: stand.config.sourceBucket, Key: "in/doc.txt" }));
    }
    stand.identities.expireSession(old.accessKeyId);
    const s3Error = await caught(s3For(sessionCreds(old), { maxAttempts: 1 }).send(new GetObjectCommand({ Bucket: stand.config.sourceBucket, Key: "in/doc.txt" })));
    expect(s3Error.name).toBe("ExpiredToken");
    const stsError = await caught(stsFor(sessionCreds(old), { maxAttempts: 1 }).send(new GetCallerIdentityCommand({})));
    expect(stsError.name).toBe("ExpiredToken");
  });

  it("an unknown key is InvalidAccessKeyId for S3 and InvalidClientTokenId for STS", async () => {
    const unknown = { accessKeyId: "AKIAUNKNOWNUNKNOWN00", secretAccessKey: "x".repeat(40) };
    expect((await caught(s3For(unknown, { maxAttempts: 1 }).send(new GetObjectCommand({ Bucket: "b", Key: "k" })))).name).toBe("InvalidAccessKeyId");
    expect((await caught(stsFor(unknown, { maxAttempts: 1 }).send(new GetCallerIdentityCommand({})))).name).toBe("InvalidClientTokenId");
  });

  it("a clock 20 minutes slow is RequestTimeTooSkewed, and the SDK corrects itself from the Date header", async () => {
    const client = stsFor(sessionCreds(session), { maxAttempts: 1, systemClockOffset: -20 * 60_000 });
    expect((await caught(client.send(new GetCallerIdentityCommand({})))).name).toBe("RequestTimeTooSkewed");
    const identity = await client.send(new GetCallerIdentityCommand({}));
    expect(identity.Arn).toBe(session.principal.arn);
  });
});

describe("the mock IMDS serves role sessions the gateway issued", () => {
  async function imdsCredentials(): Promise<Creds & { Expiration: string }> {
    const base = stand.urls.imds;
    const token = await (await fetch(`${base}latest/api/token`, { method: "PUT", headers: { "x-aws-ec2-metadata-token-ttl-seconds": "60" } })).text();
    const headers = { "x-aws-ec2-metadata-token": token };
    const role = (await (await fetch(`${base}latest/meta-data/iam/security-credentials/`, { headers })).text()).trim();
    const json = (await (await fetch(`${base}latest/meta-data/iam/security-credentials/${role}`, { headers })).json()) as Record<string, string>;
    return { accessKeyId: json["AccessKeyId"]!, secretAccessKey: json["SecretAccessKey"]!, sessionToken: json["Token"]!, Expiration: json["Expiration"]! };
  }

  it("as this instance's role; after a rotation both the old and the new credentials work", async () => {
    const first = await imdsCredentials();
    expect(first.accessKeyId).toMatch(/^ASIA/);
    const identity = await stsFor(first).send(new GetCallerIdentityCommand({}));
    expect(identity.Arn).toBe(`arn:aws:sts::${stand.accountId}:assumed-role/${ROLE_NAME}/${stand.instanceId()}`);
    stand.imds.rotateNow();
    const second = await imdsCredentials();
    expect(second.accessKeyId).not.toBe(first.accessKeyId);
    for (const creds of [first, second]) {
      await s3For(creds).send(new GetObjectCommand({ Bucket: stand.config.sourceBucket, Key: "in/doc.txt" }));
    }
  });

  it("another instance id or another role changes the session's ARN", async () => {
    const original = stand.instanceId();
    try {
      stand.imds.setInstanceId("i-0aaaaaaaaaaaaaaaa");
      const other = await imdsCredentials();
      expect((await stsFor(other).send(new GetCallerIdentityCommand({}))).Arn).toBe(
        `arn:aws:sts::${stand.accountId}:assumed-role/${ROLE_NAME}/i-0aaaaaaaaaaaaaaaa`,
      );
      stand.imds.setRole("SomeOtherRole");
      const otherRole = await imdsCredentials();
      expect((await stsFor(otherRole).send(new GetCallerIdentityCommand({}))).Arn).toContain("assumed-role/SomeOtherRole/");
      const denied = await caught(s3For(otherRole).send(new GetObjectCommand({ Bucket: stand.config.sourceBucket, Key: "in/doc.txt" })));
      expect(denied.name).toBe("AccessDenied");
    } finally {
      stand.imds.setRole(ROLE_NAME);
      stand.imds.setInstanceId(original);
    }
  });
});

describe("fault injection", () => {
  it("fails S3 requests at the configured rate, and counts them", async () => {
    stand.faults.reseed(42);
    const before = stand.faults.counters().s3.error;
    stand.faults.set("s3", { errorRate: 0.3 });
    const admin = s3For({ accessKeyId: stand.users.admin.accessKeyId, secretAccessKey: stand.users.admin.secretAccessKey }, { maxAttempts: 1 });
    let failures = 0;
    for (let i = 0; i < 60; i++) {
      try {
        await admin.send(new HeadObjectCommand({ Bucket: stand.config.sourceBucket, Key: "in/doc.txt" }));
      } catch (error) {
        expect((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode).toBe(500);
        failures += 1;
      }
    }
    expect(stand.faults.counters().s3.error - before).toBe(failures);
    expect(failures).toBeGreaterThan(6);
    expect(failures).toBeLessThan(32);
    admin.destroy();
  });

  it("throttles, resets connections and errors per service", async () => {
    const admin = { accessKeyId: stand.users.admin.accessKeyId, secretAccessKey: stand.users.admin.secretAccessKey };
    stand.faults.set("s3", { throttleRate: 1 });
    const slow = await caught(s3For(admin, { maxAttempts: 1 }).send(new GetObjectCommand({ Bucket: stand.config.sourceBucket, Key: "in/doc.txt" })));
    expect(slow.name).toBe("SlowDown");
    expect(slow.$metadata?.httpStatusCode).toBe(503);
    stand.faults.set("s3", { resetRate: 1 });
    const reset = await caught(s3For(admin, { maxAttempts: 1 }).send(new GetObjectCommand({ Bucket: stand.config.sourceBucket, Key: "in/doc.txt" })));
    expect(reset.$metadata?.httpStatusCode).toBeUndefined();
    stand.faults.set("s3", {});
    stand.faults.set("sqs", { errorRate: 1, operations: ["ReceiveMessage"] });
    const sqsError = await caught(sqsFor(admin, { maxAttempts: 1 }).send(new ReceiveMessageCommand({ QueueUrl: stand.config.queueUrl, WaitTimeSeconds: 0 })));
    expect(sqsError.name).toBe("InternalError");
    stand.faults.set("sts", { throttleRate: 1 });
    expect((await caught(stsFor(admin, { maxAttempts: 1 }).send(new GetCallerIdentityCommand({})))).name).toBe("Throttling");
    stand.faults.set("sts", { latencyMs: 1 });
    const latencyBefore = stand.faults.counters().sts.latency;
    await stsFor(admin).send(new GetCallerIdentityCommand({}));
    expect(stand.faults.counters().sts.latency).toBe(latencyBefore + 1);
  });

  it("'after' faults execute the request and then lose the answer", async () => {
    await drainQueue();
    const admin = { accessKeyId: stand.users.admin.accessKeyId, secretAccessKey: stand.users.admin.secretAccessKey };
    stand.faults.set("s3", { errorRate: 1, phase: "after", operations: ["PutObject"] });
    const error = await caught(s3For(admin, { maxAttempts: 1 }).send(new PutObjectCommand({ Bucket: stand.config.sourceBucket, Key: "in/after.txt", Body: "a" })));
    expect(error.$metadata?.httpStatusCode).toBe(500);
    stand.faults.clear();
    const head = await stand.clients.admin.s3.send(new HeadObjectCommand({ Bucket: stand.config.sourceBucket, Key: "in/after.txt" }));
    expect(head.ContentLength).toBe(1);
    expect(recordsOf(await drainQueue()).map((r) => r.s3.object.key)).toEqual(["in/after.txt"]);
  });
});

describe("decision log and counters", () => {
  it("every decision reaches the injected logger and the counters", () => {
    const counters = stand.counters();
    expect(counters.requests).toBeGreaterThan(0);
    expect(counters.denied).toBe(logged.filter((e) => e.decision === "explicit-deny" || e.decision === "implicit-deny").length);
    expect(counters.byAction["s3:GetObject"]).toBeGreaterThan(0);
    expect(counters.deniedByAction["sqs:SendMessage"]).toBeGreaterThan(0);
    expect(logged).toEqual(expect.arrayContaining([...stand.decisions]));
    expect(logged).toContainEqual(
      expect.objectContaining({
        principal: session.principal.arn,
        action: "s3:PutObject",
        resource: `arn:aws:s3:::${stand.config.sourceBucket}/attempt.txt`,
        decision: "implicit-deny",
      }),
    );
  });
});
