/**
 * The standard endpoint variables (AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL_S3) decide where the role's signed requests
 * go, so they are checked before any is sent: an origin, https, or plain http only to a loopback address.
 */
import type { Env } from "./env.js";
import { isLoopbackAddress } from "./schema.js";

export const S3_ENDPOINT_ENV = "AWS_ENDPOINT_URL_S3";

/** The variable's value, or undefined when unset or empty (the SDK ignores an empty one too). */
export function endpointOverride(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === "" ? undefined : value;
}

/** Why `value` cannot receive the role's requests, or undefined when it can; `fix` ends each reason. */
export function endpointOverrideProblem(value: string, fix: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `must be an endpoint URL. ${fix}`;
  }
  if (url.username !== "" || url.password !== "") {
    return `must not contain a user name or password (its host is "${url.host}"). ${fix}`;
  }
  if (url.search !== "" || url.hash !== "" || /[?#]/.test(value)) return `must not have a query or fragment. ${fix}`;
  if (url.pathname !== "/") return `must be an origin only (scheme, host, port), without a path. ${fix}`;
  if (url.protocol === "https:") return undefined;
  if (url.protocol === "http:" && isLoopbackAddress(url.hostname.replace(/^\[|\]$/g, ""))) return undefined;
  return (
    "must use https, or plain http only to a loopback address (127.0.0.1, [::1]) such as the local stand-in: " +
    `requests signed with the role's session token must not cross the network in clear text. ${fix}`
  );
}

const S3_FIX =
  `Fix: unset ${S3_ENDPOINT_ENV} on an instance (requests then go to S3's regional endpoint), or set it to an origin ` +
  "such as https://s3.us-east-1.amazonaws.com or, for a local stand-in, http://127.0.0.1:4566";

/** AWS_ENDPOINT_URL_S3's problem, as a config problem list (empty when unset or usable). */
export function s3EndpointProblems(env: Env): { key: string; message: string; value: string }[] {
  const value = endpointOverride(env, S3_ENDPOINT_ENV);
  const problem = value === undefined ? undefined : endpointOverrideProblem(value, S3_FIX);
  return problem === undefined || value === undefined ? [] : [{ key: S3_ENDPOINT_ENV, message: problem, value }];
}
