// A stop during start-up (before READY): the queue proof, the last stage before READY, ends at once on a stop signal
// and reports the stop instead of READY or a failure; without a signal it proves access or throws (mocked SQS). Also
// the shared stages' settings: builtinOptions and the IMDS defaults check uses without a config.
import { EventEmitter } from "node:events";
import { ChangeMessageVisibilityCommand, DeleteMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, describe, expect, it } from "vitest";
import { configSchema, type Config } from "../../../src/config/schema.js";
import { ExitCode, QueueAccessError, exitCodeFor } from "../../../src/errors/fatal.js";
import { silentLogger } from "../../../src/logging/logger.js";
import { ShutdownSignals, type SignalSource } from "../../../src/service/lifecycle.js";
import { builtinOptions, imdsOptionsOf, proveQueueUnlessStopped, type QueueProofTarget } from "../../../src/service/startup.js";

const QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/doc-events";
const sdkError = (name: string, status: number): Error => Object.assign(new Error(`${name} message`), { name, $metadata: { httpStatusCode: status } });
const networkError = () => Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { name: "Error", code: "ECONNREFUSED" });

class FakeSignals extends EventEmitter implements SignalSource {
  send(signal: "SIGTERM" | "SIGINT"): void {
    this.emit(signal);
  }
}

function target(): QueueProofTarget {
  return {
    queue: { url: QUEUE_URL, endpoint: "https://sqs.us-east-1.amazonaws.com", account: "123456789012", name: "doc-events", region: "us-east-1" },
    clients: { sqs: new SQSClient({ region: "us-east-1", credentials: { accessKeyId: "ASIAX", secretAccessKey: "s" } }) },
    identity: { arn: "arn:aws:sts::123456789012:assumed-role/R/i-1", account: "123456789012", roleName: "R", instanceId: "i-1" },
    instance: { instanceId: "i-1", accountId: "123456789012", region: "us-east-1", availabilityZone: "us-east-1a", roleName: "R" },
    region: "us-east-1",
  };
}

function watch() {
  const source = new FakeSignals();
  const signals = new ShutdownSignals(source, silentLogger(), () => {
    throw new Error("a single signal must not exit at once");
  });
  return { source, signals };
}

describe("proveQueueUnlessStopped (a stop during start-up, before READY)", () => {
  const sqsMock = mockClient(SQSClient);
  afterEach(() => sqsMock.reset());
  const allow = () => {
    sqsMock.on(ChangeMessageVisibilityCommand).rejects(sdkError("ReceiptHandleIsInvalid", 404));
    sqsMock.on(DeleteMessageCommand).rejects(sdkError("ReceiptHandleIsInvalid", 404));
  };

  it("no signal, access proven: undefined (READY may follow)", async () => {
    allow();
    const { signals } = watch();
    await expect(proveQueueUnlessStopped(target(), silentLogger(), signals)).resolves.toBeUndefined();
    signals.dispose();
  });

  it("no signal, access denied: throws exit 77 (never READY)", async () => {
    sqsMock.on(ChangeMessageVisibilityCommand).rejects(sdkError("AccessDenied", 403));
    sqsMock.on(DeleteMessageCommand).rejects(sdkError("AccessDenied", 403));
    const { signals } = watch();
    const err = await proveQueueUnlessStopped(target(), silentLogger(), signals).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueAccessError);
    expect(exitCodeFor(err)).toBe(ExitCode.noPerm);
    signals.dispose();
  });

  it("a signal while SQS is tried again: the retry is cut short and the stop is reported instead of exit 75", async () => {
    sqsMock.on(ChangeMessageVisibilityCommand).rejects(networkError());
    sqsMock.on(DeleteMessageCommand).rejects(networkError());
    const { source, signals } = watch();
    const waits: number[] = [];
    const stopped = await proveQueueUnlessStopped(target(), silentLogger(), signals, {
      budgetMs: 60_000,
      // The first back-off is where the operator's SIGTERM lands; the wait then ends with the abort, not its time.
      sleep: (ms, signal) =>
        new Promise<void>((resolve) => {
          waits.push(ms);
          signal?.addEventListener("abort", () => resolve(), { once: true });
          source.send("SIGTERM");
        }),
    });
    expect(stopped).toBe("SIGTERM");
    expect(waits).toEqual([1_000]);
    // One probe before the signal, at most one more (already aborted) after it: no further retries.
    expect(sqsMock.commandCalls(DeleteMessageCommand).length).toBeLessThanOrEqual(2);
    signals.dispose();
  });

  it("a signal before the proof (during IMDS/STS): the stop is reported even though access would be proven", async () => {
    allow();
    const { source, signals } = watch();
    source.send("SIGINT");
    await expect(proveQueueUnlessStopped(target(), silentLogger(), signals)).resolves.toBe("SIGINT");
    signals.dispose();
  });

  it("a signal before the proof: a denial found meanwhile is not reported (stopping, not failing)", async () => {
    sqsMock.on(ChangeMessageVisibilityCommand).rejects(sdkError("AccessDenied", 403));
    sqsMock.on(DeleteMessageCommand).rejects(sdkError("AccessDenied", 403));
    const { source, signals } = watch();
    source.send("SIGTERM");
    await expect(proveQueueUnlessStopped(target(), silentLogger(), signals)).resolves.toBe("SIGTERM");
    signals.dispose();
  });
});

describe("the shared stages' settings", () => {
  const defaults = configSchema.shape;

  it("imdsOptionsOf: the config's IMDS settings, or the schema's defaults without a config", () => {
    expect(imdsOptionsOf(undefined)).toEqual({
      timeoutMs: defaults.imdsTimeoutMs.parse(undefined),
      maxRetries: defaults.imdsMaxRetries.parse(undefined),
    });
    expect(imdsOptionsOf({ imdsTimeoutMs: 1_234, imdsMaxRetries: 7 } as Config)).toEqual({ timeoutMs: 1_234, maxRetries: 7 });
  });

  it("builtinOptions: the text and ocr processors' limits from the config, seconds as milliseconds", () => {
    const config = {
      maxBufferedBytes: 10,
      extractionTimeoutSeconds: 3,
      extractionMemoryBytes: 99,
      ocrLanguages: "eng+deu",
      ocrMaxPages: 7,
      ocrMaxPixels: 1_000_000,
      ocrPageTimeoutSeconds: 4,
      ocrTimeoutSeconds: 5,
      ocrMemoryBytes: 98,
    } as Config;
    expect(builtinOptions(config)).toEqual({
      text: { maxBufferedBytes: 10, extractionTimeoutMs: 3_000, extractionMemoryBytes: 99 },
      ocr: {
        languages: "eng+deu",
        maxBufferedBytes: 10,
        maxPages: 7,
        maxPixels: 1_000_000,
        pageTimeoutMs: 4_000,
        timeoutMs: 5_000,
        memoryBytes: 98,
      },
    });
  });
});
