// What the mock answers to one HTTP request, as a pure decision over its state (the server does the I/O). The rules
// follow the real service (reference/imds-and-credentials.md section 6) with IMDSv2 required, as our provisioning sets.
import {
  badExpirationCredentialsBody,
  credentialsBody,
  htmlAnswerBody,
  iamInfoBody,
  identityDocumentBody,
  truncatedCredentialsBody,
} from "./format.js";
import { parseTokenTtl, type CredentialRotation, type TokenStore } from "./state.js";
import type { ImdsCredentialsAnswer } from "./types.js";

export const TOKEN_HEADER = "x-aws-ec2-metadata-token";
export const TTL_HEADER = "x-aws-ec2-metadata-token-ttl-seconds";

export interface ImdsRequest {
  method: string;
  /** Request target; the query string is ignored. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface ImdsReply {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

export interface ImdsState {
  /** Modes the router answers; "refuse" and "hang" never reach it (they are transport behaviour). */
  mode: "normal" | "v1-only" | "error-500";
  instanceId: string;
  accountId: string;
  region: string;
  availabilityZone: string;
  roleName: string | null;
  /** What the credentials path serves ("valid" normally). */
  credentialsAnswer: ImdsCredentialsAnswer;
  startedAt: number;
  tokens: TokenStore;
  credentials: CredentialRotation;
}

const reply = (status: number, body: string, headers?: Record<string, string>): ImdsReply =>
  headers ? { status, body, headers } : { status, body };
const notFound = (): ImdsReply => reply(404, "Not Found");

function putToken(request: ImdsRequest, path: string, state: ImdsState, now: number): ImdsReply {
  // Real IMDS answers a token PUT on a versioned path (e.g. /2021-03-23/api/token) with 403.
  if (/^\/[^/]+\/api\/token$/.test(path) && path !== "/latest/api/token") return reply(403, "Forbidden");
  if (path !== "/latest/api/token") return reply(405, "Method Not Allowed", { allow: "GET, HEAD" });
  // Token requests relayed by a proxy are refused, so a misconfigured proxy cannot hand tokens out.
  if (request.headers["x-forwarded-for"] !== undefined) return reply(403, "Forbidden");
  if (state.mode === "v1-only") return reply(403, "Forbidden");
  const ttl = parseTokenTtl(request.headers[TTL_HEADER]);
  if (ttl === null) return reply(400, "Missing or Invalid Parameters");
  return reply(200, state.tokens.issue(ttl, now), { [TTL_HEADER]: String(ttl) });
}

function listing(...entries: (string | false)[]): ImdsReply {
  return reply(200, entries.filter((entry): entry is string => entry !== false).join("\n"));
}

function getPath(path: string, state: ImdsState, now: number): ImdsReply {
  // Leaves and directories alike answer with or without one trailing slash (the AWS CLI asks for
  // "placement/availability-zone/").
  const p = path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path;
  const role = state.roleName;
  const credentialsPrefix = "/latest/meta-data/iam/security-credentials/";
  if (p.startsWith(credentialsPrefix)) {
    if (role === null || p.slice(credentialsPrefix.length) !== role) return notFound();
    if (state.credentialsAnswer === "html") return reply(200, htmlAnswerBody(), { "content-type": "text/html; charset=utf-8" });
    const issued = state.credentials.get(role, now);
    const body =
      state.credentialsAnswer === "truncated"
        ? truncatedCredentialsBody
        : state.credentialsAnswer === "bad-expiration"
          ? badExpirationCredentialsBody
          : credentialsBody;
    return reply(200, body(issued.credentials, issued.issuedAt));
  }
  switch (p) {
    case "":
    case "/":
      return listing("latest");
    case "/latest":
      return listing("dynamic", "meta-data");
    case "/latest/meta-data":
      return listing(role !== null && "iam/", "instance-id", "placement/");
    case "/latest/meta-data/instance-id":
      return reply(200, state.instanceId);
    case "/latest/meta-data/placement":
      return listing("availability-zone", "region");
    case "/latest/meta-data/placement/availability-zone":
      return reply(200, state.availabilityZone);
    case "/latest/meta-data/placement/region":
      return reply(200, state.region);
    case "/latest/meta-data/iam":
      return role === null ? notFound() : listing("info", "security-credentials/");
    case "/latest/meta-data/iam/info":
      return role === null ? notFound() : reply(200, iamInfoBody(state.accountId, role, state.credentials.lastUpdated() ?? now));
    case "/latest/meta-data/iam/security-credentials":
      // The role name alone, no trailing newline: the CLI puts the body straight into the next URL.
      return role === null ? notFound() : reply(200, role);
    case "/latest/dynamic":
      return listing("instance-identity/");
    case "/latest/dynamic/instance-identity":
      return listing("document");
    case "/latest/dynamic/instance-identity/document":
      return reply(
        200,
        identityDocumentBody({
          accountId: state.accountId,
          availabilityZone: state.availabilityZone,
          instanceId: state.instanceId,
          region: state.region,
          pendingTimeMs: state.startedAt,
        }),
      );
    default:
      return notFound();
  }
}

export function routeImdsRequest(request: ImdsRequest, state: ImdsState, now: number): ImdsReply {
  if (state.mode === "error-500") return reply(500, "Internal Server Error");
  const path = request.url.split("?", 1)[0] ?? "";
  if (request.method === "PUT") return putToken(request, path, state, now);
  if (request.method !== "GET" && request.method !== "HEAD") {
    return reply(405, "Method Not Allowed", { allow: "GET, HEAD, PUT" });
  }
  if (state.mode === "normal") {
    // IMDSv2 required: no token, an unknown token and an expired token all get 401.
    const token = request.headers[TOKEN_HEADER];
    if (typeof token !== "string" || !state.tokens.isValid(token, now)) return reply(401, "Unauthorized");
  }
  // "v1-only": IMDSv2 does not exist, so any token header is simply ignored.
  return getPath(path, state, now);
}
