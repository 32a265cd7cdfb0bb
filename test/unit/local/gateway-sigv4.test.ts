// SigV4 verification against requests signed by the real SDK clients, captured as they arrive on the wire (a
// loopback server records method, raw URL, raw headers and body, then answers something harmless).
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CredentialRecord, Principal } from "../../local/gateway/identities.js";
import { crc32, crc32c, decodeAwsChunked, verifyChecksum } from "../../local/gateway/payload.js";
import { parseAuthorization, parseQuery, verifySigV4, type SignedRequest, type VerifyOptions } from "../../local/gateway/sigv4.js";

const principal: Principal = {
  kind: "assumed-role",
  arn: "arn:aws:sts::123456789012:assumed-role/R/i-0123456789abcdef0",
  userId: "AROAEXAMPLEEXAMPLEEXA:i-0123456789abcdef0",
  accountId: "123456789012",
  name: "R",
  sessionName: "i-0123456789abcdef0",
};
const session: CredentialRecord = {
  accessKeyId: "ASIAEXAMPLEEXAMPLE01",
  secretAccessKey: "secretsecretsecretsecretsecretsecret0001",
  sessionToken: "IQoJb3JpZ2luX2VjEexampletoken",
  expiration: new Date(Date.now() + 3600_000),
  principal,
};
const user: CredentialRecord = {
  accessKeyId: "AKIAEXAMPLEEXAMPLE02",
  secretAccessKey: "secretsecretsecretsecretsecretsecret0002",
  principal: { ...principal, kind: "user", arn: "arn:aws:iam::123456789012:user/u", name: "u" },
};
const records = new Map([session, user].map((r) => [r.accessKeyId, r]));

function options(overrides: Partial<VerifyOptions> = {}): VerifyOptions {
  return { lookup: (id) => records.get(id), isExpired: () => false, now: new Date(), ...overrides };
}

let server: http.Server;
let endpoint: string;
let last: SignedRequest | undefined;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = req.url ?? "/";
      const q = url.indexOf("?");
      last = {
        method: req.method ?? "GET",
        rawPath: q === -1 ? url : url.slice(0, q),
        rawQuery: q === -1 ? "" : url.slice(q + 1),
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks),
      };
      res.writeHead(200, { "content-type": "application/x-amz-json-1.0" });
      res.end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

type Creds = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
const asCreds = (r: CredentialRecord): Creds => ({
  accessKeyId: r.accessKeyId,
  secretAccessKey: r.secretAccessKey,
  ...(r.sessionToken !== undefined && { sessionToken: r.sessionToken }),
});

/** Sends with the real SDK and returns the request as the server received it (the SDK's answer is irrelevant). */
async function captured(send: () => Promise<unknown>): Promise<SignedRequest> {
  last = undefined;
  await send().catch(() => undefined);
  if (!last) throw new Error("no request captured");
  return last;
}

const s3 = (creds: Creds = asCreds(session), extra: Record<string, unknown> = {}) =>
  new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: creds, maxAttempts: 1, ...extra });

const TRICKY_KEY = "dir/with space+plus%pct ñandú/日本語 (1).txt";

describe("verifySigV4 accepts what the SDK signs", () => {
  it("S3 PutObject with a Buffer body (hex sha256 + x-amz-checksum-crc32) on a tricky key", async () => {
    const req = await captured(() => s3().send(new PutObjectCommand({ Bucket: "b", Key: TRICKY_KEY, Body: Buffer.from("hello") })));
    expect(req.rawHeaders.map((h) => h.toLowerCase())).toContain("x-amz-checksum-crc32");
    const result = await verifySigV4(req, options());
    expect(result).toMatchObject({ ok: true, auth: { service: "s3", accessKeyId: session.accessKeyId } });
    expect(result.ok && result.payload.toString()).toBe("hello");
  });

  it("S3 PutObject with a stream body (aws-chunked, CRC32 trailer) yields the decoded payload", async () => {
    const data = Buffer.alloc(200_000, "abc");
    const req = await captured(() =>
      s3().send(new PutObjectCommand({ Bucket: "b", Key: "k", Body: Readable.from([data]), ContentLength: data.length })),
    );
    expect(headerOf(req, "x-amz-content-sha256")).toBe("STREAMING-UNSIGNED-PAYLOAD-TRAILER");
    const result = await verifySigV4(req, options());
    expect(result.ok).toBe(true);
    expect(result.ok && result.payload.equals(data)).toBe(true);
  });

  it("S3 GetObject and ListObjectsV2 with '+', space and unicode in path and query", async () => {
    const get = await captured(() => s3().send(new GetObjectCommand({ Bucket: "b", Key: TRICKY_KEY })));
    expect((await verifySigV4(get, options())).ok).toBe(true);
    const list = await captured(() => s3().send(new ListObjectsV2Command({ Bucket: "b", Prefix: "a+b c/ñ", StartAfter: "x=y&z" })));
    expect(list.rawQuery).toContain("%2B");
    expect((await verifySigV4(list, options())).ok).toBe(true);
  });

  it("S3 PutObject with Content-MD5 (the AWS CLI's payload mode) and a user's long-term key", async () => {
    const body = Buffer.from("cli body");
    const md5 = createHash("md5").update(body).digest("base64");
    const req = await captured(() => s3(asCreds(user)).send(new PutObjectCommand({ Bucket: "b", Key: "k", Body: body, ContentMD5: md5 })));
    expect((await verifySigV4(req, options())).ok).toBe(true);
  });

  it("SQS JSON protocol", async () => {
    const sqs = new SQSClient({ endpoint, region: "us-east-1", credentials: asCreds(session), maxAttempts: 1 });
    const req = await captured(() => sqs.send(new SendMessageCommand({ QueueUrl: `${endpoint}/123456789012/q`, MessageBody: "hi + there" })));
    expect(await verifySigV4(req, options())).toMatchObject({ ok: true, auth: { service: "sqs" } });
  });

  it("STS query protocol", async () => {
    const sts = new STSClient({ endpoint, region: "us-east-1", credentials: asCreds(session), maxAttempts: 1 });
    const req = await captured(() => sts.send(new GetCallerIdentityCommand({})));
    expect(await verifySigV4(req, options())).toMatchObject({ ok: true, auth: { service: "sts" } });
  });

  it("no x-amz-content-sha256 outside S3: the signature covers the body itself", async () => {
    const body = "Action=GetCallerIdentity&Version=2011-06-15";
    const raw = await signManually("sts", "POST", "/", { "content-type": "application/x-www-form-urlencoded" }, body, false);
    const request = { method: "POST", rawPath: "/", rawQuery: "", rawHeaders: raw, body: Buffer.from(body) };
    expect(raw.map((h) => h.toLowerCase())).not.toContain("x-amz-content-sha256");
    expect((await verifySigV4(request, options())).ok).toBe(true);
    expect(await verifySigV4({ ...request, body: Buffer.from(`${body}&x=1`) }, options())).toMatchObject({
      ok: false,
      failure: { kind: "signature" },
    });
    const s3Raw = await signManually("s3", "GET", "/b/k", {}, "", false);
    expect(await verifySigV4({ ...request, method: "GET", rawPath: "/b/k", rawHeaders: s3Raw, body: Buffer.alloc(0) }, options())).toMatchObject({
      ok: false,
      failure: { kind: "missing-content-sha256" },
    });
  });

  it("UNSIGNED-PAYLOAD", async () => {
    const raw = await signManually("s3", "PUT", "/b/k", { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" }, "", false);
    const result = await verifySigV4({ method: "PUT", rawPath: "/b/k", rawQuery: "", rawHeaders: raw, body: Buffer.from("any") }, options());
    expect(result.ok).toBe(true);
  });
});

describe("verifySigV4 refuses", () => {
  it("a wrong secret", async () => {
    const req = await captured(() => s3({ ...asCreds(session), secretAccessKey: "wrong".repeat(8) }).send(new GetObjectCommand({ Bucket: "b", Key: "k" })));
    expect(await verifySigV4(req, options())).toMatchObject({ ok: false, failure: { kind: "signature" } });
  });

  it("an unknown access key", async () => {
    const req = await captured(() => s3({ ...asCreds(user), accessKeyId: "AKIAUNKNOWNUNKNOWN00" }).send(new GetObjectCommand({ Bucket: "b", Key: "k" })));
    expect(await verifySigV4(req, options())).toMatchObject({ ok: false, failure: { kind: "unknown-key" } });
  });

  it("a session key with another or no session token, and a user key with one", async () => {
    const other = await captured(() => s3({ ...asCreds(session), sessionToken: "other" }).send(new GetObjectCommand({ Bucket: "b", Key: "k" })));
    expect(await verifySigV4(other, options())).toMatchObject({ ok: false, failure: { kind: "invalid-token" } });
    const none = await captured(() =>
      s3({ accessKeyId: session.accessKeyId, secretAccessKey: session.secretAccessKey }).send(new GetObjectCommand({ Bucket: "b", Key: "k" })),
    );
    expect(await verifySigV4(none, options())).toMatchObject({ ok: false, failure: { kind: "invalid-token" } });
    const userWithToken = await captured(() => s3({ ...asCreds(user), sessionToken: "x" }).send(new GetObjectCommand({ Bucket: "b", Key: "k" })));
    expect(await verifySigV4(userWithToken, options())).toMatchObject({ ok: false, failure: { kind: "invalid-token" } });
  });

  it("expired session credentials", async () => {
    const req = await captured(() => s3().send(new GetObjectCommand({ Bucket: "b", Key: "k" })));
    expect(await verifySigV4(req, options({ isExpired: (r) => r === session }))).toMatchObject({
      ok: false,
      failure: { kind: "expired" },
    });
  });

  it("a clock more than 15 minutes off, but not 14", async () => {
    const slow = await captured(() => s3(asCreds(session), { systemClockOffset: -20 * 60_000 }).send(new GetObjectCommand({ Bucket: "b", Key: "k" })));
    expect(await verifySigV4(slow, options())).toMatchObject({ ok: false, failure: { kind: "skew" } });
    const near = await captured(() => s3(asCreds(session), { systemClockOffset: -14 * 60_000 }).send(new GetObjectCommand({ Bucket: "b", Key: "k" })));
    expect((await verifySigV4(near, options())).ok).toBe(true);
  });

  it("a path changed after signing", async () => {
    const req = await captured(() => s3().send(new GetObjectCommand({ Bucket: "b", Key: "k" })));
    expect(await verifySigV4({ ...req, rawPath: "/b/other" }, options())).toMatchObject({ ok: false, failure: { kind: "signature" } });
  });

  it("a signed header changed after signing", async () => {
    const req = await captured(() => s3().send(new GetObjectCommand({ Bucket: "b", Key: "k", Range: "bytes=0-1" })));
    const headers = [...req.rawHeaders];
    const i = headers.findIndex((h) => h.toLowerCase() === "range");
    headers[i + 1] = "bytes=0-100";
    expect(await verifySigV4({ ...req, rawHeaders: headers }, options())).toMatchObject({ ok: false, failure: { kind: "signature" } });
  });

  it("a body changed after signing (hex payload hash)", async () => {
    const req = await captured(() => s3().send(new PutObjectCommand({ Bucket: "b", Key: "k", Body: Buffer.from("hello") })));
    expect(await verifySigV4({ ...req, body: Buffer.from("jello") }, options())).toMatchObject({
      ok: false,
      failure: { kind: "payload-hash" },
    });
  });

  it("an aws-chunked body whose data no longer matches its CRC32 trailer", async () => {
    const data = Buffer.alloc(1000, "x");
    const req = await captured(() =>
      s3().send(new PutObjectCommand({ Bucket: "b", Key: "k", Body: Readable.from([data]), ContentLength: data.length })),
    );
    const body = Buffer.from(req.body);
    const at = body.indexOf("xxxx");
    body[at] = "y".charCodeAt(0);
    expect(await verifySigV4({ ...req, body }, options())).toMatchObject({ ok: false, failure: { kind: "bad-digest" } });
  });

  it("a Content-MD5 that does not match the body", async () => {
    const wrong = createHash("md5").update("other").digest("base64");
    const req = await captured(() => s3(asCreds(user)).send(new PutObjectCommand({ Bucket: "b", Key: "k", Body: Buffer.from("x"), ContentMD5: wrong })));
    expect(await verifySigV4(req, options())).toMatchObject({ ok: false, failure: { kind: "bad-digest" } });
  });

  it("a request signed for another region when one is expected", async () => {
    const req = await captured(() => s3().send(new GetObjectCommand({ Bucket: "b", Key: "k" })));
    expect(await verifySigV4(req, options({ expectedRegion: () => "eu-west-1" }))).toMatchObject({
      ok: false,
      failure: { kind: "wrong-region" },
    });
  });

  it("no Authorization header, and a malformed one", async () => {
    const base = { method: "GET", rawPath: "/b/k", rawQuery: "", body: Buffer.alloc(0) };
    expect(await verifySigV4({ ...base, rawHeaders: ["host", "x"] }, options())).toMatchObject({ ok: false, failure: { kind: "missing" } });
    expect(await verifySigV4({ ...base, rawHeaders: ["Authorization", "AWS AKIA:sig"] }, options())).toMatchObject({
      ok: false,
      failure: { kind: "malformed" },
    });
  });
});

describe("parsing helpers", () => {
  it("parseQuery decodes %XX but keeps '+', and turns valueless keys into ''", () => {
    expect(parseQuery("prefix=a+b%20c&uploads&x=%2B&x=2")).toEqual({ prefix: "a+b c", uploads: "", x: ["+", "2"] });
  });

  it("parseAuthorization reads the credential scope and signed headers", () => {
    const parsed = parseAuthorization(
      `AWS4-HMAC-SHA256 Credential=AKIAX/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host;x-amz-date, Signature=${"a".repeat(64)}`,
    );
    expect(parsed).toMatchObject({ accessKeyId: "AKIAX", date: "20260101", region: "us-east-1", service: "sqs", signedHeaders: ["host", "x-amz-date"] });
  });

  it("CRC32 and CRC32C match their check values", () => {
    expect(crc32(Buffer.from("123456789"))).toBe(0xcbf43926);
    expect(crc32c(Buffer.from("123456789"))).toBe(0xe3069283);
    expect(verifyChecksum("crc32", "y/Q5Jg==", Buffer.from("123456789"))).toBe("ok");
    expect(verifyChecksum("crc64nvme", "AAAAAAAAAAA=", Buffer.from("1"))).toBe("unsupported");
  });

  it("decodeAwsChunked decodes data and trailers and refuses broken framing", () => {
    const good = Buffer.from("3\r\nabc\r\n2\r\nde\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n");
    expect(decodeAwsChunked(good)).toEqual({ payload: Buffer.from("abcde"), trailers: { "x-amz-checksum-crc32": "AAAAAA==" } });
    expect(decodeAwsChunked(Buffer.from("5\r\nabc\r\n0\r\n\r\n"))).toBeUndefined();
    expect(decodeAwsChunked(Buffer.from("zz\r\nabc\r\n"))).toBeUndefined();
    expect(decodeAwsChunked(Buffer.from("3\r\nabc\r\n"))).toBeUndefined();
  });
});

function headerOf(req: SignedRequest, name: string): string | undefined {
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.toLowerCase() === name) return req.rawHeaders[i + 1];
  }
  return undefined;
}

/** Signs a request with the smithy signer directly, for payload modes the SDK does not send over http. */
async function signManually(
  service: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: string,
  applyChecksum: boolean,
): Promise<string[]> {
  const signer = new SignatureV4({
    service,
    region: "us-east-1",
    credentials: asCreds(user),
    sha256: Hash.bind(null, "sha256"),
    uriEscapePath: service !== "s3",
    applyChecksum,
  });
  const signed = await signer.sign({ method, protocol: "http:", hostname: "127.0.0.1", path, query: {}, headers: { host: "127.0.0.1:1", ...headers }, body });
  return Object.entries(signed.headers).flat();
}
