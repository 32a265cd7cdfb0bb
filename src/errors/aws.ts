/**
 * How an AWS SDK error reads in a message, built in one place so every log line, outcome reason and check verdict
 * names it the same way: `AccessDenied 403: Access Denied`.
 */
import { errorMessage } from "./message.js";

/** The AWS SDK error name and HTTP status, when `err` came from the SDK. */
export function awsErrorInfo(err: unknown): { name: string; status: number | undefined } {
  if (typeof err === "object" && err !== null) {
    const e = err as { name?: unknown; $metadata?: { httpStatusCode?: unknown } };
    const status = e.$metadata?.httpStatusCode;
    return {
      name: typeof e.name === "string" ? e.name : "Error",
      status: typeof status === "number" ? status : undefined,
    };
  }
  return { name: "Error", status: undefined };
}

/** `AccessDenied 403`, or just the name when no HTTP answer came. */
export function awsErrorLabel(err: unknown): string {
  const { name, status } = awsErrorInfo(err);
  return status === undefined ? name : `${name} ${status}`;
}

/** `AccessDenied 403: Access Denied`: name, HTTP status and text. */
export function describeAwsError(err: unknown): string {
  return `${awsErrorLabel(err)}: ${errorMessage(err)}`;
}
