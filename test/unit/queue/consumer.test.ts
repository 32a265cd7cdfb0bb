import { S3Client } from "@aws-sdk/client-s3";
import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  ReceiptHandleIsInvalid,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
  type ReceiveMessageCommandOutput,
} from "@aws-sdk/client-sqs";
import { mockClient, type AwsClientStub } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createLogger } from "../../../src/logging/logger.js";
import type { Outcome } from "../../../src/pipeline/outcome.js";
import type { DocumentPipeline, SubmitContext } from "../../../src/pipeline/types.js";
import { Consumer, receiveSize, type ConsumerEvent, type ConsumerOptions } from "../../../src/queue/consumer.js";
import { MAX_LOG_LINE_BYTES } from "../../../src/logging/log-bounds.js";
import { Metrics } from "../../../src/observability/metrics.js";
import { parseNotification } from "../../../src/queue/notifications.js";
import type { DocumentRef } from "../../../src/domain/document.js";
import type { NotifiedDocument, ParsedNotification } from "../../../src/queue/records.js";
import { sdkTransport } from "../../../src/aws/sdk-transport.js";

const QUEUE_URL = "http://127.0.0.1:9/000000000000/documents";
const DONE: Outcome = { status: "done", outputs: ["out/a.json"], bytesIn: 1, bytesOut: 1 };
const RETRY: Outcome = { status: "retry", code: "SOURCE_READ_FAILED", reason: "socket reset" };
const REJECTED: Outcome = { status: "rejected", code: "OBJECT_TOO_LARGE", reason: "too large" };
const ABORTED: Outcome = { status: "retry", code: "ABORTED", reason: "aborted" };

// ---- fakes ----

interface Submission {
  doc: DocumentRef;
  ctx: SubmitContext;
  settle: (outcome: Outcome) => void;
}

/** A pipeline whose room and outcomes the test controls. */
class FakePipeline implements DocumentPipeline {
  free = 10;
  capacity = 10;
  /** Idle workers; undefined: as many as free slots (a pipeline without prefetch). */
  idle: number | undefined;
  /** When set, every submission settles at once with it. */
  auto: Outcome | undefined;
  /** Whether submissions start running at once (ctx.onStart); otherwise the test starts them. */
  startAtOnce = true;
  readonly submissions: Submission[] = [];
  private readonly listeners = new Set<() => void>();

  freeSlots(): number {
    return this.free;
  }

  idleWorkers(): number {
    return this.idle ?? this.free;
  }

  setFree(n: number, idle?: number): void {
    this.free = n;
    this.idle = idle;
    this.notify();
  }

  waitForRoom(signal: AbortSignal, atLeast = 1): Promise<void> {
    return this.until(
      () => this.free >= atLeast || (this.free > 0 && this.idleWorkers() > 0) || signal.aborted,
      signal,
    );
  }

  submit(doc: DocumentRef, ctx: SubmitContext): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      this.submissions.push({ doc, ctx, settle: resolve });
      if (this.startAtOnce) ctx.onStart?.();
      if (this.auto !== undefined) resolve(this.auto);
      this.notify();
    });
  }

  onIdle(): Promise<void> {
    return Promise.resolve();
  }

  get inFlight(): number {
    return 0;
  }

  submission(key: string): Submission {
    const found = this.submissions.find((s) => s.doc.key === key);
    if (found === undefined) throw new Error(`no submission for ${key}`);
    return found;
  }

  until(check: () => boolean, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const listener = (): void => {
        if (!check()) return;
        this.listeners.delete(listener);
        signal?.removeEventListener("abort", listener);
        resolve();
      };
      this.listeners.add(listener);
      signal?.addEventListener("abort", listener);
      listener();
    });
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

class EventLog {
  readonly all: ConsumerEvent[] = [];
  private readonly waiters = new Set<() => void>();

  push(event: ConsumerEvent): void {
    this.all.push(event);
    this.poke();
  }

  /** Re-evaluate the waiters (the SQS fakes call this, so tests can wait on calls too). */
  poke(): void {
    for (const w of [...this.waiters]) w();
  }

  of<T extends ConsumerEvent["type"]>(type: T): Extract<ConsumerEvent, { type: T }>[] {
    return this.all.filter((e): e is Extract<ConsumerEvent, { type: T }> => e.type === type);
  }

  sum(type: "deleted" | "released" | "extended"): number {
    return this.of(type).reduce((n, e) => n + e.count, 0);
  }

  until(check: () => boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      const waiter = (): void => {
        if (!check()) return;
        this.waiters.delete(waiter);
        resolve();
      };
      this.waiters.add(waiter);
      waiter();
    });
  }
}

function doc(key: string): NotifiedDocument {
  return { bucket: "source", key, rawKey: key, eventName: "ObjectCreated:Put" };
}

const documents = (...keys: string[]): ParsedNotification => ({
  kind: "documents",
  documents: keys.map(doc),
  ignored: [],
});

/** The fake parser reads the ParsedNotification straight from the body. */
function message(id: string, parsed: ParsedNotification, receiveCount = 1): Message {
  return {
    MessageId: id,
    ReceiptHandle: `rh-${id}`,
    Body: JSON.stringify(parsed),
    Attributes: { ApproximateReceiveCount: String(receiveCount), SentTimestamp: "1700000000000" },
  };
}

function abortError(): Error {
  return Object.assign(new Error("Request aborted"), { name: "AbortError" });
}

interface Harness {
  consumer: Consumer;
  sqs: AwsClientStub<SQSClient>;
  pipeline: FakePipeline;
  events: EventLog;
  /** The one set of counters, fed by the consumer's events as the daemon feeds it. */
  metrics: Metrics;
  logs: Record<string, unknown>[];
  /** The same lines as written. */
  rawLines: string[];
  /** ReceiveMessage answers, in order; once used up, a receive answers empty after its wait time (a long poll) or aborts. */
  receives: (Message[] | Error)[];
  receiveSignals: (AbortSignal | undefined)[];
}

function setup(overrides: Partial<ConsumerOptions> = {}): Harness {
  const client = new SQSClient({
    region: "us-east-1",
    endpoint: "http://127.0.0.1:9",
    credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "secret" },
  });
  const sqs = mockClient(client);
  const pipeline = new FakePipeline();
  const events = new EventLog();
  const metrics = new Metrics();
  const logs: Record<string, unknown>[] = [];
  const rawLines: string[] = [];
  const log = createLogger({
    level: "debug",
    destination: {
      write: (line: string) => {
        rawLines.push(line);
        logs.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  });
  const receives: (Message[] | Error)[] = [];
  const receiveSignals: (AbortSignal | undefined)[] = [];
  sqs.on(ReceiveMessageCommand).callsFake((input: { WaitTimeSeconds?: number }): Promise<Partial<ReceiveMessageCommandOutput>> => {
    // aws-sdk-client-mock drops send()'s options; the stub's current call still has them.
    const options = (sqs.send.lastCall.args as unknown[])[1] as { abortSignal?: AbortSignal } | undefined;
    const signal = options?.abortSignal;
    receiveSignals.push(signal);
    events.poke();
    // Without a signal stop() could not end the long poll: fail the call rather than hang the test.
    if (signal === undefined) return Promise.reject(new Error("ReceiveMessage sent without an abortSignal"));
    const next = receives.shift();
    if (next instanceof Error) return Promise.reject(next);
    if (next !== undefined) return Promise.resolve({ Messages: next });
    // As SQS: empty after the wait time, unless aborted first.
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(abortError());
        return;
      }
      const timer = setTimeout(() => resolve({}), (input.WaitTimeSeconds ?? 0) * 1000);
      signal.addEventListener(
        "abort",
        () => {
          clearTimeout(timer);
          reject(abortError());
        },
        { once: true },
      );
    });
  });
  sqs.on(DeleteMessageBatchCommand).callsFake((input: { Entries?: { Id?: string }[] }) => ({
    Successful: (input.Entries ?? []).map((e) => ({ Id: e.Id })),
    Failed: [],
  }));
  sqs.on(DeleteMessageCommand).resolves({});
  sqs.on(ChangeMessageVisibilityCommand).resolves({});
  sqs.on(ChangeMessageVisibilityBatchCommand).callsFake((input: { Entries?: { Id?: string }[] }) => ({
    Successful: (input.Entries ?? []).map((e) => ({ Id: e.Id })),
    Failed: [],
  }));
  const consumer = new Consumer({
    queue: sdkTransport(async () => new S3Client({ region: "us-east-1" }), client).queue,
    queueUrl: QUEUE_URL,
    pipeline,
    parse: (body) => JSON.parse(body) as ParsedNotification,
    log,
    visibilityTimeoutSeconds: 20,
    maxProcessingSeconds: 300,
    waitTimeSeconds: 20,
    deleteBatchLingerMs: 50,
    random: () => 1,
    onEvent: (e) => {
      metrics.onConsumerEvent(e);
      events.push(e);
    },
    ...overrides,
  });
  return { consumer, sqs, pipeline, events, metrics, logs, rawLines, receives, receiveSignals };
}

/** Advance fake time in steps until `promise` settles (no real waiting); fails after `maxMs` of fake time. */
async function advanceUntil<T>(promise: Promise<T>, maxMs = 120_000, stepMs = 100): Promise<T> {
  let settled = false;
  const tracked = promise.finally(() => {
    settled = true;
  });
  for (let t = 0; t < maxMs && !settled; t += stepMs) await vi.advanceTimersByTimeAsync(stepMs);
  if (!settled) {
    tracked.catch(() => undefined);
    throw new Error(`still pending after ${maxMs} ms of fake time`);
  }
  return tracked;
}

const receiveCalls = (h: Harness) => h.sqs.commandCalls(ReceiveMessageCommand).map((c) => c.args[0].input);
const visibilityCalls = (h: Harness) => h.sqs.commandCalls(ChangeMessageVisibilityCommand).map((c) => c.args[0].input);
const visibilityBatchCalls = (h: Harness) =>
  h.sqs.commandCalls(ChangeMessageVisibilityBatchCommand).map((c) => c.args[0].input);
const deleteBatchCalls = (h: Harness) => h.sqs.commandCalls(DeleteMessageBatchCommand).map((c) => c.args[0].input);
const deleteCalls = (h: Harness) => h.sqs.commandCalls(DeleteMessageCommand).map((c) => c.args[0].input);
const waitForReceives = (h: Harness, n: number) => h.events.until(() => receiveCalls(h).length >= n);

/** Every SQS call the consumer made; the role may call only these. */
const ALLOWED = new Set([
  "ReceiveMessageCommand",
  "DeleteMessageCommand",
  "DeleteMessageBatchCommand",
  "ChangeMessageVisibilityCommand",
  "ChangeMessageVisibilityBatchCommand",
]);

let unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
let harness: Harness | undefined;

beforeEach(() => {
  unhandled = [];
  process.on("unhandledRejection", onUnhandled);
  vi.useFakeTimers();
});

afterEach(async () => {
  try {
    if (harness !== undefined) {
      const h = harness;
      harness = undefined;
      try {
        await advanceUntil(h.consumer.stop({ drainTimeoutMs: 0 }));
        for (const call of h.sqs.calls()) {
          expect(ALLOWED.has((call.args[0] as object).constructor.name)).toBe(true);
        }
      } finally {
        h.sqs.restore();
      }
    }
    // Let any stray rejection surface before checking.
    await vi.advanceTimersByTimeAsync(0);
  } finally {
    vi.useRealTimers();
    process.off("unhandledRejection", onUnhandled);
  }
  expect(unhandled).toEqual([]);
});

function start(overrides: Partial<ConsumerOptions> = {}): Harness & { running: Promise<void> } {
  const h = setup(overrides);
  harness = h;
  return { ...h, running: h.consumer.start() };
}

// ---- tests ----

describe("receive loop and backpressure", () => {
  it("asks for min(10, free slots) with the long poll, visibility and system attributes", async () => {
    const h = setup();
    harness = h;
    h.pipeline.setFree(3);
    const running = h.consumer.start();
    await waitForReceives(h, 1);
    expect(receiveCalls(h)[0]).toEqual({
      QueueUrl: QUEUE_URL,
      MaxNumberOfMessages: 3,
      WaitTimeSeconds: 20,
      VisibilityTimeout: 20,
      MessageSystemAttributeNames: ["ApproximateReceiveCount", "SentTimestamp"],
    });
    await advanceUntil(h.consumer.stop({ drainTimeoutMs: 0 }));
    await running;
  });

  it("caps the request at 10 when more slots are free", async () => {
    const h = setup();
    harness = h;
    h.pipeline.setFree(25);
    void h.consumer.start();
    await waitForReceives(h, 1);
    expect(receiveCalls(h)[0]?.MaxNumberOfMessages).toBe(10);
  });

  it("asks for a full batch once there is room for one while every worker is busy", async () => {
    const h = setup();
    harness = h;
    h.pipeline.capacity = 14;
    h.pipeline.setFree(4, 0); // 4 running, 6 waiting: room for 4, no idle worker
    const running = h.consumer.start();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(receiveCalls(h)).toHaveLength(0);
    h.pipeline.setFree(10, 0);
    await waitForReceives(h, 1);
    expect(receiveCalls(h)[0]?.MaxNumberOfMessages).toBe(10);
    await advanceUntil(h.consumer.stop({ drainTimeoutMs: 0 }));
    await running;
  });

  it("receives less than a batch when a worker would otherwise idle", async () => {
    const h = setup();
    harness = h;
    h.pipeline.capacity = 14;
    h.pipeline.setFree(3, 0);
    const running = h.consumer.start();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(receiveCalls(h)).toHaveLength(0);
    h.pipeline.setFree(3, 1);
    await waitForReceives(h, 1);
    expect(receiveCalls(h)[0]?.MaxNumberOfMessages).toBe(3);
    await advanceUntil(h.consumer.stop({ drainTimeoutMs: 0 }));
    await running;
  });

  it("does not receive while the pipeline has no room, but still reports loop cycles", async () => {
    const h = setup();
    harness = h;
    h.pipeline.setFree(0);
    const running = h.consumer.start();
    await vi.advanceTimersByTimeAsync(45_000);
    expect(receiveCalls(h)).toHaveLength(0);
    expect(h.events.of("cycle").map((c) => c.result)).toEqual(["full", "full"]);

    h.pipeline.setFree(4);
    await waitForReceives(h, 1);
    expect(receiveCalls(h)[0]?.MaxNumberOfMessages).toBe(4);
    await advanceUntil(h.consumer.stop({ drainTimeoutMs: 0 }));
    await running;
  });

  it("reports a cycle after each completed receive (the watchdog feed)", async () => {
    const h = start();
    h.receives.push([], [message("a", { kind: "test-event" })]);
    await waitForReceives(h, 3);
    expect(h.events.of("cycle")).toEqual([
      { type: "cycle", result: "received", received: 0 },
      { type: "cycle", result: "received", received: 1 },
    ]);
  });
});

describe("receive errors", () => {
  it("backs off exponentially with jitter, never crashes, and resets after a success", async () => {
    const throttled = Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException", $metadata: {} });
    const h = start();
    h.receives.push(throttled, throttled, [], throttled);
    await waitForReceives(h, 1);
    await vi.advanceTimersByTimeAsync(999);
    expect(receiveCalls(h)).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(receiveCalls(h)).toHaveLength(2);
    // second consecutive failure: 2 s
    await vi.advanceTimersByTimeAsync(1_999);
    expect(receiveCalls(h)).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    // third receive succeeds (empty) and the fourth follows at once, then fails: back to 1 s
    await waitForReceives(h, 4);
    await vi.advanceTimersByTimeAsync(999);
    expect(receiveCalls(h)).toHaveLength(4);
    await vi.advanceTimersByTimeAsync(1);
    expect(receiveCalls(h)).toHaveLength(5);

    expect(h.events.of("error").map((e) => e.operation)).toEqual(Array(3).fill("ReceiveMessage"));
    expect(h.metrics.snapshot().sqs_receive_errors_total).toBe(3);
    const warnings = h.logs.filter((l) => l["msg"] === "ReceiveMessage failed; backing off");
    expect(warnings.map((l) => l["retryInMs"])).toEqual([1_000, 2_000, 1_000]);
    expect(warnings[0]).toMatchObject({ level: "warn", code: "ThrottlingException" });
  });

  // The start-up probe cannot prove ReceiveMessage without taking messages: a refusal here says what to fix.
  it("logs a refused receive (the policy, the queue's KMS key) as an error with the fix, and keeps trying", async () => {
    const refused = (name: string) => Object.assign(new Error("refused"), { name, $metadata: { httpStatusCode: 400 } });
    const h = start();
    h.receives.push(refused("AccessDenied"), refused("KmsAccessDenied"), refused("KmsDisabled"));
    await waitForReceives(h, 1);
    // Backoffs of 1, 2 and 4 s, then the fourth receive.
    await vi.advanceTimersByTimeAsync(7_000);
    expect(receiveCalls(h)).toHaveLength(4);
    const errors = h.logs.filter((l) => String(l["msg"]).startsWith("ReceiveMessage refused: "));
    expect(errors.map((l) => [l["level"], l["code"]])).toEqual([
      ["error", "AccessDenied"],
      ["error", "KmsAccessDenied"],
      ["error", "KmsDisabled"],
    ]);
    expect(errors[0]!["fix"]).toMatch(/may not sqs:ReceiveMessage.*DocumentProcessorS3Access\.json/);
    expect(errors[1]!["fix"]).toMatch(/kms:Decrypt/);
    expect(h.logs.filter((l) => l["msg"] === "ReceiveMessage failed; backing off")).toEqual([]);
  });
});

describe("per-message handling", () => {
  it("never deletes a malformed message nor touches its visibility, and logs it once", async () => {
    const h = start();
    h.receives.push([message("bad", { kind: "malformed", reason: "not-json", detail: "Unexpected token" }, 2)]);
    await waitForReceives(h, 2);
    await advanceUntil(h.consumer.stop({ drainTimeoutMs: 1_000 }));

    expect(deleteBatchCalls(h)).toHaveLength(0);
    expect(deleteCalls(h)).toHaveLength(0);
    expect(visibilityCalls(h)).toHaveLength(0);
    expect(visibilityBatchCalls(h)).toHaveLength(0);
    const lines = h.logs.filter((l) => l["messageId"] === "bad");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: "warn",
      messageId: "bad",
      receiveCount: 2,
      outcome: "malformed",
      reason: "not-json",
      detail: "Unexpected token",
    });
    expect(h.events.of("malformed")).toEqual([{ type: "malformed", messageId: "bad", reason: "not-json" }]);
  });

  it("deletes test events and ignored messages, together in one batch", async () => {
    const h = start();
    h.receives.push([
      message("t", { kind: "test-event" }),
      message("i", { kind: "ignored", ignored: [{ reason: "other-bucket", detail: "bucket elsewhere" }] }),
    ]);
    await waitForReceives(h, 2);
    await vi.advanceTimersByTimeAsync(50);
    await h.events.until(() => h.events.sum("deleted") === 2);

    expect(deleteBatchCalls(h)).toEqual([
      {
        QueueUrl: QUEUE_URL,
        Entries: [
          { Id: "m0", ReceiptHandle: "rh-t" },
          { Id: "m1", ReceiptHandle: "rh-i" },
        ],
      },
    ]);
    expect(h.pipeline.submissions).toHaveLength(0);
    expect(h.logs.find((l) => l["messageId"] === "t")).toMatchObject({ level: "info", outcome: "test-event" });
    expect(h.logs.find((l) => l["messageId"] === "i")).toMatchObject({
      level: "info",
      outcome: "ignored",
      ignored: [{ reason: "other-bucket", detail: "bucket elsewhere" }],
    });
  });

  it("submits every document with the message context and deletes once all are acknowledgeable", async () => {
    const h = start();
    h.receives.push([message("m", documents("a.pdf", "b.pdf"), 3)]);
    await h.pipeline.until(() => h.pipeline.submissions.length === 2);
    const ctx = h.pipeline.submission("a.pdf").ctx;
    expect(ctx).toMatchObject({ messageId: "m", receiveCount: 3 });
    expect(ctx.signal.aborted).toBe(false);

    h.pipeline.submission("a.pdf").settle(DONE);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(deleteCalls(h)).toHaveLength(0); // b.pdf still running

    h.pipeline.submission("b.pdf").settle({ status: "superseded", reason: "412" });
    await vi.advanceTimersByTimeAsync(50);
    await h.events.until(() => h.events.sum("deleted") === 1);
    // A single delete goes out as DeleteMessage.
    expect(deleteCalls(h)).toEqual([{ QueueUrl: QUEUE_URL, ReceiptHandle: "rh-m" }]);
    expect(visibilityCalls(h)).toHaveLength(0);
    const line = h.logs.find((l) => l["messageId"] === "m" && l["outcome"] === "done");
    expect(line).toMatchObject({ level: "debug", receiveCount: 3, documents: 2 });
    expect(JSON.stringify(h.logs)).not.toContain("rh-m");
  });

  it("backs off a message with a retry outcome by its receive count, and does not delete it", async () => {
    const h = start({ random: () => 0 });
    h.receives.push([message("m", documents("a.pdf", "b.pdf"), 3)]);
    await h.pipeline.until(() => h.pipeline.submissions.length === 2);
    h.pipeline.submission("a.pdf").settle(DONE);
    h.pipeline.submission("b.pdf").settle(RETRY);
    await h.events.until(() => h.events.of("returned").length === 1);

    // receive count 3: ceiling 40 s, jittered to 20 s with random 0
    expect(visibilityCalls(h)).toEqual([{ QueueUrl: QUEUE_URL, ReceiptHandle: "rh-m", VisibilityTimeout: 20 }]);
    expect(h.events.of("returned")).toEqual([
      { type: "returned", messageId: "m", status: "retry", visibilityTimeout: 20 },
    ]);
    await advanceUntil(h.consumer.stop({ drainTimeoutMs: 1_000 }));
    expect(deleteCalls(h)).toHaveLength(0);
    expect(deleteBatchCalls(h)).toHaveLength(0);
    expect(h.logs.find((l) => l["messageId"] === "m" && l["outcome"] === "retry")).toMatchObject({
      level: "warn",
      receiveCount: 3,
      visibilityTimeout: 20,
      failures: [{ key: "b.pdf", status: "retry", code: "SOURCE_READ_FAILED" }],
    });
  });

  it("makes an object over maxObjectBytes visible again at once (not deleted), so the redrive policy moves it to the DLQ quickly", async () => {
    const h = start();
    h.pipeline.auto = REJECTED;
    h.receives.push([message("m", documents("huge.bin"), 1)]);
    await h.events.until(() => h.events.of("returned").length === 1);
    expect(visibilityCalls(h)).toEqual([{ QueueUrl: QUEUE_URL, ReceiptHandle: "rh-m", VisibilityTimeout: 0 }]);
    expect(h.events.of("returned")[0]).toMatchObject({ status: "rejected", visibilityTimeout: 0 });
    expect(h.logs.find((l) => l["messageId"] === "m" && l["outcome"] === "rejected")).toMatchObject({
      level: "warn",
      visibilityTimeout: 0,
      msg: "message can never be processed as is; made visible at once for the redrive policy (DLQ)",
    });
    await advanceUntil(h.consumer.stop({ drainTimeoutMs: 0 }));
    expect(deleteCalls(h)).toHaveLength(0);
  });

  it("the same for an output key over S3's limit; other rejections, or one mixed with a retry, back off on the curve", async () => {
    const h = start();
    const tooLong: Outcome = { status: "rejected", code: "OUTPUT_KEY_TOO_LONG", reason: "output key would be 1030 bytes" };
    const otherRejection: Outcome = { status: "rejected", code: "PROCESSOR_FAILED", reason: "two outputs map to the same key" };
    h.receives.push([message("long", documents("long-key"), 1), message("other", documents("dup"), 1), message("mixed", documents("big", "flaky"), 1)]);
    await h.pipeline.until(() => h.pipeline.submissions.length === 4);
    h.pipeline.submission("long-key").settle(tooLong);
    h.pipeline.submission("dup").settle(otherRejection);
    h.pipeline.submission("big").settle(REJECTED);
    h.pipeline.submission("flaky").settle(RETRY);
    await h.events.until(() => h.events.of("returned").length === 3);
    const byMessage: Record<string, number | undefined> = {};
    for (const c of visibilityCalls(h)) byMessage[c.ReceiptHandle ?? ""] = c.VisibilityTimeout;
    expect(byMessage).toEqual({ "rh-long": 0, "rh-other": 10, "rh-mixed": 10 });
    await advanceUntil(h.consumer.stop({ drainTimeoutMs: 0 }));
  });
});

describe("deletes", () => {
  it("batches deletes and handles Failed entries of a 200 DeleteMessageBatch", async () => {
    const h = start();
    h.sqs.on(DeleteMessageBatchCommand).callsFake((input: { Entries?: { Id?: string; ReceiptHandle?: string }[] }) => {
      const entries = input.Entries ?? [];
      const byHandle = (rh: string) => entries.find((e) => e.ReceiptHandle === rh)?.Id;
      return {
        Successful: [{ Id: byHandle("rh-a") }],
        Failed: [
          { Id: byHandle("rh-b"), Code: "InternalError", SenderFault: false, Message: "try again" },
          { Id: byHandle("rh-c"), Code: "ReceiptHandleIsInvalid", SenderFault: true, Message: "expired" },
        ],
      };
    });
    h.pipeline.auto = DONE;
    h.receives.push([message("a", documents("a")), message("b", documents("b")), message("c", documents("c"))]);
    await waitForReceives(h, 2);
    await vi.advanceTimersByTimeAsync(50);
    await h.events.until(() => h.metrics.snapshot().sqs_messages_delete_failed_total === 1 && h.events.sum("deleted") === 2);

    expect(deleteBatchCalls(h)).toHaveLength(1);
    expect(deleteBatchCalls(h)[0]?.Entries).toHaveLength(3);
    // The transient failure is retried alone; the expired handle is not (it cannot succeed).
    expect(deleteCalls(h)).toEqual([{ QueueUrl: QUEUE_URL, ReceiptHandle: "rh-b" }]);
    const warning = h.logs.find((l) => l["messageId"] === "c" && l["level"] === "warn");
    expect(warning).toMatchObject({ code: "ReceiptHandleIsInvalid" });
    expect(String(warning?.["msg"])).toContain("duplicate risk");
    expect(h.events.of("error")).toMatchObject([{ operation: "DeleteMessageBatch", messageIds: ["c"] }]);
  });

  it("retries each entry alone when the whole batch call fails, and logs the ones that still fail", async () => {
    const h = start();
    h.sqs.on(DeleteMessageBatchCommand).rejects(Object.assign(new Error("socket hang up"), { name: "NetworkError" }));
    const down = Object.assign(new Error("down"), { name: "NetworkError" });
    h.sqs
      .on(DeleteMessageCommand)
      .callsFake((input: { ReceiptHandle?: string }) => (input.ReceiptHandle === "rh-a" ? {} : Promise.reject(down)));
    h.pipeline.auto = DONE;
    h.receives.push([message("a", documents("a")), message("b", documents("b"))]);
    await waitForReceives(h, 2);
    await vi.advanceTimersByTimeAsync(50);
    await h.events.until(() => h.metrics.snapshot().sqs_messages_delete_failed_total === 1);

    expect(deleteCalls(h).map((c) => c.ReceiptHandle).sort()).toEqual(["rh-a", "rh-b"]);
    expect(h.events.sum("deleted")).toBe(1);
    expect(h.logs.find((l) => l["messageId"] === "b" && l["level"] === "warn")).toMatchObject({ code: "NetworkError" });
  });
});

describe("visibility heartbeat", () => {
  it("extends at half the visibility timeout, then aborts the documents at the cap and stops extending", async () => {
    const h = start({ visibilityTimeoutSeconds: 20, maxProcessingSeconds: 35 });
    h.receives.push([message("m", documents("slow.pdf"), 3)]);
    await h.pipeline.until(() => h.pipeline.submissions.length === 1);
    const { ctx, settle } = h.pipeline.submission("slow.pdf");

    await vi.advanceTimersByTimeAsync(9_999);
    expect(visibilityCalls(h)).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(visibilityCalls(h)).toEqual([{ QueueUrl: QUEUE_URL, ReceiptHandle: "rh-m", VisibilityTimeout: 20 }]);
    await vi.advanceTimersByTimeAsync(20_000); // 30 s
    expect(visibilityCalls(h)).toHaveLength(3);
    expect(ctx.signal.aborted).toBe(false);

    await vi.advanceTimersByTimeAsync(5_000); // 35 s: the cap
    expect(ctx.signal.aborted).toBe(true);
    expect(h.events.of("capped")).toEqual([{ type: "capped", messageId: "m" }]);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(visibilityCalls(h)).toHaveLength(3);

    // The aborted document resolves "retry": the outcome drives the visibility (backoff for receive count 3).
    settle(ABORTED);
    await h.events.until(() => h.events.of("returned").length === 1);
    expect(visibilityCalls(h)[3]).toEqual({ QueueUrl: QUEUE_URL, ReceiptHandle: "rh-m", VisibilityTimeout: 40 });
    expect(h.events.of("returned")[0]).toMatchObject({ status: "retry", visibilityTimeout: 40 });
    expect(h.events.sum("extended")).toBe(3);
  });

  it("counts the cap from when the message's document starts, extending while it waits for a slot", async () => {
    const h = start({ visibilityTimeoutSeconds: 20, maxProcessingSeconds: 35 });
    h.pipeline.startAtOnce = false;
    h.receives.push([message("m", documents("queued"))]);
    await h.pipeline.until(() => h.pipeline.submissions.length === 1);
    const { ctx, settle } = h.pipeline.submission("queued");
    await vi.advanceTimersByTimeAsync(60_000); // waiting for a slot: extended, never capped
    expect(visibilityCalls(h)).toHaveLength(6);
    expect(ctx.signal.aborted).toBe(false);
    ctx.onStart?.();
    await vi.advanceTimersByTimeAsync(34_000);
    expect(ctx.signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(ctx.signal.aborted).toBe(true);
    expect(h.events.of("capped")).toEqual([{ type: "capped", messageId: "m" }]);
    settle(ABORTED);
    await h.events.until(() => h.events.of("returned").length === 1);
  });

  it("stops extending once the message's documents have settled", async () => {
    const h = start();
    h.receives.push([message("m", documents("a"))]);
    await h.pipeline.until(() => h.pipeline.submissions.length === 1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(visibilityCalls(h)).toHaveLength(1);
    h.pipeline.submission("a").settle(DONE);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(visibilityCalls(h)).toHaveLength(1);
    expect(deleteCalls(h)).toHaveLength(1);
  });

  it.each([
    ["deleted", DONE, "delete"],
    ["backed off", RETRY, "backoff"],
  ] as const)("waits for an extension in flight before a settled message is %s", async (_label, outcome, action) => {
    const h = start({ random: () => 1 });
    let land: (() => void) | undefined;
    h.sqs.on(ChangeMessageVisibilityCommand).callsFake((input: { VisibilityTimeout?: number }) => {
      if (input.VisibilityTimeout !== 20) return Promise.resolve({});
      return new Promise((resolve) => {
        land = () => resolve({});
        h.events.poke();
      });
    });
    h.receives.push([message("m", documents("a"))]);
    await h.pipeline.until(() => h.pipeline.submissions.length === 1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(land).toBeDefined();
    h.pipeline.submission("a").settle(outcome);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(deleteCalls(h)).toHaveLength(0);
    expect(visibilityCalls(h).map((c) => c.VisibilityTimeout)).toEqual([20]);

    land?.();
    await vi.advanceTimersByTimeAsync(100); // the delete's linger (50 ms)
    if (action === "delete") await h.events.until(() => h.events.sum("deleted") === 1);
    else await h.events.until(() => h.events.of("returned").length === 1);
    expect(visibilityCalls(h).map((c) => c.VisibilityTimeout)).toEqual(action === "delete" ? [20] : [20, 10]);
  });

  it("extends messages due together in one batch and stops for an entry whose receipt handle is invalid", async () => {
    const h = start();
    h.sqs
      .on(ChangeMessageVisibilityBatchCommand)
      .callsFakeOnce((input: { Entries?: { Id?: string; ReceiptHandle?: string }[] }) => {
        const entries = input.Entries ?? [];
        return {
          Successful: entries.filter((e) => e.ReceiptHandle !== "rh-b").map((e) => ({ Id: e.Id })),
          Failed: entries
            .filter((e) => e.ReceiptHandle === "rh-b")
            .map((e) => ({ Id: e.Id, Code: "ReceiptHandleIsInvalid", SenderFault: true, Message: "invalid" })),
        };
      });
    h.receives.push([message("a", documents("a")), message("b", documents("b"))]);
    await h.pipeline.until(() => h.pipeline.submissions.length === 2);

    await vi.advanceTimersByTimeAsync(10_000);
    expect(visibilityCalls(h)).toHaveLength(0);
    expect(visibilityBatchCalls(h)).toEqual([
      {
        QueueUrl: QUEUE_URL,
        Entries: [
          { Id: "m0", ReceiptHandle: "rh-a", VisibilityTimeout: 20 },
          { Id: "m1", ReceiptHandle: "rh-b", VisibilityTimeout: 20 },
        ],
      },
    ]);
    const warning = h.logs.find((l) => l["messageId"] === "b" && l["level"] === "warn");
    expect(warning).toMatchObject({ code: "ReceiptHandleIsInvalid" });
    expect(String(warning?.["msg"])).toContain("duplicate risk");

    // Next round: only "a" is still extended, with the single-message call.
    await vi.advanceTimersByTimeAsync(10_000);
    expect(visibilityBatchCalls(h)).toHaveLength(1);
    expect(visibilityCalls(h)).toEqual([{ QueueUrl: QUEUE_URL, ReceiptHandle: "rh-a", VisibilityTimeout: 20 }]);
    // "b" keeps running: it is not aborted, only no longer extended.
    expect(h.pipeline.submission("b").ctx.signal.aborted).toBe(false);
  });

  const expired = Object.assign(
    new Error("Value rh-m for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired."),
    { name: "InvalidParameterValue", $metadata: { httpStatusCode: 400 } },
  );
  const invalid = new ReceiptHandleIsInvalid({ message: "The input receipt handle is invalid.", $metadata: {} });
  it.each([
    ["InvalidParameterValue", expired],
    ["ReceiptHandleIsInvalid", invalid],
  ])("stops extending when a single extension fails with %s", async (code, error) => {
    const h = start();
    h.sqs.on(ChangeMessageVisibilityCommand).rejectsOnce(error);
    h.receives.push([message("m", documents("a"))]);
    await h.pipeline.until(() => h.pipeline.submissions.length === 1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(visibilityCalls(h)).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(visibilityCalls(h)).toHaveLength(1);
    expect(h.logs.find((l) => l["messageId"] === "m" && l["level"] === "warn")).toMatchObject({ code });
  });

  it("keeps extending (sooner) after a transient extension failure", async () => {
    const h = start();
    const throttled = Object.assign(new Error("slow down"), { name: "ThrottlingException" });
    h.sqs.on(ChangeMessageVisibilityCommand).rejectsOnce(throttled);
    h.receives.push([message("m", documents("a"))]);
    await h.pipeline.until(() => h.pipeline.submissions.length === 1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(visibilityCalls(h)).toHaveLength(1);
    // retried after 5 s rather than a full interval, then back on the 10 s rhythm
    await vi.advanceTimersByTimeAsync(5_000);
    expect(visibilityCalls(h)).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(visibilityCalls(h)).toHaveLength(3);
  });
});

describe("stop", () => {
  it("aborts a hanging long poll at once and ends the loop", async () => {
    const h = setup();
    harness = h;
    const running = h.consumer.start();
    await waitForReceives(h, 1);
    const signal = h.receiveSignals[0];
    expect(signal?.aborted).toBe(false);

    const stopping = h.consumer.stop({ drainTimeoutMs: 30_000 });
    expect(signal?.aborted).toBe(true);
    // Nothing in flight: no timer needs to run for stop() or start() to finish.
    await expect(stopping).resolves.toEqual({ completed: 0, released: 0, timedOut: false });
    await expect(running).resolves.toBeUndefined();
    expect(receiveCalls(h)).toHaveLength(1);
  });

  it("is idempotent: a second stop() returns the same promise", async () => {
    const h = start();
    await waitForReceives(h, 1);
    const first = h.consumer.stop({ drainTimeoutMs: 0 });
    expect(h.consumer.stop({ drainTimeoutMs: 5 })).toBe(first);
    await first;
    expect(h.consumer.stop()).toBe(first);
    await expect(h.consumer.start()).rejects.toThrow(/stopped/);
  });

  it("releases messages that a long poll returns after stop() began, without starting them", async () => {
    const h = setup();
    harness = h;
    let answer: ((out: Partial<ReceiveMessageCommandOutput>) => void) | undefined;
    // A long poll that ignores the abort and answers late.
    h.sqs.on(ReceiveMessageCommand).callsFakeOnce(
      () =>
        new Promise((resolve) => {
          answer = resolve;
          h.events.poke();
        }),
    );
    const running = h.consumer.start();
    await h.events.until(() => answer !== undefined);
    const stopping = h.consumer.stop({ drainTimeoutMs: 10_000 });
    answer?.({ Messages: [message("late1", documents("x")), message("late2", documents("y"))] });

    await expect(advanceUntil(stopping)).resolves.toEqual({ completed: 0, released: 2, timedOut: false });
    await running;
    expect(h.pipeline.submissions).toHaveLength(0);
    expect(visibilityBatchCalls(h)).toEqual([
      {
        QueueUrl: QUEUE_URL,
        Entries: [
          { Id: "m0", ReceiptHandle: "rh-late1", VisibilityTimeout: 0 },
          { Id: "m1", ReceiptHandle: "rh-late2", VisibilityTimeout: 0 },
        ],
      },
    ]);
  });

  // SQS keeps a long poll open after its client has gone and hands it the next visible messages, which then stay
  // hidden for the visibility timeout: aborting the poll and then releasing held messages would feed them to it.
  const releasesOf = (h: Harness) =>
    [...visibilityCalls(h), ...visibilityBatchCalls(h).flatMap((c) => c.Entries ?? [])]
      .filter((e) => e.VisibilityTimeout === 0)
      .map((e) => e.ReceiptHandle);

  it("holding messages, lets the long poll in flight answer before handing any back, and releases what it returns", async () => {
    const h = setup({ waitTimeSeconds: 20 });
    harness = h;
    h.pipeline.startAtOnce = false;
    let answer: ((out: Partial<ReceiveMessageCommandOutput>) => void) | undefined;
    let pollSignal: AbortSignal | undefined;
    h.sqs
      .on(ReceiveMessageCommand)
      .callsFakeOnce(() => Promise.resolve({ Messages: [message("waiting", documents("w"))] }))
      .callsFakeOnce(() => {
        pollSignal = ((h.sqs.send.lastCall.args as unknown[])[1] as { abortSignal?: AbortSignal }).abortSignal;
        return new Promise((resolve) => {
          answer = resolve;
          h.events.poke();
        });
      });
    const running = h.consumer.start();
    await h.events.until(() => answer !== undefined);
    expect(h.pipeline.submissions).toHaveLength(1);

    const stopping = h.consumer.stop({ drainTimeoutMs: 30_000 });
    await vi.advanceTimersByTimeAsync(10_000);
    // Neither the poll aborted nor anything handed back while it could still take it.
    expect(pollSignal?.aborted).toBe(false);
    expect(releasesOf(h)).toEqual([]);
    expect(h.logs.map((l) => l["msg"])).toContain(
      "consumer stopping: letting the long poll in flight answer before handing messages back",
    );

    answer?.({ Messages: [message("late", documents("l"))] });
    await expect(advanceUntil(stopping)).resolves.toEqual({ completed: 0, released: 2, timedOut: false });
    await running;
    expect(releasesOf(h).sort()).toEqual(["rh-late", "rh-waiting"]);
    // The late one was never started; no poll followed the stop.
    expect(h.pipeline.submissions).toHaveLength(1);
    expect(receiveCalls(h)).toHaveLength(2);
  });

  it("aborts a poll in flight that has not answered waitTimeSeconds + 5 s after stop, then hands back", async () => {
    // The detached message stays extended (every 10 s) through the 25 s wait.
    const h = setup({ waitTimeSeconds: 20, visibilityTimeoutSeconds: 20 });
    harness = h;
    h.pipeline.startAtOnce = false;
    let pollSignal: AbortSignal | undefined;
    h.sqs
      .on(ReceiveMessageCommand)
      .callsFakeOnce(() => Promise.resolve({ Messages: [message("waiting", documents("w"))] }))
      .callsFakeOnce(() => {
        pollSignal = ((h.sqs.send.lastCall.args as unknown[])[1] as { abortSignal?: AbortSignal }).abortSignal;
        h.events.poke();
        // A stalled connection: never answers on its own.
        return new Promise((_resolve, reject) => {
          pollSignal?.addEventListener("abort", () => reject(abortError()), { once: true });
        });
      });
    const running = h.consumer.start();
    await h.events.until(() => pollSignal !== undefined);
    // As the real pipeline does: an aborted document that never started settles at once.
    const waiting = h.pipeline.submission("w");
    waiting.ctx.signal.addEventListener("abort", () => waiting.settle(ABORTED));

    const stopping = h.consumer.stop({ drainTimeoutMs: 30_000 });
    await vi.advanceTimersByTimeAsync(24_900);
    expect(pollSignal?.aborted).toBe(false);
    expect(releasesOf(h)).toEqual([]);
    await vi.advanceTimersByTimeAsync(100);
    expect(pollSignal?.aborted).toBe(true);
    await expect(advanceUntil(stopping)).resolves.toEqual({ completed: 0, released: 1, timedOut: false });
    await running;
    expect(releasesOf(h)).toEqual(["rh-waiting"]);
    const extensions = [...visibilityCalls(h), ...visibilityBatchCalls(h).flatMap((c) => c.Entries ?? [])].filter(
      (e) => e.ReceiptHandle === "rh-waiting" && e.VisibilityTimeout === 20,
    );
    expect(extensions.length).toBeGreaterThanOrEqual(2);
  });

  /** The first receive answers `first`; the second is the test's to answer, fail or leave hanging (it honours abort). */
  function secondPollControlled(h: Harness, first: Message[]) {
    const poll: {
      signal?: AbortSignal;
      answer?: (out: Partial<ReceiveMessageCommandOutput>) => void;
      fail?: (err: Error) => void;
    } = {};
    h.sqs
      .on(ReceiveMessageCommand)
      .callsFakeOnce(() => Promise.resolve({ Messages: first }))
      .callsFakeOnce(() => {
        poll.signal = ((h.sqs.send.lastCall.args as unknown[])[1] as { abortSignal?: AbortSignal }).abortSignal;
        return new Promise((resolve, reject) => {
          poll.answer = resolve;
          poll.fail = reject;
          poll.signal?.addEventListener("abort", () => reject(abortError()), { once: true });
          h.events.poke();
        });
      });
    return poll;
  }

  it("stops unstarted messages from starting during the wait for the poll, and hands them back once it answered", async () => {
    const h = setup({ waitTimeSeconds: 20 });
    harness = h;
    h.pipeline.startAtOnce = false;
    const poll = secondPollControlled(h, [message("running", documents("r")), message("waiting", documents("w"))]);
    const running = h.consumer.start();
    await h.events.until(() => poll.answer !== undefined);
    h.pipeline.submission("r").ctx.onStart?.();
    const waiting = h.pipeline.submission("w");
    waiting.ctx.signal.addEventListener("abort", () => waiting.settle(ABORTED));

    const stopping = h.consumer.stop({ drainTimeoutMs: 30_000 });
    // Aborted at once, so it can never start (and then hold the stop until the drain deadline).
    expect(waiting.ctx.signal.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(2_000);
    h.pipeline.submission("r").settle(DONE);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(releasesOf(h)).toEqual([]);
    expect(poll.signal?.aborted).toBe(false);

    poll.answer?.({});
    await expect(advanceUntil(stopping, 10_000)).resolves.toEqual({ completed: 1, released: 1, timedOut: false });
    await running;
    expect(releasesOf(h)).toEqual(["rh-waiting"]);
    expect(deleteCalls(h)).toEqual([{ QueueUrl: QUEUE_URL, ReceiptHandle: "rh-running" }]);
  });

  it("stops waiting for the poll once every held message has settled (nothing left to hand back)", async () => {
    const h = setup({ waitTimeSeconds: 20 });
    harness = h;
    const poll = secondPollControlled(h, [message("a", documents("a"))]);
    const running = h.consumer.start();
    await h.events.until(() => poll.answer !== undefined);

    const stopping = h.consumer.stop({ drainTimeoutMs: 30_000 });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(poll.signal?.aborted).toBe(false);
    h.pipeline.submission("a").settle(DONE);
    // Settled once its delete is done (after the 50 ms batch linger).
    await vi.advanceTimersByTimeAsync(100);
    expect(poll.signal?.aborted).toBe(true);
    await expect(advanceUntil(stopping, 2_000)).resolves.toEqual({ completed: 1, released: 0, timedOut: false });
    await running;
  });

  it("after a poll that failed on our side (SQS may still hold it), hands nothing back before waitTimeSeconds + 5 s", async () => {
    const h = setup({ waitTimeSeconds: 20 });
    harness = h;
    h.pipeline.startAtOnce = false;
    const poll = secondPollControlled(h, [message("waiting", documents("w"))]);
    const running = h.consumer.start();
    await h.events.until(() => poll.answer !== undefined);
    const waiting = h.pipeline.submission("w");
    waiting.ctx.signal.addEventListener("abort", () => waiting.settle(ABORTED));

    const stopping = h.consumer.stop({ drainTimeoutMs: 30_000 });
    await vi.advanceTimersByTimeAsync(3_000);
    poll.fail?.(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
    await vi.advanceTimersByTimeAsync(21_900);
    expect(releasesOf(h)).toEqual([]);
    await vi.advanceTimersByTimeAsync(100);
    await expect(advanceUntil(stopping, 2_000)).resolves.toEqual({ completed: 0, released: 1, timedOut: false });
    await running;
    expect(releasesOf(h)).toEqual(["rh-waiting"]);
  });

  // A receive that failed without an HTTP answer just before the stop: SQS may hold that poll for its wait time.
  it.each([
    ["a reset (no answer): hands back only once that poll's wait time + 5 s has passed", Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }), 25_000],
    ["a 503 (answered, so closed at SQS): hands back at once", Object.assign(new Error("busy"), { name: "InternalFailure", $metadata: { httpStatusCode: 503 } }), 0],
  ])("after %s", async (_label, error, handBackAt) => {
    const h = setup({ waitTimeSeconds: 20 });
    harness = h;
    h.pipeline.startAtOnce = false;
    const poll = secondPollControlled(h, [message("waiting", documents("w"))]);
    const running = h.consumer.start();
    await h.events.until(() => poll.fail !== undefined);
    const waiting = h.pipeline.submission("w");
    waiting.ctx.signal.addEventListener("abort", () => waiting.settle(ABORTED));
    poll.fail?.(error);
    // In the loop's backoff (1 s) when the stop comes.
    await vi.advanceTimersByTimeAsync(500);
    expect(receiveCalls(h)).toHaveLength(2);

    const stopping = h.consumer.stop({ drainTimeoutMs: 30_000 });
    if (handBackAt > 0) {
      await vi.advanceTimersByTimeAsync(handBackAt - 600);
      expect(releasesOf(h)).toEqual([]);
      await vi.advanceTimersByTimeAsync(200);
    }
    await expect(advanceUntil(stopping, 1_000)).resolves.toEqual({ completed: 0, released: 1, timedOut: false });
    await running;
    expect(releasesOf(h)).toEqual(["rh-waiting"]);
    expect(receiveCalls(h)).toHaveLength(2);
  });

  it("ends the wait after a failed poll once every held message has settled", async () => {
    const h = setup({ waitTimeSeconds: 20 });
    harness = h;
    const poll = secondPollControlled(h, [message("a", documents("a"))]);
    const running = h.consumer.start();
    await h.events.until(() => poll.fail !== undefined);
    const stopping = h.consumer.stop({ drainTimeoutMs: 30_000 });
    await vi.advanceTimersByTimeAsync(1_000);
    poll.fail?.(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
    await vi.advanceTimersByTimeAsync(1_000);
    h.pipeline.submission("a").settle(DONE);
    await expect(advanceUntil(stopping, 1_000)).resolves.toEqual({ completed: 1, released: 0, timedOut: false });
    await running;
  });

  it("holding messages but with no poll in flight (no room), hands the unstarted ones back at once", async () => {
    const h = setup({ waitTimeSeconds: 20 });
    harness = h;
    h.pipeline.startAtOnce = false;
    h.sqs.on(ReceiveMessageCommand).callsFakeOnce(() => {
      // Full once this message is in: the loop then waits for room instead of polling.
      h.pipeline.free = 0;
      h.pipeline.idle = 0;
      return Promise.resolve({ Messages: [message("waiting", documents("w"))] });
    });
    const running = h.consumer.start();
    await h.pipeline.until(() => h.pipeline.submissions.length === 1);
    h.pipeline.submission("w").ctx.signal.addEventListener("abort", () => h.pipeline.submission("w").settle(ABORTED));
    // Let the loop reach its wait for room.
    await vi.advanceTimersByTimeAsync(0);
    expect(receiveCalls(h)).toHaveLength(1);

    const stopping = h.consumer.stop({ drainTimeoutMs: 30_000 });
    await h.events.until(() => h.events.sum("released") === 1);
    expect(releasesOf(h)).toEqual(["rh-waiting"]);
    await expect(stopping).resolves.toEqual({ completed: 0, released: 1, timedOut: false });
    await running;
  });

  it("drains in flight (heartbeats running), then aborts and releases the rest with visibility 0", async () => {
    const h = start({ visibilityTimeoutSeconds: 20, abortGraceMs: 2_000 });
    // "quick" finishes during the drain; "abortable" resolves retry when aborted; "stuck" ignores its signal.
    h.receives.push(["quick", "abortable", "stuck"].map((id) => message(id, documents(id))));
    await h.pipeline.until(() => h.pipeline.submissions.length === 3);
    h.pipeline.submission("abortable").ctx.signal.addEventListener("abort", () =>
      h.pipeline.submission("abortable").settle(ABORTED),
    );

    const stopping = h.consumer.stop({ drainTimeoutMs: 15_000 });
    let result: unknown;
    void stopping.then((r) => (result = r));
    await vi.advanceTimersByTimeAsync(5_000);
    h.pipeline.submission("quick").settle(DONE);
    await vi.advanceTimersByTimeAsync(5_000); // 10 s: heartbeat still runs during the drain
    expect(deleteCalls(h)).toEqual([{ QueueUrl: QUEUE_URL, ReceiptHandle: "rh-quick" }]);
    expect(visibilityBatchCalls(h)).toEqual([
      {
        QueueUrl: QUEUE_URL,
        Entries: [
          { Id: "m0", ReceiptHandle: "rh-abortable", VisibilityTimeout: 20 },
          { Id: "m1", ReceiptHandle: "rh-stuck", VisibilityTimeout: 20 },
        ],
      },
    ]);
    expect(result).toBeUndefined();
    expect(h.pipeline.submission("stuck").ctx.signal.aborted).toBe(false);

    await vi.advanceTimersByTimeAsync(5_000); // 15 s: deadline
    expect(h.pipeline.submission("stuck").ctx.signal.aborted).toBe(true);
    expect(h.pipeline.submission("abortable").ctx.signal.aborted).toBe(true);

    await expect(advanceUntil(stopping)).resolves.toEqual({ completed: 1, released: 2, timedOut: true });
    const released = [...visibilityCalls(h), ...visibilityBatchCalls(h).flatMap((c) => c.Entries ?? [])]
      .filter((e) => e.VisibilityTimeout === 0)
      .map((e) => e.ReceiptHandle);
    expect(released.sort()).toEqual(["rh-abortable", "rh-stuck"]);
    // Only "quick" was deleted; nothing got a failure backoff.
    expect(deleteCalls(h)).toHaveLength(1);
    expect(deleteBatchCalls(h)).toHaveLength(0);
    expect(h.events.of("returned")).toHaveLength(0);

    // A late outcome for the abandoned message changes nothing.
    const callsBefore = h.sqs.calls().length;
    h.pipeline.submission("stuck").settle(DONE);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(h.sqs.calls()).toHaveLength(callsBefore);
  });

  it("releases messages still waiting for a slot at once on stop, in one batch, and drains the started ones", async () => {
    const h = start({ visibilityTimeoutSeconds: 20 });
    h.pipeline.startAtOnce = false;
    h.receives.push(["running", "waiting1", "waiting2"].map((id) => message(id, documents(id))));
    await h.pipeline.until(() => h.pipeline.submissions.length === 3);
    h.pipeline.submission("running").ctx.onStart?.();
    for (const id of ["waiting1", "waiting2"]) {
      const { ctx, settle } = h.pipeline.submission(id);
      ctx.signal.addEventListener("abort", () => settle(ABORTED));
    }

    const stopping = h.consumer.stop({ drainTimeoutMs: 30_000 });
    await h.events.until(() => h.events.sum("released") === 2);
    expect(visibilityBatchCalls(h)).toEqual([
      {
        QueueUrl: QUEUE_URL,
        Entries: [
          { Id: "m0", ReceiptHandle: "rh-waiting1", VisibilityTimeout: 0 },
          { Id: "m1", ReceiptHandle: "rh-waiting2", VisibilityTimeout: 0 },
        ],
      },
    ]);
    expect(h.pipeline.submission("waiting1").ctx.signal.aborted).toBe(true);
    expect(h.pipeline.submission("running").ctx.signal.aborted).toBe(false);

    await vi.advanceTimersByTimeAsync(5_000);
    h.pipeline.submission("running").settle(DONE);
    await expect(advanceUntil(stopping)).resolves.toEqual({ completed: 1, released: 2, timedOut: false });
    expect(deleteCalls(h)).toEqual([{ QueueUrl: QUEUE_URL, ReceiptHandle: "rh-running" }]);
    // The released ones get neither a delete nor a backoff.
    expect(h.events.of("returned")).toHaveLength(0);
    expect(visibilityBatchCalls(h)).toHaveLength(1);
  });

  it("counts only the unstarted messages SQS confirmed released (a failed entry returns when its visibility ends)", async () => {
    const h = start({ visibilityTimeoutSeconds: 20 });
    h.pipeline.startAtOnce = false;
    h.sqs.on(ChangeMessageVisibilityBatchCommand).callsFake((input: { Entries?: { Id?: string }[] }) => ({
      Successful: (input.Entries ?? []).slice(1).map((e) => ({ Id: e.Id })),
      Failed: (input.Entries ?? []).slice(0, 1).map((e) => ({ Id: e.Id, Code: "ReceiptHandleIsInvalid", SenderFault: true })),
    }));
    h.receives.push(["waiting1", "waiting2"].map((id) => message(id, documents(id))));
    await h.pipeline.until(() => h.pipeline.submissions.length === 2);
    for (const id of ["waiting1", "waiting2"]) {
      const { ctx, settle } = h.pipeline.submission(id);
      ctx.signal.addEventListener("abort", () => settle(ABORTED));
    }
    await expect(advanceUntil(h.consumer.stop({ drainTimeoutMs: 30_000 }))).resolves.toEqual({
      completed: 0,
      released: 1,
      timedOut: false,
    });
    expect(h.logs.find((l) => l["msg"] === "consumer stopping: receiving stopped, draining")).toMatchObject({ releasedUnstarted: 1 });
  });

  // One abandon routine for both stop paths: an extension landing after the release would hide the message again,
  // so the release waits for it (the deadline path used not to).
  it.each([
    ["abandoned at the drain deadline", true],
    ["released before it started", false],
  ])("waits for an extension in flight before releasing a message %s", async (_label, started) => {
    // 1 s polls: the stop's wait for the poll in flight is over before the drain deadline.
    const h = start({ visibilityTimeoutSeconds: 20, abortGraceMs: 500, waitTimeSeconds: 1 });
    h.pipeline.startAtOnce = started;
    let land: (() => void) | undefined;
    h.sqs.on(ChangeMessageVisibilityCommand).callsFake((input: { VisibilityTimeout?: number }) => {
      if (input.VisibilityTimeout === 0) return Promise.resolve({});
      // The heartbeat's extension: slow to answer.
      return new Promise((resolve) => {
        land = () => resolve({});
        h.events.poke();
      });
    });
    h.receives.push([message("m", documents("stuck"))]); // ignores its abort signal
    await h.pipeline.until(() => h.pipeline.submissions.length === 1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(land).toBeDefined();

    const stopping = h.consumer.stop({ drainTimeoutMs: 1_000 });
    let result: unknown;
    void stopping.then((r) => (result = r));
    // Past the deadline (1 s) and the abort grace (0.5 s), within the abandon's wait for the extension (5 s).
    await vi.advanceTimersByTimeAsync(3_000);
    expect(h.pipeline.submission("stuck").ctx.signal.aborted).toBe(true);
    const releases = () => visibilityCalls(h).filter((c) => c.VisibilityTimeout === 0);
    expect(releases()).toHaveLength(0);
    expect(result).toBeUndefined();

    land?.();
    await expect(advanceUntil(stopping)).resolves.toEqual({ completed: 0, released: 1, timedOut: started });
    expect(releases()).toEqual([{ QueueUrl: QUEUE_URL, ReceiptHandle: "rh-m", VisibilityTimeout: 0 }]);
    // The extension landed before the release: the last word on the message's visibility is 0.
    expect(visibilityCalls(h).map((c) => c.VisibilityTimeout)).toEqual([20, 0]);
  });

  it("flushes pending deletes before stop() resolves", async () => {
    const h = start({ deleteBatchLingerMs: 60_000 });
    h.receives.push([message("t", { kind: "test-event" })]);
    await waitForReceives(h, 2);
    expect(deleteCalls(h)).toHaveLength(0);
    const result = await h.consumer.stop({ drainTimeoutMs: 0 });
    expect(result).toEqual({ completed: 0, released: 0, timedOut: false });
    expect(deleteCalls(h)).toEqual([{ QueueUrl: QUEUE_URL, ReceiptHandle: "rh-t" }]);
  });
});

describe("robustness", () => {
  it("treats a throwing parser as malformed and a throwing event listener as a logged error", async () => {
    const metrics = new Metrics();
    const h = start({
      parse: () => {
        throw new Error("parser bug");
      },
      onEvent: (e) => {
        metrics.onConsumerEvent(e);
        throw new Error("listener bug");
      },
    });
    h.receives.push([message("m", { kind: "test-event" })]);
    await waitForReceives(h, 2);
    await vi.advanceTimersByTimeAsync(100);
    expect(deleteCalls(h)).toHaveLength(0);
    expect(metrics.snapshot().sqs_messages_malformed_total).toBe(1);
    expect(h.logs.some((l) => l["msg"] === "consumer event listener threw")).toBe(true);
  });

  it("keeps the message (retry backoff) if the pipeline breaks its contract and rejects", async () => {
    const h = start();
    h.pipeline.submit = () => Promise.reject(new Error("boom"));
    h.receives.push([message("m", documents("a"))]);
    await h.events.until(() => h.events.of("returned").length === 1);
    expect(visibilityCalls(h)).toEqual([{ QueueUrl: QUEUE_URL, ReceiptHandle: "rh-m", VisibilityTimeout: 10 }]);
    expect(deleteCalls(h)).toHaveLength(0);
  });
});

describe("log lines stay bounded whatever a message carries", () => {
  const PARSE = { sourceBucket: "source", outputBucket: "output", outputPrefix: "" };
  /** An S3 event of `n` records with keys as long as S3 allows (1,024 bytes, in multi-byte UTF-8). */
  const s3Event = (n: number, bucket: (i: number) => string) =>
    JSON.stringify({
      Records: Array.from({ length: n }, (_, i) => ({
        eventVersion: "2.1",
        eventSource: "aws:s3",
        eventName: "ObjectCreated:Put",
        s3: { bucket: { name: bucket(i) }, object: { key: encodeURIComponent(`${i}/${"é".repeat(508)}`), size: 1 } },
      })),
    });
  const withBody = (id: string, body: string): Message => ({
    MessageId: id,
    ReceiptHandle: `rh-${id}`,
    Body: body,
    Attributes: { ApproximateReceiveCount: "1" },
  });
  const expectBounded = (h: Harness): void => {
    expect(h.rawLines.length).toBeGreaterThan(0);
    for (const line of h.rawLines) {
      expect(Buffer.byteLength(line)).toBeLessThan(16 * 1024);
      // Bounded by the summaries, not by the logger's last resort.
      expect(line).not.toContain("logTruncated");
    }
    expect(MAX_LOG_LINE_BYTES).toBeLessThanOrEqual(16 * 1024);
  };

  it("1,000 records for another bucket: one short line with counts per reason and the first few records", async () => {
    const h = start({ parse: (body) => parseNotification(body, PARSE) });
    h.receives.push([withBody("foreign", s3Event(1000, (i) => (i % 4 === 0 ? "output" : `elsewhere-${i}`)))]);
    await waitForReceives(h, 2);
    await vi.advanceTimersByTimeAsync(50);
    await h.events.until(() => h.events.sum("deleted") === 1);
    const line = h.logs.find((l) => l["messageId"] === "foreign" && l["outcome"] === "ignored");
    expect(line).toMatchObject({ ignoredCount: 1000, ignoredByReason: { "output-bucket": 250, "other-bucket": 750 } });
    expect(line?.["ignored"]).toHaveLength(5);
    expectBounded(h);
  });

  it("1,000 documents plus 1,000 skipped records, every document failing with a long reason: bounded lines", async () => {
    const h = start({ parse: (body) => parseNotification(body, PARSE) });
    const longReason: Outcome = { status: "retry", code: "SOURCE_READ_FAILED", reason: `socket reset ${"x".repeat(5_000)}` };
    h.pipeline.auto = longReason;
    h.receives.push([withBody("mixed", s3Event(2000, (i) => (i % 2 === 0 ? "source" : "elsewhere")))]);
    await h.events.until(() => h.events.of("returned").length === 1);
    const skipped = h.logs.find((l) => l["msg"] === "some records of the message are skipped");
    expect(skipped).toMatchObject({ ignoredCount: 1000, ignoredByReason: { "other-bucket": 1000 } });
    const backoff = h.logs.find((l) => l["messageId"] === "mixed" && l["outcome"] === "retry");
    expect(backoff).toMatchObject({ documents: 1000, failureCount: 1000, failuresByCode: { SOURCE_READ_FAILED: 1000 } });
    expect(backoff?.["failures"]).toHaveLength(5);
    expectBounded(h);
    await advanceUntil(h.consumer.stop({ drainTimeoutMs: 0 }));
  });

  it("the same failures released by shutdown: bounded", async () => {
    const h = start({ parse: (body) => parseNotification(body, PARSE) });
    h.receives.push([withBody("big", s3Event(1000, () => "source"))]);
    await h.pipeline.until(() => h.pipeline.submissions.length === 1000);
    // Aborted at the drain deadline, as the pipeline does.
    for (const sub of h.pipeline.submissions) {
      sub.ctx.signal.addEventListener("abort", () => sub.settle({ status: "retry", code: "ABORTED", reason: `aborted ${"y".repeat(3_000)}` }));
    }
    await advanceUntil(h.consumer.stop({ drainTimeoutMs: 0 }));
    expect(h.logs.some((l) => l["outcome"] === "released" && l["failureCount"] === 1000)).toBe(true);
    expectBounded(h);
  });
});

describe("receiveSize", () => {
  it.each([
    // free, idle workers, batch → messages to ask for
    [0, 0, 10, 0],
    [0, 4, 10, 0],
    [4, 0, 10, 0],
    [9, 0, 10, 0],
    [10, 0, 10, 10],
    [14, 0, 10, 10],
    [3, 1, 10, 3],
    [25, 4, 10, 10],
    [2, 0, 2, 2],
  ])("free %i, idle %i, batch %i: %i", (free, idle, batch, expected) => {
    expect(receiveSize(free, idle, batch)).toBe(expected);
  });
});
