// Message size limits, checked by the gateway before a send reaches fauxqs (whose queues default to 1 MiB while the
// shipped queue is created with MaximumMessageSize 262,144: scripts/cloudformation/doc-processor.json). Pure.
//
// What SQS documents (API reference, SendMessage and SendMessageBatch,
// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html):
// - a message is refused with InvalidParameterValue when it is longer than the queue's MaximumMessageSize; message
//   attributes count toward that size (name, type and value of each);
// - a batch whose messages add up to more than the service maximum is refused whole with BatchRequestTooLong. Since
//   2025 the reference gives that maximum as 1 MiB (1,048,576 bytes), up from 256 KiB; it does not say whether a
//   queue's smaller MaximumMessageSize also caps a batch. The gateway caps the sum at the smaller of the two (for the
//   shipped queue, 262,144 bytes, the long-standing rule): when unsure, the stand-in refuses rather than accepts, so
//   nothing passes locally that AWS could refuse.
import { AwsError } from "./errors.js";

/** SQS's largest message and largest batch, whatever the queue allows. */
export const SQS_SERVICE_MAX_BYTES = 1_048_576;

function byteLength(value: unknown, base64 = false): number {
  if (typeof value !== "string") return 0;
  // A binary attribute travels as base64 but counts as the bytes it carries.
  return base64 ? Buffer.from(value, "base64").length : Buffer.byteLength(value, "utf8");
}

/** The size SQS counts for one message: the body's UTF-8 bytes plus each attribute's name, type and value. */
export function messageSize(entry: Record<string, unknown>): number {
  let size = byteLength(entry["MessageBody"]);
  const attributes = entry["MessageAttributes"];
  if (typeof attributes === "object" && attributes !== null) {
    for (const [name, raw] of Object.entries(attributes as Record<string, unknown>)) {
      const value = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>) : {};
      size += byteLength(name) + byteLength(value["DataType"]) + byteLength(value["StringValue"]) + byteLength(value["BinaryValue"], true);
    }
  }
  return size;
}

/**
 * The error SQS answers for a send over the limits of a queue that accepts `queueMaxBytes`, or undefined. Other
 * operations, and requests too malformed to size, are left to the emulator's own validation.
 */
export function sendSizeError(operation: string, input: Record<string, unknown>, queueMaxBytes: number): AwsError | undefined {
  if (operation === "SendMessage") {
    const size = messageSize(input);
    if (size <= queueMaxBytes) return undefined;
    return new AwsError(
      "InvalidParameterValue",
      `One or more parameters are invalid. Reason: Message must be shorter than ${queueMaxBytes} bytes.`,
      400,
    );
  }
  if (operation === "SendMessageBatch" && Array.isArray(input["Entries"])) {
    const entries = input["Entries"] as unknown[];
    const total = entries.reduce<number>(
      (sum, entry) => sum + (typeof entry === "object" && entry !== null ? messageSize(entry as Record<string, unknown>) : 0),
      0,
    );
    const limit = Math.min(queueMaxBytes, SQS_SERVICE_MAX_BYTES);
    if (total <= limit) return undefined;
    return new AwsError(
      "BatchRequestTooLong",
      `Batch requests cannot be longer than ${limit} bytes. You have sent ${total} bytes.`,
      400,
      "AWS.SimpleQueueService.BatchRequestTooLong",
    );
  }
  return undefined;
}
