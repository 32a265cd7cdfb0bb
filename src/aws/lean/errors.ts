/**
 * The lean transport's errors, in the AWS SDK's shape so one classifier reads both transports (src/errors/aws.ts):
 * `name` is the AWS error code, `$fault` "client" or "server", `$metadata` the HTTP status, request id and attempts.
 * The service-specific parts (SQS's JSON 1.0 errors, S3's XML errors) read an error body capped at ERROR_BODY_LIMIT.
 */

/** What we read of an error answer's body at most: the rest is dropped (and the socket with it). */
export const ERROR_BODY_LIMIT = 64 * 1024;

export interface LeanMetadata {
  httpStatusCode?: number;
  requestId?: string;
  extendedRequestId?: string;
  attempts: number;
  totalRetryDelay: number;
  /** Set when this answer moved the clock offset (the SDK's flag: a skew error is then retried once). */
  clockSkewCorrected?: boolean;
}

export type Fault = "client" | "server";

/** An AWS service's error answer (or a transport failure dressed the same way). */
export class LeanServiceError extends Error {
  override name: string;
  readonly $fault: Fault;
  $metadata: LeanMetadata;
  /** SQS: the query-compatible code (x-amzn-query-error), e.g. AWS.SimpleQueueService.NonExistentQueue, as the SDK's `Code`. */
  Code?: string;
  /** Retry-After header, when the answer carried one (a hint for the backoff). */
  retryAfter?: string;

  constructor(name: string, message: string, fault: Fault, metadata: LeanMetadata) {
    super(message);
    this.name = name;
    this.$fault = fault;
    this.$metadata = metadata;
  }
}

/** An answer that is not what the protocol promises (non-JSON 200, an oversized body): never retried, never parsed on. */
export class LeanResponseError extends LeanServiceError {
  constructor(message: string, metadata: LeanMetadata) {
    super("UnexpectedResponse", message, "server", metadata);
  }
}

/** A response body whose full-object checksum differs from the one S3 sent: the body stream fails with it. */
export class LeanChecksumError extends Error {
  override name = "ChecksumMismatch";
  readonly $fault = "server" as const;
  constructor(
    readonly algorithm: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`Checksum mismatch: expected ${algorithm} ${expected} (x-amz-checksum-${algorithm.toLowerCase()}), computed ${actual}`);
  }
}

/** Connection timeout, socket idle timeout, or a body that stalled: the SDK's name, so it is retried as transient. */
export class LeanTimeoutError extends Error {
  override name = "TimeoutError";
  readonly code = "ETIMEDOUT";
}

/** The call's AbortSignal fired: the request was destroyed at once. */
export class LeanAbortError extends Error {
  override name = "AbortError";
  readonly code = "ABORT_ERR";
  constructor(reason?: unknown) {
    super("The operation was aborted", reason === undefined ? undefined : { cause: reason });
  }
}

/** A call the transport refuses before sending (an empty bucket or key would address something else). */
export class LeanInputError extends Error {
  override name = "ValidationError";
  readonly code = "ERR_INVALID_ARG_VALUE";
}

/** A response body shorter than its Content-Length (the connection ended early). */
export class LeanTruncatedBodyError extends Error {
  override name = "TruncatedBody";
  readonly code = "ECONNRESET";
}

function fault(status: number): Fault {
  return status >= 500 ? "server" : "client";
}

/** The name the SDK gives an HTTP status when the body names no code (a HEAD-style or non-AWS answer). */
export function statusName(status: number): string {
  switch (status) {
    case 301:
      return "PermanentRedirect";
    case 304:
      return "NotModified";
    case 400:
      return "BadRequest";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 412:
      return "PreconditionFailed";
    case 429:
      return "TooManyRequests";
    case 500:
      return "InternalError";
    case 503:
      return "ServiceUnavailable";
    default:
      return status >= 500 ? "UnknownServerError" : "UnknownError";
  }
}

// --- SQS (AWS JSON 1.0, query-compatible) ---

/**
 * SQS's modeled errors by their query-compatible code (the `awsQueryError` trait in @aws-sdk/client-sqs's schemas):
 * the SDK names the error after the modeled shape, so `AWS.SimpleQueueService.NonExistentQueue` surfaces as
 * `QueueDoesNotExist` (with `Code` keeping the query code).
 */
const SQS_QUERY_CODES: ReadonlyMap<string, string> = new Map([
  ["AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "BatchEntryIdsNotDistinct"],
  ["AWS.SimpleQueueService.BatchRequestTooLong", "BatchRequestTooLong"],
  ["AWS.SimpleQueueService.EmptyBatchRequest", "EmptyBatchRequest"],
  ["AWS.SimpleQueueService.InvalidBatchEntryId", "InvalidBatchEntryId"],
  ["AWS.SimpleQueueService.MessageNotInflight", "MessageNotInflight"],
  ["AWS.SimpleQueueService.PurgeQueueInProgress", "PurgeQueueInProgress"],
  ["AWS.SimpleQueueService.QueueDeletedRecently", "QueueDeletedRecently"],
  ["AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"],
  ["AWS.SimpleQueueService.TooManyEntriesInBatchRequest", "TooManyEntriesInBatchRequest"],
  ["AWS.SimpleQueueService.UnsupportedOperation", "UnsupportedOperation"],
  ["KMS.AccessDeniedException", "KmsAccessDenied"],
  ["KMS.DisabledException", "KmsDisabled"],
  ["KMS.InvalidKeyUsageException", "KmsInvalidKeyUsage"],
  ["KMS.InvalidStateException", "KmsInvalidState"],
  ["KMS.NotFoundException", "KmsNotFound"],
  ["KMS.OptInRequired", "KmsOptInRequired"],
  ["KMS.ThrottlingException", "KmsThrottled"],
  ["QueueAlreadyExists", "QueueNameExists"],
]);

/** `com.amazonaws.sqs#QueueDoesNotExist` or `Foo:http://…` -> the bare code, as the SDK's sanitizeErrorCode does. */
export function bareErrorCode(raw: string): string {
  let code = raw;
  const comma = code.indexOf(",");
  if (comma >= 0) code = code.slice(0, comma);
  const colon = code.indexOf(":");
  if (colon >= 0) code = code.slice(0, colon);
  const hash = code.indexOf("#");
  if (hash >= 0) code = code.slice(hash + 1);
  return code;
}

/** The SDK's name for an SQS JSON error: the query header's code (mapped to its modeled shape), else `__type`'s. */
export function sqsErrorName(queryErrorHeader: string | undefined, type: string | undefined): { name: string; code?: string } {
  const queryCode = queryErrorHeader?.split(";")[0]?.trim();
  if (queryCode) return { name: SQS_QUERY_CODES.get(queryCode) ?? queryCode, code: queryCode };
  if (type) return { name: bareErrorCode(type) };
  return { name: "Unknown" };
}

export function sqsError(
  status: number,
  headers: Readonly<Record<string, string | string[] | undefined>>,
  body: Buffer,
  metadata: LeanMetadata,
): LeanServiceError {
  let data: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(body.toString("utf8"));
    if (typeof parsed === "object" && parsed !== null) data = parsed as Record<string, unknown>;
  } catch {
    // A non-JSON error answer (a proxy's HTML page, a truncated body): named by the header or the status.
  }
  const header = headers["x-amzn-query-error"];
  const type = typeof data["__type"] === "string" ? data["__type"] : (headers["x-amzn-errortype"] as string | undefined);
  const { name, code } = sqsErrorName(typeof header === "string" ? header : undefined, type);
  const message = data["message"] ?? data["Message"];
  const error = new LeanServiceError(
    name === "Unknown" && header === undefined && type === undefined ? statusName(status) : name,
    typeof message === "string" ? message : `SQS answered HTTP ${status}`,
    fault(status),
    metadata,
  );
  if (code !== undefined) error.Code = code;
  return error;
}

// --- S3 (REST-XML) ---

function xmlElement(xml: string, name: string): string | undefined {
  const start = xml.indexOf(`<${name}>`);
  if (start === -1) return undefined;
  const from = start + name.length + 2;
  const end = xml.indexOf(`</${name}>`, from);
  if (end === -1) return undefined;
  return unescapeXml(xml.slice(from, end));
}

function unescapeXml(text: string): string {
  if (!text.includes("&")) return text;
  return text.replace(/&(lt|gt|amp|quot|apos|#(\d+)|#x([0-9a-f]+));/gi, (all, name: string, dec?: string, hex?: string) => {
    if (dec !== undefined) return String.fromCodePoint(Number(dec));
    if (hex !== undefined) return String.fromCodePoint(parseInt(hex, 16));
    switch (name.toLowerCase()) {
      case "lt":
        return "<";
      case "gt":
        return ">";
      case "amp":
        return "&";
      case "quot":
        return '"';
      case "apos":
        return "'";
      default:
        return all;
    }
  });
}

/** S3's `<Error><Code>…</Code><Message>…</Message></Error>`; a body without one (HEAD-less 404, HTML, truncated) is named by its status. */
export function s3Error(status: number, body: Buffer, metadata: LeanMetadata): LeanServiceError {
  const xml = body.toString("utf8");
  const errorAt = xml.indexOf("<Error>");
  const inner = errorAt === -1 ? "" : xml.slice(errorAt);
  const code = inner === "" ? undefined : xmlElement(inner, "Code");
  const message = inner === "" ? undefined : xmlElement(inner, "Message");
  const requestId = inner === "" ? undefined : xmlElement(inner, "RequestId");
  if (requestId !== undefined && metadata.requestId === undefined) metadata.requestId = requestId;
  const name = code !== undefined && /^[A-Za-z0-9.]{1,128}$/.test(code) ? code : statusName(status);
  return new LeanServiceError(name, message ?? `S3 answered HTTP ${status}`, fault(status), metadata);
}
