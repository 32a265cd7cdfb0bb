/**
 * Composition root: Config -> processors -> IMDS identity -> clients -> identity check -> pipeline -> consumer.
 * Wiring only; every decision lives in the modules it wires.
 */
import type { Env } from "./config/env.js";
import { queueLocationOf, type QueueLocation } from "./config/queue-url.js";
import type { Config } from "./config/schema.js";
import { prefetchOf } from "./config/schema.js";
import { createAwsClients, type AwsClients } from "./aws/clients.js";
import { createImdsCredentialProvider } from "./aws/credentials.js";
import { fetchInstanceIdentity, type InstanceIdentity } from "./aws/imds.js";
import { verifyIdentity, type VerifiedIdentity } from "./identity/self-check.js";
import { QueueAccessError } from "./errors/fatal.js";
import type { Logger } from "./observability/logger.js";
import { Metrics } from "./observability/metrics.js";
import type { Outcome } from "./pipeline/outcome.js";
import { createPipeline } from "./pipeline/pipeline.js";
import { createDocumentRunner } from "./pipeline/process-document.js";
import type { SubmitContext } from "./pipeline/types.js";
import { resolveProcessors, type BuiltinOptions } from "./processors/registry.js";
import type { Processor } from "./processors/types.js";
import { decideQueueAccess, probeQueue, queueRefusal } from "./queue/access-probe.js";
import { Consumer, type ConsumerEvent } from "./queue/consumer.js";
import { parseNotification } from "./queue/notifications.js";
import type { DocumentRef } from "./domain/document.js";

export interface Prepared {
  config: Config;
  instance: InstanceIdentity;
  identity: VerifiedIdentity;
  region: string;
  /** The validated queue URL and the one endpoint every SQS request goes to. */
  queue: QueueLocation;
  clients: AwsClients;
  processors: Processor[];
}

/**
 * Everything that must hold before the first S3 or SQS call: processors load (local, so config errors come before
 * any network), IMDS answers, and STS shows the expected role for this instance. Throws typed errors (exit 75/77/78).
 */
export async function prepare(config: Config, log: Logger, processorBaseDir: string, env: Env): Promise<Prepared> {
  const queue = queueLocationOf(config, env);
  const processors = await resolveProcessors(config.processor, processorBaseDir, builtinOptions(config));
  const instance = await fetchInstanceIdentity({
    timeoutMs: config.imdsTimeoutMs,
    maxRetries: config.imdsMaxRetries,
    roleWaitMs: config.instanceProfileWaitSeconds * 1_000,
  });
  const region = config.region ?? queue.region ?? instance.region;
  const credentials = createImdsCredentialProvider({
    timeoutMs: config.imdsTimeoutMs,
    maxRetries: config.imdsMaxRetries,
    log,
  });
  const clients = createAwsClients({ region, credentials, concurrency: config.concurrency, sqsEndpoint: queue.endpoint });
  try {
    const identity = await verifyIdentity({
      sts: clients.sts,
      instance,
      expectedRoleName: config.expectedRoleName,
      expectedAccountId: config.expectedAccountId,
    });
    log.info(
      { roleArn: identity.arn, account: identity.account, instanceId: identity.instanceId, region },
      "identity verified: running as the expected instance role",
    );
    return { config, instance, identity, region, queue, clients, processors };
  } catch (err) {
    clients.destroy();
    throw err;
  }
}

export interface QueueProofOptions {
  /** Aborted by a stop signal during start-up: give up at once. */
  signal?: AbortSignal;
  /** How long an unanswered probe is tried again before exit 75 (SQS blips at boot need no restart). */
  budgetMs?: number;
  sleep?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
}

/**
 * Before READY: the role can consume the queue, proven with the calls `check` makes (no message touched). A queue it
 * may not use (another account or region, not in the policy) is refused (exit 77), an SQS that stays unreachable is
 * temporary (75): either way the daemon never reports itself ready for a queue it cannot consume.
 */
export async function verifyQueueAccess(prepared: Prepared, log: Logger, options: QueueProofOptions = {}): Promise<void> {
  const { queue, clients, identity, instance, region } = prepared;
  const { signal, budgetMs = 10_000, sleep = pause } = options;
  const started = Date.now();
  for (let delayMs = 1_000; ; delayMs *= 2) {
    const access = decideQueueAccess(await probeQueue(clients.sqs, queue.url, signal));
    if (access.kind === "allowed") {
      log.info(
        { queue: queue.name, account: queue.account, region: queue.region ?? region, endpoint: queue.endpoint },
        "queue access verified: sqs:ChangeMessageVisibility and sqs:DeleteMessage authorized (no message touched)",
      );
      return;
    }
    const refusal = queueRefusal(access, {
      queue,
      region,
      roleArn: identity.arn,
      instance: { accountId: instance.accountId, region: instance.region },
    });
    const retry = access.kind === "unavailable" && signal?.aborted !== true && Date.now() - started + delayMs <= budgetMs;
    if (!retry) throw new QueueAccessError(refusal.code, refusal.message, { cause: access.failures[0]?.error });
    log.warn({ retryInMs: delayMs, reason: refusal.message }, "queue access not proven yet: SQS did not answer");
    await sleep(delayMs, signal);
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Settings of the built-in processors, from the config. */
export function builtinOptions(config: Config): BuiltinOptions {
  return {
    text: {
      maxBufferedBytes: config.maxBufferedBytes,
      extractionTimeoutMs: config.extractionTimeoutSeconds * 1_000,
      extractionMemoryBytes: config.extractionMemoryBytes,
    },
  };
}

/** Runs one document with its per-document log line and metrics. */
export function createInstrumentedRunner(prepared: Prepared, log: Logger, metrics: Metrics) {
  const { config, clients, processors } = prepared;
  const run = createDocumentRunner({
    s3: clients.s3,
    outputBucket: config.outputBucket,
    outputPrefix: config.outputPrefix,
    maxObjectBytes: config.maxObjectBytes,
    processors,
    log,
  });
  return async (doc: DocumentRef, ctx: SubmitContext): Promise<Outcome> => {
    const started = Date.now();
    metrics.documentStarted();
    const outcome = await run(doc, ctx);
    const durationMs = Date.now() - started;
    metrics.documentEnded(outcome, durationMs, doc.eventTime, Date.now());
    const line = {
      outcome: outcome.status,
      key: doc.key,
      bucket: doc.bucket,
      messageId: ctx.messageId,
      receiveCount: ctx.receiveCount,
      durationMs,
      size: doc.size,
      ...(outcome.status === "done"
        ? { bytesIn: outcome.bytesIn, bytesOut: outcome.bytesOut, outputs: outcome.outputs }
        : outcome.status === "superseded"
          ? { reason: outcome.reason }
          : outcome.status === "failed-permanently"
            ? { code: outcome.code, reason: outcome.reason, outputs: outcome.outputs }
            : { code: outcome.code, reason: outcome.reason }),
    };
    // A permanent failure is the document's problem, not the daemon's: reported, recorded, acknowledged.
    if (outcome.status === "done" || outcome.status === "superseded") log.info(line, "document");
    else log.warn(line, "document");
    return outcome;
  };
}

export interface RunningDaemon {
  consumer: Consumer;
  metrics: Metrics;
  /** Settles when the receive loop ends (after stop), rejects on a bug. */
  loop: Promise<void>;
}

export function startDaemon(prepared: Prepared, log: Logger, onEvent?: (event: ConsumerEvent) => void): RunningDaemon {
  const { config, clients } = prepared;
  const metrics = new Metrics();
  const pipeline = createPipeline({
    concurrency: config.concurrency,
    prefetch: prefetchOf(config),
    maxInFlightBytes: config.maxInFlightBytes,
    run: createInstrumentedRunner(prepared, log, metrics),
  });
  const parseOptions = {
    sourceBucket: config.sourceBucket,
    outputBucket: config.outputBucket,
    outputPrefix: config.outputPrefix,
  };
  const consumer = new Consumer({
    sqs: clients.sqs,
    queueUrl: config.queueUrl,
    pipeline,
    parse: (body) => parseNotification(body, parseOptions),
    log,
    visibilityTimeoutSeconds: config.visibilityTimeoutSeconds,
    maxProcessingSeconds: config.maxProcessingSeconds,
    waitTimeSeconds: config.waitTimeSeconds,
    onEvent: (event) => {
      metrics.onConsumerEvent(event);
      onEvent?.(event);
    },
  });
  return { consumer, metrics, loop: consumer.start() };
}
