// Response bodies in the exact textual form real IMDS uses (pretty JSON with " : ", second-precision UTC times), since
// the AWS CLI parses Expiration with a fixed format and clients may be picky in ways we have not seen.
import { createHash } from "node:crypto";
import type { ImdsCredentials } from "./types.js";

/** "2024-05-16T23:00:20Z": whole seconds, rounded down so a served expiry is never later than the real one. */
export function isoSeconds(epochMs: number): string {
  return new Date(Math.floor(epochMs / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function imdsJson(fields: Record<string, string | null>): string {
  const lines = Object.entries(fields).map(([key, value]) => `  ${JSON.stringify(key)} : ${JSON.stringify(value)}`);
  return `{\n${lines.join(",\n")}\n}`;
}

export function credentialsBody(credentials: ImdsCredentials, lastUpdatedMs: number): string {
  return imdsJson({
    Code: "Success",
    LastUpdated: isoSeconds(lastUpdatedMs),
    Type: "AWS-HMAC",
    AccessKeyId: credentials.AccessKeyId,
    SecretAccessKey: credentials.SecretAccessKey,
    Token: credentials.Token,
    Expiration: isoSeconds(credentials.Expiration.getTime()),
  });
}

/** Marker inside the HTML page the "html" answer serves: a test can check it never reaches a log. */
export const HTML_ANSWER_MARKER = "html-answer-body-must-not-be-logged";

/** A proxy's error page, as something in front of IMDS might serve instead of the credentials. */
export function htmlAnswerBody(): string {
  return (
    "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n" +
    `<body><h1>Bad Gateway</h1><p>${HTML_ANSWER_MARKER}</p></body></html>\n`
  );
}

/** The credentials JSON cut off in the middle of the session token: it holds the whole secret key, and does not parse. */
export function truncatedCredentialsBody(credentials: ImdsCredentials, lastUpdatedMs: number): string {
  const body = credentialsBody(credentials, lastUpdatedMs);
  const token = body.indexOf(JSON.stringify(credentials.Token));
  return body.slice(0, token + Math.max(2, Math.floor(credentials.Token.length / 2)));
}

/** The credentials JSON with an Expiration no date parser accepts. */
export function badExpirationCredentialsBody(credentials: ImdsCredentials, lastUpdatedMs: number): string {
  return credentialsBody(credentials, lastUpdatedMs).replace(/("Expiration" : )"[^"]*"/, '$1"9999-99-99T99:99:99Z"');
}

/** A stable fake id: `prefix` plus 17 characters of [A-Z2-7], derived from `seed`. */
export function fakeId(prefix: string, seed: string): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const digest = createHash("sha256").update(seed).digest();
  return prefix + [...digest.subarray(0, 17)].map((byte) => alphabet[byte % 32]).join("");
}

export function iamInfoBody(accountId: string, roleName: string, lastUpdatedMs: number): string {
  // The console names the instance profile after the role, as the seed's setup does.
  return imdsJson({
    Code: "Success",
    LastUpdated: isoSeconds(lastUpdatedMs),
    InstanceProfileArn: `arn:aws:iam::${accountId}:instance-profile/${roleName}`,
    InstanceProfileId: fakeId("AIPA", `${accountId}/${roleName}`),
  });
}

export interface InstanceIdentity {
  accountId: string;
  availabilityZone: string;
  instanceId: string;
  region: string;
  pendingTimeMs: number;
}

export function identityDocumentBody(identity: InstanceIdentity): string {
  return imdsJson({
    accountId: identity.accountId,
    architecture: "x86_64",
    availabilityZone: identity.availabilityZone,
    billingProducts: null,
    devpayProductCodes: null,
    marketplaceProductCodes: null,
    imageId: "ami-0abcdef1234567890",
    instanceId: identity.instanceId,
    instanceType: "t2.micro",
    kernelId: null,
    pendingTime: isoSeconds(identity.pendingTimeMs),
    privateIp: "172.31.17.42",
    ramdiskId: null,
    region: identity.region,
    version: "2017-09-30",
  });
}
