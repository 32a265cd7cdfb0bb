// The SDK sends an SQS request to the host of the QueueUrl it carries unless the client pins its endpoint. The
// daemon's SQS client is pinned: a QueueUrl naming another host never receives the signed request (loopback only).
import { ChangeMessageVisibilityCommand, SQSClient } from "@aws-sdk/client-sqs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAwsClients } from "../../../src/aws/clients.js";

interface Recorder {
  server: Server;
  origin: string;
  requests: { url: string | undefined; headers: IncomingHttpHeaders }[];
}

/** An HTTP server on 127.0.0.1 that records every request and answers like SQS does for an impossible handle. */
async function recorder(): Promise<Recorder> {
  const requests: Recorder["requests"] = [];
  const server = createServer((req, res) => {
    requests.push({ url: req.url, headers: req.headers });
    req.resume();
    res.writeHead(404, {
      "content-type": "application/x-amz-json-1.0",
      "x-amzn-query-error": "ReceiptHandleIsInvalid;Sender",
    });
    res.end(JSON.stringify({ __type: "com.amazonaws.sqs#ReceiptHandleIsInvalid", message: "The input receipt handle is invalid." }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return { server, origin: `http://127.0.0.1:${address.port}`, requests };
}

const credentials = async () => ({ accessKeyId: "AKIDLOCALTEST", secretAccessKey: "local-test-secret", sessionToken: "local-token" });

describe("the SQS client's endpoint", () => {
  let endpoint: Recorder;
  let queueHost: Recorder;
  beforeAll(async () => {
    [endpoint, queueHost] = await Promise.all([recorder(), recorder()]);
  });
  afterAll(async () => {
    for (const r of [endpoint, queueHost]) await new Promise<void>((resolve) => r.server.close(() => resolve()));
  });

  const probe = (sqs: SQSClient) =>
    sqs
      .send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: `${queueHost.origin}/123456789012/q`,
          ReceiptHandle: "impossible",
          VisibilityTimeout: 0,
        }),
      )
      .catch((err: unknown) => err);

  it("the SDK by itself follows the QueueUrl's host (why the daemon pins it)", async () => {
    const before = queueHost.requests.length;
    const plain = new SQSClient({ region: "us-east-1", credentials, maxAttempts: 1, endpoint: undefined });
    try {
      await probe(plain);
    } finally {
      plain.destroy();
    }
    expect(queueHost.requests.length).toBe(before + 1);
  });

  it("createAwsClients pins every SQS request to the configured endpoint: the QueueUrl's host gets nothing", async () => {
    const queueBefore = queueHost.requests.length;
    const endpointBefore = endpoint.requests.length;
    const clients = createAwsClients({ region: "us-east-1", credentials, concurrency: 1, sqsEndpoint: endpoint.origin });
    try {
      const err = await probe(clients.sqs);
      expect((err as { name?: string }).name).toBe("ReceiptHandleIsInvalid");
    } finally {
      clients.destroy();
    }
    expect(queueHost.requests.length).toBe(queueBefore);
    expect(endpoint.requests.length).toBe(endpointBefore + 1);
    expect(endpoint.requests.at(-1)?.headers["x-amz-security-token"]).toBe("local-token");
  });
});
