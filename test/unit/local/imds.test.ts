import { request as httpRequest } from "node:http";
import { fromInstanceMetadata } from "@smithy/credential-provider-imds";
import type { Logger } from "@smithy/types";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  HTML_ANSWER_MARKER,
  startMockImds,
  type ImdsCredentials,
  type MockImds,
  type MockImdsOptions,
} from "../../local/imds/index.js";

const ROLE = "EC2DocumentProcessorRole";
const INSTANCE = "i-0123456789abcdef0";
const HOUR = 3_600_000;
const ISO_SECONDS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One raw HTTP exchange on a fresh connection (no keep-alive pool to blur what the mock did). */
function send(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  timeoutMs?: number,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(path, base), { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    if (timeoutMs !== undefined) req.setTimeout(timeoutMs, () => req.destroy(new Error("client timeout")));
    req.on("error", reject);
    req.end();
  });
}

const silent: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

let mock: MockImds | undefined;
let clock: number;
let issuedFor: string[];
let lifetimeMs: number;
let savedEndpoint: string | undefined;

function issue(roleName: string): ImdsCredentials {
  issuedFor.push(roleName);
  const n = issuedFor.length;
  return {
    AccessKeyId: `ASIA${String(n).padStart(16, "0")}`,
    SecretAccessKey: `secret-${n}`,
    Token: `token-${roleName}-${n}`,
    Expiration: new Date(clock + lifetimeMs),
  };
}

async function start(overrides: Partial<MockImdsOptions> = {}): Promise<MockImds> {
  mock = await startMockImds({
    instanceId: INSTANCE,
    accountId: "123456789012",
    region: "us-east-1",
    availabilityZone: "us-east-1a",
    roleName: ROLE,
    issueCredentials: issue,
    now: () => clock,
    ...overrides,
  });
  // The SDK provider reads the endpoint from the environment on every call.
  process.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = mock.url;
  return mock;
}

async function token(imds: MockImds, ttl = "21600"): Promise<string> {
  const reply = await send(imds.url, "PUT", "/latest/api/token", { "x-aws-ec2-metadata-token-ttl-seconds": ttl });
  expect(reply.status).toBe(200);
  return reply.body;
}

async function get(imds: MockImds, path: string): Promise<Reply> {
  return send(imds.url, "GET", path, { "x-aws-ec2-metadata-token": await token(imds) });
}

beforeEach(() => {
  // Whole seconds, as IMDS serves times, so "exactly N left" below means exactly that.
  clock = Math.floor(Date.now() / 1000) * 1000;
  issuedFor = [];
  lifetimeMs = 6 * HOUR;
  savedEndpoint = process.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"];
});

afterEach(async () => {
  await mock?.close();
  mock = undefined;
  if (savedEndpoint === undefined) delete process.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"];
  else process.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = savedEndpoint;
});

describe("mock IMDS: token PUT", () => {
  it("listens on 127.0.0.1 with a trailing slash in its url", async () => {
    const imds = await start();
    expect(imds.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  });

  it.each(["1", "21600"])("issues a token for TTL %s and echoes the TTL header", async (ttl) => {
    const imds = await start();
    const reply = await send(imds.url, "PUT", "/latest/api/token", { "x-aws-ec2-metadata-token-ttl-seconds": ttl });
    expect(reply.status).toBe(200);
    expect(reply.body.length).toBeGreaterThan(20);
    expect(reply.headers["x-aws-ec2-metadata-token-ttl-seconds"]).toBe(ttl);
    expect(reply.headers["content-type"]).toBe("text/plain");
  });

  it.each([["0"], ["21601"], ["-1"], ["+60"], ["abc"], ["1.5"], ["60s"], [""], [undefined]])(
    "answers 400 for TTL %j",
    async (ttl) => {
      const imds = await start();
      const headers: Record<string, string> = ttl === undefined ? {} : { "x-aws-ec2-metadata-token-ttl-seconds": ttl };
      const reply = await send(imds.url, "PUT", "/latest/api/token", headers);
      expect(reply.status).toBe(400);
    },
  );

  it("refuses a token PUT that carries X-Forwarded-For", async () => {
    const imds = await start();
    const reply = await send(imds.url, "PUT", "/latest/api/token", {
      "x-aws-ec2-metadata-token-ttl-seconds": "60",
      "x-forwarded-for": "10.0.0.1",
    });
    expect(reply.status).toBe(403);
  });

  it("refuses a token PUT on a versioned path", async () => {
    const imds = await start();
    const reply = await send(imds.url, "PUT", "/2021-03-23/api/token", { "x-aws-ec2-metadata-token-ttl-seconds": "60" });
    expect(reply.status).toBe(403);
  });

  it("stops accepting a token once its TTL has passed", async () => {
    const imds = await start();
    const t = await token(imds, "60");
    clock += 59_000;
    expect((await send(imds.url, "GET", "/latest/meta-data/instance-id", { "x-aws-ec2-metadata-token": t })).status).toBe(200);
    clock += 1_000;
    expect((await send(imds.url, "GET", "/latest/meta-data/instance-id", { "x-aws-ec2-metadata-token": t })).status).toBe(401);
  });
});

describe("mock IMDS: GETs with IMDSv2 required", () => {
  it("answers 401 without a token or with an unknown one", async () => {
    const imds = await start();
    expect((await send(imds.url, "GET", "/latest/meta-data/instance-id")).status).toBe(401);
    const reply = await send(imds.url, "GET", "/latest/meta-data/instance-id", { "x-aws-ec2-metadata-token": "forged" });
    expect(reply.status).toBe(401);
  });

  it.each([
    ["/latest/meta-data/instance-id", INSTANCE],
    ["/latest/meta-data/placement/region", "us-east-1"],
    ["/latest/meta-data/placement/availability-zone", "us-east-1a"],
    ["/latest/meta-data/placement/availability-zone/", "us-east-1a"],
    ["/latest/meta-data/iam/security-credentials/", ROLE],
    ["/latest/meta-data/", "iam/\ninstance-id\nplacement/"],
    ["/latest/meta-data/placement/", "availability-zone\nregion"],
  ])("serves %s", async (path, body) => {
    const imds = await start();
    const reply = await get(imds, path);
    expect(reply).toMatchObject({ status: 200, body });
    expect(reply.headers["content-type"]).toBe("text/plain");
  });

  it.each([
    "/latest/meta-data/nothing-here",
    "/latest/meta-data/iam/security-credentials/AnotherRole",
    "/latest/meta-data/iam/security-credentials-extended/EC2DocumentProcessorRole",
    "/latest/user-data",
  ])("answers 404 for %s", async (path) => {
    const imds = await start();
    const reply = await get(imds, path);
    expect(reply.status).toBe(404);
    expect(reply.headers["content-type"]).toBe("text/plain");
  });

  it("serves the role's credentials in the real service's format", async () => {
    const imds = await start();
    const reply = await get(imds, `/latest/meta-data/iam/security-credentials/${ROLE}`);
    expect(reply.status).toBe(200);
    expect(reply.headers["content-type"]).toBe("text/plain");
    expect(reply.body).toContain('"Code" : "Success"');
    const body = JSON.parse(reply.body) as Record<string, string>;
    expect(Object.keys(body)).toEqual(["Code", "LastUpdated", "Type", "AccessKeyId", "SecretAccessKey", "Token", "Expiration"]);
    expect(body).toMatchObject({ Code: "Success", Type: "AWS-HMAC", AccessKeyId: "ASIA0000000000000001", Token: `token-${ROLE}-1` });
    expect(body["LastUpdated"]).toMatch(ISO_SECONDS);
    expect(body["Expiration"]).toMatch(ISO_SECONDS);
    expect(Date.parse(body["Expiration"]!)).toBe(Math.floor((clock + lifetimeMs) / 1000) * 1000);
    expect(issuedFor).toEqual([ROLE]);
  });

  it("serves iam/info for the instance profile", async () => {
    const imds = await start();
    const body = JSON.parse((await get(imds, "/latest/meta-data/iam/info")).body) as Record<string, string>;
    expect(body["Code"]).toBe("Success");
    expect(body["LastUpdated"]).toMatch(ISO_SECONDS);
    expect(body["InstanceProfileArn"]).toBe(`arn:aws:iam::123456789012:instance-profile/${ROLE}`);
    expect(body["InstanceProfileId"]).toMatch(/^AIPA[A-Z2-7]{17}$/);
  });

  it("serves an identity document shaped like the real one", async () => {
    const imds = await start();
    const body = JSON.parse((await get(imds, "/latest/dynamic/instance-identity/document")).body) as Record<string, unknown>;
    expect(body).toMatchObject({
      accountId: "123456789012",
      availabilityZone: "us-east-1a",
      instanceId: INSTANCE,
      region: "us-east-1",
      instanceType: "t2.micro",
      version: "2017-09-30",
      billingProducts: null,
    });
    expect(body["pendingTime"]).toMatch(ISO_SECONDS);
  });

  it("answers HEAD without a body", async () => {
    const imds = await start();
    const reply = await send(imds.url, "HEAD", "/latest/meta-data/instance-id", { "x-aws-ec2-metadata-token": await token(imds) });
    expect(reply).toMatchObject({ status: 200, body: "" });
    expect(reply.headers["content-length"]).toBe(String(INSTANCE.length));
  });

  it("has no iam/ when no role is attached", async () => {
    const imds = await start({ roleName: null });
    expect((await get(imds, "/latest/meta-data/iam/security-credentials/")).status).toBe(404);
    expect((await get(imds, `/latest/meta-data/iam/security-credentials/${ROLE}`)).status).toBe(404);
    expect((await get(imds, "/latest/meta-data/iam/info")).status).toBe(404);
    expect((await get(imds, "/latest/meta-data/")).body).toBe("instance-id\nplacement/");
    expect(issuedFor).toEqual([]);
  });

  it("switches to another role and another instance id", async () => {
    const imds = await start();
    imds.setRole("AnotherRole");
    imds.setInstanceId("i-0fedcba9876543210");
    expect((await get(imds, "/latest/meta-data/iam/security-credentials/")).body).toBe("AnotherRole");
    expect((await get(imds, `/latest/meta-data/iam/security-credentials/${ROLE}`)).status).toBe(404);
    const creds = JSON.parse((await get(imds, "/latest/meta-data/iam/security-credentials/AnotherRole")).body) as Record<string, string>;
    expect(creds["Token"]).toBe("token-AnotherRole-1");
    expect(issuedFor).toEqual(["AnotherRole"]);
    expect((await get(imds, "/latest/meta-data/instance-id")).body).toBe("i-0fedcba9876543210");
    const doc = JSON.parse((await get(imds, "/latest/dynamic/instance-identity/document")).body) as Record<string, unknown>;
    expect(doc["instanceId"]).toBe("i-0fedcba9876543210");
  });

  it("logs every request with its status and whether a token was sent", async () => {
    const logged: unknown[] = [];
    const imds = await start({ log: (entry) => logged.push(entry) });
    await send(imds.url, "GET", "/latest/meta-data/instance-id");
    await get(imds, "/latest/meta-data/instance-id");
    const expected = [
      { method: "GET", path: "/latest/meta-data/instance-id", status: 401, tokenPresent: false },
      { method: "PUT", path: "/latest/api/token", status: 200, tokenPresent: false },
      { method: "GET", path: "/latest/meta-data/instance-id", status: 200, tokenPresent: true },
    ];
    expect(imds.requests).toEqual(expected);
    expect(logged).toEqual(expected);
  });
});

describe("mock IMDS: credential rotation", () => {
  const credsPath = `/latest/meta-data/iam/security-credentials/${ROLE}`;
  const keyOf = async (imds: MockImds): Promise<string | undefined> =>
    (JSON.parse((await get(imds, credsPath)).body) as Record<string, string>)["AccessKeyId"];

  it("serves the same credentials until the refresh window", async () => {
    const imds = await start({ refreshBeforeExpirySeconds: 900 });
    const first = await keyOf(imds);
    expect(await keyOf(imds)).toBe(first);
    clock += lifetimeMs - 900_000; // exactly 15 min left: still served
    expect(await keyOf(imds)).toBe(first);
    clock += 1_000;
    const second = await keyOf(imds);
    expect(second).not.toBe(first);
    expect(issuedFor).toEqual([ROLE, ROLE]);
  });

  it("rotates on demand", async () => {
    const imds = await start();
    const first = await keyOf(imds);
    imds.rotateNow();
    const second = await keyOf(imds);
    expect(second).not.toBe(first);
    expect(await keyOf(imds)).toBe(second);
  });

  it("never serves credentials with less than five minutes left", async () => {
    lifetimeMs = 299_000;
    const imds = await start();
    const reply = await get(imds, credsPath);
    expect(reply.status).toBe(500);
    expect(reply.body).not.toContain("ASIA");
  });

  it("refuses a refresh window under five minutes", async () => {
    await expect(start({ refreshBeforeExpirySeconds: 299 })).rejects.toThrow(/at least 300/);
  });
});

describe("mock IMDS with the SDK's fromInstanceMetadata", () => {
  it("gives the role's credentials over IMDSv2", async () => {
    const imds = await start();
    const creds = await fromInstanceMetadata({ ec2MetadataV1Disabled: true, logger: silent })();
    expect(creds).toMatchObject({ accessKeyId: "ASIA0000000000000001", secretAccessKey: "secret-1", sessionToken: `token-${ROLE}-1` });
    expect(creds.expiration?.getTime()).toBe(Math.floor((clock + lifetimeMs) / 1000) * 1000);
    expect(imds.requests.map((r) => [r.method, r.path, r.status, r.tokenPresent])).toEqual([
      ["PUT", "/latest/api/token", 200, false],
      ["GET", "/latest/meta-data/iam/security-credentials/", 200, true],
      ["GET", `/latest/meta-data/iam/security-credentials/${ROLE}`, 200, true],
    ]);
  });

  it("gets new keys after a rotation", async () => {
    const imds = await start();
    const provider = fromInstanceMetadata({ ec2MetadataV1Disabled: true, logger: silent });
    const first = await provider();
    imds.rotateNow();
    const second = await provider();
    expect(second.accessKeyId).not.toBe(first.accessKeyId);
    expect(second.sessionToken).not.toBe(first.sessionToken);
  });

  it("v1-only: refuses the token PUT, serves tokenless GETs, and the provider refuses the v1 fallback", async () => {
    const imds = await start();
    imds.setMode("v1-only");
    const put = await send(imds.url, "PUT", "/latest/api/token", { "x-aws-ec2-metadata-token-ttl-seconds": "60" });
    expect(put.status).toBe(403);
    expect(await send(imds.url, "GET", "/latest/meta-data/iam/security-credentials/")).toMatchObject({ status: 200, body: ROLE });
    const before = imds.requests.length;
    await expect(fromInstanceMetadata({ ec2MetadataV1Disabled: true, logger: silent })()).rejects.toMatchObject({
      name: "InstanceMetadataV1FallbackError",
    });
    // Only the token PUT: the provider never read anything without a token.
    expect(imds.requests.slice(before).map((r) => [r.method, r.status])).toEqual([["PUT", 403]]);
  });
});

describe("mock IMDS: broken credentials answers (setCredentialsAnswer)", () => {
  const path = `/latest/meta-data/iam/security-credentials/${ROLE}`;

  it("html: a 200 text/html error page instead of the credentials", async () => {
    const imds = await start();
    imds.setCredentialsAnswer("html");
    const reply = await get(imds, path);
    expect(reply.status).toBe(200);
    expect(reply.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(reply.body).toMatch(/^<!DOCTYPE html>/);
    expect(reply.body).toContain(HTML_ANSWER_MARKER);
    // The rest of IMDS is unchanged.
    expect((await get(imds, "/latest/meta-data/iam/security-credentials/")).body).toBe(ROLE);
  });

  it("truncated: the JSON cut off inside the session token, with the whole secret key in it", async () => {
    const imds = await start();
    imds.setCredentialsAnswer("truncated");
    const reply = await get(imds, path);
    expect(reply.status).toBe(200);
    expect(reply.body).toContain('"SecretAccessKey" : "secret-1"');
    expect(reply.body).toContain('"Token" : "token-');
    expect(reply.body).not.toContain(`token-${ROLE}-1"`);
    expect(() => JSON.parse(reply.body) as unknown).toThrow(SyntaxError);
  });

  it("bad-expiration: valid JSON whose Expiration is not a date", async () => {
    const imds = await start();
    imds.setCredentialsAnswer("bad-expiration");
    const body = JSON.parse((await get(imds, path)).body) as Record<string, string>;
    expect(body).toMatchObject({ Code: "Success", AccessKeyId: "ASIA0000000000000001", Expiration: "9999-99-99T99:99:99Z" });
    expect(Number.isNaN(Date.parse(body["Expiration"]!))).toBe(true);
  });

  it("valid again: the real answer", async () => {
    const imds = await start();
    imds.setCredentialsAnswer("html");
    imds.setCredentialsAnswer("valid");
    expect(JSON.parse((await get(imds, path)).body)).toMatchObject({ Code: "Success", SecretAccessKey: "secret-1" });
  });

  // How @smithy/credential-provider-imds reports each: what the daemon classifies (src/aws/imds-answer.ts).
  it("the SDK's provider: HTML and truncated JSON reject with JSON.parse's SyntaxError, which quotes the answer", async () => {
    const imds = await start();
    const provider = fromInstanceMetadata({ ec2MetadataV1Disabled: true, logger: silent });
    imds.setCredentialsAnswer("html");
    const html = await provider().catch((e: unknown) => e);
    expect(html).toBeInstanceOf(SyntaxError);
    expect((html as Error).message).toContain("<!DOCTYPE");
    imds.setCredentialsAnswer("truncated");
    await expect(provider()).rejects.toBeInstanceOf(SyntaxError);
  });

  it("the SDK's provider: a bad Expiration resolves, with an Invalid Date as the expiry", async () => {
    const imds = await start();
    imds.setCredentialsAnswer("bad-expiration");
    const creds = await fromInstanceMetadata({ ec2MetadataV1Disabled: true, logger: silent })();
    expect(creds.accessKeyId).toBe("ASIA0000000000000001");
    expect(Number.isNaN(creds.expiration?.getTime())).toBe(true);
  });
});

describe("mock IMDS outage modes", () => {
  it("refuse: drops connections, then recovers", async () => {
    const imds = await start();
    imds.setMode("refuse");
    // The connection is dropped at accept: a reset, or a broken pipe if the request was still being written.
    await expect(send(imds.url, "GET", "/latest/meta-data/instance-id")).rejects.toMatchObject({
      code: expect.stringMatching(/^(ECONNRESET|EPIPE)$/) as unknown,
    });
    await expect(fromInstanceMetadata({ ec2MetadataV1Disabled: true, logger: silent })()).rejects.toThrow();
    expect(imds.requests).toEqual([]);
    imds.setMode("normal");
    expect((await get(imds, "/latest/meta-data/instance-id")).body).toBe(INSTANCE);
  });

  it("hang: never answers, so the client times out", async () => {
    const imds = await start();
    imds.setMode("hang");
    await expect(send(imds.url, "PUT", "/latest/api/token", { "x-aws-ec2-metadata-token-ttl-seconds": "60" }, 100)).rejects.toThrow(
      "client timeout",
    );
    await expect(fromInstanceMetadata({ ec2MetadataV1Disabled: true, timeout: 100, logger: silent })()).rejects.toThrow();
    expect(imds.requests.map((r) => [r.method, r.status])).toEqual([
      ["PUT", 0],
      ["PUT", 0],
    ]);
  });

  it("close() ends a hanging request", async () => {
    let seen!: () => void;
    const arrived = new Promise<void>((resolve) => (seen = resolve));
    const imds = await start({ log: () => seen() });
    imds.setMode("hang");
    const pending = send(imds.url, "GET", "/latest/meta-data/instance-id");
    await arrived;
    await imds.close();
    await expect(pending).rejects.toMatchObject({ code: "ECONNRESET" });
  });

  it("error-500: answers every request with 500", async () => {
    const imds = await start();
    imds.setMode("error-500");
    expect((await send(imds.url, "PUT", "/latest/api/token", { "x-aws-ec2-metadata-token-ttl-seconds": "60" })).status).toBe(500);
    expect((await send(imds.url, "GET", "/latest/meta-data/instance-id")).status).toBe(500);
    await expect(fromInstanceMetadata({ ec2MetadataV1Disabled: true, logger: silent })()).rejects.toThrow();
    imds.setMode("normal");
    expect((await get(imds, "/latest/meta-data/instance-id")).status).toBe(200);
  });
});
