// SQS requests: which IAM action and queue ARN each one needs, and the translation between what callers see (the
// configured account, queue URLs on the gateway) and what fauxqs uses (account 000000000000, its own host).
import { AwsError } from "./errors.js";

export const UPSTREAM_ACCOUNT_ID = "000000000000";

// The batch operations are authorized as their single-message action, as in IAM.
const BATCH_ACTIONS: Record<string, string> = {
  SendMessageBatch: "SendMessage",
  DeleteMessageBatch: "DeleteMessage",
  ChangeMessageVisibilityBatch: "ChangeMessageVisibility",
};

export interface SqsAuthorization {
  action: string;
  resource: string;
}

/** `https://host/<account>/<name>` -> parts, or undefined. The host is ignored, as SQS does with an endpoint set. */
export function parseQueueUrl(url: string): { accountId: string; name: string } | undefined {
  let pathname: string;
  try {
    pathname = new URL(url).pathname;
  } catch {
    return undefined;
  }
  const m = /^\/(\d{12})\/([\w-]{1,80}(?:\.fifo)?)\/?$/.exec(pathname);
  return m ? { accountId: m[1]!, name: m[2]! } : undefined;
}

export const queueArn = (region: string, accountId: string, name: string): string => `arn:aws:sqs:${region}:${accountId}:${name}`;

/** The IAM check for SQS `operation` with JSON-protocol `input`; AwsError for requests SQS itself would refuse. */
export function sqsAuthorization(
  operation: string,
  input: Record<string, unknown>,
  context: { region: string; accountId: string },
): SqsAuthorization | AwsError {
  if (!/^[A-Za-z]{1,64}$/.test(operation)) return new AwsError("InvalidAction", `The action ${operation} is not valid for this endpoint.`, 400);
  const action = `sqs:${BATCH_ACTIONS[operation] ?? operation}`;
  const text = (name: string): string | undefined => (typeof input[name] === "string" ? (input[name]) : undefined);
  switch (operation) {
    case "ListQueues":
      return { action, resource: "*" };
    case "CreateQueue":
    case "GetQueueUrl": {
      const name = text("QueueName");
      if (!name) return new AwsError("MissingParameter", "The request must contain the parameter QueueName.", 400);
      const owner = text("QueueOwnerAWSAccountId") ?? context.accountId;
      return { action, resource: queueArn(context.region, owner, name) };
    }
    default: {
      const url = text("QueueUrl");
      if (!url) return new AwsError("MissingParameter", "The request must contain the parameter QueueUrl.", 400);
      const queue = parseQueueUrl(url);
      if (!queue) return new AwsError("InvalidAddress", `The address ${url} is not valid for this endpoint.`, 400);
      return { action, resource: queueArn(context.region, queue.accountId, queue.name) };
    }
  }
}

// Fields whose contents are the caller's data: never rewritten.
const OPAQUE_FIELDS = new Set(["MessageBody", "Body", "MessageAttributes", "MessageSystemAttributes", "ReceiptHandle"]);

function mapStrings(value: unknown, map: (text: string, key: string | undefined) => string, key?: string): unknown {
  if (key !== undefined && OPAQUE_FIELDS.has(key)) return value;
  if (typeof value === "string") return map(value, key);
  if (Array.isArray(value)) return value.map((item) => mapStrings(item, map, key === "QueueUrls" ? key : undefined));
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapStrings(v, map, k)]));
  }
  return value;
}

export interface QueueTranslatorOptions {
  region: string;
  accountId: string;
  /** e.g. http://127.0.0.1:4566 (what callers see). */
  gatewayBase: () => string;
  /** fauxqs's queue URL host part, e.g. http://sqs.us-east-1.localhost:40123 */
  upstreamBase: string;
}

/** Rewrites queue URLs and ARNs between the caller's view and fauxqs's. */
export class QueueTranslator {
  constructor(private readonly options: QueueTranslatorOptions) {}

  /** The URL callers use for queue `name`. */
  callerUrl(name: string): string {
    return `${this.options.gatewayBase()}/${this.options.accountId}/${name}`;
  }

  upstreamUrl(name: string): string {
    return `${this.options.upstreamBase}/${UPSTREAM_ACCOUNT_ID}/${name}`;
  }

  toUpstream(input: Record<string, unknown>): Record<string, unknown> {
    const { accountId, region } = this.options;
    const ourArn = `arn:aws:sqs:${region}:${accountId}:`;
    const theirArn = `arn:aws:sqs:${region}:${UPSTREAM_ACCOUNT_ID}:`;
    return mapStrings(input, (text, key) => {
      if (key === "QueueUrl") {
        const queue = parseQueueUrl(text);
        // A queue in another account does not exist upstream: leave the URL so fauxqs answers NonExistentQueue.
        return queue && queue.accountId === accountId ? this.upstreamUrl(queue.name) : text;
      }
      return text.split(ourArn).join(theirArn);
    }) as Record<string, unknown>;
  }

  fromUpstream(output: Record<string, unknown>): Record<string, unknown> {
    const { accountId } = this.options;
    return mapStrings(output, (text, key) => {
      if (key === "QueueUrl" || key === "QueueUrls") {
        const queue = parseQueueUrl(text);
        return queue && queue.accountId === UPSTREAM_ACCOUNT_ID ? this.callerUrl(queue.name) : text;
      }
      if (key === "SenderId" && text === UPSTREAM_ACCOUNT_ID) return accountId;
      return text.replace(/arn:aws:sqs:([a-z0-9-]+):000000000000:/g, `arn:aws:sqs:$1:${accountId}:`);
    }) as Record<string, unknown>;
  }
}
