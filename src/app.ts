/**
 * Composition root: Config -> processors -> IMDS identity -> clients -> identity check -> pipeline -> consumer.
 * Wiring only; every decision lives in the modules it wires.
 */
import type { Config } from "./config/schema.js";
import { prefetchOf, regionFromQueueUrl } from "./config/schema.js";
import { createAwsClients, type AwsClients } from "./aws/clients.js";
import { createImdsCredentialProvider } from "./aws/credentials.js";
import { fetchInstanceIdentity, type InstanceIdentity } from "./aws/imds.js";
import { verifyIdentity, type VerifiedIdentity } from "./identity/self-check.js";
import type { Logger } from "./observability/logger.js";
import { Metrics } from "./observability/metrics.js";
import type { Outcome } from "./pipeline/outcome.js";
import { createPipeline } from "./pipeline/pipeline.js";
import { createDocumentRunner } from "./pipeline/process-document.js";
import type { SubmitContext } from "./pipeline/types.js";
import { resolveProcessors, type BuiltinOptions } from "./processors/registry.js";
import type { Processor } from "./processors/types.js";
import { Consumer, type ConsumerEvent } from "./queue/consumer.js";
import { parseNotification } from "./queue/notifications.js";
import type { DocumentRef } from "./queue/records.js";

export interface Prepared {
  config: Config;
  instance: InstanceIdentity;
  identity: VerifiedIdentity;
  region: string;
  clients: AwsClients;
  processors: Processor[];
}

/**
 * Everything that must hold before the first S3 or SQS call: processors load (local, so config errors come before
 * any network), IMDS answers, and STS shows the expected role for this instance. Throws typed errors (exit 75/77/78).
 */
export async function prepare(config: Config, log: Logger, processorBaseDir: string): Promise<Prepared> {
  const processors = await resolveProcessors(config.processor, processorBaseDir, builtinOptions(config));
  const instance = await fetchInstanceIdentity({
    timeoutMs: config.imdsTimeoutMs,
    maxRetries: config.imdsMaxRetries,
    roleWaitMs: config.instanceProfileWaitSeconds * 1_000,
  });
  const region = config.region ?? regionFromQueueUrl(config.queueUrl) ?? instance.region;
  const credentials = createImdsCredentialProvider({
    timeoutMs: config.imdsTimeoutMs,
    maxRetries: config.imdsMaxRetries,
    log,
  });
  const clients = createAwsClients({ region, credentials, concurrency: config.concurrency });
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
    return { config, instance, identity, region, clients, processors };
  } catch (err) {
    clients.destroy();
    throw err;
  }
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
