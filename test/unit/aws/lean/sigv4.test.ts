// The lean transport's SigV4 signer (src/aws/lean/sigv4.ts): the same Authorization as @smithy/signature-v4 (what the
// SDK clients send) on generated requests of the shapes the transport sends and harder ones, its signing-key cache,
// and its refusals. AWS's own test suite is replayed in sigv4-vectors.test.ts.
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import type { AwsCredentialIdentity } from "@smithy/types";
import { describe, expect, it } from "vitest";
import { amzDate, canonicalValue, SigV4Signer, type SignInput } from "../../../../src/aws/lean/sigv4.js";
import { createRng } from "../../../reliability/lib/random.js";

const TOKEN = "IQoJb3JpZ2luX2VjE".padEnd(1024, "x");
const CREDS: AwsCredentialIdentity = { accessKeyId: "ASIAEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", sessionToken: TOKEN };
const DAY1 = Date.parse("2026-12-07T10:00:00.250Z");
const DAY2 = Date.parse("2026-12-08T00:00:01Z");

/** The repository's seeded generator (mulberry32), so a failing case is reproducible from its seed. */
const prng = (seed: number): (() => number) => createRng(seed).next;

async function smithyHeaders(service: string, uriEscapePath: boolean, credentials: AwsCredentialIdentity, input: SignInput, at: number): Promise<Record<string, unknown>> {
  const signer = new SignatureV4({ service, region: "eu-west-3", credentials, sha256: Hash.bind(null, "sha256"), uriEscapePath, applyChecksum: false });
  const signed = await signer.sign(
    { method: input.method, protocol: "https:", hostname: input.headers["host"]!, path: input.path, query: (input.query ?? {}) as Record<string, string | string[]>, headers: { ...input.headers } as Record<string, string>, ...(input.body !== undefined && { body: input.body }) },
    { signingDate: new Date(at) },
  );
  return signed.headers;
}

function mine(service: string, uriEscapePath: boolean, credentials: AwsCredentialIdentity = CREDS): SigV4Signer {
  return new SigV4Signer({ service, region: "eu-west-3", credentials: () => Promise.resolve(credentials), uriEscapePath });
}

const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const VALUE_PARTS = ["a", "Z", "0", " ", "  ", "\t", "é", "💥", "/", "=", ",", ";", "\"", "%20", "-", "\n"];
const NAME_PARTS = ["x-amz-meta-", "content-", "x-", "a", "b", "type", "Z", "_", "1"];
const PATH_PARTS = ["a", "b", "%20", "%2F", "~", ".", "..", "", "é", "!", "(", "*", "%E2%82%AC", "key.txt"];

function randomString(random: () => number, parts: readonly string[], max: number): string {
  let s = "";
  const n = 1 + Math.floor(random() * max);
  for (let i = 0; i < n; i++) s += pick(random, parts);
  return s;
}

function randomInput(random: () => number): SignInput {
  const headers: Record<string, string> = { host: pick(random, ["sqs.eu-west-3.amazonaws.com", "127.0.0.1:4566", "my-bucket.s3.eu-west-3.amazonaws.com"]) };
  const count = Math.floor(random() * 6);
  for (let i = 0; i < count; i++) {
    let name = randomString(random, NAME_PARTS, 4);
    if (random() < 0.2) name = name.toUpperCase();
    headers[name] = randomString(random, VALUE_PARTS, 8);
  }
  if (random() < 0.3) headers["user-agent"] = "aws-cli/2";
  if (random() < 0.2) headers["X-Amz-Date"] = "19990101T000000Z";
  if (random() < 0.5) headers["x-amz-content-sha256"] = pick(random, ["UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]);
  const path = `/${Array.from({ length: Math.floor(random() * 4) }, () => randomString(random, PATH_PARTS, 3)).join("/")}${random() < 0.2 ? "/" : ""}`;
  const input: SignInput = { method: pick(random, ["GET", "PUT", "POST", "DELETE"]), path, headers };
  if (random() < 0.3) input.query = { [randomString(random, ["a", "B", " ", "é", "*"], 3)]: randomString(random, ["1", " ", "~", "é"], 3), z: ["2", "1", "b"] };
  const body = random();
  if (body < 0.3) input.body = randomString(random, VALUE_PARTS, 40);
  else if (body < 0.5) input.body = Buffer.from(randomString(random, VALUE_PARTS, 40));
  return input;
}

describe("SigV4Signer against @smithy/signature-v4", () => {
  it("signs the transport's four request shapes exactly as smithy does", async () => {
    const shapes: [string, boolean, SignInput][] = [
      ["sqs", true, { method: "POST", path: "/", headers: { host: "sqs.eu-west-3.amazonaws.com", "content-type": "application/x-amz-json-1.0", "x-amz-target": "AmazonSQS.ReceiveMessage", "x-amzn-query-mode": "true", "content-length": "140" }, body: '{"QueueUrl":"https://sqs.eu-west-3.amazonaws.com/1/q","MaxNumberOfMessages":10}' }],
      ["s3", false, { method: "GET", path: "/incoming/a%20b/%E2%82%AC.pdf", headers: { host: "src.s3.eu-west-3.amazonaws.com", "x-amz-checksum-mode": "ENABLED", "x-amz-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "if-match": '"9b2cf535f27731c974343645a3985328"' } }],
      ["s3", false, { method: "PUT", path: "/out/a.json", headers: { host: "127.0.0.1:4566", "content-type": "application/json", "x-amz-meta-source-key": "incoming%2Fa.pdf", "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-checksum-crc32": "AAAAAA==", "content-length": "3" }, body: Buffer.from("{}\n") }],
      ["s3", false, { method: "PUT", path: "/out/big.txt", headers: { host: "out.s3.eu-west-3.amazonaws.com", "content-type": "text/plain", "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "content-encoding": "aws-chunked", "x-amz-decoded-content-length": "99", "x-amz-trailer": "x-amz-checksum-crc32", "x-amz-sdk-checksum-algorithm": "CRC32" } }],
    ];
    for (const [service, escape, input] of shapes) {
      const expected = await smithyHeaders(service, escape, CREDS, input, DAY1);
      const actual = await mine(service, escape).sign(input, DAY1);
      expect(actual, `${input.method} ${input.path}`).toEqual(expected);
      expect(actual["authorization"]).toMatch(/^AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE\/20261207\/eu-west-3\/(s3|sqs)\/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$/);
    }
  });

  it("matches smithy on 1,000 generated requests (odd headers, paths, queries, bodies; both path modes)", async () => {
    const random = prng(20261207);
    for (let i = 0; i < 1000; i++) {
      const input = randomInput(random);
      const escape = random() < 0.5;
      const credentials = random() < 0.8 ? CREDS : { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "s" };
      const at = DAY1 + Math.floor(random() * 86_400_000 * 3);
      const expected = await smithyHeaders("svc", escape, credentials, input, at);
      const actual = await mine("svc", escape, credentials).sign(input, at);
      expect(actual, `case ${i}: ${JSON.stringify(input)}`).toEqual(expected);
    }
  });
  it("matches smithy through one reused signer while credentials rotate, change in place and days pass (its caches)", async () => {
    const random = prng(7);
    let current: AwsCredentialIdentity = { ...CREDS };
    const signer = new SigV4Signer({ service: "svc", region: "eu-west-3", credentials: () => Promise.resolve(current), uriEscapePath: false });
    let at = DAY1;
    for (let i = 0; i < 500; i++) {
      const step = random();
      if (step < 0.05) current = { accessKeyId: `ASIA${i}`, secretAccessKey: `secret-${i}`, sessionToken: `token-${i}` };
      else if (step < 0.1) (current as { secretAccessKey: string }).secretAccessKey = `mutated-${i}`; // the same object, changed in place
      at += Math.floor(random() * (random() < 0.05 ? 86_400_000 : 2_000));
      const input = randomInput(random);
      const expected = await smithyHeaders("svc", false, { ...current }, input, at);
      expect(await signer.sign(input, at), `request ${i}`).toEqual(expected);
    }
    expect(signer.derived).toBeGreaterThan(10);
  });
});

describe("SigV4Signer", () => {
  it("derives the signing key once per secret and day, whatever object carries it", async () => {
    let current: AwsCredentialIdentity = CREDS;
    const signer = new SigV4Signer({ service: "sqs", region: "us-east-1", credentials: () => Promise.resolve(current), uriEscapePath: true });
    const input: SignInput = { method: "POST", path: "/", headers: { host: "h" }, body: "{}" };
    await signer.sign(input, DAY1);
    await signer.sign(input, DAY1 + 60_000);
    current = { ...CREDS };
    await signer.sign(input, DAY1 + 120_000);
    expect(signer.derived).toBe(1);
    await signer.sign(input, DAY2);
    expect(signer.derived).toBe(2);
    // A rotation: a new secret is a new key, and the new key signs (not the cached one).
    current = { accessKeyId: "ASIAROTATED", secretAccessKey: "rotated-secret", sessionToken: "t2" };
    const rotated = await signer.sign(input, DAY2);
    expect(signer.derived).toBe(3);
    const s = new SignatureV4({ service: "sqs", region: "us-east-1", credentials: current, sha256: Hash.bind(null, "sha256"), uriEscapePath: true, applyChecksum: false });
    const expected = await s.sign({ method: "POST", protocol: "https:", hostname: "h", path: "/", query: {}, headers: { host: "h" }, body: "{}" }, { signingDate: new Date(DAY2) });
    expect(rotated).toEqual(expected.headers);
  });

  it("does not share a cached date across seconds, and leaves the caller's headers untouched", async () => {
    const signer = mine("sqs", true);
    const headers = { host: "h", authorization: "stale", date: "yesterday" };
    const a = await signer.sign({ method: "POST", path: "/", headers }, DAY1);
    const b = await signer.sign({ method: "POST", path: "/", headers }, DAY1 + 1000);
    expect([a["x-amz-date"], b["x-amz-date"]]).toEqual(["20261207T100000Z", "20261207T100001Z"]);
    expect(a["authorization"]).not.toBe(b["authorization"]);
    expect(headers).toEqual({ host: "h", authorization: "stale", date: "yesterday" });
    expect(a["date"]).toBeUndefined();
  });

  it("refuses a query in the path, credentials that are not credentials, and dates SigV4 cannot write", async () => {
    await expect(mine("s3", false).sign({ method: "GET", path: "/k?list-type=2", headers: { host: "h" } }, DAY1)).rejects.toThrow(/holds a query/);
    const broken = new SigV4Signer({ service: "s3", region: "r", credentials: () => Promise.resolve({ accessKeyId: "A" } as AwsCredentialIdentity), uriEscapePath: false });
    await expect(broken.sign({ method: "GET", path: "/k", headers: { host: "h" } }, DAY1)).rejects.toThrow("Resolved credential object is not valid");
    expect(() => amzDate(Date.parse("+010000-01-01T00:00:00Z"))).toThrow(RangeError);
  });

  it("passes on the credentials provider's failure unchanged", async () => {
    const failure = Object.assign(new Error("IMDS down"), { name: "CredentialsProviderError" });
    const signer = new SigV4Signer({ service: "s3", region: "r", credentials: () => Promise.reject(failure), uriEscapePath: false });
    await expect(signer.sign({ method: "GET", path: "/k", headers: { host: "h" } }, DAY1)).rejects.toBe(failure);
  });

  it("folds header values as the spec asks and leaves clean ones alone", () => {
    expect(canonicalValue("plain value")).toBe("plain value");
    expect(canonicalValue("  a   b\t\tc  ")).toBe("a b c");
    expect(canonicalValue("a\r\nb")).toBe("a b");
  });
});
