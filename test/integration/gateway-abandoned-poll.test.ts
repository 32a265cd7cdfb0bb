// A long poll whose caller disconnects (a daemon killed or stopped mid-poll) must not hide the next messages: fauxqs
// keeps such a poll open and hands it the next message, so the gateway lets it finish and makes what it took visible
// again at once, for both SQS protocols. gateway.close() still ends open polls at once.
import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ROLE_NAME } from "../local/gateway/identities.js";
import type { GatewayCounters } from "../local/gateway/server.js";
import { startStandIn, type StandIn } from "../local/stand-in.js";
import { discardTestEvent } from "./helpers/daemon-harness.js";

// Far longer than the test runs: a message hidden by the dead poll cannot come back on its own meanwhile.
const VISIBILITY_TIMEOUT = 600;

type Creds = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };

function roleCreds(stand: StandIn): Creds {
  const session = stand.identities.issueRoleSession(ROLE_NAME, stand.instanceId(), 3600);
  return { accessKeyId: session.accessKeyId, secretAccessKey: session.secretAccessKey, sessionToken: session.sessionToken };
}

async function untilGateway(stand: StandIn, condition: (c: GatewayCounters) => boolean, what: string): Promise<void> {
  await vi.waitFor(
    () => {
      const counters = stand.counters();
      if (!condition(counters)) throw new Error(`waiting for: ${what} (${JSON.stringify(counters)})`);
    },
    { timeout: 10_000, interval: 10 },
  );
}

/** Opens a query-protocol long poll (as AWS CLI 2.9 sends it) on a raw socket; the returned function drops it. */
async function openQueryPoll(stand: StandIn, creds: Creds): Promise<{ drop: () => Promise<void> }> {
  const url = new URL(stand.urls.gateway);
  const form =
    `Action=ReceiveMessage&Version=2012-11-05&QueueUrl=${encodeURIComponent(stand.config.queueUrl)}` +
    "&MaxNumberOfMessages=10&WaitTimeSeconds=20";
  const signer = new SignatureV4({ service: "sqs", region: stand.region, credentials: creds, sha256: Hash.bind(null, "sha256"), applyChecksum: false });
  const signed = await signer.sign({
    method: "POST",
    protocol: "http:",
    hostname: url.hostname,
    port: Number(url.port),
    path: "/",
    query: {},
    headers: { host: url.host, "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
    body: form,
  });
  const agent = new http.Agent({ keepAlive: false });
  const req = http.request({ host: url.hostname, port: url.port, method: "POST", path: "/", headers: signed.headers as Record<string, string>, agent });
  const ended = new Promise<string>((resolve) => {
    req.on("response", () => resolve("answered"));
    req.on("error", (error) => resolve((error as NodeJS.ErrnoException).code ?? error.message));
  });
  req.end(form);
  return {
    drop: async () => {
      req.destroy();
      expect(await ended).toBe("ECONNRESET");
      agent.destroy();
    },
  };
}

/** A 20 s JSON-protocol long poll through the SDK; `poll` resolves "answered" or the error's name. */
function abortablePoll(sqs: SQSClient, stand: StandIn): { controller: AbortController; poll: Promise<string> } {
  const controller = new AbortController();
  const poll = sqs
    .send(new ReceiveMessageCommand({ QueueUrl: stand.queue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 20 }), {
      abortSignal: controller.signal,
    })
    .then(
      () => "answered",
      (error: Error) => error.name,
    );
  return { controller, poll };
}

describe("a long poll whose caller disconnected", () => {
  let stand: StandIn;
  let creds: Creds;
  let roleSqs: SQSClient;

  beforeAll(async () => {
    stand = await startStandIn({ visibilityTimeoutSeconds: VISIBILITY_TIMEOUT });
    creds = roleCreds(stand);
    roleSqs = new SQSClient(stand.clientConfig(creds));
    await discardTestEvent(stand);
  });

  afterAll(async () => {
    roleSqs?.destroy();
    await stand?.close();
  });

  /**
   * With a poll open upstream, `drop` disconnects its caller; then a message is sent and must reach the next
   * consumer now, not after the visibility timeout.
   */
  async function expectNextConsumerGetsIt(drop: () => Promise<void>, body: string): Promise<void> {
    const releasedBefore = stand.counters().abandonedReceivesReleased;
    await untilGateway(stand, (c) => c.receivesOpen === 1, "the long poll is forwarded to fauxqs");
    // A later request through the same path: fauxqs has read the poll (and is waiting on it) by the time this answers.
    await stand.clients.admin.sqs.send(new GetQueueAttributesCommand({ QueueUrl: stand.queue.url, AttributeNames: ["QueueArn"] }));
    await drop();
    await untilGateway(stand, (c) => c.receivesAbandoned === 1 || c.receivesOpen === 0, "the gateway saw the caller leave");

    const sent = await stand.clients.admin.sqs.send(new SendMessageCommand({ QueueUrl: stand.queue.url, MessageBody: body }));
    await untilGateway(stand, (c) => c.receivesOpen === 0, "the abandoned poll is over");

    const { Messages = [] } = await roleSqs.send(
      new ReceiveMessageCommand({
        QueueUrl: stand.queue.url,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 2,
        MessageSystemAttributeNames: ["ApproximateReceiveCount"],
      }),
    );
    expect(Messages.map((m) => [m.MessageId, m.Body])).toEqual([[sent.MessageId, body]]);
    // The dead poll's delivery still counts, as SQS counts a receive nobody processed.
    expect(Messages[0]!.Attributes?.ApproximateReceiveCount).toBe("2");
    expect(stand.counters().abandonedReceivesReleased - releasedBefore).toBe(1);
    await roleSqs.send(new DeleteMessageCommand({ QueueUrl: stand.queue.url, ReceiptHandle: Messages[0]!.ReceiptHandle! }));
  }

  it("JSON protocol (the SDK, aborted): the message it took is visible to the next consumer at once", async () => {
    const { controller, poll } = abortablePoll(roleSqs, stand);
    await expectNextConsumerGetsIt(async () => {
      controller.abort();
      expect(await poll).toBe("AbortError");
    }, "after a dropped JSON poll");
  });

  it("query protocol (AWS CLI 2.9, socket closed): the message it took is visible to the next consumer at once", async () => {
    const { drop } = await openQueryPoll(stand, creds);
    await expectNextConsumerGetsIt(drop, "after a dropped query poll");
  });

  it("a caller still connected gets its messages; nothing is released", async () => {
    const releasedBefore = stand.counters().abandonedReceivesReleased;
    const poll = roleSqs.send(new ReceiveMessageCommand({ QueueUrl: stand.queue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 20 }));
    await untilGateway(stand, (c) => c.receivesOpen === 1, "the long poll is forwarded to fauxqs");
    const sent = await stand.clients.admin.sqs.send(new SendMessageCommand({ QueueUrl: stand.queue.url, MessageBody: "kept" }));
    const { Messages = [] } = await poll;
    expect(Messages.map((m) => m.MessageId)).toEqual([sent.MessageId]);
    await roleSqs.send(new DeleteMessageCommand({ QueueUrl: stand.queue.url, ReceiptHandle: Messages[0]!.ReceiptHandle! }));
    expect(stand.counters()).toMatchObject({ abandonedReceivesReleased: releasedBefore, receivesOpen: 0, receivesAbandoned: 0 });
  });
});

describe("gateway.close() with long polls open", () => {
  let stand: StandIn;
  let roleSqs: SQSClient;

  beforeAll(async () => {
    stand = await startStandIn({ visibilityTimeoutSeconds: VISIBILITY_TIMEOUT });
    roleSqs = new SQSClient({ ...stand.clientConfig(roleCreds(stand)), maxAttempts: 1 });
  });

  afterAll(async () => {
    roleSqs?.destroy();
    await stand?.close();
  });

  it("ends the upstream polls at once, abandoned or not", async () => {
    const receive = () =>
      new ReceiveMessageCommand({ QueueUrl: stand.queue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 20 });
    // The queue is empty apart from the s3:TestEvent: take it first so both polls wait.
    await stand.clients.admin.sqs.send(new ReceiveMessageCommand({ QueueUrl: stand.queue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    const controller = new AbortController();
    const abandoned = roleSqs.send(receive(), { abortSignal: controller.signal }).then(
      () => "answered",
      (error: Error) => error.name,
    );
    const connected = roleSqs.send(receive()).then(
      () => "answered",
      () => "failed",
    );
    await untilGateway(stand, (c) => c.receivesOpen === 2, "both polls are forwarded to fauxqs");
    controller.abort();
    expect(await abandoned).toBe("AbortError");
    await untilGateway(stand, (c) => c.receivesAbandoned === 1, "the gateway saw one caller leave");

    await stand.gateway.close();
    expect(await connected).toBe("failed");
    // fauxqs would hold them for 20 s: only the gateway cutting them short gets here within the wait.
    await untilGateway(stand, (c) => c.receivesOpen === 0, "no poll left upstream");
  });
});

describe('abandonedReceives: "keep" (as SQS)', () => {
  let stand: StandIn;
  let roleSqs: SQSClient;

  beforeAll(async () => {
    stand = await startStandIn({ visibilityTimeoutSeconds: VISIBILITY_TIMEOUT, abandonedReceives: "keep" });
    roleSqs = new SQSClient(stand.clientConfig(roleCreds(stand)));
    await discardTestEvent(stand);
  });

  afterAll(async () => {
    roleSqs?.destroy();
    await stand?.close();
  });

  it("a message sent after the caller left goes to the dead poll and stays hidden from the next consumer", async () => {
    const { controller, poll } = abortablePoll(roleSqs, stand);
    await untilGateway(stand, (c) => c.receivesOpen === 1, "the long poll is forwarded to fauxqs");
    await stand.clients.admin.sqs.send(new GetQueueAttributesCommand({ QueueUrl: stand.queue.url, AttributeNames: ["QueueArn"] }));
    controller.abort();
    expect(await poll).toBe("AbortError");
    await untilGateway(stand, (c) => c.receivesAbandoned === 1 || c.receivesOpen === 0, "the gateway saw the caller leave");

    await stand.clients.admin.sqs.send(new SendMessageCommand({ QueueUrl: stand.queue.url, MessageBody: "taken by the dead poll" }));
    await untilGateway(stand, (c) => c.receivesOpen === 0, "the abandoned poll is over");
    const { Messages = [] } = await roleSqs.send(
      new ReceiveMessageCommand({ QueueUrl: stand.queue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    expect(Messages).toEqual([]);
    expect(stand.counters()).toMatchObject({ abandonedReceivesKept: 1, abandonedReceivesReleased: 0 });
    const { Attributes } = await stand.clients.admin.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: stand.queue.url, AttributeNames: ["ApproximateNumberOfMessagesNotVisible"] }),
    );
    expect(Attributes?.ApproximateNumberOfMessagesNotVisible).toBe("1");
  });
});
