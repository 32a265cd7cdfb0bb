// The bench's baselines, run as a child process like the daemon (same core, same heap limit, credentials from the
// stand-in's IMDS): the same job (GetObject, sha256 over the body, PutObject of a JSON record, delete the message)
//   raw           a hand-written SDK loop: receive 10, at most `concurrency` documents at once, DeleteMessageBatch;
//   sqs-consumer  the popular consumer with its usual settings (batchSize 10, handleMessage).
// Usage: node --import tsx test/bench/peer-worker.ts raw|sqs-consumer '<job JSON>'. Logs JSON lines on stdout:
// {"msg":"ready: consuming notifications"} then one {"msg":"document",…} per document. SIGTERM: flush and exit 0.
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
} from "@aws-sdk/client-sqs";
import { fromInstanceMetadata } from "@smithy/credential-provider-imds";
import { Consumer } from "sqs-consumer";
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";

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
const credentials = fromInstanceMetadata({ timeout: 2_000, maxRetries: 3 });
const common = { endpoint: job.endpoint, region: job.region, credentials };
const s3 = new S3Client({ ...common, forcePathStyle: true });
const sqs = new SQSClient(common);

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
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const hash = createHash("sha256");
    let bytesIn = 0;
    for await (const chunk of object.Body as Readable) {
      hash.update(chunk as Buffer);
      bytesIn += (chunk as Buffer).length;
    }
    const record = JSON.stringify({ source: { bucket, key }, bytes: bytesIn, sha256: hash.digest("hex"), pad: "" });
    // Padded to the daemon's output size so both write the same bytes.
    const body = record.replace('"pad":""', `"pad":"${" ".repeat(Math.max(0, job.outputBytes - record.length))}"`);
    await s3.send(
      new PutObjectCommand({ Bucket: job.outputBucket, Key: `${key}.json`, Body: body, ContentType: "application/json" }),
    );
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
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: job.queueUrl,
          Entries: batch.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
        }),
      );
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
    const out = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: job.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 20 }),
    );
    for (const m of out.Messages ?? []) {
      const taker = takers.shift();
      if (taker) taker(m);
      else buffer.push(m);
    }
    if (out.Messages?.length === 0 && toDelete.length > 0) void flush().catch(fail);
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

if (mode === "raw") raw().catch(fail);
else if (mode === "sqs-consumer") peer().catch(fail);
else fail(new Error(`unknown mode ${String(mode)}`));
