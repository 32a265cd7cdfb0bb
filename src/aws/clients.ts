/**
 * The only place SDK clients are built. All share one IMDS credential provider and one keep-alive agent sized for
 * the pipeline; S3 and STS endpoints come from the SDK's standard variables (AWS_ENDPOINT_URL_S3/STS), which is how
 * local runs reach the stand-in without any code path of their own. SQS gets its one endpoint explicitly (the
 * validated queue URL's, or AWS_ENDPOINT_URL_SQS's: src/config/queue-url.ts), because by default the SDK sends each
 * SQS request to the host of the QueueUrl it carries, whatever the configured endpoint.
 */
import { Agent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { STSClient } from "@aws-sdk/client-sts";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import type { AwsCredentialIdentityProvider } from "@smithy/types";

export interface AwsClients {
  s3: S3Client;
  sqs: SQSClient;
  sts: STSClient;
  destroy(): void;
}

export interface ClientOptions {
  region: string;
  credentials: AwsCredentialIdentityProvider;
  /** Documents processed at once; sockets are sized from it. */
  concurrency: number;
  /** Origin of every SQS request (QueueLocation.endpoint). */
  sqsEndpoint: string;
}

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
    connectionTimeout: 5_000,
    requestTimeout: REQUEST_TIMEOUT_MS,
  });
  const common = {
    region: options.region,
    credentials: options.credentials,
    requestHandler: handler,
    maxAttempts: 4,
  };
  const s3 = new S3Client({ ...common, followRegionRedirects: false });
  // An explicit endpoint already stops the SDK's queue-URL middleware from rerouting; useQueueUrlAsEndpoint: false
  // says so too, so neither alone can be lost by accident.
  const sqs = new SQSClient({ ...common, endpoint: options.sqsEndpoint, useQueueUrlAsEndpoint: false });
  const sts = new STSClient(common);
  return {
    s3,
    sqs,
    sts,
    destroy() {
      s3.destroy();
      sqs.destroy();
      sts.destroy();
    },
  };
}
