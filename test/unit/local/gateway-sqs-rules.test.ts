// SQS rules the gateway enforces because fauxqs does not: receipt handles it never issued are refused, and sends over
// the queue's size limit are refused before anything is stored.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { renderError } from "../../local/gateway/errors.js";
import {
  ReceiptHandles,
  UNUSABLE_UPSTREAM_HANDLE,
  invalidHandleError,
  markRefusedEntries,
  unwrapRequest,
  wrapReceived,
} from "../../local/gateway/receipt-handles.js";
import { SQS_SERVICE_MAX_BYTES, messageSize, sendSizeError } from "../../local/gateway/sqs-limits.js";
import { repoPath } from "../../local/iam/index.js";
import { QUEUE_MAXIMUM_MESSAGE_SIZE } from "../../local/stand-in.js";

const Q = "123456789012/doc-processor-events";
const DLQ = "123456789012/doc-processor-events-dlq";
const UPSTREAM = "0b6f3c8e-5a7d-4f7e-9c1a-2d3e4f5a6b7c";

describe("ReceiptHandles", () => {
  const handles = new ReceiptHandles();

  it("a handle it issued unwraps to fauxqs's, for the queue it was issued for only", () => {
    const handle = handles.wrap(Q, UPSTREAM);
    expect(handle).not.toContain(UPSTREAM);
    expect(handles.unwrap(Q, handle)).toBe(UPSTREAM);
    expect(handles.unwrap(DLQ, handle)).toBeUndefined();
    // Each gateway has its own key: a handle from an earlier stand-in is not valid in this one.
    expect(new ReceiptHandles().unwrap(Q, handle)).toBeUndefined();
  });

  it("refuses forged, mangled and malformed handles", () => {
    const handle = handles.wrap(Q, UPSTREAM);
    const raw = Buffer.from(handle, "base64");
    const flipped = Buffer.from(raw);
    flipped.writeUInt8(flipped.readUInt8(flipped.length - 1) ^ 1, flipped.length - 1);
    const forgedPayload = Buffer.concat([raw.subarray(0, 17), Buffer.from(`${Q}\nanother-handle`)]);
    for (const bad of [
      "doc-processor-check-not-a-receipt-handle",
      UPSTREAM,
      "",
      flipped.toString("base64"),
      forgedPayload.toString("base64"),
      `${handle} `,
      handle.slice(0, -4),
      Buffer.from([2, ...raw.subarray(1)]).toString("base64"),
      42,
      null,
      { handle },
    ]) {
      expect(handles.unwrap(Q, bad), JSON.stringify(bad)).toBeUndefined();
    }
  });

  it("ReceiptHandleIsInvalid: SQS's code, status (404 in its service model) and text, the hostile handle cut short", () => {
    const error = invalidHandleError("not-a-handle");
    expect(error).toMatchObject({ code: "ReceiptHandleIsInvalid", status: 404 });
    expect(error.message).toBe('The input receipt handle "not-a-handle" is not a valid receipt handle.');
    expect(invalidHandleError("x".repeat(10_000)).message.length).toBeLessThan(300);
    const json = renderError("sqs-json", error, "R");
    expect(json.headers["x-amzn-query-error"]).toBe("ReceiptHandleIsInvalid;Sender");
    expect(renderError("sqs-query", error, "R").body).toContain("<Code>ReceiptHandleIsInvalid</Code>");
  });
});

describe("unwrapRequest / markRefusedEntries / wrapReceived", () => {
  const handles = new ReceiptHandles();
  const good = handles.wrap(Q, UPSTREAM);

  it("single calls: fauxqs's handle goes upstream; a refused one goes as a handle that matches nothing", () => {
    const ok = unwrapRequest(handles, "DeleteMessage", { QueueUrl: "u", ReceiptHandle: good }, Q);
    expect(ok).toEqual({ input: { QueueUrl: "u", ReceiptHandle: UPSTREAM }, refusedEntries: new Map() });
    const bad = unwrapRequest(handles, "ChangeMessageVisibility", { QueueUrl: "u", ReceiptHandle: "bogus", VisibilityTimeout: 0 }, Q);
    expect(bad.input).toEqual({ QueueUrl: "u", ReceiptHandle: UNUSABLE_UPSTREAM_HANDLE, VisibilityTimeout: 0 });
    expect(bad.refused).toEqual({ handle: "bogus" });
    // Absent stays absent (MissingParameter is fauxqs's to answer); other operations are untouched.
    expect(unwrapRequest(handles, "DeleteMessage", { QueueUrl: "u" }, Q)).toEqual({ input: { QueueUrl: "u" }, refusedEntries: new Map() });
    const send = { QueueUrl: "u", MessageBody: "b", ReceiptHandle: "x" };
    expect(unwrapRequest(handles, "SendMessage", send, Q).input).toBe(send);
  });

  it("batches: each refused entry fails with ReceiptHandleIsInvalid whatever fauxqs said, the others keep their result", () => {
    const request = unwrapRequest(
      handles,
      "DeleteMessageBatch",
      { QueueUrl: "u", Entries: [{ Id: "a", ReceiptHandle: good }, { Id: "b", ReceiptHandle: "forged" }, { Id: "c", ReceiptHandle: "" }] },
      Q,
    );
    expect(request.input["Entries"]).toEqual([
      { Id: "a", ReceiptHandle: UPSTREAM },
      { Id: "b", ReceiptHandle: UNUSABLE_UPSTREAM_HANDLE },
      { Id: "c", ReceiptHandle: UNUSABLE_UPSTREAM_HANDLE },
    ]);
    // fauxqs reports an unknown handle of a DeleteMessageBatch as deleted.
    const marked = markRefusedEntries({ Successful: [{ Id: "a" }, { Id: "b" }, { Id: "c" }], Failed: [] }, request.refusedEntries);
    expect(marked).toEqual({
      Successful: [{ Id: "a" }],
      Failed: [
        { Id: "b", SenderFault: true, Code: "ReceiptHandleIsInvalid", Message: 'The input receipt handle "forged" is not a valid receipt handle.' },
        { Id: "c", SenderFault: true, Code: "ReceiptHandleIsInvalid", Message: 'The input receipt handle "" is not a valid receipt handle.' },
      ],
    });
    const untouched = { Successful: [{ Id: "a" }], Failed: [] };
    expect(markRefusedEntries(untouched, new Map())).toBe(untouched);
  });

  it("ReceiveMessage answers carry handles bound to the queue", () => {
    const out = wrapReceived(handles, { Messages: [{ MessageId: "m", ReceiptHandle: UPSTREAM, Body: "b" }] }, Q);
    const handle = (out["Messages"] as { ReceiptHandle: string }[])[0]!.ReceiptHandle;
    expect(handles.unwrap(Q, handle)).toBe(UPSTREAM);
    expect(wrapReceived(handles, {}, Q)).toEqual({});
  });
});

describe("message size limits", () => {
  const max = QUEUE_MAXIMUM_MESSAGE_SIZE;

  it("the stand-in's queues refuse what the deployed ones refuse (MaximumMessageSize of the CloudFormation template)", () => {
    const template = JSON.parse(readFileSync(repoPath("scripts", "cloudformation", "doc-processor.json"), "utf8")) as {
      Resources: Record<string, { Type: string; Properties?: { MaximumMessageSize?: number } }>;
    };
    const queues = Object.values(template.Resources).filter((r) => r.Type === "AWS::SQS::Queue");
    expect(queues.length).toBeGreaterThan(0);
    for (const queue of queues) expect(queue.Properties?.MaximumMessageSize).toBe(max);
  });

  it("counts UTF-8 bytes of the body and each attribute's name, type and value (binary as decoded bytes)", () => {
    expect(messageSize({ MessageBody: "héllo" })).toBe(6);
    expect(
      messageSize({
        MessageBody: "x",
        MessageAttributes: {
          kind: { DataType: "String", StringValue: "event" },
          blob: { DataType: "Binary", BinaryValue: Buffer.alloc(10).toString("base64") },
        },
      }),
    ).toBe(1 + (4 + 6 + 5) + (4 + 6 + 10));
  });

  it("SendMessage: up to the queue's limit passes, one byte more is InvalidParameterValue", () => {
    expect(sendSizeError("SendMessage", { MessageBody: "a".repeat(max) }, max)).toBeUndefined();
    expect(sendSizeError("SendMessage", { MessageBody: "a".repeat(max + 1) }, max)).toMatchObject({
      code: "InvalidParameterValue",
      status: 400,
      message: `One or more parameters are invalid. Reason: Message must be shorter than ${max} bytes.`,
    });
    // Characters are not bytes: 131,073 two-byte characters are 262,146 bytes.
    expect(sendSizeError("SendMessage", { MessageBody: "é".repeat(max / 2 + 1) }, max)).toMatchObject({ code: "InvalidParameterValue" });
    // Attributes count.
    const attributes = { MessageAttributes: { a: { DataType: "String", StringValue: "v" } } };
    expect(sendSizeError("SendMessage", { MessageBody: "a".repeat(max - 8), ...attributes }, max)).toBeUndefined();
    expect(sendSizeError("SendMessage", { MessageBody: "a".repeat(max - 7), ...attributes }, max)).toMatchObject({ code: "InvalidParameterValue" });
  });

  it("SendMessageBatch: the sum counts, capped by the queue's limit and SQS's 1 MiB", () => {
    const entries = (...sizes: number[]) => ({ Entries: sizes.map((n, i) => ({ Id: String(i), MessageBody: "b".repeat(n) })) });
    expect(sendSizeError("SendMessageBatch", entries(max / 2, max / 2), max)).toBeUndefined();
    expect(sendSizeError("SendMessageBatch", entries(max / 2, max / 2 + 1), max)).toMatchObject({
      code: "BatchRequestTooLong",
      status: 400,
      queryCode: "AWS.SimpleQueueService.BatchRequestTooLong",
      message: `Batch requests cannot be longer than ${max} bytes. You have sent ${max + 1} bytes.`,
    });
    const oneMiB = SQS_SERVICE_MAX_BYTES;
    expect(sendSizeError("SendMessageBatch", entries(oneMiB / 2, oneMiB / 2), oneMiB)).toBeUndefined();
    expect(sendSizeError("SendMessageBatch", entries(oneMiB / 2, oneMiB / 2 + 1), 2 * oneMiB)).toMatchObject({ code: "BatchRequestTooLong" });
    // What cannot be sized is left to the emulator's validation.
    expect(sendSizeError("SendMessageBatch", { Entries: "nope" }, max)).toBeUndefined();
    expect(sendSizeError("ReceiveMessage", { MessageBody: "a".repeat(max + 1) }, max)).toBeUndefined();
  });
});
