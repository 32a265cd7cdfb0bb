// The real daemon's start-up identity check against real IMDS and STS answers from the stand-in: every wrong identity
// is refused (exit 77) before a single S3 or SQS request, and the message names what was found and how to fix it.
import { request } from "node:http";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { OTHER_ROLE_NAME, ROLE_NAME } from "../local/gateway/identities.js";
import { HTML_ANSWER_MARKER } from "../local/imds/index.js";
import {
  IDENTITY_VERIFIED,
  READY,
  daemonExit,
  roleArnPrefix,
  startHarness,
  stopDaemon,
  type DaemonProcess,
  type Harness,
  type StandIn,
} from "./helpers/daemon-harness.js";

let h: Harness;
let stand: StandIn;
let imdsSeen = 0;

beforeAll(async () => {
  h = await startHarness();
  stand = h.stand;
});

afterAll(async () => {
  await h.close();
});

beforeEach(() => {
  stand.gateway.resetCounters();
  imdsSeen = stand.imds.requests.length;
});

afterEach(async () => {
  await h.stopDaemons();
  // Back to the instance as provisioned for the next case.
  stand.imds.setMode("normal");
  stand.imds.setCredentialsAnswer("valid");
  stand.imds.setRole(ROLE_NAME);
  stand.setCredentialAccount(stand.accountId);
  stand.setCredentialInstanceId(undefined);
  stand.serveUserKeysFromImds(undefined);
});

/** IMDS requests made during this test. */
const imdsRequests = () => stand.imds.requests.slice(imdsSeen);
const s3OrSqs = () => stand.decisions.filter((d) => d.service === "s3" || d.service === "sqs");

async function refusal(env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string; daemon: DaemonProcess }> {
  const daemon = h.startDaemon({ env });
  const { code } = await daemonExit(daemon);
  return { code, stderr: daemon.stderr(), daemon };
}

/** The caller STS answered to the daemon's GetCallerIdentity. */
function callers(): string[] {
  return stand.decisions.filter((d) => d.action === "sts:GetCallerIdentity").map((d) => d.principal);
}

describe("the daemon's start-up identity check (real IMDS and STS answers)", () => {
  it("accepts the expected role on this instance: identity verified, then ready (the control case)", async () => {
    const daemon = h.startDaemon();
    const verified = await daemon.waitForLog((l) => l.msg === IDENTITY_VERIFIED);
    expect(verified["roleArn"]).toBe(`${roleArnPrefix(stand)}${stand.instanceId()}`);
    expect(verified["instanceId"]).toBe(stand.instanceId());
    expect(verified["account"]).toBe(stand.accountId);
    await daemon.waitForLog((l) => l.msg === READY);
    // The consumer works: the notification setup's test event is received and acknowledged.
    await daemon.waitForLog((l) => l.msg === "s3:TestEvent acknowledged");
    expect(callers()).toEqual([`${roleArnPrefix(stand)}${stand.instanceId()}`]);
    expect(await stopDaemon(daemon)).toEqual({ code: 0, signal: null });
  });

  it("IMDS serving an IAM user's long-term keys: exit 77 naming the IAM user, with the Modify IAM role fix", async () => {
    stand.serveUserKeysFromImds(stand.users.cliUser);
    const { code, stderr } = await refusal();
    expect(code).toBe(77);
    expect(stderr).toContain(stand.users.cliUser.arn);
    expect(stderr).toContain("IAM user");
    expect(stderr).toContain("Modify IAM role");
    expect(callers()).toEqual([stand.users.cliUser.arn]);
    expect(s3OrSqs()).toEqual([]);
  });

  it("another role attached (SomeOtherRole): exit 77 naming both roles", async () => {
    stand.imds.setRole(OTHER_ROLE_NAME);
    const { code, stderr } = await refusal();
    expect(code).toBe(77);
    expect(stderr).toContain(`the role ${OTHER_ROLE_NAME}, but this daemon expects ${ROLE_NAME}`);
    expect(stderr).toContain("Modify IAM role");
    expect(callers()).toEqual([`arn:aws:sts::${stand.accountId}:assumed-role/${OTHER_ROLE_NAME}/${stand.instanceId()}`]);
    expect(s3OrSqs()).toEqual([]);
  });

  it("the role in another account: exit 77 naming both accounts", async () => {
    stand.setCredentialAccount("210987654321");
    const { code, stderr } = await refusal();
    expect(code).toBe(77);
    expect(stderr).toContain(`account 210987654321, but expectedAccountId in the config says ${stand.accountId}`);
    expect(callers()).toEqual([`arn:aws:sts::210987654321:assumed-role/${ROLE_NAME}/${stand.instanceId()}`]);
    expect(s3OrSqs()).toEqual([]);
  });

  it("credentials issued for another instance than the identity document's: exit 77 naming both instance ids", async () => {
    stand.setCredentialInstanceId("i-0fedcba9876543210");
    const { code, stderr } = await refusal();
    expect(code).toBe(77);
    expect(stderr).toContain(`a session of ${ROLE_NAME} for i-0fedcba9876543210, not for this instance (${stand.instanceId()})`);
    expect(callers()).toEqual([`${roleArnPrefix(stand)}i-0fedcba9876543210`]);
    expect(s3OrSqs()).toEqual([]);
  });

  it("no role attached (IMDS role listing 404): exit 77 with the attach fix, without asking STS", async () => {
    stand.imds.setRole(null);
    const { code, stderr } = await refusal();
    expect(code).toBe(77);
    expect(stderr).toContain(`instance ${stand.instanceId()} has no IAM role`);
    expect(stderr).toContain("Modify IAM role");
    expect(imdsRequests()).toContainEqual(expect.objectContaining({ path: "/latest/meta-data/iam/security-credentials/", status: 404 }));
    expect(stand.decisions).toEqual([]);
  });

  it("IMDSv1 only (token PUT 403): exit 77 with the enable-IMDSv2 fix, no IMDSv1 fallback, no AWS request", async () => {
    stand.imds.setMode("v1-only");
    const { code, stderr } = await refusal();
    expect(code).toBe(77);
    expect(stderr).toContain("refused the IMDSv2 token request (HTTP 403)");
    expect(stderr).toContain("--http-tokens required");
    const requests = imdsRequests();
    expect(requests).toContainEqual(expect.objectContaining({ method: "PUT", path: "/latest/api/token", status: 403 }));
    // Nothing was read the IMDSv1 way (a GET without a token).
    expect(requests.filter((r) => r.method === "GET")).toEqual([]);
    expect(stand.decisions).toEqual([]);
  });

  it("static keys in the environment: exit 77 with no request at all, not even to IMDS", async () => {
    const { code, stderr } = await refusal({
      AWS_ACCESS_KEY_ID: stand.users.cliUser.accessKeyId,
      AWS_SECRET_ACCESS_KEY: stand.users.cliUser.secretAccessKey,
    });
    expect(code).toBe(77);
    expect(stderr).toContain("static AWS credentials are present");
    expect(stderr).toContain("AWS_ACCESS_KEY_ID");
    expect(imdsRequests()).toEqual([]);
    expect(stand.counters().requests).toBe(0);
  });

  it("IMDS unreachable (connection refused): exit 75, temporary by design (systemd restarts it), no AWS request", async () => {
    stand.imds.setMode("refuse");
    const { code, stderr } = await refusal();
    expect(code).toBe(75);
    expect(stderr).toContain("cannot reach the instance metadata service");
    expect(stand.counters().requests).toBe(0);
  });

  it("IMDS answering 500: exit 75, temporary by design, no AWS request", async () => {
    stand.imds.setMode("error-500");
    const { code, stderr } = await refusal();
    expect(code).toBe(75);
    expect(stderr).toContain("cannot reach the instance metadata service");
    expect(imdsRequests()).toContainEqual(expect.objectContaining({ path: "/latest/api/token", status: 500 }));
    expect(stand.counters().requests).toBe(0);
  });
});

/** One IMDSv2 exchange with the mock, as a test client (not the daemon). */
function imdsCall(method: string, path: string, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, stand.urls.imds), { method, headers, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve(body));
    });
    req.on("error", reject);
    req.end();
  });
}

/** The secrets IMDS serves right now (the broken answers are made from the same session). */
async function servedSecrets(): Promise<string[]> {
  const token = await imdsCall("PUT", "/latest/api/token", { "x-aws-ec2-metadata-token-ttl-seconds": "60" });
  const body = await imdsCall("GET", `/latest/meta-data/iam/security-credentials/${ROLE_NAME}`, { "x-aws-ec2-metadata-token": token });
  const creds = JSON.parse(body) as { SecretAccessKey: string; Token: string };
  return [creds.SecretAccessKey, creds.Token];
}

const credentialsPath = `/latest/meta-data/iam/security-credentials/${ROLE_NAME}`;

describe("an unusable credentials answer from IMDS at start (HTML, JSON cut short, a bad Expiration)", () => {
  it.each([
    ["html", /with something that is not JSON \(content-type text\/html, \d+ bytes, first character '<' \(markup, such as an HTML page\)\)/],
    ["truncated", /with JSON that is cut short or broken \(content-type text\/plain, \d+ bytes, first character '\{' \(a JSON object\)\)/],
    ["bad-expiration", /with JSON whose Expiration is not a date \(20 characters\) \(content-type text\/plain, \d+ bytes/],
  ] as const)("%s for the whole instanceProfileWaitSeconds: exit 75 (restarted), naming IMDS and what it sent, never the content", async (answer, described) => {
    const secrets = await servedSecrets();
    stand.imds.setCredentialsAnswer(answer);
    const { code, stderr, daemon } = await refusal();
    expect(code).toBe(75);
    expect(stderr).toContain(`IMDS at ${stand.urls.imds.replace(/\/$/, "")} answered the role's credentials (${credentialsPath})`);
    expect(stderr).toMatch(described);
    expect(stderr).toContain("still did after 1 s (instanceProfileWaitSeconds); STS was not asked");
    expect(stderr).not.toMatch(/STS rejected|instance clock/);
    expect(daemon.logs.find((l) => l.level === "fatal")).toMatchObject({ code: "IMDS_CREDENTIALS_INVALID", exitCode: 75 });
    const everything = stderr + JSON.stringify(daemon.logs);
    for (const secret of [...secrets, HTML_ANSWER_MARKER, "9999-99-99"]) expect(everything).not.toContain(secret);
    // Asked again within the wait, and STS never.
    expect(imdsRequests().filter((r) => r.path === credentialsPath).length).toBeGreaterThanOrEqual(2);
    expect(stand.decisions).toEqual([]);
  });

  it("IMDS answering properly again within the wait: the daemon starts as if nothing happened", async () => {
    stand.imds.setCredentialsAnswer("html");
    const daemon = h.startDaemon({ config: { instanceProfileWaitSeconds: 30 } });
    const seen = () => imdsRequests().filter((r) => r.path === credentialsPath).length;
    const deadline = Date.now() + 20_000;
    while (seen() < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(seen()).toBeGreaterThanOrEqual(2);
    expect(daemon.child.exitCode).toBeNull();
    stand.imds.setCredentialsAnswer("valid");
    await daemon.waitForLog((l) => l.msg === IDENTITY_VERIFIED);
    await daemon.waitForLog((l) => l.msg === READY);
    expect(callers()).toEqual([`${roleArnPrefix(stand)}${stand.instanceId()}`]);
    expect(await stopDaemon(daemon)).toEqual({ code: 0, signal: null });
  });
});
