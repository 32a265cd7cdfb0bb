/**
 * The only place SDK clients are built. All share one IMDS credential provider and one keep-alive agent sized for
 * the pipeline; S3 and STS endpoints come from the SDK's standard variables (AWS_ENDPOINT_URL_S3/STS), which is how
 * local runs reach the stand-in without any code path of their own. SQS gets its one endpoint explicitly (the
 * validated queue URL's, or AWS_ENDPOINT_URL_SQS's: src/config/queue-url.ts), because by default the SDK sends each
 * SQS request to the host of the QueueUrl it carries, whatever the configured endpoint.
 */
import { Agent as HttpsAgent } from "node:https";
import type { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { STSClient } from "@aws-sdk/client-sts";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import type { AwsCredentialIdentityProvider } from "@smithy/types";
import { createLeanTransport } from "./lean/index.js";
import { sdkTransport } from "./sdk-transport.js";
import type { Transport, TransportName } from "./transport.js";

// Not an ES import of node:http: that loads undici through its WebSocket getter (see lean/client.ts).
const { Agent } = process.getBuiltinModule("node:http");

export interface AwsClients {
  /**
   * The SDK's S3 client, created on first use: on the lean transport only multipart uploads and `check` need it, and
   * loading @aws-sdk/client-s3 costs about 10 MiB of resident memory (measured: import alone, Node 22).
   */
  s3: () => Promise<S3Client>;
  sqs: SQSClient;
  sts: STSClient;
  /** The per-document calls, on the configured transport. */
  transport: Transport;
  destroy(): void;
}

export interface ClientOptions {
  region: string;
  credentials: AwsCredentialIdentityProvider;
  /** Documents processed at once; sockets are sized from it. */
  concurrency: number;
  /** Origin of every SQS request (QueueLocation.endpoint). */
  sqsEndpoint: string;
  /** AWS_ENDPOINT_URL_S3 when set (checked by config); the SDK clients read it themselves, the lean transport here. */
  s3Endpoint?: string;
  /** The per-document calls' client. @default "lean" */
  transport?: TransportName;
}

/** Attempts per call, SDK clients and lean transport alike (the SDK's standard mode allows 3). */
const MAX_ATTEMPTS = 4;
const CONNECTION_TIMEOUT_MS = 5_000;

/**
 * Socket idle timeout of every client: above the 20 s long poll, so a healthy poll is never cut; it also bounds how
 * long a call that never answers can last (the service's watchdog counts on it).
 */
export const REQUEST_TIMEOUT_MS = 60_000;

export function createAwsClients(options: ClientOptions): AwsClients {
  // Each document holds up to one GET and one PUT socket; add room for the poll, heartbeats and deletes.
  const maxSockets = options.concurrency * 2 + 4;
  const handler = new NodeHttpHandler({
    httpAgent: new Agent({ keepAlive: true, maxSockets }),
    httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets }),
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
  });
  const common = {
    region: options.region,
    credentials: options.credentials,
    requestHandler: handler,
    maxAttempts: MAX_ATTEMPTS,
  };
  let s3: Promise<S3Client> | undefined;
  let s3Client: S3Client | undefined;
  let destroyed = false;
  const lazyS3 = (): Promise<S3Client> =>
    (s3 ??= import("@aws-sdk/client-s3").then(({ S3Client }) => {
      s3Client = new S3Client({ ...common, followRegionRedirects: false });
      // Created after destroy(): close it at once (its sockets would otherwise outlive the clients).
      if (destroyed) s3Client.destroy();
      return s3Client;
    }));
  // An explicit endpoint already stops the SDK's queue-URL middleware from rerouting; useQueueUrlAsEndpoint: false
  // says so too, so neither alone can be lost by accident.
  const sqs = new SQSClient({ ...common, endpoint: options.sqsEndpoint, useQueueUrlAsEndpoint: false });
  const sts = new STSClient(common);
  const transport =
    options.transport === "sdk"
      ? sdkTransport(lazyS3, sqs)
      : createLeanTransport({
          region: options.region,
          credentials: options.credentials,
          sqsEndpoint: options.sqsEndpoint,
          ...(options.s3Endpoint === undefined ? {} : { s3Endpoint: options.s3Endpoint }),
          maxSockets,
          connectionTimeoutMs: CONNECTION_TIMEOUT_MS,
          requestTimeoutMs: REQUEST_TIMEOUT_MS,
          maxAttempts: MAX_ATTEMPTS,
        });
  return {
    s3: lazyS3,
    sqs,
    sts,
    transport,
    destroy() {
      destroyed = true;
      transport.destroy();
      s3Client?.destroy();
      sqs.destroy();
      sts.destroy();
    },
  };
}
