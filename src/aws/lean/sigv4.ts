/**
 * AWS Signature Version 4 for the lean transport's requests, written out instead of @smithy/signature-v4: the same
 * canonical request, string to sign and Authorization header, without smithy's per-request copies of the request,
 * its Hash wrapper (which builds a second hash object after each digest) and its Uint8Array/hex conversions. Signing
 * was about a tenth of the daemon's CPU per small document through smithy (#15).
 *
 * Spec: https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html. Checked by AWS's published test
 * suite (test/fixtures/sigv4, test/unit/aws/lean/sigv4-vectors.test.ts), by a differential test against
 * @smithy/signature-v4 on generated requests (sigv4.test.ts), and independently by the stand-in's verifier and the
 * AWS CLI end to end. Header handling follows smithy's (which the SDK clients use) where the spec leaves a choice:
 * the same unsignable headers, the same whitespace folding of values.
 */
import { createHmac, hash } from "node:crypto";
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from "@smithy/types";

export const ALGORITHM = "AWS4-HMAC-SHA256";
/** SHA-256 of the empty payload. */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";

/** Headers never signed (smithy's ALWAYS_UNSIGNABLE_HEADERS): hop-by-hop or changed by proxies on the way. */
const UNSIGNABLE: ReadonlySet<string> = new Set([
  "authorization",
  "cache-control",
  "connection",
  "expect",
  "from",
  "keep-alive",
  "max-forwards",
  "pragma",
  "referer",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "user-agent",
  "x-amzn-trace-id",
]);
/** Headers the signer sets itself; a caller's copy is dropped (smithy's GENERATED_HEADERS). */
const GENERATED: ReadonlySet<string> = new Set(["authorization", "x-amz-date", "date"]);

export interface SignInput {
  method: string;
  /** The path as sent: already URI-encoded (S3 signs it as is; other services encode it once more). */
  path: string;
  /** Decoded query parameters (none on the lean transport's own requests; the test suite has them). */
  query?: Readonly<Record<string, string | readonly string[]>>;
  /** The headers to send, host included. */
  headers: Readonly<Record<string, string | undefined>>;
  /** Hashed into the signature unless an x-amz-content-sha256 header names the payload's hash. */
  body?: string | Uint8Array;
}

/** The extended URI encoding SigV4 asks for: encodeURIComponent plus !'()*. */
export function escapeUri(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * The canonical URI. S3 (`uriEscapePath` false) signs the path as sent; the others normalise it (empty, "." and ".."
 * segments) and encode it once more, '/' kept.
 */
export function canonicalPath(path: string, uriEscapePath: boolean): string {
  if (!uriEscapePath) return path;
  if (path === "/") return path;
  const segments: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") segments.pop();
    else segments.push(segment);
  }
  const normalized = `${path.startsWith("/") ? "/" : ""}${segments.join("/")}${segments.length > 0 && path.endsWith("/") ? "/" : ""}`;
  return escapeUri(normalized).replace(/%2F/g, "/");
}

/** The canonical query string: names and values encoded, sorted by name, repeated names sorted by value. */
export function canonicalQuery(query: SignInput["query"]): string {
  if (query === undefined) return "";
  const entries: [string, string][] = [];
  for (const name of Object.keys(query)) {
    if (name.toLowerCase() === "x-amz-signature") continue;
    const key = escapeUri(name);
    const value = query[name]!;
    if (typeof value === "string") entries.push([key, `${key}=${escapeUri(value)}`]);
    else if (value.length > 0) entries.push([key, value.map((v) => `${key}=${escapeUri(v)}`).sort().join("&")]);
  }
  return entries
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map((e) => e[1])
    .join("&");
}

/** Values that need folding: CR/LF or tabs, runs of spaces, a space at either end. */
const NEEDS_FOLDING = /[\r\n\t]| {2}|^ | $/;

/** A header value as signed: CR/LF to spaces, runs of spaces and tabs to one space, one space trimmed at each end. */
export function canonicalValue(value: string): string {
  if (!NEEDS_FOLDING.test(value)) return value;
  return value.replace(/[\r\n]/g, " ").replace(/[ \t]+/g, " ").replace(/^ | $/g, "");
}

export interface CanonicalHeaders {
  /** "name:value\n" per signed header, sorted by name. */
  lines: string;
  /** The SignedHeaders list: names joined with ';'. */
  signed: string;
}

function signable(lowerName: string): boolean {
  return !UNSIGNABLE.has(lowerName) && !lowerName.startsWith("proxy-") && !lowerName.startsWith("sec-");
}

/** The signed headers, by lowercase name, sorted; unsignable ones and those without a value left out. */
export function canonicalHeaders(headers: SignInput["headers"]): CanonicalHeaders {
  // The transport's names are all lowercase already: one sort, no map. Any other spelling takes the general path.
  const names: string[] = [];
  for (const name of Object.keys(headers)) {
    if (headers[name] === undefined) continue;
    if (name.toLowerCase() !== name) return canonicalHeadersOfAnyCase(headers);
    if (signable(name)) names.push(name);
  }
  names.sort();
  let lines = "";
  for (const name of names) lines += `${name}:${canonicalValue(headers[name]!)}\n`;
  return { lines, signed: names.join(";") };
}

function canonicalHeadersOfAnyCase(headers: SignInput["headers"]): CanonicalHeaders {
  const byName = new Map<string, string>();
  // Sorted by the names as given, so that of two spellings of one name the later one wins, as in smithy.
  for (const name of Object.keys(headers).sort()) {
    const value = headers[name];
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (signable(lower)) byName.set(lower, canonicalValue(value));
  }
  const names = [...byName.keys()].sort();
  let lines = "";
  for (const name of names) lines += `${name}:${byName.get(name)!}\n`;
  return { lines, signed: names.join(";") };
}

/** The payload hash: the x-amz-content-sha256 header when given, else the body's SHA-256 (hex). */
export function payloadHash(headers: SignInput["headers"], body: SignInput["body"]): string {
  const declared = headers["x-amz-content-sha256"];
  if (declared !== undefined) return declared;
  for (const name of Object.keys(headers)) {
    if (name.toLowerCase() === "x-amz-content-sha256" && headers[name] !== undefined) return headers[name];
  }
  if (body === undefined) return EMPTY_SHA256;
  return hash("sha256", body, "hex");
}

export function canonicalRequest(method: string, path: string, query: string, headers: CanonicalHeaders, payload: string): string {
  return `${method}\n${path}\n${query}\n${headers.lines}\n${headers.signed}\n${payload}`;
}

export function stringToSign(longDate: string, scope: string, canonical: string): string {
  return `${ALGORITHM}\n${longDate}\n${scope}\n${hash("sha256", canonical, "hex")}`;
}

/** "20150830T123600Z" from a time in ms (whole seconds; the format has no fraction). */
export function amzDate(ms: number): string {
  const iso = new Date(ms).toISOString();
  if (iso.length !== 24) throw new RangeError(`Cannot sign at ${iso}: SigV4 dates have four-digit years`);
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}

/** The signing key of a secret, day, region and service: HMAC chain from "AWS4" + secret. */
export function deriveSigningKey(secretAccessKey: string, shortDate: string, region: string, service: string): Buffer {
  let key: Buffer = createHmac("sha256", `AWS4${secretAccessKey}`).update(shortDate).digest();
  for (const part of [region, service, "aws4_request"]) key = createHmac("sha256", key).update(part).digest();
  return key;
}

export interface SignerOptions {
  /** Signing name, e.g. "s3", "sqs". */
  service: string;
  region: string;
  credentials: AwsCredentialIdentityProvider;
  /** False for S3 only: its paths are signed as sent. */
  uriEscapePath: boolean;
}

/** The headers a signature adds: x-amz-date, x-amz-security-token (temporary credentials), authorization. */
export interface SignedHeaders {
  "x-amz-date": string;
  "x-amz-security-token"?: string;
  authorization: string;
}

export interface Signature {
  /** The headers to send. */
  headers: Record<string, string>;
  canonicalRequest: string;
  stringToSign: string;
}

function validCredentials(credentials: unknown): asserts credentials is AwsCredentialIdentity {
  const c = credentials as Partial<AwsCredentialIdentity> | null;
  if (typeof c !== "object" || c === null || typeof c.accessKeyId !== "string" || typeof c.secretAccessKey !== "string") {
    throw new Error("Resolved credential object is not valid");
  }
}

/**
 * One service's signer. The signing key is derived once per secret and day (smithy's own cache HMACs the credentials
 * and the whole session token, about 1 KB, on every request to find it).
 */
export class SigV4Signer {
  /** Signing keys derived so far (one per secret and day). */
  derived = 0;
  private key: { secret: string; shortDate: string; key: Buffer } | undefined;
  private date: { second: number; longDate: string } | undefined;

  constructor(readonly options: SignerOptions) {}

  /** The headers to send: `input.headers` (minus any the signer generates) plus the signature's own. */
  async sign(input: SignInput, now: number): Promise<Record<string, string>> {
    const credentials = await this.options.credentials();
    return this.signWith(credentials, input, now).headers;
  }

  /** Signs with these credentials; also returns the canonical request and string to sign (the test suite checks them). */
  signWith(credentials: unknown, input: SignInput, now: number): Signature {
    validCredentials(credentials);
    // A query goes in `query`: in the path it would be signed as part of the URI, and AWS would refuse the signature.
    if (input.path.includes("?")) throw new RangeError(`SigV4: the path ${JSON.stringify(input.path)} holds a query; pass it as query`);
    const longDate = this.longDate(now);
    const shortDate = longDate.slice(0, 8);
    const headers: Record<string, string> = {};
    for (const name of Object.keys(input.headers)) {
      const value = input.headers[name];
      if (value !== undefined && !GENERATED.has(name.toLowerCase())) headers[name] = value;
    }
    headers["x-amz-date"] = longDate;
    if (credentials.sessionToken) headers["x-amz-security-token"] = credentials.sessionToken;
    const canonical = canonicalHeaders(headers);
    const request = canonicalRequest(
      input.method,
      canonicalPath(input.path, this.options.uriEscapePath),
      canonicalQuery(input.query),
      canonical,
      payloadHash(headers, input.body),
    );
    const scope = `${shortDate}/${this.options.region}/${this.options.service}/aws4_request`;
    const toSign = stringToSign(longDate, scope, request);
    const signature = createHmac("sha256", this.signingKey(credentials, shortDate)).update(toSign).digest("hex");
    headers["authorization"] = `${ALGORITHM} Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${canonical.signed}, Signature=${signature}`;
    return { headers, canonicalRequest: request, stringToSign: toSign };
  }

  private longDate(now: number): string {
    const second = Math.floor(now / 1000);
    if (this.date?.second !== second) this.date = { second, longDate: amzDate(second * 1000) };
    return this.date.longDate;
  }

  private signingKey(credentials: AwsCredentialIdentity, shortDate: string): Buffer {
    // Keyed by the secret's value, not the object: a provider may hand out new objects, or change one in place.
    const secret = credentials.secretAccessKey;
    const cached = this.key;
    if (cached !== undefined && cached.secret === secret && cached.shortDate === shortDate) return cached.key;
    const key = deriveSigningKey(secret, shortDate, this.options.region, this.options.service);
    this.derived++;
    this.key = { secret, shortDate, key };
    return key;
  }
}
