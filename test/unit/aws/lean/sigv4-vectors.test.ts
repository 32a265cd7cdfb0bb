// AWS's published SigV4 test suite (test/fixtures/sigv4/, see SOURCE.md there) replayed against the signer as the
// lean transport configures it (src/aws/lean/sigv4.ts): uriEscapePath true (SQS) and false (S3, on the cases whose
// path needs no escaping), service "service", region us-east-1, the suite's date and keys. The canonical request,
// the string to sign and the Authorization header must each match the suite's .creq, .sts and .authz files.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { HeaderBag, HttpRequest } from "@smithy/types";
import { describe, expect, it } from "vitest";
import { LeanClient } from "../../../../src/aws/lean/client.js";
import { SigV4Signer } from "../../../../src/aws/lean/sigv4.js";

const SUITE = join(import.meta.dirname, "../../../fixtures/sigv4/aws-sig-v4-test-suite");
const CREDENTIALS = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };
const STS_TOKEN =
  "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
const SIGNING_DATE = Date.parse("2015-08-30T12:36:00Z");

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

const ALL = loadVectors(SUITE);
// post-sts-header-after describes a signer that adds the token after signing; ours (the SDK's) signs it: the
// "before" variant is the one to match.
const VECTORS = ALL.filter((v) => v.name !== "post-sts-token/post-sts-header-after");

/** The lean transport's signer (as LeanClient.signer() builds it), with the suite's service, region and keys. */
function replay(vector: Vector, uriEscapePath: boolean): { canonicalRequest: string; stringToSign: string; authorization: string } {
  const token = vector.request.headers["x-amz-security-token"];
  const headers = { ...vector.request.headers };
  // The signer sets the token header itself from the credentials.
  delete headers["x-amz-security-token"];
  const credentials = { ...CREDENTIALS, ...(token !== undefined && { sessionToken: token }) };
  const signer = new SigV4Signer({ service: "service", region: "us-east-1", credentials: () => Promise.resolve(credentials), uriEscapePath });
  const { request } = vector;
  const body = request.body as string | undefined;
  const signature = signer.signWith(credentials, { method: request.method, path: request.path, query: request.query as Record<string, string | string[]>, headers, ...(body !== undefined && { body }) }, SIGNING_DATE);
  return { canonicalRequest: signature.canonicalRequest, stringToSign: signature.stringToSign, authorization: signature.headers["authorization"]! };
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
    const sqs = client.signer("sqs").options;
    const s3 = client.signer("s3").options;
    expect([sqs.uriEscapePath, sqs.service, sqs.region]).toEqual([true, "sqs", "us-east-1"]);
    expect([s3.uriEscapePath, s3.service, s3.region]).toEqual([false, "s3", "us-east-1"]);
    expect(client.signer("sqs")).toBe(client.signer("sqs"));
    client.destroy();
  });

  describe.each(VECTORS.map((v) => [v.name, v] as const))("%s", (_name, vector) => {
    it("uriEscapePath true (SQS): canonical request, string to sign and Authorization match", () => {
      const { canonicalRequest, stringToSign, authorization } = replay(vector, true);
      expect(canonicalRequest).toBe(vector.creq);
      expect(stringToSign).toBe(vector.sts);
      expect(authorization).toBe(vector.authz);
    });
  });

  // S3 signs its path as sent: on the cases whose path is already canonical the result is the same.
  const plainPath = VECTORS.filter((v) => /^\/[A-Za-z0-9_.~-]*$/.test(v.request.path) && !v.name.startsWith("normalize-path/"));
  it("uriEscapePath false (S3) matches on the cases with an already canonical path", () => {
    expect(plainPath.length).toBeGreaterThanOrEqual(15);
    for (const vector of plainPath) {
      const { canonicalRequest, authorization } = replay(vector, false);
      expect(canonicalRequest, vector.name).toBe(vector.creq);
      expect(authorization, vector.name).toBe(vector.authz);
    }
  });
});
