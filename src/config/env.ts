/**
 * The only module that reads process.env. Everything else receives an `Env` snapshot, so tests pass a plain
 * object instead of mutating the process environment. (The AWS SDK still reads its own AWS_* variables, such as
 * AWS_EC2_METADATA_SERVICE_ENDPOINT and AWS_ENDPOINT_URL_S3/STS, which is how local runs point it at the stand-in;
 * AWS_ENDPOINT_URL_SQS is read from the snapshot too, because it decides where SQS requests go: config/queue-url.ts.)
 */
export type Env = Readonly<Record<string, string | undefined>>;

export function snapshotEnv(): Env {
  return Object.freeze({ ...process.env });
}
