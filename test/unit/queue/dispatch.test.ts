// Parse dispatch alone: which bodies are deleted, left for the redrive policy, or handed on as documents to run.
import type { Message } from "@aws-sdk/client-sqs";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../../src/logging/logger.js";
import { dispatch } from "../../../src/queue/dispatch.js";
import type { ConsumerEvent } from "../../../src/queue/events.js";
import type { ParsedNotification } from "../../../src/queue/records.js";
import type { Handle } from "../../../src/queue/sqs-calls.js";

function setup(parse: (body: string) => ParsedNotification = (body) => JSON.parse(body) as ParsedNotification) {
  const events: ConsumerEvent[] = [];
  const deleted: Handle[] = [];
  const logs: Record<string, unknown>[] = [];
  const log = createLogger({
    level: "debug",
    destination: { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) },
  });
  const deps = {
    parse,
    log,
    emit: (e: ConsumerEvent) => events.push(e),
    deletes: {
      enqueue: (h: Handle) => {
        deleted.push(h);
        return Promise.resolve(true);
      },
    },
  };
  return { deps, events, deleted, logs };
}

const message = (parsed: ParsedNotification, over: Partial<Message> = {}): Message => ({
  MessageId: "m",
  ReceiptHandle: "rh-m",
  Body: JSON.stringify(parsed),
  Attributes: { ApproximateReceiveCount: "4" },
  ...over,
});
const doc = (key: string) => ({ bucket: "source", key, rawKey: key, eventName: "ObjectCreated:Put" });

describe("dispatch", () => {
  it("hands on the documents with the handle and receive count, logging the records it skips", () => {
    const h = setup();
    const parsed: ParsedNotification = {
      kind: "documents",
      documents: [doc("a"), doc("b")],
      ignored: [{ reason: "other-bucket", detail: "elsewhere" }],
    };
    expect(dispatch(message(parsed), h.deps)).toEqual({
      handle: { messageId: "m", receiptHandle: "rh-m" },
      receiveCount: 4,
      documents: [doc("a"), doc("b")],
    });
    expect(h.deleted).toEqual([]);
    expect(h.logs).toMatchObject([{ msg: "some records of the message are skipped", ignoredCount: 1 }]);
  });

  it.each<[string, ParsedNotification]>([
    ["a test event", { kind: "test-event" }],
    ["a message with nothing for us", { kind: "ignored", ignored: [{ reason: "output-bucket", detail: "ours" }] }],
    ["a documents message left empty", { kind: "documents", documents: [], ignored: [] }],
  ])("deletes %s and hands nothing on", (_label, parsed) => {
    const h = setup();
    expect(dispatch(message(parsed), h.deps)).toBeUndefined();
    expect(h.deleted).toEqual([{ messageId: "m", receiptHandle: "rh-m" }]);
    expect(h.events).toEqual([]);
  });

  it("leaves a malformed body alone (no delete) and reports it; a throwing parser counts as malformed", () => {
    const h = setup();
    expect(dispatch(message({ kind: "malformed", reason: "not-json", detail: "x" }), h.deps)).toBeUndefined();
    const broken = setup(() => {
      throw new Error("parser bug");
    });
    expect(dispatch(message({ kind: "test-event" }), broken.deps)).toBeUndefined();
    expect([...h.deleted, ...broken.deleted]).toEqual([]);
    expect([...h.events, ...broken.events]).toEqual([
      { type: "malformed", messageId: "m", reason: "not-json" },
      { type: "malformed", messageId: "m", reason: "parser-error" },
    ]);
    expect(broken.logs).toMatchObject([{ level: "error", outcome: "malformed", receiveCount: 4 }]);
  });

  it("skips a message without a receipt handle, loudly, without parsing it", () => {
    let parsed = 0;
    const h = setup(() => {
      parsed += 1;
      return { kind: "test-event" };
    });
    expect(dispatch(message({ kind: "test-event" }, { ReceiptHandle: undefined }), h.deps)).toBeUndefined();
    expect(parsed).toBe(0);
    expect(h.deleted).toEqual([]);
    expect(h.logs).toMatchObject([{ level: "error", messageId: "m" }]);
  });
});
