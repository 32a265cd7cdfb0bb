/**
 * A small IMDSv2-only client for the instance's own facts (instance id, account, region, attached role). Credentials
 * are fetched by the SDK's provider (credentials.ts); this module exists so the identity check can compare the
 * caller against *this* instance and explain precisely what is wrong when IMDS says no.
 */
import { getInstanceMetadataEndpoint, httpRequest } from "@smithy/credential-provider-imds";
import { ErrorCode, IdentityError, errorMessage } from "../errors.js";

export interface InstanceIdentity {
  instanceId: string;
  accountId: string;
  region: string;
  availabilityZone: string;
  /** Role name of the attached instance profile, or undefined when none is attached. */
  roleName: string | undefined;
}

export interface ImdsClientOptions {
  timeoutMs: number;
  maxRetries: number;
  /** How long to wait for an instance profile to show up before concluding none is attached. Default 0. */
  roleWaitMs?: number;
  /** Override of the endpoint; default: the SDK's resolution (AWS_EC2_METADATA_SERVICE_ENDPOINT, else 169.254.169.254). */
  endpoint?: string;
}

const TOKEN_TTL_SECONDS = "300";

interface HttpError {
  statusCode?: number;
  code?: string;
  message: string;
}

export async function fetchInstanceIdentity(options: ImdsClientOptions): Promise<InstanceIdentity> {
  const { base, where } = await target(options);
  const withRetries = <T>(fn: () => Promise<T>) => retry(fn, options.maxRetries);

  let token: string;
  try {
    token = (
      await withRetries(() =>
        httpRequest({
          ...base,
          method: "PUT",
          path: "/latest/api/token",
          headers: { "x-aws-ec2-metadata-token-ttl-seconds": TOKEN_TTL_SECONDS },
        }),
      )
    ).toString("utf8");
  } catch (err) {
    throw imdsError(err, where, "token");
  }
  const get = async (path: string): Promise<string> =>
    (
      await withRetries(() =>
        httpRequest({ ...base, method: "GET", path, headers: { "x-aws-ec2-metadata-token": token } }),
      )
    ).toString("utf8");

  let document: Record<string, unknown>;
  try {
    document = JSON.parse(await get("/latest/dynamic/instance-identity/document")) as Record<string, unknown>;
  } catch (err) {
    throw imdsError(err, where, "identity document");
  }
  // Right after launch (or after Modify IAM role) the profile's credentials can take a few seconds to appear, so
  // "no role" is only concluded once the listing has stayed empty for roleWaitMs.
  const roleDeadline = Date.now() + (options.roleWaitMs ?? 0);
  let roleName: string | undefined;
  for (;;) {
    try {
      roleName = (await get("/latest/meta-data/iam/security-credentials/")).trim().split("\n")[0] || undefined;
    } catch (err) {
      // 404 is IMDS's way of saying "no instance profile attached".
      if ((err as HttpError).statusCode !== 404) throw imdsError(err, where, "role listing");
    }
    if (roleName !== undefined || Date.now() >= roleDeadline) break;
    await new Promise((r) => setTimeout(r, Math.min(2_000, Math.max(0, roleDeadline - Date.now()))));
  }
  const field = (name: string): string => {
    const v = document[name];
    if (typeof v !== "string" || v === "") {
      throw new IdentityError(ErrorCode.imdsUnavailable, `IMDS identity document at ${where} has no ${name}`);
    }
    return v;
  };
  return {
    instanceId: field("instanceId"),
    accountId: field("accountId"),
    region: field("region"),
    availabilityZone: field("availabilityZone"),
    roleName,
  };
}

/**
 * HTTP status IMDS gives a GET without a session token (the IMDSv1 way): 401 when IMDSv2 is enforced (HttpTokens
 * required), 200 when any process on the instance can still read credentials with a plain GET.
 */
export async function tokenlessRequestStatus(options: ImdsClientOptions): Promise<number> {
  const { base, where } = await target(options);
  try {
    await retry(() => httpRequest({ ...base, method: "GET", path: "/latest/meta-data/" }), options.maxRetries);
    return 200;
  } catch (err) {
    const status = (err as HttpError).statusCode;
    if (status !== undefined) return status;
    throw imdsError(err, where, "token-less request");
  }
}

async function target(options: ImdsClientOptions) {
  const endpoint = options.endpoint ? new URL(options.endpoint) : await resolvedEndpoint();
  const base = {
    hostname: endpoint.hostname,
    port: endpoint.port === "" ? undefined : Number(endpoint.port),
    protocol: endpoint.protocol,
    timeout: options.timeoutMs,
  };
  return { base, where: endpoint.origin };
}

async function resolvedEndpoint(): Promise<URL> {
  const ep = await getInstanceMetadataEndpoint();
  const port = ep.port === undefined ? "" : `:${ep.port}`;
  return new URL(`${ep.protocol}//${ep.hostname}${port}`);
}

async function retry<T>(fn: () => Promise<T>, retries: number): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const status = (err as HttpError).statusCode;
      // A definite answer (4xx) will not change on retry.
      if (attempt >= retries || (status !== undefined && status >= 400 && status < 500)) throw err;
      await new Promise((r) => setTimeout(r, Math.min(2_000, 200 * 2 ** attempt)));
    }
  }
}

function imdsError(err: unknown, where: string, what: string): IdentityError {
  const status = (err as HttpError).statusCode;
  if (what === "token" && (status === 403 || status === 404 || status === 405)) {
    return new IdentityError(
      ErrorCode.identityMismatch,
      [
        `IMDS at ${where} refused the IMDSv2 token request (HTTP ${status}): the metadata service is disabled or`,
        "only IMDSv1 is available, and this daemon uses IMDSv2 only.",
        "Fix: enable IMDSv2 on the instance: aws ec2 modify-instance-metadata-options --instance-id <id>",
        "--http-endpoint enabled --http-tokens required --http-put-response-hop-limit 1, then restart the service.",
      ].join("\n"),
      { cause: err },
    );
  }
  if (status !== undefined && status >= 400 && status < 500) {
    return new IdentityError(
      ErrorCode.identityMismatch,
      `IMDS at ${where} answered HTTP ${status} for the ${what}; the daemon cannot learn which instance it runs on.`,
      { cause: err },
    );
  }
  return new IdentityError(
    ErrorCode.imdsUnavailable,
    [
      `cannot reach the instance metadata service at ${where} (${what}: ${errorMessage(err)}).`,
      "On EC2 this is usually passing: the service will retry. Off EC2 there is no IMDS: for a local run point",
      "AWS_EC2_METADATA_SERVICE_ENDPOINT at a mock (npm run local does this).",
    ].join("\n"),
    { cause: err },
  );
}
