// The bench's baselines, run as a child process like the daemon (same core, same heap limit, credentials from the
// stand-in's IMDS): the same job (GetObject, sha256 over the body, PutObject of a JSON record, delete the message)
//   raw           a hand-written SDK loop: receive 10, at most `concurrency` documents at once, DeleteMessageBatch;
//   aws-lite      the same loop on @aws-lite/client (+ @aws-lite/s3, @aws-lite/sqs), a maintained lean AWS client;
//   lean          the same loop on the daemon's lean transport (src/aws/lean), without the daemon around it;
//   sqs-consumer  the popular consumer with its usual settings (batchSize 10, handleMessage).
// Usage: node --import tsx test/bench/peer-worker.ts raw|aws-lite|lean|sqs-consumer '<job JSON>'. Logs JSON lines on stdout:
// {"msg":"ready: consuming notifications"} then one {"msg":"document",…} per document. SIGTERM: flush and exit 0.
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
} from "@aws-sdk/client-sqs";
import { doesIdentityRequireRefresh, isIdentityExpired, memoizeIdentityProvider } from "@smithy/core";
import { fromInstanceMetadata } from "@smithy/credential-provider-imds";
import type { AwsCredentialIdentityProvider } from "@smithy/types";
import { Consumer } from "sqs-consumer";
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import awsLite from "@aws-lite/client";
import { createLeanTransport } from "../../src/aws/lean/index.js";

export interface PeerJob {
  endpoint: string;
  region: string;
  queueUrl: string;
  outputBucket: string;
  concurrency: number;
  /** Size of the JSON record written per document (the daemon's metadata output size). */
  outputBytes: number;
}

const mode = process.argv[2];
const job = JSON.parse(process.argv[3] ?? "{}") as PeerJob;
// Memoized as the SDK clients do inside and the daemon does outside (src/aws/credentials.ts): the lean transport
// asks its provider on every request.
const credentials = memoizeIdentityProvider(
  fromInstanceMetadata({ timeout: 2_000, maxRetries: 3 }),
  isIdentityExpired,
  doesIdentityRequireRefresh,
) as AwsCredentialIdentityProvider;
const common = { endpoint: job.endpoint, region: job.region, credentials };
const s3 = new S3Client({ ...common, forcePathStyle: true });
const sqs = new SQSClient(common);

/** The four calls of the job, per client library. */
interface Calls {
  receive(): Promise<Message[]>;
  /** The object's bytes, streamed where the library streams. */
  get(bucket: string, key: string): Promise<AsyncIterable<Buffer> | Buffer>;
  put(bucket: string, key: string, body: string): Promise<void>;
  deleteBatch(messages: readonly Message[]): Promise<void>;
}

const entries = (messages: readonly Message[]) => messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! }));

function sdkCalls(): Calls {
  return {
    async receive() {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: job.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 20 }));
      return out.Messages ?? [];
    },
    async get(bucket, key) {
      return (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body as Readable;
    },
    async put(bucket, key, body) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: "application/json" }));
    },
    async deleteBatch(messages) {
      await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: job.queueUrl, Entries: entries(messages) }));
    },
  };
}

type LiteCall = (params: Record<string, unknown>) => Promise<unknown>;
/** What the plugins add to the client (untyped without their -types packages). */
interface LiteServices {
  S3: { GetObject: LiteCall; PutObject: LiteCall };
  SQS: { ReceiveMessage: LiteCall };
}

/**
 * @aws-lite/client takes credentials once, at creation (it has an IMDS loader but no refresh before expiry): here
 * they come from the same IMDS provider, once. Its S3 plugin buffers GetObject unless asked to stream.
 */
async function awsLiteCalls(): Promise<Calls> {
  const creds = await credentials();
  const url = new URL(job.endpoint);
  const client = await awsLite({
    region: job.region,
    accessKeyId: creds.accessKeyId,
    secretAccessKey: creds.secretAccessKey,
    ...(creds.sessionToken === undefined ? {} : { sessionToken: creds.sessionToken }),
    protocol: url.protocol.replace(":", ""),
    host: url.hostname,
    port: Number(url.port),
    plugins: [import("@aws-lite/s3"), import("@aws-lite/sqs")],
  });
  const aws = client as unknown as LiteServices;
  // @aws-lite/sqs 0.2 has no DeleteMessageBatch: the client's generic request sends it, in the same JSON protocol.
  const request = client as unknown as LiteCall;
  return {
    async receive() {
      const out = (await aws.SQS.ReceiveMessage({ QueueUrl: job.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 20 })) as {
        Messages?: Message[];
      };
      return out.Messages ?? [];
    },
    async get(bucket, key) {
      const out = (await aws.S3.GetObject({ Bucket: bucket, Key: key, streamResponsePayload: true })) as { Body: Readable };
      return out.Body;
    },
    async put(bucket, key, body) {
      await aws.S3.PutObject({ Bucket: bucket, Key: key, Body: body, ContentType: "application/json" });
    },
    async deleteBatch(messages) {
      await request({
        service: "sqs",
        awsjson: false,
        path: "/",
        headers: { "X-Amz-Target": "AmazonSQS.DeleteMessageBatch", "content-type": "application/x-amz-json-1.0" },
        payload: { QueueUrl: job.queueUrl, Entries: entries(messages) },
      });
    },
  };
}

function leanCalls(): Calls {
  const lean = createLeanTransport({
    region: job.region,
    credentials,
    sqsEndpoint: job.endpoint,
    s3Endpoint: job.endpoint,
    maxSockets: job.concurrency * 2 + 4,
    connectionTimeoutMs: 5_000,
    requestTimeoutMs: 60_000,
    maxAttempts: 4,
  });
  const never = new AbortController().signal;
  return {
    receive: () =>
      lean.queue.receiveMessages(
        { queueUrl: job.queueUrl, maxMessages: 10, waitTimeSeconds: 20, visibilityTimeoutSeconds: 30, systemAttributes: [] },
        never,
      ),
    async get(bucket, key) {
      return (await lean.objects.getObject({ bucket, key }, never)).body as AsyncIterable<Buffer>;
    },
    async put(bucket, key, body) {
      await lean.objects.putObject(
        { bucket, key, body, contentLength: Buffer.byteLength(body), contentType: "application/json", metadata: {} },
        never,
      );
    },
    async deleteBatch(messages) {
      await lean.queue.deleteMessageBatch(
        job.queueUrl,
        messages.map((m, i) => ({ id: String(i), receiptHandle: m.ReceiptHandle! })),
      );
    },
  };
}

let calls: Calls = sdkCalls();

const log = (line: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(line)}\n`);
};

/** The S3 objects named by a notification body; none for s3:TestEvent or anything else. */
function objectsOf(body: string | undefined): { bucket: string; key: string }[] {
  try {
    const parsed = JSON.parse(body ?? "") as { Records?: { s3?: { bucket?: { name?: string }; object?: { key?: string } } }[] };
    return (parsed.Records ?? []).flatMap((r) => {
      const bucket = r.s3?.bucket?.name;
      const key = r.s3?.object?.key;
      return bucket && key ? [{ bucket, key: decodeURIComponent(key.replace(/\+/g, " ")) }] : [];
    });
  } catch {
    return [];
  }
}

/** The job for one message: read the object through sha256, write a JSON record of job.outputBytes. */
async function handle(message: Message): Promise<void> {
  for (const { bucket, key } of objectsOf(message.Body)) {
    const started = Date.now();
    const object = await calls.get(bucket, key);
    const hash = createHash("sha256");
    let bytesIn = 0;
    for await (const chunk of Buffer.isBuffer(object) ? [object] : object) {
      hash.update(chunk);
      bytesIn += chunk.length;
    }
    const record = JSON.stringify({ source: { bucket, key }, bytes: bytesIn, sha256: hash.digest("hex"), pad: "" });
    // Padded to the daemon's output size so both write the same bytes.
    const body = record.replace('"pad":""', `"pad":"${" ".repeat(Math.max(0, job.outputBytes - record.length))}"`);
    await calls.put(job.outputBucket, `${key}.json`, body);
    log({ msg: "document", outcome: "done", key, bytesIn, bytesOut: Buffer.byteLength(body), durationMs: Date.now() - started });
  }
}

async function raw(): Promise<void> {
  const buffer: Message[] = [];
  const takers: ((m: Message) => void)[] = [];
  const toDelete: Message[] = [];
  let inFlight = 0;
  let stopping = false;
  let flushing: Promise<void> = Promise.resolve();

  const flush = (): Promise<void> => {
    const batch = toDelete.splice(0, 10);
    if (batch.length === 0) return flushing;
    flushing = flushing.then(async () => {
      await calls.deleteBatch(batch);
    });
    return flushing;
  };
  const ack = (m: Message): void => {
    toDelete.push(m);
    // A full batch goes at once; a partial one when there is nothing else to do (the end of a burst).
    if (toDelete.length >= 10 || (buffer.length === 0 && inFlight === 0)) void flush().catch(fail);
  };
  // Wakes the receive loop once the workers have taken the buffer below `concurrency` (no busy wait on the one core).
  let wakeReceiver: (() => void) | undefined;
  const take = (): Promise<Message> => {
    const next = buffer.shift();
    if (buffer.length < job.concurrency && wakeReceiver) {
      wakeReceiver();
      wakeReceiver = undefined;
    }
    return next ? Promise.resolve(next) : new Promise((resolve) => takers.push(resolve));
  };

  const worker = async (): Promise<void> => {
    for (;;) {
      const message = await take();
      inFlight++;
      await handle(message);
      inFlight--;
      ack(message);
    }
  };
  for (let i = 0; i < job.concurrency; i++) void worker().catch(fail);

  process.once("SIGTERM", () => {
    stopping = true;
    while (toDelete.length > 0) void flush();
    void flushing.then(() => process.exit(0), fail);
  });
  log({ msg: "ready: consuming notifications" });
  // Keeps one batch ahead of the workers; long-polls when the queue is empty.
  while (!stopping) {
    if (buffer.length >= job.concurrency) {
      await new Promise<void>((resolve) => (wakeReceiver = resolve));
      continue;
    }
    const received = await calls.receive();
    for (const m of received) {
      const taker = takers.shift();
      if (taker) taker(m);
      else buffer.push(m);
    }
    if (received.length === 0 && toDelete.length > 0) void flush().catch(fail);
  }
}

async function peer(): Promise<void> {
  const consumer = Consumer.create({
    queueUrl: job.queueUrl,
    sqs,
    batchSize: 10,
    handleMessage: async (message) => {
      await handle(message);
      return message;
    },
  });
  consumer.on("error", (err) => process.stderr.write(`sqs-consumer error: ${err.message}\n`));
  consumer.on("processing_error", (err) => process.stderr.write(`sqs-consumer processing_error: ${err.message}\n`));
  process.once("SIGTERM", () => {
    consumer.stop({ abort: true });
    process.exit(0);
  });
  consumer.start();
  log({ msg: "ready: consuming notifications" });
  await new Promise<never>(() => {});
}

function fail(err: unknown): never {
  process.stderr.write(`peer-worker: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  switch (mode) {
    case "raw":
      return raw();
    case "aws-lite":
      calls = await awsLiteCalls();
      return raw();
    case "lean":
      calls = leanCalls();
      return raw();
    case "sqs-consumer":
      return peer();
    default:
      fail(new Error(`unknown mode ${String(mode)}`));
  }
}

main().catch(fail);
