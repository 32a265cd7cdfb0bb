// The SDK transport's receive against a scripted server on 127.0.0.1, through a real SQSClient (its retry middleware
// included; aws-sdk-client-mock would bypass it): one attempt, whatever the client's maxAttempts, and the first
// attempt's error as it was. Other calls keep the SDK's retries.
import { SQSClient } from "@aws-sdk/client-sqs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sdkTransport } from "../../../src/aws/sdk-transport.js";
import { json, startServer, type TestServer } from "./lean/server.js";

let server: TestServer;
let sqs: SQSClient;

beforeEach(async () => {
  server = await startServer();
  sqs = new SQSClient({
    region: "us-east-1",
    endpoint: server.url,
    credentials: { accessKeyId: "AKIDSDK", secretAccessKey: "secret" },
    maxAttempts: 3,
  });
});
afterEach(async () => {
  sqs.destroy();
  await server.close();
});

const input = { queueUrl: "http://127.0.0.1/123456789012/q", maxMessages: 10, waitTimeSeconds: 20, visibilityTimeoutSeconds: 30, systemAttributes: [] };

describe("sdkTransport", () => {
  it("attempts a receive once and throws the 503 as the SDK gave it", async () => {
    const transport = sdkTransport(() => Promise.reject(new Error("no S3 here")), sqs);
    server.handle((_req, res) => json(res, 503, { __type: "InternalFailure", message: "busy" }));
    const err = await transport.queue.receiveMessages(input, new AbortController().signal).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ name: "InternalFailure", $metadata: { httpStatusCode: 503 } });
    expect(server.requests).toHaveLength(1);
  });

  it("still retries the other calls (a delete after a 503)", async () => {
    const transport = sdkTransport(() => Promise.reject(new Error("no S3 here")), sqs);
    server.handle((_req, res, _body, i) => (i === 0 ? json(res, 503, { __type: "InternalFailure", message: "busy" }) : json(res, 200, {})));
    await expect(transport.queue.deleteMessage(input.queueUrl, "rh")).resolves.toBeUndefined();
    expect(server.requests).toHaveLength(2);
  });
});
