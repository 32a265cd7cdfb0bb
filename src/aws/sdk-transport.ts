/**
 * The per-document calls on the AWS SDK v3 clients: the `transport: "sdk"` fallback, and the reference the lean
 * transport is measured against. A thin mapping; the SDK's own errors pass through unchanged.
 */
import { Readable } from "node:stream";
import type { S3Client } from "@aws-sdk/client-s3";
import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  type BatchResultErrorEntry,
  type MessageSystemAttributeName,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { FinalizeHandler, FinalizeRequestMiddleware, MetadataBearer } from "@smithy/types";
import type { BatchEntryFailure, Transport } from "./transport.js";

/**
 * Runs inside the SDK's retry loop (finalizeRequest, after the retry middleware): a second attempt is not sent.
 * Instead a NotRetried (a client error to the retry strategy, which ends its loop) carries the first attempt's error
 * out, and receiveMessages rethrows that error as it was.
 */
function singleAttempt<I extends object, O extends MetadataBearer>(): FinalizeRequestMiddleware<I, O> {
  return (next: FinalizeHandler<I, O>) => {
    let lastError: unknown;
    return async (args) => {
      if (lastError !== undefined) throw new NotRetried(lastError);
      try {
        return await next(args);
      } catch (err) {
        lastError = err;
        throw err;
      }
    };
  };
}

/** The retry strategy's CLIENT_ERROR (no status, no retryable code), carrying the error to rethrow. */
class NotRetried extends Error {
  constructor(readonly original: unknown) {
    super("not retried: the receive loop retries ReceiveMessage itself");
  }
}

function failures(failed: readonly BatchResultErrorEntry[] | undefined): BatchEntryFailure[] {
  return (failed ?? []).map((f) => ({
    id: f.Id ?? "",
    code: f.Code ?? "Unknown",
    message: f.Message ?? f.Code ?? "Unknown",
    senderFault: f.SenderFault ?? false,
  }));
}

/** The S3 client and its commands, loaded on the first object call (see AwsClients.s3). */
async function s3With(s3: () => Promise<S3Client>) {
  const [client, commands] = await Promise.all([s3(), import("@aws-sdk/client-s3")]);
  return { client, ...commands };
}

/** Uses the given clients; destroy() is the clients' owner's job (src/aws/clients.ts). */
export function sdkTransport(s3: () => Promise<S3Client>, sqs: SQSClient): Transport {
  return {
    name: "sdk",
    queue: {
      async receiveMessages(input, signal) {
        const command = new ReceiveMessageCommand({
          QueueUrl: input.queueUrl,
          MaxNumberOfMessages: input.maxMessages,
          WaitTimeSeconds: input.waitTimeSeconds,
          VisibilityTimeout: input.visibilityTimeoutSeconds,
          MessageSystemAttributeNames: input.systemAttributes as MessageSystemAttributeName[],
        });
        command.middlewareStack.add(singleAttempt(), { step: "finalizeRequest", priority: "low", name: "singleAttempt" });
        try {
          const out = await sqs.send(command, { abortSignal: signal });
          return out.Messages ?? [];
        } catch (err) {
          throw err instanceof NotRetried ? err.original : err;
        }
      },
      async deleteMessage(queueUrl, receiptHandle) {
        await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle }));
      },
      async deleteMessageBatch(queueUrl, entries) {
        const out = await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: entries.map((e) => ({ Id: e.id, ReceiptHandle: e.receiptHandle })),
          }),
        );
        return failures(out.Failed);
      },
      async changeVisibility(queueUrl, receiptHandle, seconds) {
        await sqs.send(
          new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle, VisibilityTimeout: seconds }),
        );
      },
      async changeVisibilityBatch(queueUrl, entries, seconds) {
        const out = await sqs.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: queueUrl,
            Entries: entries.map((e) => ({ Id: e.id, ReceiptHandle: e.receiptHandle, VisibilityTimeout: seconds })),
          }),
        );
        return failures(out.Failed);
      },
    },
    objects: {
      async getObject(input, signal) {
        const { client, GetObjectCommand } = await s3With(s3);
        const out = await client.send(
          new GetObjectCommand({
            Bucket: input.bucket,
            Key: input.key,
            ...(input.ifMatch === undefined ? {} : { IfMatch: input.ifMatch }),
          }),
          { abortSignal: signal },
        );
        const body: unknown = out.Body;
        if (!(body instanceof Readable)) {
          // Not expected from the Node SDK; release whatever it is so no socket stays held.
          (body as { destroy?: () => void } | undefined)?.destroy?.();
          throw new Error("GetObject returned no readable body");
        }
        return {
          body,
          ...(out.ContentLength === undefined ? {} : { contentLength: out.ContentLength }),
          ...(out.ETag === undefined ? {} : { eTag: out.ETag }),
          ...(out.ContentType === undefined ? {} : { contentType: out.ContentType }),
          ...(out.LastModified === undefined ? {} : { lastModified: out.LastModified }),
        };
      },
      async putObject(input, signal) {
        const { client, PutObjectCommand } = await s3With(s3);
        await client.send(
          new PutObjectCommand({
            Bucket: input.bucket,
            Key: input.key,
            Body: input.body,
            ContentLength: input.contentLength,
            ContentType: input.contentType,
            Metadata: { ...input.metadata },
          }),
          { abortSignal: signal },
        );
      },
    },
    destroy() {
      // The clients belong to AwsClients.
    },
  };
}
