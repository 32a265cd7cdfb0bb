/**
 * Where SQS requests go. The SDK would send each signed request (with the role's session token) to the host of the
 * QueueUrl it carries, so a queueUrl on any host would receive them. Here the queue URL must be a real SQS queue URL
 * (https, an SQS endpoint of its region, /<account>/<name>), or, when AWS_ENDPOINT_URL_SQS is set (local runs and
 * tests), exactly on that origin. The SQS client then gets that one endpoint explicitly (src/aws/clients.ts). Pure.
 *
 * SQS endpoint forms (https://docs.aws.amazon.com/general/latest/gr/sqs-service.html): sqs.<region>.amazonaws.com
 * and the FIPS sqs-fips.<region>.amazonaws.com; the China regions use the domain amazonaws.com.cn
 * (https://docs.amazonaws.cn/en_us/general/latest/gr/endpoints-Beijing.html), sqs.cn-north-1.amazonaws.com.cn;
 * GetQueueUrl may still return the legacy <region>.queue.amazonaws.com form (github.com/aws/aws-cli/issues/1715).
 */
import { ConfigError, type ConfigProblem } from "../errors/fatal.js";
import type { Env } from "./env.js";
import { endpointOverrideProblem } from "./endpoint-override.js";

/** The SDK's standard variable for the SQS endpoint; local runs point it at the stand-in. */
export const SQS_ENDPOINT_ENV = "AWS_ENDPOINT_URL_SQS";

export interface QueueLocation {
  /** The queue URL, exactly as configured (and SQS sees it in every request body). */
  url: string;
  /** Origin every SQS request goes to: AWS_ENDPOINT_URL_SQS's when set, else the queue URL's. */
  endpoint: string;
  account: string;
  name: string;
  /** From the host of a standard SQS URL; undefined for a URL on AWS_ENDPOINT_URL_SQS's own origin. */
  region: string | undefined;
}

export type QueueUrlCheck = { ok: true; queue: QueueLocation } | { ok: false; problems: ConfigProblem[] };

export interface QueueUrlInput {
  queueUrl: string;
  /** The configured `region`, if any. */
  region: string | undefined;
  /** AWS_ENDPOINT_URL_SQS, if set. */
  endpointOverride: string | undefined;
}

const REGION = "[a-z]{2}(?:-[a-z]+)+-\\d+";
const SQS_HOSTS: readonly { pattern: RegExp; china: boolean }[] = [
  { pattern: new RegExp(`^sqs\\.(${REGION})\\.amazonaws\\.com$`), china: false },
  { pattern: new RegExp(`^sqs-fips\\.(${REGION})\\.amazonaws\\.com$`), china: false },
  { pattern: new RegExp(`^(${REGION})\\.queue\\.amazonaws\\.com$`), china: false },
  { pattern: new RegExp(`^sqs\\.(${REGION})\\.amazonaws\\.com\\.cn$`), china: true },
];
const QUEUE_NAME = /^[A-Za-z0-9_-]+(?:\.fifo)?$/;
const EXPECTED = "https://sqs.<region>.amazonaws.com/<12-digit account>/<queue name>";

/** AWS_ENDPOINT_URL_SQS, or undefined when unset or empty (the SDK ignores an empty one too). */
export function sqsEndpointOverride(env: Env): string | undefined {
  const value = env[SQS_ENDPOINT_ENV];
  return value === undefined || value.trim() === "" ? undefined : value;
}

/** Region of a standard SQS endpoint host (lowercase, no trailing dot), or undefined. */
export function sqsHostRegion(hostname: string): string | undefined {
  for (const { pattern, china } of SQS_HOSTS) {
    const region = pattern.exec(hostname)?.[1];
    // The China regions live only under amazonaws.com.cn, and nothing else does.
    if (region !== undefined && region.startsWith("cn-") === china) return region;
  }
  return undefined;
}

export function checkQueueUrl(input: QueueUrlInput): QueueUrlCheck {
  const problems: ConfigProblem[] = [];
  const fail = (key: string, message: string, value: unknown): QueueUrlCheck => {
    problems.push({ key, message, value });
    return { ok: false, problems };
  };

  let override: URL | undefined;
  if (input.endpointOverride !== undefined) {
    const reason = endpointOverrideProblem(input.endpointOverride, OVERRIDE_FIX);
    if (reason !== undefined) return fail(SQS_ENDPOINT_ENV, reason, input.endpointOverride);
    override = new URL(input.endpointOverride);
  }

  const raw = input.queueUrl;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return fail("queueUrl", `must be the queue's URL. Fix: ${useTheQueueUrl(override)}`, raw);
  }
  // Before anything else: in https://sqs.us-east-1.amazonaws.com@evil/ the real host is "evil".
  if (url.username !== "" || url.password !== "") {
    return fail(
      "queueUrl",
      `must not contain a user name or password (text before '@'): the host this URL names is "${url.host}", ` +
        `not an SQS endpoint. Fix: ${useTheQueueUrl(override)}`,
      raw,
    );
  }
  if (/[?#]/.test(raw) || /[^\x21-\x7e]/.test(raw)) {
    return fail(
      "queueUrl",
      `must be the bare queue URL: no query, fragment, spaces, control or non-ASCII characters. Fix: ${useTheQueueUrl(override)}`,
      raw,
    );
  }

  const onOverride = override !== undefined && url.origin === override.origin;
  const hostRegion = url.port === "" ? sqsHostRegion(url.hostname) : undefined;
  if (!onOverride) {
    if (hostRegion === undefined) return fail("queueUrl", notAnSqsEndpoint(url, override), raw);
    if (url.protocol !== "https:") {
      return fail(
        "queueUrl",
        "must use https: requests signed with the role's session token would cross the network in clear text. " +
          `Fix: use https://${url.host}${url.pathname}`,
        raw,
      );
    }
  }
  if (hostRegion !== undefined && input.region !== undefined && input.region !== hostRegion) {
    return fail(
      "queueUrl",
      `is a queue in ${hostRegion}, but region is ${input.region}: SQS queues are regional. ` +
        `Fix: set region to ${hostRegion}, or leave it unset (it then comes from the queue URL), or use the queue in ${input.region}`,
      raw,
    );
  }

  const path = /^\/(\d{12})\/([^/]+)$/.exec(url.pathname);
  const account = path?.[1];
  const name = path?.[2];
  if (account === undefined || name === undefined) {
    return fail("queueUrl", `must have the path /<12-digit account>/<queue name>. Fix: ${useTheQueueUrl(override)}`, raw);
  }
  if (!QUEUE_NAME.test(name) || name.length > 80) {
    return fail(
      "queueUrl",
      `has an invalid queue name "${name}": 1-80 characters, letters, digits, '-' and '_', a FIFO queue ending in .fifo. ` +
        `Fix: ${useTheQueueUrl(override)}`,
      raw,
    );
  }
  // Whatever the URL parser would rewrite (uppercase host, :443, percent-encoded host, backslashes) is refused
  // rather than silently fixed: the URL must be the one SQS itself reports.
  if (url.href !== raw) return fail("queueUrl", `must be written exactly as SQS reports it. Fix: write ${url.href}`, raw);

  return {
    ok: true,
    queue: { url: raw, endpoint: (override ?? url).origin, account, name, region: hostRegion },
  };
}

const OVERRIDE_FIX =
  `Fix: unset ${SQS_ENDPOINT_ENV} on an instance (requests then go to the queue URL's SQS endpoint), or set it to an ` +
  "origin such as https://sqs.us-east-1.amazonaws.com or, for a local stand-in, http://127.0.0.1:4566";

/** The fix for a wrong queueUrl. */
function useTheQueueUrl(override: URL | undefined): string {
  const fromAws = `the URL the SQS console or \`aws sqs get-queue-url --queue-name <name>\` shows, ${EXPECTED}`;
  return override === undefined ? `use ${fromAws}` : `use ${override.origin}/<12-digit account>/<queue name>, or ${fromAws}`;
}

function notAnSqsEndpoint(url: URL, override: URL | undefined): string {
  const host = url.host;
  const hints: string[] = [];
  if (url.hostname.endsWith(".")) hints.push("drop the trailing dot");
  if (url.port !== "" && sqsHostRegion(url.hostname) !== undefined) hints.push("drop the port");
  if (/^\[|^\d+\.\d+\.\d+\.\d+$/.test(url.hostname)) hints.push("an IP address is not an SQS endpoint");
  const where =
    override === undefined
      ? `; a local stand-in takes ${SQS_ENDPOINT_ENV} set to its origin, with queueUrl on that origin`
      : `, nor on ${SQS_ENDPOINT_ENV} (${override.origin}), where every SQS request goes`;
  return (
    `host "${host}" is not an SQS endpoint (sqs.<region>.amazonaws.com, sqs-fips.<region>.amazonaws.com, ` +
    `<region>.queue.amazonaws.com, or sqs.<region>.amazonaws.com.cn in China)${where}` +
    `${hints.length > 0 ? ` (${hints.join("; ")})` : ""}. Fix: ${useTheQueueUrl(override)}`
  );
}

/**
 * The validated queue location for a loaded config. loadConfig has already refused a bad queueUrl; this throws the
 * same ConfigError (exit 78) if it is called with one anyway, so no client is ever built for an unchecked URL.
 */
export function queueLocationOf(config: { queueUrl: string; region?: string | undefined }, env: Env): QueueLocation {
  const checked = checkQueueUrl({ queueUrl: config.queueUrl, region: config.region, endpointOverride: sqsEndpointOverride(env) });
  if (!checked.ok) throw new ConfigError(checked.problems, "queueUrl");
  return checked.queue;
}
