// The proof that the role can consume the queue (shared by `check` and the daemon's start, before READY): which SQS
// answers to ChangeMessageVisibility/DeleteMessage with an impossible receipt handle prove access, which refuse it,
// and which only mean "not yet". Answers are SQS's documented ones, not an emulator's.
import { ChangeMessageVisibilityCommand, DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import type { QueueLocation } from "../../../src/config/queue-url.js";
import { ErrorCode, ExitCode, QueueAccessError, exitCodeFor } from "../../../src/errors/fatal.js";
import { silentLogger } from "../../../src/logging/logger.js";
import {
  IMPOSSIBLE_RECEIPT_HANDLE,
  classifyProbe,
  decideQueueAccess,
  probeQueue,
  queueRefusal,
  type ProbeResult,
  type QueueAccess,
} from "../../../src/queue/access-probe.js";
import { verifyQueueAccess, type QueueProofTarget } from "../../../src/service/startup.js";

/** An error as the SDK throws it: name, HTTP status and, for SQS's query-compatible errors, the query code. */
const sdkError = (name: string, status: number | undefined, extra: Record<string, unknown> = {}): Error =>
  Object.assign(new Error(`${name} message`), { name, ...(status === undefined ? {} : { $metadata: { httpStatusCode: status } }), ...extra });
const failed = (error: Error): ProbeResult => ({ ok: false, error });
const networkError = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:9`), { name: "Error", code });

describe("classifyProbe", () => {
  it.each([
    ["ReceiptHandleIsInvalid (404 in the SDK's model)", sdkError("ReceiptHandleIsInvalid", 404)],
    ["ReceiptHandleIsInvalid as a 400", sdkError("ReceiptHandleIsInvalid", 400)],
    ["InvalidParameterValue (an expired or malformed handle)", sdkError("InvalidParameterValue", 400)],
    ["MessageNotInflight", sdkError("MessageNotInflight", 400)],
    ["InvalidIdFormat (DeleteMessage)", sdkError("InvalidIdFormat", 400)],
    ["the code only in the query-compatible header", sdkError("SQSServiceException", 400, { Code: "ReceiptHandleIsInvalid" })],
  ])("%s: the call was authorized", (_case, error) => {
    expect(classifyProbe(failed(error))).toBe("authorized");
  });

  it("an answered call is authorized", () => {
    expect(classifyProbe({ ok: true })).toBe("authorized");
  });

  it.each([
    ["AccessDenied 403", sdkError("AccessDenied", 403)],
    ["AccessDeniedException (JSON protocol), code AccessDenied", sdkError("AccessDeniedException", 403, { Code: "AccessDenied" })],
    ["AccessDeniedException as the Common Errors page lists it (400)", sdkError("AccessDeniedException", 400)],
    ["InvalidClientTokenId (another partition's endpoint)", sdkError("InvalidClientTokenId", 403)],
  ])("%s: denied", (_case, error) => {
    expect(classifyProbe(failed(error))).toBe("denied");
  });

  it.each([
    ["QueueDoesNotExist", sdkError("QueueDoesNotExist", 400)],
    ["the legacy query code", sdkError("SQSServiceException", 400, { Code: "AWS.SimpleQueueService.NonExistentQueue" })],
    ["QueueDeletedRecently", sdkError("QueueDeletedRecently", 400)],
  ])("%s: not found (or not visible to the role)", (_case, error) => {
    expect(classifyProbe(failed(error))).toBe("not-found");
  });

  it.each([
    ["connection refused", networkError("ECONNREFUSED")],
    ["DNS failure", networkError("ENOTFOUND")],
    ["a timeout", sdkError("TimeoutError", undefined)],
    ["RequestThrottled (a 403 that is not a denial)", sdkError("RequestThrottled", 403)],
    ["InternalFailure 500", sdkError("InternalFailure", 500)],
    ["ServiceUnavailable 503", sdkError("ServiceUnavailable", 503)],
    ["an unknown 502", sdkError("BadGateway", 502)],
    ["429", sdkError("TooManyRequests", 429)],
    ["ExpiredToken (credentials being renewed)", sdkError("ExpiredToken", 400)],
    ["IMDS failing while credentials are fetched", sdkError("CredentialsProviderError", undefined)],
  ])("%s: unavailable (temporary)", (_case, error) => {
    expect(classifyProbe(failed(error))).toBe("unavailable");
  });

  it.each([
    ["InvalidSecurity", sdkError("InvalidSecurity", 400)],
    ["OverLimit 403", sdkError("OverLimit", 403)],
    ["an unknown 403", sdkError("SomethingNew", 403)],
    ["an unknown 400", sdkError("InvalidAddress", 400)],
  ])("%s: unexpected (proves nothing)", (_case, error) => {
    expect(classifyProbe(failed(error))).toBe("unexpected");
  });
});

describe("decideQueueAccess", () => {
  const invalidHandle = failed(sdkError("ReceiptHandleIsInvalid", 404));
  const denied = failed(sdkError("AccessDenied", 403));
  const down = failed(networkError("ECONNREFUSED"));

  it("both calls authorized: allowed", () => {
    expect(decideQueueAccess({ changeMessageVisibility: invalidHandle, deleteMessage: invalidHandle })).toEqual({ kind: "allowed" });
  });

  it("one denial is enough, whatever the other call met, and names the action", () => {
    for (const other of [invalidHandle, down]) {
      const access = decideQueueAccess({ changeMessageVisibility: other, deleteMessage: denied });
      expect(access).toMatchObject({ kind: "denied", failures: [{ action: "sqs:DeleteMessage" }] });
    }
  });

  it("one unanswered call: not proven, temporary", () => {
    expect(decideQueueAccess({ changeMessageVisibility: invalidHandle, deleteMessage: down })).toMatchObject({
      kind: "unavailable",
      failures: [{ action: "sqs:DeleteMessage" }],
    });
  });

  it("a missing queue wins over an outage of the other call", () => {
    const missing = failed(sdkError("QueueDoesNotExist", 400));
    expect(decideQueueAccess({ changeMessageVisibility: missing, deleteMessage: down }).kind).toBe("not-found");
  });
});

describe("queueRefusal", () => {
  const queue: QueueLocation = {
    url: "https://sqs.eu-west-1.amazonaws.com/210987654321/other-events",
    endpoint: "https://sqs.eu-west-1.amazonaws.com",
    account: "210987654321",
    name: "other-events",
    region: "eu-west-1",
  };
  const ctx = {
    queue,
    region: "eu-west-1",
    roleArn: "arn:aws:sts::123456789012:assumed-role/EC2DocumentProcessorRole/i-0123456789abcdef0",
    instance: { accountId: "123456789012", region: "us-east-1" },
  };
  const deniedBoth: Exclude<QueueAccess, { kind: "allowed" }> = {
    kind: "denied",
    failures: [
      { action: "sqs:ChangeMessageVisibility", error: sdkError("AccessDenied", 403) },
      { action: "sqs:DeleteMessage", error: sdkError("AccessDenied", 403) },
    ],
  };

  it("denied: exit 77 naming the queue, its account and region vs the instance's, and the policy's queue ARN", () => {
    const r = queueRefusal(deniedBoth, ctx);
    expect(r.code).toBe(ErrorCode.queueAccessDenied);
    expect(new QueueAccessError(r.code, r.message).exitCode).toBe(ExitCode.noPerm);
    expect(r.message).toContain("the role may not consume the queue other-events (account 210987654321, region eu-west-1)");
    expect(r.message).toContain("other-events (account 210987654321, region eu-west-1): sqs:ChangeMessageVisibility and sqs:DeleteMessage: AccessDenied 403 (\"AccessDenied message\").");
    expect(r.message).toContain("in account 123456789012, region us-east-1: the queue is in another account and another region.");
    expect(r.message).toContain(
      "statement ConsumeNotifications) must allow sqs:ReceiveMessage, sqs:DeleteMessage and sqs:ChangeMessageVisibility on arn:aws:sqs:eu-west-1:210987654321:other-events",
    );
    expect(r.message).toContain("that queue's own policy must allow this role");
    expect(r.message).toContain(`set queueUrl to that one (now ${queue.url})`);
  });

  it("a queue of this account and region: no 'another account' talk; the ARN takes the role's partition", () => {
    const local = { ...queue, account: "123456789012", region: "cn-north-1", url: "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q", name: "q" };
    const r = queueRefusal(deniedBoth, {
      queue: local,
      region: "cn-north-1",
      roleArn: "arn:aws-cn:sts::123456789012:assumed-role/EC2DocumentProcessorRole/i-1",
      instance: { accountId: "123456789012", region: "cn-north-1" },
    });
    expect(r.message).toContain("arn:aws-cn:sqs:cn-north-1:123456789012:q");
    expect(r.message).toContain("region cn-north-1.\nFix:");
    expect(r.message).not.toContain("the queue is in another");
  });

  it("a queue on the stand-in (no region in its URL) takes the client's region", () => {
    const standIn = { ...queue, url: "http://127.0.0.1:4566/123456789012/q", endpoint: "http://127.0.0.1:4566", region: undefined };
    const r = queueRefusal(deniedBoth, { ...ctx, queue: standIn, region: "us-east-1" });
    expect(r.message).toContain("arn:aws:sqs:us-east-1:210987654321:other-events");
  });

  it("not found: exit 77, saying SQS answers a missing and an invisible queue alike", () => {
    const r = queueRefusal({ kind: "not-found", failures: [{ action: "sqs:ChangeMessageVisibility", error: sdkError("QueueDoesNotExist", 400) }] }, ctx);
    expect(r.code).toBe(ErrorCode.queueAccessDenied);
    expect(r.message).toContain("does not exist or this role may not see it");
    expect(r.message).toContain("aws sqs get-queue-url --queue-name other-events");
  });

  it("unavailable and unexpected: exit 75 (systemd restarts), naming the endpoint", () => {
    for (const kind of ["unavailable", "unexpected"] as const) {
      const r = queueRefusal({ kind, failures: [{ action: "sqs:DeleteMessage", error: networkError("ECONNREFUSED") }] }, ctx);
      expect(r.code).toBe(ErrorCode.queueUnavailable);
      expect(exitCodeFor(new QueueAccessError(r.code, r.message))).toBe(ExitCode.tempFail);
    }
    const r = queueRefusal({ kind: "unavailable", failures: [{ action: "sqs:DeleteMessage", error: networkError("ECONNREFUSED") }] }, ctx);
    expect(r.message).toContain("cannot reach SQS at https://sqs.eu-west-1.amazonaws.com");
  });
});

describe("probeQueue and verifyQueueAccess (mocked SQS)", () => {
  const sqsMock = mockClient(SQSClient);
  afterEach(() => sqsMock.reset());
  const QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/doc-events";

  function prepared(): QueueProofTarget {
    return {
      queue: { url: QUEUE_URL, endpoint: "https://sqs.us-east-1.amazonaws.com", account: "123456789012", name: "doc-events", region: "us-east-1" },
      clients: { sqs: new SQSClient({ region: "us-east-1" }) },
      identity: { arn: "arn:aws:sts::123456789012:assumed-role/R/i-1", account: "123456789012", roleName: "R", instanceId: "i-1" },
      instance: { instanceId: "i-1", accountId: "123456789012", region: "us-east-1", availabilityZone: "us-east-1a", roleName: "R" },
      region: "us-east-1",
    };
  }

  it("sends only ChangeMessageVisibility and DeleteMessage with the impossible handle: no ReceiveMessage, no message touched", async () => {
    sqsMock.on(ChangeMessageVisibilityCommand).rejects(sdkError("ReceiptHandleIsInvalid", 404));
    sqsMock.on(DeleteMessageCommand).rejects(sdkError("ReceiptHandleIsInvalid", 404));
    const probes = await probeQueue(new SQSClient({ region: "us-east-1" }), QUEUE_URL);
    expect(decideQueueAccess(probes)).toEqual({ kind: "allowed" });
    expect(sqsMock.commandCalls(ChangeMessageVisibilityCommand).map((c) => c.args[0].input)).toEqual([
      { QueueUrl: QUEUE_URL, ReceiptHandle: IMPOSSIBLE_RECEIPT_HANDLE, VisibilityTimeout: 0 },
    ]);
    expect(sqsMock.commandCalls(DeleteMessageCommand).map((c) => c.args[0].input)).toEqual([
      { QueueUrl: QUEUE_URL, ReceiptHandle: IMPOSSIBLE_RECEIPT_HANDLE },
    ]);
    expect(sqsMock.commandCalls(ReceiveMessageCommand)).toEqual([]);
  });

  it("verifyQueueAccess resolves when both calls are authorized", async () => {
    sqsMock.on(ChangeMessageVisibilityCommand).rejects(sdkError("MessageNotInflight", 400));
    sqsMock.on(DeleteMessageCommand).rejects(sdkError("ReceiptHandleIsInvalid", 404));
    await expect(verifyQueueAccess(prepared(), silentLogger())).resolves.toBeUndefined();
  });

  it("verifyQueueAccess throws exit 77 when the role is denied", async () => {
    sqsMock.on(ChangeMessageVisibilityCommand).rejects(sdkError("AccessDenied", 403));
    sqsMock.on(DeleteMessageCommand).rejects(sdkError("AccessDenied", 403));
    const err = await verifyQueueAccess(prepared(), silentLogger()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueAccessError);
    expect(exitCodeFor(err)).toBe(ExitCode.noPerm);
    expect((err as Error).message).toContain("arn:aws:sqs:us-east-1:123456789012:doc-events");
  });

  it("verifyQueueAccess tries an unanswered probe again within its budget, then throws exit 75", async () => {
    sqsMock.on(ChangeMessageVisibilityCommand).rejects(networkError("ECONNREFUSED"));
    sqsMock.on(DeleteMessageCommand).rejects(networkError("ECONNREFUSED"));
    const sleeps: number[] = [];
    const err = await verifyQueueAccess(prepared(), silentLogger(), {
      budgetMs: 3_500,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    }).catch((e: unknown) => e);
    expect(exitCodeFor(err)).toBe(ExitCode.tempFail);
    expect((err as Error).message).toContain("cannot reach SQS at https://sqs.us-east-1.amazonaws.com");
    expect(sleeps).toEqual([1_000, 2_000]);
    expect(sqsMock.commandCalls(DeleteMessageCommand)).toHaveLength(3);
  });

  it("verifyQueueAccess: an SQS blip at start passes without a restart", async () => {
    sqsMock
      .on(ChangeMessageVisibilityCommand)
      .rejectsOnce(sdkError("InternalFailure", 500))
      .rejects(sdkError("ReceiptHandleIsInvalid", 404));
    sqsMock.on(DeleteMessageCommand).rejects(sdkError("ReceiptHandleIsInvalid", 404));
    await expect(verifyQueueAccess(prepared(), silentLogger(), { sleep: async () => {} })).resolves.toBeUndefined();
    expect(sqsMock.commandCalls(ChangeMessageVisibilityCommand)).toHaveLength(2);
  });

  it("verifyQueueAccess never retries a denial", async () => {
    sqsMock.on(ChangeMessageVisibilityCommand).rejects(sdkError("AccessDenied", 403));
    sqsMock.on(DeleteMessageCommand).rejects(networkError("ECONNREFUSED"));
    const err = await verifyQueueAccess(prepared(), silentLogger(), { sleep: async () => {} }).catch((e: unknown) => e);
    expect(exitCodeFor(err)).toBe(ExitCode.noPerm);
    expect(sqsMock.commandCalls(ChangeMessageVisibilityCommand)).toHaveLength(1);
  });

  it("verifyQueueAccess stops trying at once when start-up is being stopped", async () => {
    sqsMock.on(ChangeMessageVisibilityCommand).rejects(networkError("ECONNREFUSED"));
    sqsMock.on(DeleteMessageCommand).rejects(networkError("ECONNREFUSED"));
    const stop = new AbortController();
    stop.abort();
    const err = await verifyQueueAccess(prepared(), silentLogger(), { signal: stop.signal }).catch((e: unknown) => e);
    expect(exitCodeFor(err)).toBe(ExitCode.tempFail);
    expect(sqsMock.commandCalls(DeleteMessageCommand)).toHaveLength(1);
  });
});
