// The SDK transport's receive against a scripted server on 127.0.0.1, through a real SQSClient (its retry middleware
// included; aws-sdk-client-mock would bypass it): once the noRetry signal aborts, a failed attempt is final.
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

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  if (!check()) throw new Error("condition not met within 2 s");
}

const input = { queueUrl: "http://127.0.0.1/123456789012/q", maxMessages: 10, waitTimeSeconds: 20, visibilityTimeoutSeconds: 30, systemAttributes: [] };

describe("sdkTransport receiveMessages with noRetry", () => {
  it.each([
    ["not aborted: the SDK retries the 503", false, 2],
    ["aborted while the attempt runs: its 503 is final", true, 1],
  ])("%s", async (_label, abortFirst, requests) => {
    const transport = sdkTransport(() => Promise.reject(new Error("no S3 here")), sqs);
    const noRetry = new AbortController();
    let answerFirst: (() => void) | undefined;
    server.handle((_req, res, _body, i) => {
      if (i > 0) return json(res, 200, {});
      answerFirst = () => json(res, 503, { __type: "InternalFailure", message: "busy" });
    });
    const pending = transport.queue.receiveMessages(input, new AbortController().signal, noRetry.signal).then(
      (messages) => messages,
      (err: unknown) => err as Error & { $metadata?: { httpStatusCode?: number } },
    );
    await until(() => answerFirst !== undefined);
    if (abortFirst) noRetry.abort();
    answerFirst?.();
    const result = await pending;
    expect(server.requests).toHaveLength(requests);
    if (abortFirst) expect(result).toMatchObject({ name: "InternalFailure", $metadata: { httpStatusCode: 503 } });
    else expect(result).toEqual([]);
  });
});
