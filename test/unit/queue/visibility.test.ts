// The visibility calls alone, against a mocked SQS client: one message or several, chunks of ten, per-entry results
// of a 200 batch answer, a call that fails outright, and the release with its report.
import { S3Client } from "@aws-sdk/client-s3";
import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../../../src/logging/logger.js";
import type { ConsumerEvent } from "../../../src/queue/events.js";
import { Visibility } from "../../../src/queue/visibility.js";
import { sdkTransport } from "../../../src/aws/sdk-transport.js";

const QUEUE_URL = "http://127.0.0.1:9/000000000000/documents";
const client = new SQSClient({
  region: "us-east-1",
  endpoint: "http://127.0.0.1:9",
  credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "secret" },
});
const sqs = mockClient(client);

function setup() {
  const events: ConsumerEvent[] = [];
  const logs: Record<string, unknown>[] = [];
  const log = createLogger({
    level: "debug",
    destination: { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) },
  });
  const visibility = new Visibility({ queue: sdkTransport(async () => new S3Client({ region: "us-east-1" }), client).queue, queueUrl: QUEUE_URL, log, emit: (e) => events.push(e) });
  return { visibility, events, logs };
}

const handles = (n: number) => Array.from({ length: n }, (_, i) => ({ messageId: `m${i}`, receiptHandle: `rh-${i}` }));
const singles = () => sqs.commandCalls(ChangeMessageVisibilityCommand).map((c) => c.args[0].input);
const batches = () => sqs.commandCalls(ChangeMessageVisibilityBatchCommand).map((c) => c.args[0].input);

afterEach(() => {
  sqs.reset();
});

describe("Visibility.change", () => {
  it("uses the single call for one message and batches of ten (indexed ids) for more", async () => {
    sqs.on(ChangeMessageVisibilityCommand).resolves({});
    sqs.on(ChangeMessageVisibilityBatchCommand).resolves({ Failed: [] });
    const { visibility } = setup();
    expect(await visibility.change(handles(1), 20)).toEqual([{ ok: true }]);
    expect(singles()).toEqual([{ QueueUrl: QUEUE_URL, ReceiptHandle: "rh-0", VisibilityTimeout: 20 }]);

    const results = await visibility.change(handles(12), 30);
    expect(results).toHaveLength(12);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(batches().map((b) => b.Entries?.map((e) => e.Id))).toEqual([
      ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"],
      ["m0", "m1"],
    ]);
    expect(batches()[1]?.Entries?.[1]).toEqual({ Id: "m1", ReceiptHandle: "rh-11", VisibilityTimeout: 30 });
  });

  it("gives a result per handle: Failed entries of a 200 answer, every entry when the call fails, never a throw", async () => {
    sqs
      .on(ChangeMessageVisibilityBatchCommand)
      .resolvesOnce({ Failed: [{ Id: "m1", Code: "ReceiptHandleIsInvalid", SenderFault: true, Message: "gone" }] })
      .rejectsOnce(Object.assign(new Error("socket hang up"), { name: "NetworkError" }));
    const { visibility } = setup();
    const first = await visibility.change(handles(3), 20);
    expect(first.map((r) => (r.ok ? "ok" : r.code))).toEqual(["ok", "ReceiptHandleIsInvalid", "ok"]);
    const second = await visibility.change(handles(2), 20);
    expect(second.map((r) => (r.ok ? "ok" : r.code))).toEqual(["NetworkError", "NetworkError"]);
  });
});

describe("Visibility.release", () => {
  it("sets visibility 0, reports the released count, and logs and reports each one it could not release", async () => {
    sqs
      .on(ChangeMessageVisibilityBatchCommand)
      .resolves({ Failed: [{ Id: "m2", Code: "InternalError", SenderFault: false, Message: "try again" }] });
    const { visibility, events, logs } = setup();
    await visibility.release(handles(3), "not started before shutdown");
    expect(batches()[0]?.Entries?.map((e) => e.VisibilityTimeout)).toEqual([0, 0, 0]);
    expect(events).toMatchObject([
      { type: "error", operation: "ChangeMessageVisibilityBatch", messageIds: ["m2"] },
      { type: "released", count: 2 },
    ]);
    expect(logs).toMatchObject([
      {
        level: "warn",
        messageId: "m2",
        code: "InternalError",
        why: "not started before shutdown",
        msg: "could not release the message; it returns when its current visibility ends",
      },
    ]);
  });

  it("releases one message with the single call", async () => {
    sqs.on(ChangeMessageVisibilityCommand).resolves({});
    const { visibility, events } = setup();
    await visibility.release(handles(1), "aborted by shutdown");
    expect(singles()).toEqual([{ QueueUrl: QUEUE_URL, ReceiptHandle: "rh-0", VisibilityTimeout: 0 }]);
    expect(events).toEqual([{ type: "released", count: 1 }]);
  });

  it("makes no call and reports nothing for no messages", async () => {
    const { visibility, events } = setup();
    await visibility.release([], "nothing");
    expect(sqs.calls()).toHaveLength(0);
    expect(events).toEqual([]);
  });
});
