/**
 * The staged start-up that `run`, `process` and `check` share: processors from the config, the instance from IMDS,
 * clients on IMDS-only credentials, the caller verified as the expected role, and the proof that the role can
 * consume the queue. One definition of each stage, so the checklist proves what the daemon will really do; `prepare`
 * chains them for the daemon, check.ts runs them one line at a time.
 */
import { createAwsClients, type AwsClients } from "../aws/clients.js";
import { createImdsCredentialProvider } from "../aws/credentials.js";
import { fetchInstanceIdentity, type ImdsClientOptions, type InstanceIdentity } from "../aws/imds.js";
import { endpointOverride, S3_ENDPOINT_ENV } from "../config/endpoint-override.js";
import type { Env } from "../config/env.js";
import { queueLocationOf, type QueueLocation } from "../config/queue-url.js";
import { configSchema, type Config } from "../config/schema.js";
import { QueueAccessError } from "../errors/fatal.js";
import { verifyIdentity, type VerifiedIdentity } from "../identity/self-check.js";
import type { Logger } from "../logging/logger.js";
import { resolveProcessors, type BuiltinOptions } from "../processors/registry.js";
import type { Processor } from "../processors/types.js";
import { decideQueueAccess, probeQueue, queueRefusal } from "../queue/access-probe.js";

/** Settings of the built-in processors, from the config. */
export function builtinOptions(config: Config): BuiltinOptions {
  return {
    text: {
      maxBufferedBytes: config.maxBufferedBytes,
      extractionTimeoutMs: config.extractionTimeoutSeconds * 1_000,
      extractionMemoryBytes: config.extractionMemoryBytes,
    },
    ocr: {
      languages: config.ocrLanguages,
      maxBufferedBytes: config.maxBufferedBytes,
      maxPages: config.ocrMaxPages,
      maxPixels: config.ocrMaxPixels,
      pageTimeoutMs: config.ocrPageTimeoutSeconds * 1_000,
      timeoutMs: config.ocrTimeoutSeconds * 1_000,
      memoryBytes: config.ocrMemoryBytes,
    },
  };
}

/** Stage 1 (local, before any network): the configured processors, built-ins with their settings. */
export function loadProcessors(config: Config, baseDir: string): Promise<Processor[]> {
  return resolveProcessors(config.processor, baseDir, builtinOptions(config));
}

/** IMDS timeouts from the config, or the config's defaults when there is none (check reads IMDS even then). */
export function imdsOptionsOf(config: Config | undefined): ImdsClientOptions {
  return {
    timeoutMs: config?.imdsTimeoutMs ?? configSchema.shape.imdsTimeoutMs.parse(undefined),
    maxRetries: config?.imdsMaxRetries ?? configSchema.shape.imdsMaxRetries.parse(undefined),
  };
}

/** Stage 2: this instance and its role, as IMDS reports them. */
export function readInstance(options: ImdsClientOptions): Promise<InstanceIdentity> {
  return fetchInstanceIdentity(options);
}

export interface Connection {
  /** The validated queue URL and the one endpoint every SQS request goes to. */
  queue: QueueLocation;
  region: string;
  clients: AwsClients;
}

export interface ConnectOptions {
  config: Config;
  queue: QueueLocation;
  instance: InstanceIdentity;
  log: Logger;
  /** Documents processed at once (sizes the sockets); check needs 1. */
  concurrency: number;
  /** The environment snapshot (AWS_ENDPOINT_URL_S3 for the lean transport). */
  env: Env;
}

/** Stage 3: clients signing with the instance profile's credentials (IMDS only), in the queue's region. */
export function connect(options: ConnectOptions): Connection {
  const { config, queue, instance, log } = options;
  const region = config.region ?? queue.region ?? instance.region;
  const credentials = createImdsCredentialProvider({ timeoutMs: config.imdsTimeoutMs, maxRetries: config.imdsMaxRetries, log });
  const s3Endpoint = endpointOverride(options.env, S3_ENDPOINT_ENV);
  const clients = createAwsClients({
    region,
    credentials,
    concurrency: options.concurrency,
    sqsEndpoint: queue.endpoint,
    ...(s3Endpoint === undefined ? {} : { s3Endpoint }),
    transport: config.transport,
  });
  return { queue, region, clients };
}

/** Stage 4: STS shows the expected role on this instance (IdentityError, exit 77, if not). */
export function verifyCaller(config: Config, clients: AwsClients, instance: InstanceIdentity): Promise<VerifiedIdentity> {
  return verifyIdentity({
    sts: clients.sts,
    instance,
    expectedRoleName: config.expectedRoleName,
    expectedAccountId: config.expectedAccountId,
  });
}

export interface Prepared extends Connection {
  config: Config;
  instance: InstanceIdentity;
  identity: VerifiedIdentity;
  processors: Processor[];
}

/**
 * Everything that must hold before the first S3 or SQS call: processors load (local, so config errors come before
 * any network), IMDS answers, and STS shows the expected role for this instance. Throws typed errors (exit 75/77/78).
 */
export async function prepare(config: Config, log: Logger, processorBaseDir: string, env: Env): Promise<Prepared> {
  const queue = queueLocationOf(config, env);
  const processors = await loadProcessors(config, processorBaseDir);
  const instance = await readInstance({ ...imdsOptionsOf(config), roleWaitMs: config.instanceProfileWaitSeconds * 1_000 });
  const connection = connect({ config, queue, instance, log, concurrency: config.concurrency, env });
  try {
    const identity = await verifyCaller(config, connection.clients, instance);
    log.info(
      { roleArn: identity.arn, account: identity.account, instanceId: identity.instanceId, region: connection.region },
      "identity verified: running as the expected instance role",
    );
    return { ...connection, config, instance, identity, processors };
  } catch (err) {
    connection.clients.destroy();
    throw err;
  }
}

/** What the queue proof needs of a prepared start: where the queue is, who asks, and an SQS client. */
export type QueueProofTarget = Pick<Prepared, "queue" | "identity" | "instance" | "region"> & { clients: Pick<AwsClients, "sqs"> };

export interface QueueProofOptions {
  /** Aborted by a stop signal during start-up: give up at once. */
  signal?: AbortSignal;
  /** How long an unanswered probe is tried again before exit 75 (SQS blips at boot need no restart). */
  budgetMs?: number;
  sleep?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
}

/**
 * Stage 5, before READY: the role can consume the queue, proven with the calls `check` makes (no message touched). A
 * queue it may not use (another account or region, not in the policy) is refused (exit 77), an SQS that stays
 * unreachable is temporary (75): either way the daemon never reports itself ready for a queue it cannot consume.
 */
export async function verifyQueueAccess(target: QueueProofTarget, log: Logger, options: QueueProofOptions = {}): Promise<void> {
  const { queue, clients, identity, instance, region } = target;
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

/** The stop signals as start-up sees them (ShutdownSignals in lifecycle.ts). */
export interface StopWatch {
  readonly first: Promise<string>;
  /** The first signal received so far, if any. */
  readonly signal: string | undefined;
}

/**
 * The last stage before READY, cut short by a stop: proves queue access, unless a stop signal arrived before or
 * during the proof. Returns that signal (nothing was received yet, so there is nothing to drain), or undefined when
 * the daemon may report READY. A failed proof throws as verifyQueueAccess does, but only while no stop was asked for.
 */
export async function proveQueueUnlessStopped(
  target: QueueProofTarget,
  log: Logger,
  stops: StopWatch,
  options: Omit<QueueProofOptions, "signal"> = {},
): Promise<string | undefined> {
  const stopping = new AbortController();
  void stops.first.then(() => stopping.abort());
  await verifyQueueAccess(target, log, { ...options, signal: stopping.signal }).catch((err: unknown) => {
    if (stops.signal === undefined) throw err;
  });
  return stops.signal;
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
