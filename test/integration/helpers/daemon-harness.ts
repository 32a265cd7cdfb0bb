// The real daemon (dist/cli.js as a child process) against the local stand-in: start both, wait on log lines and
// gateway decisions (never on sleeps), read results back as the admin identity, and always clean up.
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, type Message } from "@aws-sdk/client-sqs";
import { existsSync } from "node:fs";
import { DAEMON_CLI, startDaemonProcess, type DaemonProcess, type LogLine } from "../../local/daemon-process.js";
import type { DecisionEntry } from "../../local/gateway/server.js";
import { startStandIn, type StandIn, type StandInOptions } from "../../local/stand-in.js";

export type { DaemonProcess, LogLine } from "../../local/daemon-process.js";
export type { StandIn } from "../../local/stand-in.js";

export const READY = "ready: consuming notifications";
export const IDENTITY_VERIFIED = "identity verified: running as the expected instance role";
export const CREDENTIALS_FETCHED = "credentials fetched from IMDS";

/** Small and fast settings for tests: short long polls, a short drain, IMDS failures reported quickly. */
export const TEST_DAEMON_CONFIG = {
  concurrency: 3,
  waitTimeSeconds: 1,
  drainTimeoutSeconds: 5,
  instanceProfileWaitSeconds: 1,
  imdsTimeoutMs: 1_000,
  imdsMaxRetries: 1,
} as const;

export interface Harness {
  stand: StandIn;
  /** Resolves with the first gateway decision (past or future) matching `predicate`; rejects on timeout. */
  waitForDecision(predicate: (entry: DecisionEntry) => boolean, timeoutMs?: number): Promise<DecisionEntry>;
  /** Starts the daemon with the stand-in's config and env plus `config`/`env`; stopped by `stopDaemons`. */
  startDaemon(options?: { config?: Record<string, unknown>; env?: Record<string, string> }): DaemonProcess;
  /** SIGTERM every daemon still running (SIGKILL after `timeoutMs`) and wait for them. */
  stopDaemons(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

type ExitResult = Awaited<DaemonProcess["exited"]>;

/** 'exit' can come before the last output is read: wait for both pipes to close so logs and stderr are complete. */
async function outputComplete(daemon: DaemonProcess): Promise<void> {
  const closed = (stream: NodeJS.ReadableStream & { closed?: boolean }) =>
    stream.closed === true ? Promise.resolve() : new Promise<void>((resolve) => stream.once("close", () => resolve()));
  const { stdout, stderr } = daemon.child;
  await Promise.all([stdout && closed(stdout), stderr && closed(stderr)]);
}

/** The daemon's exit, once its whole output has been collected. */
export async function daemonExit(daemon: DaemonProcess): Promise<ExitResult> {
  const result = await daemon.exited;
  await outputComplete(daemon);
  return result;
}

/** SIGTERM, then the exit once the whole output has been collected. */
export async function stopDaemon(daemon: DaemonProcess, timeoutMs?: number): Promise<ExitResult> {
  const result = await daemon.stop(timeoutMs);
  await outputComplete(daemon);
  return result;
}

export function assertDaemonBuilt(): void {
  if (!existsSync(DAEMON_CLI)) throw new Error(`${DAEMON_CLI} is missing: run \`npm run build\` first (npm test does)`);
}

export async function startHarness(options: StandInOptions = {}): Promise<Harness> {
  assertDaemonBuilt();
  const waiters = new Set<{ predicate: (e: DecisionEntry) => boolean; resolve: (e: DecisionEntry) => void }>();
  const stand = await startStandIn({
    ...options,
    logger: (entry) => {
      options.logger?.(entry);
      // The gateway calls its logger before it appends the entry to `decisions`; predicates that count
      // `decisions` must run once it is there.
      queueMicrotask(() => {
        for (const waiter of waiters) {
          if (!waiter.predicate(entry)) continue;
          waiters.delete(waiter);
          waiter.resolve(entry);
        }
      });
    },
  });
  const daemons: DaemonProcess[] = [];

  const waitForDecision: Harness["waitForDecision"] = (predicate, timeoutMs = 20_000) => {
    const found = stand.decisions.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`no matching gateway decision within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = {
        predicate,
        resolve: (entry: DecisionEntry) => {
          clearTimeout(timer);
          resolve(entry);
        },
      };
      waiters.add(waiter);
    });
  };

  const stopDaemons = async (timeoutMs = 30_000): Promise<void> => {
    await Promise.all(daemons.splice(0).map((d) => stopDaemon(d, timeoutMs)));
  };

  return {
    stand,
    waitForDecision,
    startDaemon({ config = {}, env = {} } = {}) {
      const daemon = startDaemonProcess({
        config: { ...stand.config, ...TEST_DAEMON_CONFIG, ...config },
        env: { ...stand.env, ...env },
      });
      daemons.push(daemon);
      return daemon;
    },
    stopDaemons,
    async close() {
      try {
        await stopDaemons(10_000);
      } finally {
        await stand.close();
      }
    },
  };
}

export function roleArnPrefix(stand: StandIn): string {
  return `arn:aws:sts::${stand.accountId}:assumed-role/${stand.config.expectedRoleName}/`;
}

/** Decisions made for the daemon's role sessions (any instance id). */
export function roleDecisions(stand: StandIn): DecisionEntry[] {
  const prefix = roleArnPrefix(stand);
  return stand.decisions.filter((d) => d.principal.startsWith(prefix));
}

export async function upload(stand: StandIn, docs: readonly { key: string; body: string | Buffer }[]): Promise<void> {
  // Sequential: the event order then follows the upload order (the overwrite test relies on it).
  for (const { key, body } of docs) {
    await stand.clients.uploader.s3.send(new PutObjectCommand({ Bucket: stand.config.sourceBucket, Key: key, Body: body }));
  }
}

/** Waits until every key has a "document" line with `outcome` (default done); returns those lines. */
export function waitForOutcomes(
  daemon: DaemonProcess,
  keys: readonly string[],
  outcome = "done",
  timeoutMs = 30_000,
): Promise<LogLine[]> {
  return Promise.all(
    keys.map((key) => daemon.waitForLog((l) => l.msg === "document" && l["key"] === key && l["outcome"] === outcome, timeoutMs)),
  );
}

export interface OutputRecord {
  source: { bucket: string; key: string; eTag: string; size: number };
  sha256: string;
  bytes: number;
}

/** The metadata processor's `<key>.json`, read as admin (the role cannot read the output bucket); undefined if absent. */
export async function readOutput(stand: StandIn, key: string): Promise<OutputRecord | undefined> {
  try {
    const out = await stand.clients.admin.s3.send(new GetObjectCommand({ Bucket: stand.config.outputBucket, Key: `${key}.json` }));
    return JSON.parse(await out.Body!.transformToString()) as OutputRecord;
  } catch (error) {
    if ((error as { name?: string }).name === "NoSuchKey") return undefined;
    throw error;
  }
}

/** Messages visible right now, read as admin without hiding them (VisibilityTimeout 0). */
export async function peekVisible(stand: StandIn, queueUrl = stand.queue.url): Promise<Message[]> {
  const { Messages = [] } = await stand.clients.admin.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 0 }),
  );
  return Messages;
}

export async function queueDepth(stand: StandIn, queueUrl = stand.queue.url): Promise<{ visible: number; inFlight: number }> {
  const { Attributes = {} } = await stand.clients.admin.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    }),
  );
  return {
    visible: Number(Attributes.ApproximateNumberOfMessages ?? "NaN"),
    inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? "NaN"),
  };
}

/** The source keys an S3 event message carries (decoded as S3 encodes them: '+' for space, then percent-decoding). */
export function eventKeys(message: Message): string[] {
  const body = JSON.parse(message.Body ?? "{}") as { Records?: { s3?: { object?: { key?: string } } }[] };
  return (body.Records ?? []).map((r) => decodeURIComponent((r.s3?.object?.key ?? "").replace(/\+/g, " ")));
}

export function documentLines(daemon: DaemonProcess): LogLine[] {
  return daemon.logs.filter((l) => l.msg === "document");
}

/** Removes the s3:TestEvent the notification setup queued, so every later SQS call concerns a document. */
export async function discardTestEvent(stand: StandIn): Promise<void> {
  const { Messages = [] } = await stand.clients.admin.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: stand.queue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
  );
  const isTest = (m: Message) => (JSON.parse(m.Body ?? "{}") as { Event?: string }).Event === "s3:TestEvent";
  if (Messages.length !== 1 || !Messages.every(isTest)) {
    throw new Error(`expected only the s3:TestEvent in the queue, got ${Messages.length} message(s)`);
  }
  await stand.clients.admin.sqs.send(
    new DeleteMessageBatchCommand({
      QueueUrl: stand.queue.url,
      Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
    }),
  );
}
