/**
 * The one composition root: config -> staged start-up (service/startup.ts) -> pipeline -> consumer -> supervision,
 * for `run` and for `process <key>`. Wiring only; every decision (the checks, the drain, the log policy) lives in the
 * modules it wires. Only src/main.ts imports this file (the lint rule in eslint.config.js enforces it).
 */
import { dirname } from "node:path";
import { assertNoStaticCredentials, readIfExists } from "./aws/credentials.js";
import type { Env } from "./config/env.js";
import { configPathOf, loadConfig } from "./config/load.js";
import type { Config } from "./config/schema.js";
import { prefetchOf } from "./config/schema.js";
import { ExitCode } from "./errors/fatal.js";
import { logDocument } from "./observability/document-log.js";
import { unredactedChild, type Logger } from "./logging/logger.js";
import { Metrics } from "./observability/metrics.js";
import { startMetricsEndpoint, type MetricsEndpoint } from "./observability/prometheus.js";
import type { Outcome } from "./pipeline/outcome.js";
import { IdleCollector, exposedGc } from "./pipeline/idle-collector.js";
import { createPipeline } from "./pipeline/pipeline.js";
import { createDocumentRunner } from "./pipeline/process-document.js";
import type { SubmitContext } from "./pipeline/types.js";
import { Consumer, type ConsumerEvent } from "./queue/consumer.js";
import { parseNotification } from "./queue/notifications.js";
import type { DocumentRef } from "./domain/document.js";
import { Liveness, stallAfterMs, supervise, type ShutdownSignals, type SupervisedDaemon } from "./service/lifecycle.js";
import { prepare, proveQueueUnlessStopped, type Prepared } from "./service/startup.js";
import { createNotifier } from "./service/systemd.js";

/** Runs one document with its per-document log line and metrics. */
export function createInstrumentedRunner(prepared: Prepared, log: Logger, metrics: Metrics) {
  const { config, clients, processors } = prepared;
  const documentLog = unredactedChild(log);
  const run = createDocumentRunner({
    objects: clients.transport.objects,
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
    logDocument(documentLog, { doc, messageId: ctx.messageId, receiveCount: ctx.receiveCount, durationMs }, outcome);
    return outcome;
  };
}

/** Bytes of documents after which the next idle moment gets a full collection (src/pipeline/idle-collector.ts): one
 * document of a MiB or more, or a few hundred small ones. */
const IDLE_COLLECT_BYTES = 1024 * 1024;

export interface RunningDaemon extends SupervisedDaemon {
  consumer: Consumer;
  metrics: Metrics;
}

export function startDaemon(prepared: Prepared, log: Logger, onEvent?: (event: ConsumerEvent) => void): RunningDaemon {
  const { config, clients } = prepared;
  const metrics = new Metrics();
  const runDocument = createInstrumentedRunner(prepared, log, metrics);
  const collector = new IdleCollector({
    thresholdBytes: IDLE_COLLECT_BYTES,
    inFlight: () => pipeline.inFlight,
    idle: () => pipeline.onIdle(),
    collect: exposedGc(),
  });
  const pipeline = createPipeline({
    concurrency: config.concurrency,
    prefetch: prefetchOf(config),
    maxInFlightBytes: config.maxInFlightBytes,
    run: (doc, ctx) => runDocument(doc, ctx).finally(() => collector.settled(doc.size ?? 0)),
  });
  const parseOptions = {
    sourceBucket: config.sourceBucket,
    outputBucket: config.outputBucket,
    outputPrefix: config.outputPrefix,
  };
  const consumer = new Consumer({
    queue: clients.transport.queue,
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

/** Static keys first (no config needed, no network), then config, then everything that touches the network. */
function loadSafely(configPath: string | undefined, env: Env, log: Logger): { config: Config; baseDir: string } {
  assertNoStaticCredentials({ env, homeDir: env["HOME"], readFile: readIfExists });
  const config = loadConfig({ configPath, env });
  log.level = config.logLevel;
  return { config, baseDir: dirname(configPathOf(configPath, env)) };
}

/** `run`: start, READY, consume until the first stop signal, drain, exit code. */
export async function runUntilStopped(configPath: string | undefined, env: Env, log: Logger, signals: ShutdownSignals): Promise<number> {
  const { config, baseDir } = loadSafely(configPath, env, log);
  const prepared = await prepare(config, log, baseDir, env);
  let endpoint: MetricsEndpoint | undefined;
  let stoppedBy: string | undefined;
  try {
    // Bound first: a port in use fails the start (exit 78) before any SQS call, rather than leaving the daemon
    // unobserved.
    if (config.metricsPort !== undefined) {
      endpoint = await startMetricsEndpoint({ host: config.metricsHost, port: config.metricsPort, log });
    }
    // READY only for a queue the role can consume; a stop signal cuts the proof short.
    stoppedBy = await proveQueueUnlessStopped(prepared, log, signals);
  } catch (err) {
    prepared.clients.destroy();
    await endpoint?.close();
    throw err;
  }
  if (stoppedBy !== undefined) {
    // Stopped during start-up: nothing was received yet, so there is nothing to drain.
    prepared.clients.destroy();
    await endpoint?.close();
    log.info({ signal: stoppedBy }, "stopped before start-up completed");
    return ExitCode.ok;
  }
  const notifier = createNotifier(env, log);
  const liveness = new Liveness();
  const daemon = startDaemon(prepared, log, (event) => liveness.onEvent(event));
  daemon.metrics.observeInFlightMessages(() => daemon.consumer.stats().inFlight);
  endpoint?.serve(daemon.metrics.registry);
  log.info(
    {
      queueUrl: config.queueUrl,
      concurrency: config.concurrency,
      processors: prepared.processors.map((p) => p.name),
      transport: prepared.clients.transport.name,
    },
    "ready: consuming notifications",
  );
  try {
    return await supervise({
      daemon,
      liveness,
      log,
      notifier,
      drainTimeoutMs: config.drainTimeoutSeconds * 1_000,
      stallAfterMs: stallAfterMs(config.waitTimeSeconds),
      signals,
      readyStatus: `running as ${prepared.identity.arn}`,
    });
  } finally {
    prepared.clients.destroy();
    await endpoint?.close();
  }
}

/** `process KEY...`: each named source key once, without the queue; exit 1 when any did not end done. */
export async function processKeys(configPath: string | undefined, keys: string[], env: Env, log: Logger): Promise<number> {
  const { config, baseDir } = loadSafely(configPath, env, log);
  const prepared: Prepared = await prepare(config, log, baseDir, env);
  const runDocument = createInstrumentedRunner(prepared, log, new Metrics());
  let failed = 0;
  try {
    for (const key of keys) {
      const outcome = await runDocument(
        { bucket: config.sourceBucket, key },
        { messageId: "manual", receiveCount: 1, signal: new AbortController().signal },
      );
      if (outcome.status !== "done") failed++;
    }
  } finally {
    prepared.clients.destroy();
  }
  log.info({ requested: keys.length, failed }, "process finished");
  return failed === 0 ? ExitCode.ok : ExitCode.failed;
}
