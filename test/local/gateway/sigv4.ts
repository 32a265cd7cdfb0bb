// SigV4 header-auth verification by re-signing the request as received with the secret we issued and comparing
// (reference/local-aws-stack.md 7.1): raw S3 path with uriEscapePath false, percent-decoded query that keeps '+',
// only the SignedHeaders with their received values, and the payload hash taken from x-amz-content-sha256 when sent.
// Body integrity (sha256, aws-chunked trailers, Content-MD5, x-amz-checksum-*) is checked after the signature.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import type { AuthFailure } from "./errors.js";
import type { CredentialRecord } from "./identities.js";
import { decodeAwsChunked, verifyChecksum, verifyContentMd5 } from "./payload.js";

export interface SignedRequest {
  method: string;
  /** The path exactly as received, without the query. */
  rawPath: string;
  /** The query string as received, without '?'. */
  rawQuery: string;
  /** Node's rawHeaders: [name, value, name, value, …]. */
  rawHeaders: readonly string[];
  body: Buffer;
  /** headerMap(rawHeaders), when the caller has it already. */
  headers?: Map<string, string>;
  /** parseAuthorization(headers' authorization), when the caller has it already (the gateway routes on it). */
  authorization?: ParsedAuthorization | "missing" | "malformed";
}

export interface ParsedAuthorization {
  accessKeyId: string;
  /** yyyymmdd of the credential scope. */
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

const AUTH_PATTERN =
  /^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request\s*,\s*SignedHeaders=([a-z0-9;._-]+)\s*,\s*Signature=([0-9a-f]{64})\s*$/i;

/** Parses an `Authorization: AWS4-HMAC-SHA256 …` header; "missing" without one, "malformed" when unparsable. */
export function parseAuthorization(value: string | undefined): ParsedAuthorization | "missing" | "malformed" {
  if (value === undefined || value.trim() === "") return "missing";
  const m = AUTH_PATTERN.exec(value.trim());
  if (!m) return "malformed";
  return {
    accessKeyId: m[1]!,
    date: m[2]!,
    region: m[3]!,
    service: m[4]!,
    signedHeaders: m[5]!.toLowerCase().split(";"),
    signature: m[6]!.toLowerCase(),
  };
}

function decodeComponent(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Query parameters as the signer wants them: percent-decoded, '+' kept as '+' (URLSearchParams would turn it into a
 * space and break the signature), valueless keys as "", repeated keys as arrays.
 */
export function parseQuery(rawQuery: string): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  for (const part of rawQuery.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const key = decodeComponent(eq === -1 ? part : part.slice(0, eq));
    const value = eq === -1 ? "" : decodeComponent(part.slice(eq + 1));
    const existing = query[key];
    if (existing === undefined) query[key] = value;
    else query[key] = Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  return query;
}

/** x-amz-date (yyyymmddThhmmssZ) as a Date, or undefined. */
export function parseAmzDate(value: string | undefined): Date | undefined {
  const m = value === undefined ? null : /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const date = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** Header values by lower-case name, repeated headers joined with ',' (the canonical form). */
export function headerMap(rawHeaders: readonly string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const value = rawHeaders[i + 1]!;
    const existing = map.get(name);
    map.set(name, existing === undefined ? value : `${existing},${value}`);
  }
  return map;
}

export interface VerifyOptions {
  lookup: (accessKeyId: string) => CredentialRecord | undefined;
  isExpired: (record: CredentialRecord) => boolean;
  now: Date;
  /** The region a service's scope must name, or undefined to accept any (STS has regional endpoints everywhere). */
  expectedRegion?: (service: string) => string | undefined;
  maxSkewMs?: number;
}

export type VerifyResult =
  | { ok: true; auth: ParsedAuthorization; credential: CredentialRecord; payload: Buffer }
  | { ok: false; failure: AuthFailure; auth?: ParsedAuthorization; credential?: CredentialRecord };

const FIFTEEN_MINUTES = 15 * 60 * 1000;
const HEX_SHA256 = /^[0-9a-f]{64}$/;
const CHECKSUM_HEADER = /^x-amz-checksum-(crc32|crc32c|crc64nvme|sha1|sha256)$/;
const sha256Constructor = Hash.bind(null, "sha256");
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
// Headers the SDK's signer drops from what it is given (it sets x-amz-date itself): a client that signed one of them
// never gets a matching signature from it, so neither does it here. "__proto__" never reaches a plain object's keys.
const NEVER_CANONICAL = new Set(["authorization", "date", "__proto__"]);

// The SDK's own canonical path and query (path normalisation, double encoding, query escaping and sorting): two
// long-lived signers used only for createCanonicalRequest, so the request is canonicalised exactly as before. Only
// the signing (key derivation and the two HMACs) is done here, with the derived key cached.
class Canonicalizer extends SignatureV4 {
  constructor(uriEscapePath: boolean) {
    super({ service: "-", region: "-", credentials: { accessKeyId: "-", secretAccessKey: "-" }, sha256: sha256Constructor, uriEscapePath });
  }

  canonicalRequest(method: string, path: string, query: Record<string, string | string[]>, headers: Record<string, string>, payloadHash: string): string {
    return this.createCanonicalRequest({ method, protocol: "http:", hostname: "", path, query, headers: {} }, headers, payloadHash);
  }
}
const canonicalizers = { escaped: new Canonicalizer(true), raw: new Canonicalizer(false) };

const SIGNING_KEY_CACHE_MAX = 256;
// Derived keys by secret, date, region and service: the key depends on nothing else, so a cached one is the one the
// chain of four HMACs would give (a rotated or re-issued credential has another secret, hence another entry).
const signingKeys = new Map<string, Buffer>();

/** kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"), cached. */
export function signingKey(secretAccessKey: string, shortDate: string, region: string, service: string): Buffer {
  const cacheKey = `${shortDate}\n${region}\n${service}\n${secretAccessKey}`;
  let key = signingKeys.get(cacheKey);
  if (key === undefined) {
    key = createHmac("sha256", `AWS4${secretAccessKey}`).update(shortDate).digest();
    for (const part of [region, service, "aws4_request"]) key = createHmac("sha256", key).update(part).digest();
    if (signingKeys.size >= SIGNING_KEY_CACHE_MAX) signingKeys.delete(signingKeys.keys().next().value!);
    signingKeys.set(cacheKey, key);
  }
  return key;
}

let lastLongDate: { time: number; text: string } | undefined;

/** yyyymmddThhmmssZ, as the SDK's signer formats its signing date (the last one kept: requests share seconds). */
function longDateOf(date: Date): string {
  const time = date.getTime();
  if (lastLongDate?.time !== time) lastLongDate = { time, text: date.toISOString().replace(/\.\d{3}Z$/, "Z").replace(/[-:]/g, "") };
  return lastLongDate.text;
}

/**
 * The signature the SDK's SignatureV4 would compute for `request` with the caller's secret (what the gateway used to
 * call per request), or undefined when its SignedHeaders could not come out as the client sent them (not sorted,
 * repeated, or naming a header the SDK's signer drops).
 */
function expectedSignature(
  request: SignedRequest,
  auth: ParsedAuthorization,
  credential: CredentialRecord,
  signedHeaderValues: Record<string, string>,
  payloadMode: string | undefined,
  signingDate: Date,
): string | undefined {
  const names = auth.signedHeaders;
  for (let i = 0; i < names.length; i++) {
    if (NEVER_CANONICAL.has(names[i]!) || (i > 0 && !(names[i - 1]! < names[i]!))) return undefined;
  }
  const longDate = longDateOf(signingDate);
  const shortDate = longDate.slice(0, 8);
  const canonicalHeaders: Record<string, string> = {};
  for (const name of names) {
    // The signer puts its own x-amz-date: the signing date, formatted (a signed token was checked equal to the session's).
    const value = name === "x-amz-date" ? longDate : signedHeaderValues[name]!;
    canonicalHeaders[name] = value.replace(/[\r\n]/g, " ").replace(/[ \t]+/g, " ").replace(/^ | $/g, "");
  }
  // With x-amz-content-sha256 signed, its value; otherwise the body's hash (none when the header came unsigned).
  const payloadHash =
    signedHeaderValues["x-amz-content-sha256"] ??
    (payloadMode === undefined ? createHash("sha256").update(request.body).digest("hex") : EMPTY_SHA256);
  const canonicalRequest = (auth.service === "s3" ? canonicalizers.raw : canonicalizers.escaped).canonicalRequest(
    request.method,
    request.rawPath,
    parseQuery(request.rawQuery),
    canonicalHeaders,
    payloadHash,
  );
  const scope = `${shortDate}/${auth.region}/${auth.service}/aws4_request`;
  const stringToSign = `AWS4-HMAC-SHA256\n${longDate}\n${scope}\n${createHash("sha256").update(canonicalRequest).digest("hex")}`;
  return createHmac("sha256", signingKey(credential.secretAccessKey, shortDate, auth.region, auth.service)).update(stringToSign).digest("hex");
}

/** Authenticates `request`; on success returns the principal's credential record and the decoded payload. */
export async function verifySigV4(request: SignedRequest, options: VerifyOptions): Promise<VerifyResult> {
  const headers = request.headers ?? headerMap(request.rawHeaders);
  const parsed = request.authorization ?? parseAuthorization(headers.get("authorization"));
  if (parsed === "missing") {
    const presigned = /(^|&)X-Amz-(Credential|Signature)=/i.test(request.rawQuery);
    return presigned
      ? { ok: false, failure: { kind: "unsupported", detail: "Presigned URLs are not supported by the local stand-in." } }
      : { ok: false, failure: { kind: "missing" } };
  }
  if (parsed === "malformed") return { ok: false, failure: { kind: "malformed" } };
  const auth = parsed;
  const fail = (failure: AuthFailure, credential?: CredentialRecord): VerifyResult => ({
    ok: false,
    failure,
    auth,
    ...(credential && { credential }),
  });

  const credential = options.lookup(auth.accessKeyId);
  if (!credential) return fail({ kind: "unknown-key" });

  const token = headers.get("x-amz-security-token");
  if (credential.sessionToken !== undefined ? token !== credential.sessionToken : token !== undefined) {
    return fail({ kind: "invalid-token" }, credential);
  }
  if (options.isExpired(credential)) return fail({ kind: "expired" }, credential);

  if (!auth.signedHeaders.includes("host") || !auth.signedHeaders.includes("x-amz-date")) {
    return fail({ kind: "malformed", detail: "SignedHeaders must include host and x-amz-date." }, credential);
  }
  const signingDate = parseAmzDate(headers.get("x-amz-date"));
  if (!signingDate) return fail({ kind: "malformed", detail: "x-amz-date is missing or invalid." }, credential);
  const skew = Math.abs(signingDate.getTime() - options.now.getTime());
  if (skew > (options.maxSkewMs ?? FIFTEEN_MINUTES)) {
    return fail(
      { kind: "skew", detail: `(request time ${signingDate.toISOString()}, server time ${options.now.toISOString()})` },
      credential,
    );
  }
  if (headers.get("x-amz-date")!.slice(0, 8) !== auth.date) {
    return fail({ kind: "signature", detail: "(credential scope date differs from x-amz-date)" }, credential);
  }
  const region = options.expectedRegion?.(auth.service);
  if (region !== undefined && region !== auth.region) {
    return fail({ kind: "wrong-region", detail: ` the region '${auth.region}' is wrong; expecting '${region}'` }, credential);
  }

  const payloadMode = headers.get("x-amz-content-sha256");
  const signedHeaderValues: Record<string, string> = {};
  for (const name of auth.signedHeaders) {
    const value = headers.get(name);
    if (value === undefined) return fail({ kind: "signature" }, credential);
    signedHeaderValues[name] = value;
  }
  const expected = expectedSignature(request, auth, credential, signedHeaderValues, payloadMode, signingDate);
  const same = expected !== undefined && timingSafeEqual(Buffer.from(expected, "hex"), Buffer.from(auth.signature, "hex"));
  if (!same) return fail({ kind: "signature" }, credential);

  const payload = checkPayload(auth.service, payloadMode, headers, request.body);
  if ("kind" in payload) return fail(payload, credential);
  return { ok: true, auth, credential, payload: payload.payload };
}

function checkPayload(
  service: string,
  mode: string | undefined,
  headers: Map<string, string>,
  body: Buffer,
): { payload: Buffer } | AuthFailure {
  let payload = body;
  let trailerName: string | undefined;
  let trailers: Record<string, string> = {};
  if (mode === undefined) {
    // S3 requires the header on every SigV4 request; other services sign the body hash directly.
    if (service === "s3") return { kind: "missing-content-sha256" };
  } else if (HEX_SHA256.test(mode)) {
    if (createHash("sha256").update(body).digest("hex") !== mode) return { kind: "payload-hash" };
  } else if (mode === "STREAMING-UNSIGNED-PAYLOAD-TRAILER") {
    const decoded = decodeAwsChunked(body);
    if (!decoded) return { kind: "incomplete-body", detail: "(aws-chunked framing is invalid)" };
    const declared = headers.get("x-amz-decoded-content-length");
    if (declared !== undefined && Number(declared) !== decoded.payload.length) {
      return { kind: "incomplete-body", detail: `(x-amz-decoded-content-length ${declared}, got ${decoded.payload.length})` };
    }
    payload = decoded.payload;
    trailers = decoded.trailers;
    trailerName = headers.get("x-amz-trailer")?.trim().toLowerCase();
  } else if (mode.startsWith("STREAMING-")) {
    return { kind: "unsupported", detail: `(${mode}: signed chunks are not supported by the local stand-in)` };
  } else if (mode !== "UNSIGNED-PAYLOAD") {
    return { kind: "invalid-payload-mode" };
  }

  if (trailerName !== undefined) {
    const value = trailers[trailerName];
    if (value === undefined) return { kind: "incomplete-body", detail: `(trailer ${trailerName} is missing)` };
    const failure = checksumFailure(trailerName, value, payload);
    if (failure) return failure;
  }
  for (const [name, value] of headers) {
    // Only algorithm headers: x-amz-checksum-mode (GetObject) and -type are not checksums.
    if (!CHECKSUM_HEADER.test(name)) continue;
    const failure = checksumFailure(name, value, payload);
    if (failure) return failure;
  }
  const md5 = headers.get("content-md5");
  if (md5 !== undefined) {
    const result = verifyContentMd5(md5, payload);
    if (result === "invalid") return { kind: "invalid-digest" };
    if (result === "mismatch") return { kind: "bad-digest" };
  }
  return { payload };
}

function checksumFailure(headerName: string, value: string, payload: Buffer): AuthFailure | undefined {
  const algorithm = headerName.slice("x-amz-checksum-".length);
  const result = verifyChecksum(algorithm, value, payload);
  if (result === "ok") return undefined;
  if (result === "unsupported") {
    return { kind: "unsupported", detail: `(checksum algorithm ${algorithm} is not verified by the local stand-in)` };
  }
  return { kind: "bad-digest", detail: `The ${algorithm.toUpperCase()} you specified did not match the calculated checksum.` };
}
