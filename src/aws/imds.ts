/**
 * A small IMDSv2-only client for the instance's own facts (instance id, account, region, attached role). Credentials
 * are fetched by the SDK's provider (credentials.ts); this module exists so the identity check can compare the
 * caller against *this* instance and explain precisely what is wrong when IMDS says no.
 */
import { getInstanceMetadataEndpoint, httpRequest } from "@smithy/credential-provider-imds";
import { ErrorCode, IdentityError } from "../errors/fatal.js";
import { errorMessage } from "../errors/message.js";
import { UNUSABLE_ANSWER_ADVICE, describeAnswer, describeBody, judgeCredentialsAnswer } from "./imds-answer.js";

// Not an ES import of node:http: that loads undici through its WebSocket getter (see lean/client.ts).
const { request } = process.getBuiltinModule("node:http");

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
const ROLE_LISTING_PATH = "/latest/meta-data/iam/security-credentials/";
const IDENTITY_DOCUMENT_PATH = "/latest/dynamic/instance-identity/document";
/** IAM role names: 1-64 of these characters. Anything else in the listing is not a role name. */
const ROLE_NAME = /^[\w+=,.@-]{1,64}$/;
/** Real credentials answers are about 1.5 KB; nothing larger is read. */
const MAX_CREDENTIALS_ANSWER_BYTES = 64 * 1024;

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

  let documentText: string;
  try {
    documentText = await get(IDENTITY_DOCUMENT_PATH);
  } catch (err) {
    throw imdsError(err, where, "identity document");
  }
  let document: Record<string, unknown>;
  try {
    document = JSON.parse(documentText) as Record<string, unknown>;
  } catch {
    // V8's message would quote the text; describe it instead.
    throw new IdentityError(
      ErrorCode.imdsUnavailable,
      `IMDS at ${where} answered the identity document (${IDENTITY_DOCUMENT_PATH}) with something that is not JSON ` +
        `(${describeBody(documentText)}); the service will retry.`,
    );
  }
  // Right after launch (or after Modify IAM role) the profile's credentials can take a few seconds to appear, so
  // "no role" is only concluded once the listing has stayed empty for roleWaitMs. Within the same wait, an answer
  // that cannot be parsed (the listing or the credentials) is asked again: it is IMDS's passing problem.
  const roleWaitMs = options.roleWaitMs ?? 0;
  const roleDeadline = Date.now() + roleWaitMs;
  let roleName: string | undefined;
  let unusable: string | undefined;
  for (;;) {
    roleName = undefined;
    unusable = undefined;
    let listing = "";
    try {
      listing = await get(ROLE_LISTING_PATH);
    } catch (err) {
      // 404 is IMDS's way of saying "no instance profile attached".
      if ((err as HttpError).statusCode !== 404) throw imdsError(err, where, "role listing");
    }
    const first = listing.trim().split("\n")[0] ?? "";
    if (first !== "" && !ROLE_NAME.test(first)) {
      unusable = `the role listing (${ROLE_LISTING_PATH}) with something that is not a role name (${describeBody(listing)})`;
    } else if (first !== "") {
      roleName = first;
      unusable = await credentialsProblem(base, token, roleName, where, options.maxRetries);
    }
    if ((roleName !== undefined && unusable === undefined) || Date.now() >= roleDeadline) break;
    await new Promise((r) => setTimeout(r, Math.min(2_000, Math.max(0, roleDeadline - Date.now()))));
  }
  if (unusable !== undefined) {
    const waited = roleWaitMs > 0 ? `, and still did after ${Math.round(roleWaitMs / 1000)} s (instanceProfileWaitSeconds)` : "";
    throw new IdentityError(
      ErrorCode.imdsCredentialsInvalid,
      `IMDS at ${where} answered ${unusable}${waited}; STS was not asked.\n${UNUSABLE_ANSWER_ADVICE}`,
    );
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

type Base = Awaited<ReturnType<typeof target>>["base"];

/**
 * Reads the role's credentials the way the SDK's provider will, to find an answer it could not parse before it is
 * relied on. Returns what is wrong with the answer (described, never quoted: it holds a secret), or undefined when
 * it is usable or not there yet (a 404 right after launch: the SDK's own fetch reports it if it persists).
 */
async function credentialsProblem(
  base: Base,
  token: string,
  roleName: string,
  where: string,
  maxRetries: number,
): Promise<string | undefined> {
  const path = `${ROLE_LISTING_PATH}${roleName}`;
  let answer: RawAnswer;
  try {
    answer = await retry(() => getRaw(base, path, token), maxRetries);
  } catch (err) {
    throw imdsError(err, where, "role credentials");
  }
  // Statuses are the SDK's to report, as before (404 right after launch, 5xx as an outage).
  if (answer.status < 200 || answer.status >= 300) return undefined;
  const verdict = answer.complete ? judgeCredentialsAnswer(answer.body) : { ok: false as const, problem: "an oversized body" };
  if (verdict.ok) return undefined;
  return `the role's credentials (${path}) with ${verdict.problem} (${describeAnswer(answer)})`;
}

interface RawAnswer {
  status: number;
  contentType: string | undefined;
  body: string;
  /** Bytes received (at most MAX_CREDENTIALS_ANSWER_BYTES and one more chunk). */
  bytes: number;
  /** False when the body was longer than MAX_CREDENTIALS_ANSWER_BYTES and reading stopped. */
  complete: boolean;
}

/** One GET with the session token, keeping the status and content type the SDK's httpRequest drops; size-capped. */
function getRaw(base: Base, path: string, token: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({
      ...base,
      hostname: base.hostname.replace(/^\[(.+)\]$/, "$1"),
      method: "GET",
      path,
      headers: { "x-aws-ec2-metadata-token": token },
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error("TimeoutError from instance metadata service"), { name: "TimeoutError" })));
    req.on("error", reject);
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      const done = (complete: boolean): void => {
        const header = res.headers["content-type"];
        resolve({ status: res.statusCode ?? 0, contentType: header, body: Buffer.concat(chunks).toString("utf8"), bytes, complete });
      };
      res.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        chunks.push(chunk);
        if (bytes > MAX_CREDENTIALS_ANSWER_BYTES) {
          done(false);
          req.destroy();
        }
      });
      res.on("end", () => done(true));
      res.on("error", reject);
    });
    req.end();
  });
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
