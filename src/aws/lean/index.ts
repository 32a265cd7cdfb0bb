/**
 * The lean transport (issue #15): the per-document AWS calls as SigV4-signed requests over a keep-alive
 * node:http(s) Agent, without the SDK's middleware stack. It keeps what the SDK gives that matters here: credentials
 * from the provider per request, the standard retry strategy, clock-skew correction, typed errors in the SDK's shape,
 * checksums both ways, timeouts and abort. See client.ts (engine), sqs.ts, s3.ts, checksums.ts, errors.ts.
 */
import type { AwsCredentialIdentityProvider } from "@smithy/types";
import type { Transport } from "../transport.js";
import { LeanClient } from "./client.js";
import { LeanObjects, defaultS3Endpoint } from "./s3.js";
import { LeanQueue } from "./sqs.js";

export interface LeanTransportOptions {
  region: string;
  /** The daemon's memoized IMDS provider: called per request (it caches and refreshes). */
  credentials: AwsCredentialIdentityProvider;
  /** Origin of every SQS request (validated by config). */
  sqsEndpoint: string;
  /** AWS_ENDPOINT_URL_S3 when set; else S3's regional endpoint (amazonaws.com.cn for cn-*). */
  s3Endpoint?: string;
  maxSockets: number;
  /** Time to establish a connection. */
  connectionTimeoutMs: number;
  /** Socket idle timeout (above the 20 s long poll). */
  requestTimeoutMs: number;
  /** Attempts per call, retries included (the SDK clients' 4 in the daemon). */
  maxAttempts: number;
  /** Local time in ms (tests). */
  clock?: () => number;
  /** Jitter source in [0, 1) (tests). */
  random?: () => number;
}

export function createLeanTransport(options: LeanTransportOptions): Transport {
  const client = new LeanClient({
    credentials: options.credentials,
    region: options.region,
    maxSockets: options.maxSockets,
    connectionTimeoutMs: options.connectionTimeoutMs,
    requestTimeoutMs: options.requestTimeoutMs,
    maxAttempts: options.maxAttempts,
    clock: options.clock ?? Date.now,
    random: options.random ?? Math.random,
  });
  return {
    name: "lean",
    queue: new LeanQueue(client, options.sqsEndpoint),
    objects: new LeanObjects(client, options.s3Endpoint ?? defaultS3Endpoint(options.region)),
    destroy: () => client.destroy(),
  };
}

export { LeanAbortError, LeanChecksumError, LeanInputError, LeanResponseError, LeanServiceError, LeanTimeoutError, LeanTruncatedBodyError } from "./errors.js";
