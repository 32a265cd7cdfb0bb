// The real daemon's start against the stand-in: signed SQS requests go only to the one SQS endpoint (never to a host
// named by queueUrl), and READY comes only after the role has been proven able to consume the queue with the calls
// `check` makes (ChangeMessageVisibility/DeleteMessage with an impossible handle; no ReceiveMessage). A queue the role
// may not use is refused (77) before READY; an unreachable SQS is temporary (75).
import { CreateQueueCommand } from "@aws-sdk/client-sqs";
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  IDENTITY_VERIFIED,
  READY,
  daemonExit,
  roleDecisions,
  startHarness,
  stopDaemon,
  type DaemonProcess,
  type Harness,
  type StandIn,
} from "./helpers/daemon-harness.js";

const QUEUE_VERIFIED = "queue access verified: sqs:ChangeMessageVisibility and sqs:DeleteMessage authorized (no message touched)";
const OTHER_ACCOUNT = "210987654321";

let h: Harness;
let stand: StandIn;
let imdsSeen = 0;

/** A loopback HTTP listener that records every request it gets (and answers 500 to each). */
interface Recorder {
  origin: string;
  requests: { method: string | undefined; url: string | undefined; authorization: string | undefined }[];
  close(): Promise<void>;
}

async function startRecorder(): Promise<Recorder> {
  const requests: Recorder["requests"] = [];
  const server: Server = createServer((req, res) => {
    requests.push({ method: req.method, url: req.url, authorization: req.headers.authorization });
    req.resume();
    res.writeHead(500).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return {
    origin: `http://127.0.0.1:${address.port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address.port;
}

/** The daemon's exit, or a failure if it is still running after `ms` (a daemon that went READY instead). */
async function exitWithin(daemon: DaemonProcess, ms = 30_000): Promise<{ code: number | null; stderr: string }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the daemon did not exit within ${ms} ms; logs:\n${JSON.stringify(daemon.logs.map((l) => l.msg))}`)), ms);
  });
  try {
    const { code } = await Promise.race([daemonExit(daemon), timeout]);
    return { code, stderr: daemon.stderr() };
  } finally {
    clearTimeout(timer);
  }
}

const sqsDecisions = () => stand.decisions.filter((d) => d.service === "sqs");
const imdsRequests = () => stand.imds.requests.slice(imdsSeen);

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
});

describe("signed SQS requests go only to the SQS endpoint", () => {
  let recorder: Recorder;
  beforeAll(async () => {
    recorder = await startRecorder();
  });
  afterAll(async () => {
    await recorder.close();
  });

  const path = () => `/${stand.accountId}/${stand.queue.name}`;
  const gatewayHost = () => new URL(stand.urls.gateway).host;

  it.each([
    ["another loopback listener", () => `${recorder.origin}${path()}`],
    ["that listener, with the stand-in's address as a user name", () => `http://${gatewayHost()}@${new URL(recorder.origin).host}${path()}`],
    ["that listener over https", () => `${recorder.origin.replace("http:", "https:")}${path()}`],
  ])("queueUrl on %s, not AWS_ENDPOINT_URL_SQS's origin: refused at start (78), that listener gets no request", async (_case, queueUrl) => {
    const url = queueUrl();
    const daemon = h.startDaemon({ config: { queueUrl: url } });
    const { code, stderr } = await exitWithin(daemon);
    expect(code).toBe(78);
    expect(stderr).toContain("queueUrl:");
    expect(stderr).toMatch(/is not an SQS endpoint|must not contain a user name or password/);
    expect(stderr).toContain("Fix:");
    expect(recorder.requests).toEqual([]);
    // Refused with the config, before IMDS or any AWS request.
    expect(imdsRequests()).toEqual([]);
    expect(stand.counters().requests).toBe(0);
  });
});

describe("READY only once the role can consume the queue", () => {
  it("the right queue: probed with ChangeMessageVisibility/DeleteMessage (allowed), then READY, then the first receive", async () => {
    const daemon = h.startDaemon();
    await daemon.waitForLog((l) => l.msg === READY);
    const messages = daemon.logs.map((l) => l.msg);
    expect(messages.indexOf(IDENTITY_VERIFIED)).toBeLessThan(messages.indexOf(QUEUE_VERIFIED));
    expect(messages.indexOf(QUEUE_VERIFIED)).toBeLessThan(messages.indexOf(READY));
    await daemon.waitForLog((l) => l.msg === "s3:TestEvent acknowledged");

    const role = roleDecisions(stand).filter((d) => d.service === "sqs").map((d) => `${d.action} ${d.resource} ${d.decision}`);
    const firstReceive = role.findIndex((d) => d.startsWith("sqs:ReceiveMessage"));
    expect(firstReceive).toBeGreaterThanOrEqual(2);
    expect(role.slice(0, firstReceive).sort()).toEqual([
      `sqs:ChangeMessageVisibility ${stand.queue.arn} allow`,
      `sqs:DeleteMessage ${stand.queue.arn} allow`,
    ]);
    expect(await stopDaemon(daemon)).toEqual({ code: 0, signal: null });
  });

  it("a queue whose ARN is not in the role's policy: exit 77 before READY, naming the queue, both accounts and regions, and the ARN", async () => {
    const name = "doc-processor-unlisted";
    const { QueueUrl } = await stand.clients.admin.sqs.send(new CreateQueueCommand({ QueueName: name }));
    stand.gateway.resetCounters();
    const daemon = h.startDaemon({ config: { queueUrl: QueueUrl } });
    const { code, stderr } = await exitWithin(daemon);

    expect(code).toBe(77);
    expect(stderr).toContain(`the role may not consume the queue ${name} (account ${stand.accountId}, region ${stand.region})`);
    expect(stderr).toContain(`in account ${stand.accountId}, region ${stand.region}.`);
    expect(stderr).toContain("AccessDenied");
    expect(stderr).toContain(
      `statement ConsumeNotifications) must allow sqs:ReceiveMessage, sqs:DeleteMessage and sqs:ChangeMessageVisibility on arn:aws:sqs:${stand.region}:${stand.accountId}:${name}`,
    );
    expect(daemon.logs.map((l) => l.msg)).toContain(IDENTITY_VERIFIED);
    expect(daemon.logs.map((l) => l.msg)).not.toContain(READY);
    const queueArn = `arn:aws:sqs:${stand.region}:${stand.accountId}:${name}`;
    expect(sqsDecisions().map((d) => `${d.action} ${d.resource} ${d.decision}`).sort()).toEqual([
      `sqs:ChangeMessageVisibility ${queueArn} implicit-deny`,
      `sqs:DeleteMessage ${queueArn} implicit-deny`,
    ]);
  });

  it("a queue in another account: exit 77 before READY, naming its account against the instance's", async () => {
    const queueUrl = `${stand.urls.gateway}/${OTHER_ACCOUNT}/${stand.queue.name}`;
    const daemon = h.startDaemon({ config: { queueUrl } });
    const { code, stderr } = await exitWithin(daemon);

    expect(code).toBe(77);
    expect(stderr).toContain(`the queue ${stand.queue.name} (account ${OTHER_ACCOUNT}, region ${stand.region})`);
    expect(stderr).toContain(`in account ${stand.accountId}, region ${stand.region}: the queue is in another account.`);
    expect(stderr).toContain(`arn:aws:sqs:${stand.region}:${OTHER_ACCOUNT}:${stand.queue.name}`);
    expect(stderr).toContain("that queue's own policy must allow this role");
    expect(daemon.logs.map((l) => l.msg)).not.toContain(READY);
    expect(sqsDecisions().filter((d) => d.action === "sqs:ReceiveMessage")).toEqual([]);
  });

  it("the SQS endpoint unreachable: tried again for a few seconds, then exit 75 (temporary, systemd restarts it) before READY", async () => {
    const port = await closedPort();
    const origin = `http://127.0.0.1:${port}`;
    const daemon = h.startDaemon({
      config: { queueUrl: `${origin}/${stand.accountId}/${stand.queue.name}` },
      env: { AWS_ENDPOINT_URL_SQS: origin },
    });
    const { code, stderr } = await exitWithin(daemon);

    expect(code).toBe(75);
    expect(stderr).toContain(`cannot reach SQS at ${origin}`);
    expect(stderr).toContain("Temporary: the service is restarted");
    expect(daemon.logs.map((l) => l.msg)).toContain(IDENTITY_VERIFIED);
    expect(daemon.logs.map((l) => l.msg)).not.toContain(READY);
    expect(daemon.logs.filter((l) => l.msg === "queue access not proven yet: SQS did not answer").length).toBeGreaterThanOrEqual(2);
  }, 45_000);

  it("SIGTERM while SQS is being tried again: stops at once with exit 0, never READY", async () => {
    const port = await closedPort();
    const origin = `http://127.0.0.1:${port}`;
    const daemon = h.startDaemon({
      config: { queueUrl: `${origin}/${stand.accountId}/${stand.queue.name}` },
      env: { AWS_ENDPOINT_URL_SQS: origin },
    });
    await daemon.waitForLog((l) => l.msg === "queue access not proven yet: SQS did not answer");
    const sent = Date.now();
    const { code } = await stopDaemon(daemon, 10_000);
    expect(code).toBe(0);
    expect(Date.now() - sent).toBeLessThan(5_000);
    expect(daemon.logs.map((l) => l.msg)).toContain("stopped before start-up completed");
    expect(daemon.logs.map((l) => l.msg)).not.toContain(READY);
  });
});
