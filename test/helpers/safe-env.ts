// Every test process starts with AWS endpoints pointing at a closed loopback port, so a test that forgets to
// point a client at the stand-in fails with ECONNREFUSED instead of reaching the real IMDS or a real AWS endpoint.
// Tests that need the stand-in set these explicitly (per client or per child process).
export const CLOSED_LOOPBACK = "http://127.0.0.1:9/";

/** The loopback defaults, also the base environment of every child daemon the tests spawn. */
export const LOOPBACK_AWS_ENV: Readonly<Record<string, string>> = {
  AWS_EC2_METADATA_SERVICE_ENDPOINT: CLOSED_LOOPBACK,
  AWS_EC2_METADATA_V1_DISABLED: "true",
  AWS_ENDPOINT_URL: CLOSED_LOOPBACK,
  AWS_ENDPOINT_URL_S3: CLOSED_LOOPBACK,
  AWS_ENDPOINT_URL_SQS: CLOSED_LOOPBACK,
  AWS_ENDPOINT_URL_STS: CLOSED_LOOPBACK,
  AWS_ENDPOINT_URL_EC2: CLOSED_LOOPBACK,
  AWS_REGION: "us-east-1",
};
for (const [name, value] of Object.entries(LOOPBACK_AWS_ENV)) {
  process.env[name] ??= value;
}
// Keys from the developer's shell must never sign a test request.
for (const name of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"]) {
  delete process.env[name];
}
