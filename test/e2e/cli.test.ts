// The built CLI as a process: help, usage errors, and the refusals that must happen before any network call.
import { mkdtempSync, writeFileSync, mkdirSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { childEnv, runCli } from "../helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "dp-cli-"));
const valid = join(dir, "valid.json");
const bad = join(dir, "bad.json");
writeFileSync(
  valid,
  JSON.stringify({
    queueUrl: "https://sqs.us-east-1.amazonaws.com/123456789012/doc-events",
    sourceBucket: "cloudboxio-lab-source-123456789012",
    outputBucket: "cloudboxio-lab-output-123456789012",
  }),
);
writeFileSync(bad, JSON.stringify({ sourceBucket: "same-bucket", outputBucket: "same-bucket", concurency: 3 }));

// A loopback listener standing in for IMDS and every AWS endpoint: it only counts connections, so a refusal
// "before any network call" is checked as zero connections, not assumed.
let trap: Server;
let connections = 0;
let trapUrl = "";
beforeAll(async () => {
  trap = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((r) => trap.listen(0, "127.0.0.1", r));
  const address = trap.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  trapUrl = `http://127.0.0.1:${address.port}/`;
});
afterAll(async () => {
  await new Promise<void>((r) => trap.close(() => r()));
});

const trapped = (extra: Record<string, string> = {}) =>
  childEnv({
    AWS_EC2_METADATA_SERVICE_ENDPOINT: trapUrl,
    AWS_ENDPOINT_URL: trapUrl,
    AWS_ENDPOINT_URL_S3: trapUrl,
    AWS_ENDPOINT_URL_SQS: trapUrl,
    AWS_ENDPOINT_URL_STS: trapUrl,
    ...extra,
  });

describe("doc-processor CLI", () => {
  it("--help lists run, check and process", async () => {
    const r = await runCli(["--help"], childEnv());
    expect(r.code).toBe(0);
    for (const cmd of ["run", "check", "process"]) expect(r.stdout).toMatch(new RegExp(`doc-processor ${cmd}\\b`));
  });

  it("--version prints the package version", async () => {
    const r = await runCli(["--version"], childEnv());
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("an unknown command is a usage error (64)", async () => {
    const r = await runCli(["frobnicate"], childEnv());
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/unknown command "frobnicate"/);
  });

  it("static keys in the environment: exit 77, says why, no network traffic", async () => {
    connections = 0;
    const r = await runCli(
      ["run", "--config", valid],
      trapped({ AWS_ACCESS_KEY_ID: "AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY: "x" }),
    );
    expect(r.code).toBe(77);
    expect(r.stderr).toMatch(/static AWS credentials are present/);
    expect(r.stderr).toMatch(/AWS_ACCESS_KEY_ID/);
    expect(r.stderr).toMatch(/vulnerability the role replaces/);
    expect(r.stderr).not.toContain("AKIAEXAMPLE");
    expect(r.logs.some((l) => l["code"] === "STATIC_CREDENTIALS_PRESENT" && l["level"] === "fatal")).toBe(true);
    expect(connections).toBe(0);
  });

  it("a credentials file in the service user's home: exit 77, no network traffic", async () => {
    connections = 0;
    const home = join(dir, "home");
    mkdirSync(join(home, ".aws"), { recursive: true });
    writeFileSync(join(home, ".aws", "credentials"), "[default]\naws_access_key_id = AKIAEXAMPLE\n");
    const r = await runCli(["run", "--config", valid], trapped({ HOME: home }));
    expect(r.code).toBe(77);
    expect(r.stderr).toContain(join(home, ".aws", "credentials"));
    expect(connections).toBe(0);
  });

  it("bad config: exit 78 naming the unknown key, the missing queueUrl and source == output", async () => {
    connections = 0;
    const r = await runCli(["run", "--config", bad], trapped());
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/concurency: unknown key \(did you mean concurrency\?\)/);
    expect(r.stderr).toMatch(/queueUrl: is required/);
    expect(r.stderr).toMatch(/outputBucket: must differ from sourceBucket/);
    expect(connections).toBe(0);
  });

  it("an unreachable IMDS: exit 75 (temporary), with a message that names the endpoint", async () => {
    const r = await runCli(["run", "--config", valid], childEnv({ DOC_PROCESSOR_IMDS_MAX_RETRIES: "0" }));
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(/cannot reach the instance metadata service at http:\/\/127\.0\.0\.1:9/);
  });
});
