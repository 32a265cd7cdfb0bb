/**
 * SQS over the AWS JSON 1.0 protocol, the wire form the SDK uses: POST / to the SQS endpoint with
 * `Content-Type: application/x-amz-json-1.0`, `X-Amz-Target: AmazonSQS.<Operation>` and `x-amzn-query-mode: true`
 * (SQS is query-compatible: its errors carry the query code in x-amzn-query-error). ReceiveMessage's `Messages` are
 * passed through as parsed, once each body's MD5 matched its MD5OfBody (the SDK's check: a mismatch fails the call).
 */
import { createHash } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import type { BatchEntry, BatchEntryFailure, Message, QueueTransport, ReceiveInput } from "../transport.js";
import { LeanResponseError, sqsError, type LeanMetadata } from "./errors.js";
import { targetOf, type LeanClient, type ServiceSpec, type Target } from "./client.js";

const SQS: ServiceSpec = {
  name: "sqs",
  error: (status: number, headers: IncomingHttpHeaders, body: Buffer, metadata: LeanMetadata) => sqsError(status, headers, body, metadata),
};

type Operation = "ReceiveMessage" | "DeleteMessage" | "DeleteMessageBatch" | "ChangeMessageVisibility" | "ChangeMessageVisibilityBatch";

// One headers object per operation, built once: the client copies it per request.
const HEADERS: Readonly<Record<Operation, Readonly<Record<string, string>>>> = Object.fromEntries(
  (["ReceiveMessage", "DeleteMessage", "DeleteMessageBatch", "ChangeMessageVisibility", "ChangeMessageVisibilityBatch"] as const).map(
    (op) => [op, { "content-type": "application/x-amz-json-1.0", "x-amz-target": `AmazonSQS.${op}`, "x-amzn-query-mode": "true" }],
  ),
) as unknown as Record<Operation, Record<string, string>>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A 200 answer that breaks SQS's shape: typed, never parsed on (a TypeError would name no cause). */
function unexpected(what: string): LeanResponseError {
  return new LeanResponseError(`SQS answered ${what}`, { httpStatusCode: 200, attempts: 1, totalRetryDelay: 0 });
}

/** A batch answer's `Failed` entries, as the transport interface lists them. */
export function batchFailures(data: Record<string, unknown>): BatchEntryFailure[] {
  const failed = data["Failed"];
  if (!Array.isArray(failed)) return [];
  const text = (value: unknown): string => (typeof value === "string" ? value : "");
  if (!failed.every(isRecord)) throw unexpected("a batch answer's Failed holds an entry that is not an object");
  return failed.map((entry) => ({
    id: text(entry["Id"]),
    code: text(entry["Code"]),
    message: text(entry["Message"]),
    senderFault: entry["SenderFault"] === true,
  }));
}

/** Ids of the messages whose Body does not hash to their MD5OfBody (as @aws-sdk/client-sqs checks, a missing MD5 included). */
export function corruptMessages(messages: readonly Message[]): string[] {
  const bad: string[] = [];
  for (const message of messages) {
    const md5 = createHash("md5")
      .update(message.Body ?? "", "utf8")
      .digest("hex");
    if (message.MD5OfBody !== md5) bad.push(message.MessageId ?? "(no id)");
  }
  return bad;
}

export class LeanQueue implements QueueTransport {
  private readonly target: Target;

  constructor(
    private readonly client: LeanClient,
    endpoint: string,
  ) {
    this.target = targetOf(new URL(endpoint));
  }

  /** One call; resolves with the answer's JSON object ({} for an empty body). */
  private async call(operation: Operation, input: unknown, signal?: AbortSignal, maxAttempts?: number): Promise<Record<string, unknown>> {
    const response = await this.client.send({
      service: SQS,
      target: this.target,
      method: "POST",
      path: "/",
      headers: HEADERS[operation],
      body: JSON.stringify(input),
      ...(signal !== undefined && { signal }),
      ...(maxAttempts !== undefined && { maxAttempts }),
    });
    if (response.body.length === 0) return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(response.body.toString("utf8"));
    } catch {
      throw new LeanResponseError(`SQS ${operation} answered HTTP ${response.status} with a body that is not JSON`, {
        httpStatusCode: response.status,
        attempts: 1,
        totalRetryDelay: 0,
      });
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new LeanResponseError(`SQS ${operation} answered HTTP ${response.status} with JSON that is not an object`, {
        httpStatusCode: response.status,
        attempts: 1,
        totalRetryDelay: 0,
      });
    }
    return parsed as Record<string, unknown>;
  }

  async receiveMessages(input: ReceiveInput, signal: AbortSignal): Promise<Message[]> {
    const data = await this.call(
      "ReceiveMessage",
      {
        QueueUrl: input.queueUrl,
        MaxNumberOfMessages: input.maxMessages,
        WaitTimeSeconds: input.waitTimeSeconds,
        VisibilityTimeout: input.visibilityTimeoutSeconds,
        MessageSystemAttributeNames: input.systemAttributes,
      },
      signal,
      // One attempt: the receive loop retries (see QueueTransport.receiveMessages).
      1,
    );
    const messages = data["Messages"];
    if (messages === undefined) return [];
    if (!Array.isArray(messages)) {
      throw new LeanResponseError("SQS ReceiveMessage answered Messages that is not a list", { httpStatusCode: 200, attempts: 1, totalRetryDelay: 0 });
    }
    if (!messages.every((m) => isRecord(m) && (m["Body"] === undefined || typeof m["Body"] === "string"))) {
      throw unexpected("a ReceiveMessage whose Messages holds an entry that is not a message");
    }
    const bad = corruptMessages(messages as Message[]);
    if (bad.length > 0) {
      throw new LeanResponseError(`Invalid MD5 checksum on messages: ${bad.join(", ")}`, { httpStatusCode: 200, attempts: 1, totalRetryDelay: 0 });
    }
    return messages as Message[];
  }

  async deleteMessage(queueUrl: string, receiptHandle: string): Promise<void> {
    await this.call("DeleteMessage", { QueueUrl: queueUrl, ReceiptHandle: receiptHandle });
  }

  async deleteMessageBatch(queueUrl: string, entries: readonly BatchEntry[]): Promise<BatchEntryFailure[]> {
    const data = await this.call("DeleteMessageBatch", {
      QueueUrl: queueUrl,
      Entries: entries.map((e) => ({ Id: e.id, ReceiptHandle: e.receiptHandle })),
    });
    return batchFailures(data);
  }

  async changeVisibility(queueUrl: string, receiptHandle: string, seconds: number): Promise<void> {
    await this.call("ChangeMessageVisibility", { QueueUrl: queueUrl, ReceiptHandle: receiptHandle, VisibilityTimeout: seconds });
  }

  async changeVisibilityBatch(queueUrl: string, entries: readonly BatchEntry[], seconds: number): Promise<BatchEntryFailure[]> {
    const data = await this.call("ChangeMessageVisibilityBatch", {
      QueueUrl: queueUrl,
      Entries: entries.map((e) => ({ Id: e.id, ReceiptHandle: e.receiptHandle, VisibilityTimeout: seconds })),
    });
    return batchFailures(data);
  }
}
