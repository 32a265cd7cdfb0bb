// The scenarios' own AWS calls (uploads, audits) through the stand-in's gateway, retried until they succeed: faults
// are injected per service, not per caller, and the checking side must not be what fails. The retry is ours, not the
// SDK's: the SDK's retry quota runs dry in a fault storm and then gives up at once.
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient, type Message } from "@aws-sdk/client-sqs";
import type { StandIn } from "../../local/stand-in.js";
import type { OutputSeen } from "./accounting.js";
import type { Doc } from "./docs.js";
import { sleep } from "./time.js";

/** Attempts of one call (each an SDK send with its own 3 attempts); about a minute of backoff in all. */
const ATTEMPTS = 40;
const BACKOFF_CAP_MS = 2_000;

/** A fault the gateway injects or a transient failure: 5xx, throttling, a reset or timeout (no HTTP status). */
function isTransient(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  return status === undefined || status >= 500 || ["SlowDown", "RequestThrottled", "Throttling", "TimeoutError"].includes(e.name ?? "");
}

/** `call` until it succeeds or fails for a reason other than a transient one; bounded by ATTEMPTS. */
export async function persist<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (attempt >= ATTEMPTS || !isTransient(error)) throw error;
      await sleep(Math.min(BACKOFF_CAP_MS, 100 * 2 ** attempt) * (0.5 + Math.random() / 2));
    }
  }
}

export interface Clients {
  s3: S3Client;
  sqs: SQSClient;
  destroy(): void;
}

function clientsAs(stand: StandIn, keys: { accessKeyId: string; secretAccessKey: string }): Clients {
  const config = stand.clientConfig({ accessKeyId: keys.accessKeyId, secretAccessKey: keys.secretAccessKey });
  const s3 = new S3Client(config);
  const sqs = new SQSClient(config);
  return {
    s3,
    sqs,
    destroy() {
      s3.destroy();
      sqs.destroy();
    },
  };
}

export const adminClients = (stand: StandIn): Clients => clientsAs(stand, stand.users.admin);
export const uploaderClients = (stand: StandIn): Clients => clientsAs(stand, stand.users.uploader);

export async function uploadOne(stand: StandIn, s3: S3Client, doc: Doc): Promise<void> {
  await persist(() => s3.send(new PutObjectCommand({ Bucket: stand.config.sourceBucket, Key: doc.key, Body: doc.body })));
}

/** Uploads in flight at once at most: a slow upload (retrying through a fault storm) must not hold up the others. */
const UPLOADS_IN_FLIGHT = 16;

/**
 * Starts the uploads of `docs` in order, spread evenly over `spanMs` (load arriving while the scenario does its
 * damage), and resolves once all have finished; rejects on the first failed upload. Stops starting new ones when
 * `signal` aborts.
 */
export async function uploadPaced(stand: StandIn, s3: S3Client, docs: readonly Doc[], spanMs: number, signal: AbortSignal): Promise<number> {
  const start = Date.now();
  const interval = docs.length > 1 ? spanMs / (docs.length - 1) : 0;
  const pending = new Set<Promise<void>>();
  let failure: unknown;
  let uploaded = 0;
  for (const [i, doc] of docs.entries()) {
    if (signal.aborted || failure !== undefined) break;
    const due = start + i * interval - Date.now();
    if (due > 0) await sleep(due, signal);
    while (pending.size >= UPLOADS_IN_FLIGHT) await Promise.race(pending);
    const upload: Promise<void> = uploadOne(stand, s3, doc)
      .then(
        () => {
          uploaded += 1;
        },
        (err: unknown) => {
          failure ??= err;
        },
      )
      .finally(() => pending.delete(upload));
    pending.add(upload);
  }
  await Promise.all(pending);
  if (failure !== undefined) throw failure instanceof Error ? failure : new Error("upload failed", { cause: failure });
  return uploaded;
}

/** Each key's `<key>.json` record, read as admin (`concurrency` at a time); undefined where there is none. */
export async function readOutputs(stand: StandIn, s3: S3Client, keys: readonly string[], concurrency = 8): Promise<Map<string, OutputSeen | undefined>> {
  const out = new Map<string, OutputSeen | undefined>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      const key = keys[next++]!;
      out.set(key, await readOutput(stand, s3, key));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, keys.length) }, worker));
  return out;
}

async function readOutput(stand: StandIn, s3: S3Client, key: string): Promise<OutputSeen | undefined> {
  try {
    const text = await persist(async () => {
      const res = await s3.send(new GetObjectCommand({ Bucket: stand.config.outputBucket, Key: `${key}.json` }));
      return res.Body!.transformToString();
    });
    const record = JSON.parse(text) as { source?: { key?: string }; sha256?: string; bytes?: number };
    return { sourceKey: String(record.source?.key), sha256: String(record.sha256), bytes: Number(record.bytes) };
  } catch (error) {
    if ((error as { name?: string }).name === "NoSuchKey") return undefined;
    throw error;
  }
}

/** Every key in the output bucket, listed as admin (the role cannot list). */
export async function listOutputKeys(stand: StandIn, s3: S3Client): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  // Bounded: 1,000 keys a page.
  for (let page = 0; page < 1_000; page++) {
    const out = await persist(() => s3.send(new ListObjectsV2Command({ Bucket: stand.config.outputBucket, ContinuationToken: token })));
    keys.push(...(out.Contents ?? []).flatMap((o) => (o.Key === undefined ? [] : [o.Key])));
    token = out.NextContinuationToken;
    if (!out.IsTruncated || token === undefined) break;
  }
  return keys;
}

export interface Depth {
  visible: number;
  inFlight: number;
}

export async function depthOf(sqs: SQSClient, queueUrl: string): Promise<Depth> {
  const { Attributes = {} } = await persist(() =>
    sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    ),
  );
  return {
    visible: Number(Attributes.ApproximateNumberOfMessages ?? "NaN"),
    inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? "NaN"),
  };
}

/**
 * Every message visible in the queue, received as admin and hidden for `hideSeconds` so each is read once. For the
 * end of a scenario only: it takes the messages away from any consumer for that long.
 */
export async function takeAll(sqs: SQSClient, queueUrl: string, hideSeconds = 300): Promise<Message[]> {
  const all: Message[] = [];
  // Bounded: 10 per receive, far more rounds than any scenario has messages.
  for (let round = 0; round < 500; round++) {
    const { Messages = [] } = await persist(() =>
      sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
          VisibilityTimeout: hideSeconds,
          MessageSystemAttributeNames: ["ApproximateReceiveCount"],
        }),
      ),
    );
    if (Messages.length === 0) break;
    all.push(...Messages);
  }
  return all;
}

/** The source keys an S3 event body names; [] for anything that is not one (poison bodies). */
export function keysInBody(body: string | undefined): string[] {
  try {
    const parsed = JSON.parse(body ?? "") as { Records?: { s3?: { object?: { key?: string } } }[] };
    if (!Array.isArray(parsed.Records)) return [];
    return parsed.Records.flatMap((r) => {
      const raw = r.s3?.object?.key;
      return typeof raw === "string" ? [decodeURIComponent(raw.replace(/\+/g, " "))] : [];
    });
  } catch {
    return [];
  }
}
