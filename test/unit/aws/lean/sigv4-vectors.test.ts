// AWS's published SigV4 test suite (test/fixtures/sigv4/, see SOURCE.md there) replayed against the signer as the
// lean transport configures it: @smithy/signature-v4 with uriEscapePath true (SQS) and false (S3, on the cases whose
// path needs no escaping), service "service", region us-east-1, the suite's date and keys. The canonical request,
// the string to sign and the Authorization header must each match the suite's .creq, .sts and .authz files.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import type { HeaderBag, HttpRequest } from "@smithy/types";
import { describe, expect, it } from "vitest";
import { LeanClient } from "../../../../src/aws/lean/client.js";
import { cacheSigningKeys } from "../../../../src/aws/lean/signing-key.js";

const SUITE = join(import.meta.dirname, "../../../fixtures/sigv4/aws-sig-v4-test-suite");
const CREDENTIALS = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };
const STS_TOKEN =
  "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
const SIGNING_DATE = new Date("2015-08-30T12:36:00Z");

interface Vector {
  name: string;
  request: HttpRequest;
  creq: string;
  sts: string;
  authz: string;
}

/** Parses a suite .req file: request line, headers (continuation lines joined with ','; repeats joined), body. */
function parseRequest(text: string): HttpRequest {
  const lines = text.split("\n");
  const requestLine = lines[0]!;
  const method = requestLine.slice(0, requestLine.indexOf(" "));
  const target = requestLine.slice(method.length + 1, requestLine.lastIndexOf(" HTTP/"));
  const headers: HeaderBag = {};
  let last: string | undefined;
  let i = 1;
  for (; i < lines.length && lines[i] !== ""; i++) {
    const line = lines[i]!;
    if (/^\s/.test(line) && last !== undefined) {
      headers[last] = `${headers[last]},${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1);
    headers[name] = headers[name] === undefined ? value : `${headers[name]},${value}`;
    last = name;
  }
  const body = i < lines.length ? lines.slice(i + 1).join("\n") : undefined;
  const q = target.indexOf("?");
  const path = q === -1 ? target : target.slice(0, q);
  const query: Record<string, string | string[]> = {};
  if (q !== -1) {
    for (const part of target.slice(q + 1).split("&")) {
      if (part === "") continue;
      const eq = part.indexOf("=");
      const key = decodeURIComponent(eq === -1 ? part : part.slice(0, eq));
      const value = eq === -1 ? "" : decodeURIComponent(part.slice(eq + 1));
      const existing = query[key];
      query[key] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
    }
  }
  return { method, protocol: "https:", hostname: headers["host"]!, path, query, headers, ...(body !== undefined && { body }) };
}

function loadVectors(dir: string, prefix = ""): Vector[] {
  const vectors: Vector[] = [];
  for (const entry of readdirSync(dir).sort()) {
    const full = join(dir, entry);
    if (!statSync(full).isDirectory()) continue;
    const file = (ext: string) => join(full, `${entry}.${ext}`);
    let hasReq = true;
    try {
      statSync(file("req"));
    } catch {
      hasReq = false;
    }
    if (!hasReq) {
      vectors.push(...loadVectors(full, `${prefix}${entry}/`));
      continue;
    }
    vectors.push({
      name: `${prefix}${entry}`,
      request: parseRequest(readFileSync(file("req"), "utf8")),
      creq: readFileSync(file("creq"), "utf8"),
      sts: readFileSync(file("sts"), "utf8"),
      authz: readFileSync(file("authz"), "utf8"),
    });
  }
  return vectors;
}

/** The signer with its canonical request and string to sign recorded as it computes them. */
class RecordingSigner extends SignatureV4 {
  canonicalRequest: string | undefined;
  stringToSign: string | undefined;
  protected override createCanonicalRequest(request: HttpRequest, canonicalHeaders: HeaderBag, payloadHash: string): string {
    this.canonicalRequest = super.createCanonicalRequest(request, canonicalHeaders, payloadHash);
    return this.canonicalRequest;
  }
  protected override async createStringToSign(longDate: string, scope: string, canonicalRequest: string, algorithm: string): Promise<string> {
    this.stringToSign = await super.createStringToSign(longDate, scope, canonicalRequest, algorithm);
    return this.stringToSign;
  }
}

const ALL = loadVectors(SUITE);
// post-sts-header-after describes a signer that adds the token after signing; ours (the SDK's) signs it: the
// "before" variant is the one to match.
const VECTORS = ALL.filter((v) => v.name !== "post-sts-token/post-sts-header-after");

/** The lean transport's signer options (LeanClient.signer), with the suite's service, region and keys. */
function suiteSigner(uriEscapePath: boolean, sessionToken?: string): RecordingSigner {
  const signer = new RecordingSigner({
    service: "service",
    region: "us-east-1",
    credentials: { ...CREDENTIALS, ...(sessionToken !== undefined && { sessionToken }) },
    sha256: Hash.bind(null, "sha256"),
    uriEscapePath,
    applyChecksum: false,
  });
  // With the transport's signing-key cache, as LeanClient.signer() installs it.
  cacheSigningKeys(signer);
  return signer;
}

async function replay(vector: Vector, uriEscapePath: boolean): Promise<{ signer: RecordingSigner; authorization: string }> {
  const token = vector.request.headers["x-amz-security-token"];
  const request = { ...vector.request, headers: { ...vector.request.headers } };
  // The signer sets the token header itself from the credentials.
  delete request.headers["x-amz-security-token"];
  const signer = suiteSigner(uriEscapePath, token);
  const signed = await signer.sign(request, { signingDate: SIGNING_DATE });
  return { signer, authorization: String(signed.headers["authorization"]) };
}

describe("AWS SigV4 test suite", () => {
  it("has the suite's cases (a missing fixture fails here, not by running nothing)", () => {
    expect(ALL.length).toBeGreaterThanOrEqual(30);
    expect(VECTORS.map((v) => v.name)).toContain("get-vanilla");
    expect(VECTORS.some((v) => v.name.startsWith("normalize-path/"))).toBe(true);
    expect(ALL.find((v) => v.name === "post-sts-token/post-sts-header-before")?.request.headers["x-amz-security-token"]).toBe(STS_TOKEN);
  });

  it("matches LeanClient's signer options", () => {
    const client = new LeanClient({
      credentials: async () => CREDENTIALS,
      region: "us-east-1",
      maxSockets: 1,
      connectionTimeoutMs: 1000,
      requestTimeoutMs: 1000,
      maxAttempts: 1,
      clock: Date.now,
      random: Math.random,
    });
    const sqs = client.signer("sqs") as unknown as Record<string, unknown>;
    const s3 = client.signer("s3") as unknown as Record<string, unknown>;
    expect([sqs["uriEscapePath"], sqs["applyChecksum"], sqs["service"]]).toEqual([true, false, "sqs"]);
    expect([s3["uriEscapePath"], s3["applyChecksum"], s3["service"]]).toEqual([false, false, "s3"]);
    expect(client.signer("sqs")).toBe(client.signer("sqs"));
    client.destroy();
  });

  describe.each(VECTORS.map((v) => [v.name, v] as const))("%s", (_name, vector) => {
    it("uriEscapePath true (SQS): canonical request, string to sign and Authorization match", async () => {
      const { signer, authorization } = await replay(vector, true);
      expect(signer.canonicalRequest).toBe(vector.creq);
      expect(signer.stringToSign).toBe(vector.sts);
      expect(authorization).toBe(vector.authz);
    });
  });

  // S3 signs its path as sent: on the cases whose path is already canonical the result is the same.
  const plainPath = VECTORS.filter((v) => /^\/[A-Za-z0-9_.~-]*$/.test(v.request.path) && !v.name.startsWith("normalize-path/"));
  it("uriEscapePath false (S3) matches on the cases with an already canonical path", async () => {
    expect(plainPath.length).toBeGreaterThanOrEqual(15);
    for (const vector of plainPath) {
      const { signer, authorization } = await replay(vector, false);
      expect(signer.canonicalRequest, vector.name).toBe(vector.creq);
      expect(authorization, vector.name).toBe(vector.authz);
    }
  });
});
