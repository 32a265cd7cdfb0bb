// The transport's signing-key cache: one derivation per credentials object, region, service and day, and signatures
// identical to smithy's own path.
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import type { AwsCredentialIdentity, HttpRequest } from "@smithy/types";
import { describe, expect, it } from "vitest";
import { cacheSigningKeys } from "../../../../src/aws/lean/signing-key.js";

const DAY1 = new Date("2026-12-07T10:00:00Z");
const DAY2 = new Date("2026-12-08T00:00:01Z");

function signerWith(credentials: () => Promise<AwsCredentialIdentity>): SignatureV4 {
  return new SignatureV4({ service: "sqs", region: "us-east-1", credentials, sha256: Hash.bind(null, "sha256"), uriEscapePath: true, applyChecksum: false });
}

function request(body: string): HttpRequest {
  return {
    method: "POST",
    protocol: "https:",
    hostname: "sqs.us-east-1.amazonaws.com",
    path: "/",
    query: {},
    headers: { host: "sqs.us-east-1.amazonaws.com", "content-type": "application/x-amz-json-1.0", "x-amz-target": "AmazonSQS.ReceiveMessage" },
    body,
  };
}

const first: AwsCredentialIdentity = { accessKeyId: "ASIAFIRST", secretAccessKey: "first-secret", sessionToken: "t".repeat(1024) };
const rotated: AwsCredentialIdentity = { accessKeyId: "ASIASECOND", secretAccessKey: "second-secret", sessionToken: "u".repeat(1024) };

async function authorization(signer: SignatureV4, body: string, date: Date): Promise<string> {
  return String((await signer.sign(request(body), { signingDate: date })).headers["authorization"]);
}

describe("cacheSigningKeys", () => {
  it("derives a key once per credentials object and day, and signs exactly as smithy does without it", async () => {
    let current = first;
    const cached = signerWith(() => Promise.resolve(current));
    const stats = cacheSigningKeys(cached);
    const plain = signerWith(() => Promise.resolve(current));

    for (const body of ["a", "b", "c"]) {
      expect(await authorization(cached, body, DAY1)).toBe(await authorization(plain, body, DAY1));
    }
    // Smithy must still ask for the key through the hook: 0 would mean the cache is bypassed.
    expect(stats.derived).toBe(1);

    expect(await authorization(cached, "d", DAY2)).toBe(await authorization(plain, "d", DAY2));
    expect(stats.derived).toBe(2);

    // A refresh hands out a new object: a new key, from the new secret.
    current = rotated;
    const afterRotation = await authorization(cached, "d", DAY2);
    expect(afterRotation).toBe(await authorization(plain, "d", DAY2));
    expect(afterRotation).toContain("Credential=ASIASECOND/20261208/us-east-1/sqs/aws4_request");
    expect(stats.derived).toBe(3);
  });

  it("does not keep a key for equal credentials in a different object (a refresh with the same values derives anew)", async () => {
    let current: AwsCredentialIdentity = { ...first };
    const signer = signerWith(() => Promise.resolve(current));
    const stats = cacheSigningKeys(signer);
    await authorization(signer, "a", DAY1);
    current = { ...first };
    await authorization(signer, "a", DAY1);
    expect(stats.derived).toBe(2);
  });
});
