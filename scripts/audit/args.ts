// Command line of the operator audit, and the queue's ARN parts from its URL. Pure.
import { parseArgs } from "node:util";

export const USAGE = `usage: npm run audit -- --source-bucket NAME --output-bucket NAME --queue-url URL
                        [--role-name NAME] [--policy-name NAME] [--region REGION]

Audits the instance role before launch, with YOUR (the deployer's) credentials, never the role's: reads the role's
trust policy and its attached and inline policies, and asks iam:SimulatePrincipalPolicy about every permission the
daemon needs (must be allowed) and every one the seed says it lacks (must be denied).

  --role-name NAME     the instance role (default EC2DocumentProcessorRole)
  --policy-name NAME   the customer managed policy provisioning attaches (default DocumentProcessorS3Access)
  --region REGION      the queue's region when its URL does not name one (default AWS_REGION)

Exit status: 0 every check as designed; 1 something is not (each extra or missing permission is named with its
fix); 2 the audit could not run (credentials, IAM access, no such role); 64 usage.
Credentials and endpoints come from the AWS SDK's usual sources (AWS_PROFILE, SSO, environment, AWS_ENDPOINT_URL_IAM).`;

export interface AuditTarget {
  roleName: string;
  policyName: string;
  sourceBucket: string;
  outputBucket: string;
  queueUrl: string;
  queue: { accountId: string; name: string; region: string };
}

export class UsageError extends Error {
  override name = "UsageError";
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** region, account and name from `https://sqs.<region>.amazonaws.com[.cn]/<account>/<name>` (or another host + region). */
export function parseQueueUrl(url: string, fallbackRegion: string | undefined): AuditTarget["queue"] {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--queue-url ${JSON.stringify(url)} is not a URL`);
  }
  const path = /^\/(\d{12})\/([\w-]{1,80}(?:\.fifo)?)\/?$/.exec(parsed.pathname);
  if (!path) throw new UsageError(`--queue-url ${JSON.stringify(url)} is not https://sqs.<region>.amazonaws.com/<account>/<queue>`);
  const host =
    /^sqs(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/.exec(parsed.hostname) ?? /^([a-z0-9-]+)\.queue\.amazonaws\.com$/.exec(parsed.hostname);
  const region = host?.[1] ?? (parsed.hostname === "queue.amazonaws.com" ? "us-east-1" : fallbackRegion);
  if (!region) throw new UsageError(`the queue URL names no region: pass --region`);
  return { accountId: path[1]!, name: path[2]!, region };
}

/** The audit's target from argv (after `--`); throws UsageError, or returns "help". */
export function parseAuditArgs(argv: readonly string[], env: { AWS_REGION?: string; AWS_DEFAULT_REGION?: string }): AuditTarget | "help" {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        "role-name": { type: "string" },
        "policy-name": { type: "string" },
        "source-bucket": { type: "string" },
        "output-bucket": { type: "string" },
        "queue-url": { type: "string" },
        region: { type: "string" },
        help: { type: "boolean" },
      },
    }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  if (values["help"] === true) return "help";
  const text = (name: string): string | undefined => {
    const value = values[name];
    return typeof value === "string" ? value : undefined;
  };
  const missing = ["source-bucket", "output-bucket", "queue-url"].filter((name) => !text(name));
  if (missing.length > 0) throw new UsageError(`missing ${missing.map((m) => `--${m}`).join(", ")}`);
  const sourceBucket = text("source-bucket")!;
  const outputBucket = text("output-bucket")!;
  for (const [flag, bucket] of [["--source-bucket", sourceBucket], ["--output-bucket", outputBucket]] as const) {
    if (!BUCKET.test(bucket)) throw new UsageError(`${flag} ${JSON.stringify(bucket)} is not a bucket name`);
  }
  if (sourceBucket === outputBucket) throw new UsageError("--source-bucket and --output-bucket must differ");
  const queueUrl = text("queue-url")!;
  return {
    roleName: text("role-name") ?? "EC2DocumentProcessorRole",
    policyName: text("policy-name") ?? "DocumentProcessorS3Access",
    sourceBucket,
    outputBucket,
    queueUrl,
    queue: parseQueueUrl(queueUrl, text("region") ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION),
  };
}
