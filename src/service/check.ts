/**
 * `doc-processor check`: the seed's manual confirmations ("In this section, I confirmed: N of M completed") as a
 * checklist, one line each (✓ passed, ✗ failed or skipped after an earlier failure, – not checked), ending
 * "N of M completed". Every call stays inside the role's policy or is refused by it, and the probes of the denied side
 * change nothing even when a too-broad role is allowed them (src/service/denied-probes.ts); the only write is one
 * small probe object in the output bucket, overwritten on every run.
 */
import { randomUUID } from "node:crypto";
import { dirname } from "node:path";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { GetAccessKeyInfoCommand } from "@aws-sdk/client-sts";
import { createAwsClients, type AwsClients } from "../aws/clients.js";
import type { AwsCredentialIdentity } from "@smithy/types";
import {
  assertNoStaticCredentials,
  createImdsCredentialProvider,
  readIfExists,
  realExpiration,
} from "../aws/credentials.js";
import { fetchInstanceIdentity, tokenlessRequestStatus, type InstanceIdentity } from "../aws/imds.js";
import type { Env } from "../config/env.js";
import { configPathOf, loadConfig } from "../config/load.js";
import { queueLocationOf, type QueueLocation } from "../config/queue-url.js";
import { configSchema, type Config } from "../config/schema.js";
import { awsErrorInfo, describeAwsError } from "../errors/aws.js";
import { ErrorCode, ExitCode, IdentityError, exitCodeFor } from "../errors/fatal.js";
import { errorMessage } from "../errors/message.js";
import { verifyIdentity, type VerifiedIdentity } from "../identity/self-check.js";
import type { Logger } from "../observability/logger.js";
import { builtinOptions } from "../app.js";
import { resolveProcessors } from "../processors/registry.js";
import { classifyProbe, probeQueue, type ProbeResult, type QueueProbes } from "../queue/access-probe.js";
import { PROBE_FOLDER, deniedProbes, judgeDeniedProbe, runDeniedProbe, type DeniedProbe } from "./denied-probes.js";

export type { ProbeResult } from "../queue/access-probe.js";

export interface CheckOptions {
  configPath: string | undefined;
  /** An object that exists in the source bucket; without it, reading from source is not checked. */
  sourceKey: string | undefined;
  env: Env;
  log: Logger;
  out: (line: string) => void;
}

/** What `check` cannot probe on the instance, and where it is checked instead. */
const NOT_PROBED = "sqs:SendMessage, sqs:PurgeQueue, sqs:SetQueueAttributes, s3:PutBucketPolicy, iam:*";
const AUDIT_HINT = "audit with the deployer's credentials: npm run audit";

export { PROBE_FOLDER };
// An ETag no object has: a write guarded by it can never land, even when S3 authorizes it.
const IMPOSSIBLE_ETAG = '"00000000000000000000000000000000"';

/** A passed check's detail, or a failure's reason and the exit code it stands for (default 1). */
export type Verdict = { ok: true; detail: string } | { ok: false; reason: string; exitCode?: number };

interface Step {
  name: string;
  run: () => Promise<string | NotChecked>;
}

class Skipped extends Error {}

class CheckFailed extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

class NotChecked {
  constructor(readonly reason: string) {}
}

export async function runChecks(options: CheckOptions): Promise<number> {
  const { env, out } = options;
  // The checklist is the output; the JSON logs would only interleave with it (warnings still show).
  const log = options.log.child({ command: "check" }, { level: "warn" });
  let config: Config | undefined;
  let instance: InstanceIdentity | undefined;
  let clients: AwsClients | undefined;
  let queue: QueueLocation | undefined;
  let identity: VerifiedIdentity | undefined;
  let outputProbeWritten = false;
  const need = (what: string, ok: boolean) => {
    if (!ok) throw new Skipped(`skipped: needs ${what}`);
  };
  // IMDS is checked even when the config is broken, with the config's defaults.
  const imdsOptions = () => ({
    timeoutMs: config?.imdsTimeoutMs ?? configSchema.shape.imdsTimeoutMs.parse(undefined),
    maxRetries: config?.imdsMaxRetries ?? configSchema.shape.imdsMaxRetries.parse(undefined),
  });
  const probe = async (call: () => Promise<unknown>): Promise<ProbeResult> => {
    try {
      await call();
      return { ok: true };
    } catch (error) {
      return { ok: false, error };
    }
  };
  const verdict = (v: Verdict): string => {
    if (!v.ok) throw new CheckFailed(v.reason, v.exitCode ?? ExitCode.failed);
    return v.detail;
  };

  // The probes of the denied side (denied-probes.ts), one line each; their never-written keys are new on every run.
  const nonce = randomUUID();
  function deniedSteps(): Step[] {
    const probeOf = (index: number): DeniedProbe => {
      const c = config!;
      const probes = deniedProbes({
        sourceBucket: c.sourceBucket,
        outputBucket: c.outputBucket,
        outputPrefix: c.outputPrefix,
        outputProbeKey: `${c.outputPrefix}${PROBE_FOLDER}/${identity!.instanceId}.txt`,
        nonce,
        partition: identity!.arn.split(":")[1] || "aws",
      });
      return probes[index]!;
    };
    // The names only, for the lines skipped before the configuration is known.
    const names = deniedProbes({ sourceBucket: "", outputBucket: "", outputPrefix: "", outputProbeKey: "", nonce, partition: "aws" });
    return names.map((named, index) => ({
      name: named.name,
      run: async () => {
        need("the expected identity", identity !== undefined);
        const probe = probeOf(index);
        // Without its own probe object a read of the output cannot tell an allow from a deny (both may answer 403).
        if (probe.kind === "getObject") need("the probe object from \"write to output works\"", outputProbeWritten);
        const v = judgeDeniedProbe(probe, await runDeniedProbe(clients!.s3, probe));
        return verdict(v);
      },
    }));
  }

  const steps: Step[] = [
    {
      name: "configuration is valid",
      run: async () => {
        const path = configPathOf(options.configPath, env);
        const loaded = loadConfig({ configPath: options.configPath, env });
        const processors = await resolveProcessors(loaded.processor, dirname(path), builtinOptions(loaded));
        config = loaded;
        return `${path}; processors ${processors.map((p) => p.name).join(", ")}`;
      },
    },
    {
      name: "no static AWS credentials on this machine",
      run: async () => {
        assertNoStaticCredentials({ env, homeDir: env["HOME"], readFile: readIfExists });
        return "none in the environment or ~/.aws";
      },
    },
    {
      name: "IMDSv2 is enforced (a request without a token is refused)",
      run: async () => verdict(judgeTokenlessStatus(await tokenlessRequestStatus(imdsOptions()))),
    },
    {
      name: "an instance profile role is attached",
      run: async () => {
        const found = await fetchInstanceIdentity(imdsOptions());
        instance = found;
        if (!found.roleName) {
          const role = config?.expectedRoleName ?? "EC2DocumentProcessorRole";
          throw new IdentityError(
            ErrorCode.identityMismatch,
            `IMDS lists no instance-profile role on ${found.instanceId}.\n` +
              `Fix: attach the instance profile of ${role}: in the EC2 console select the instance, ` +
              "Actions > Security > Modify IAM role, choose it, save, and restart the service.",
          );
        }
        return `${found.roleName} (instance ${found.instanceId}, account ${found.accountId}, ${found.region})`;
      },
    },
    {
      name: "the caller is the expected role on this instance (not a user)",
      run: async () => {
        need("a valid configuration", config !== undefined);
        need("an attached role", instance?.roleName !== undefined);
        const c = config!;
        queue = queueLocationOf(c, env);
        const region = c.region ?? queue.region ?? instance!.region;
        const credentials = createImdsCredentialProvider({ timeoutMs: c.imdsTimeoutMs, maxRetries: c.imdsMaxRetries, log });
        clients = createAwsClients({ region, credentials, concurrency: 1, sqsEndpoint: queue.endpoint });
        identity = await verifyIdentity({
          sts: clients.sts,
          instance: instance!,
          expectedRoleName: c.expectedRoleName,
          expectedAccountId: c.expectedAccountId,
        });
        return identity.arn;
      },
    },
    {
      name: "the credentials are temporary (session token, expiry)",
      run: async () => {
        need("a valid configuration and an attached role", clients !== undefined);
        const creds = await clients!.sts.config.credentials();
        if (!creds.accessKeyId.startsWith("ASIA") || !creds.sessionToken || !creds.expiration) {
          throw new IdentityError(
            ErrorCode.identityMismatch,
            `IMDS served ${creds.accessKeyId.slice(0, 4)}… credentials without a session token or expiry: long-term ` +
              "access keys, not the role's temporary credentials.\nFix: attach the instance profile (Actions > " +
              "Security > Modify IAM role) and make sure nothing stands in for the instance metadata service.",
          );
        }
        return expiryDetail(creds, Date.now());
      },
    },
    {
      name: "read from source works",
      run: async () => {
        need("the expected identity", identity !== undefined);
        const bucket = config!.sourceBucket;
        if (options.sourceKey === undefined) {
          return new NotChecked(
            `not checked: pass --source-key KEY (an object that exists in ${bucket}; without s3:ListBucket a missing key ` +
              "and a forbidden one both answer AccessDenied)",
          );
        }
        const key = options.sourceKey;
        // One byte is enough to prove the read; an empty object answers InvalidRange, which proves it as well.
        let result: ProbeResult & { size?: number };
        try {
          const got = await clients!.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: "bytes=0-0" }));
          await got.Body?.transformToByteArray();
          result = { ok: true, size: sizeFromContentRange(got.ContentRange) ?? got.ContentLength };
        } catch (error) {
          result = { ok: false, error };
        }
        return verdict(judgeSourceRead(result, `s3://${bucket}/${key}`));
      },
    },
    {
      name: "write to output works",
      run: async () => {
        need("the expected identity", identity !== undefined);
        const c = config!;
        const key = `${c.outputPrefix}${PROBE_FOLDER}/${identity!.instanceId}.txt`;
        const body = `doc-processor check at ${new Date().toISOString()} as ${identity!.arn}\n`;
        try {
          await clients!.s3.send(new PutObjectCommand({ Bucket: c.outputBucket, Key: key, Body: body, ContentType: "text/plain" }));
        } catch (err) {
          throw new Error(
            `PutObject s3://${c.outputBucket}/${key} failed (${describeAwsError(err)}).\n` +
              "Fix: the role's policy needs s3:PutObject on arn:aws:s3:::" + `${c.outputBucket}/* (statement WriteToOutput).`,
          );
        }
        outputProbeWritten = true;
        return `wrote s3://${c.outputBucket}/${key} (overwritten on every check)`;
      },
    },
    {
      name: "write to source is denied",
      run: async () => {
        need("the expected identity", identity !== undefined);
        const bucket = config!.sourceBucket;
        const key = `${PROBE_FOLDER}/${identity!.instanceId}.txt`;
        // If-Match with an ETag no object has: if S3 authorizes the write (the role is too broad), the precondition
        // still stops it, so the probe never creates an object in the watched bucket (nor an event for it).
        const result = await probe(() =>
          clients!.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: "", ContentLength: 0, IfMatch: IMPOSSIBLE_ETAG })),
        );
        return verdict(judgeSourceWrite(result, `s3://${bucket}/${key}`));
      },
    },
    ...deniedSteps(),
    {
      name: "another service is denied (sts:GetAccessKeyInfo)",
      run: async () => {
        need("the expected identity", identity !== undefined);
        // An action the policy does not grant, on a client the daemon already has: the seed's "ec2
        // describe-instances is denied" without shipping an EC2 client.
        const creds = await clients!.sts.config.credentials();
        const result = await probe(() => clients!.sts.send(new GetAccessKeyInfoCommand({ AccessKeyId: creds.accessKeyId })));
        return verdict(judgeOtherServiceCall(result));
      },
    },
    {
      name: "the queue can be consumed",
      run: async () => {
        need("the expected identity", identity !== undefined);
        // The same no-side-effect calls the daemon makes before READY (src/queue/access-probe.ts).
        const queueUrl = queue!.url;
        const probes = await probeQueue(clients!.sqs, queueUrl);
        return verdict(judgeQueueProbes(probes, queueUrl));
      },
    },
    {
      name: "the queue cannot be written to or purged, bucket policies and IAM cannot be changed",
      // No request shows these permissions without using them (a message sent, the queue emptied, a policy replaced).
      run: async () => new NotChecked(`not checked on the instance (no harmless probe of ${NOT_PROBED}): ${AUDIT_HINT}`),
    },
  ];

  let passed = 0;
  let firstFailure: number | undefined;
  try {
    for (const step of steps) {
      try {
        const result = await step.run();
        if (result instanceof NotChecked) {
          out(`– ${step.name}: ${result.reason}`);
          continue;
        }
        passed++;
        out(`✓ ${step.name}: ${result}`);
      } catch (err) {
        if (err instanceof Skipped) {
          out(`✗ ${step.name}: ${err.message}`);
          continue;
        }
        // The daemon's messages speak of refusing to start; here the same finding is a failed check.
        const reason = errorMessage(err).replace(/^refusing to start: (the caller is )?/, "").replace(/\n/g, "\n    ");
        out(`✗ ${step.name}: ${reason}`);
        firstFailure ??= failureExitCode(err);
      }
    }
  } finally {
    clients?.destroy();
  }
  out(`${passed} of ${steps.length} completed`);
  // A check that was not run (reading, without --source-key) is not completed, but it is not a failure either.
  return firstFailure ?? ExitCode.ok;
}

/** Typed errors keep their exit code (77 identity, 78 config, 75 unreachable); anything else is 1. */
function failureExitCode(err: unknown): number {
  if (err instanceof CheckFailed) return err.exitCode;
  const code = exitCodeFor(err);
  return code === ExitCode.software ? ExitCode.failed : code;
}

export function judgeTokenlessStatus(status: number): Verdict {
  if (status === 401) return { ok: true, detail: "HTTP 401 without a token" };
  if (status >= 200 && status < 300) {
    return {
      ok: false,
      exitCode: ExitCode.noPerm,
      reason:
        `IMDS answered a request without a token (HTTP ${status}): IMDSv1 is enabled, so any process on the instance ` +
        "(or a request forgery through it) can read the role's credentials with a plain GET.\n" +
        "Fix: aws ec2 modify-instance-metadata-options --instance-id <id> --http-tokens required --http-endpoint enabled",
    };
  }
  return { ok: false, reason: `IMDS answered a request without a token with HTTP ${status}, expected 401` };
}

/**
 * The credentials' real expiry. After an IMDS outage (ExpiredToken) the SDK keeps signing with the old keys and
 * stretches their `expiration`; the real one is then `originalExpiration`, which is what the operator needs.
 */
export function expiryDetail(creds: AwsCredentialIdentity, now: number): string {
  const { expiration, extended } = realExpiration(creds);
  if (expiration === undefined) return "no expiry";
  const at = Number.isFinite(expiration.getTime()) ? expiration.toISOString() : "an invalid date";
  if (!extended) return `expire ${at}`;
  const when = expiration.getTime() <= now ? "expired" : "expire";
  return `${when} ${at} (IMDS could not renew them; reused until it can)`;
}

/** Bytes from "bytes 0-0/1234". */
function sizeFromContentRange(range: string | undefined): number | undefined {
  const m = range === undefined ? null : /\/(\d+)$/.exec(range);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

export function judgeSourceRead(result: ProbeResult & { size?: number | undefined }, where: string): Verdict {
  if (result.ok) return { ok: true, detail: `read ${where}${result.size === undefined ? "" : ` (${result.size} bytes)`}` };
  const { name, status } = awsErrorInfo(result.error);
  if (name === "InvalidRange" || status === 416) return { ok: true, detail: `read ${where} (empty)` };
  if (name === "AccessDenied" || status === 403) {
    return {
      ok: false,
      reason:
        `AccessDenied on ${where}: the key does not exist or the role may not read it (without s3:ListBucket S3 ` +
        "answers both with 403).\nFix: give --source-key an object that exists; if it does, the role's policy needs " +
        "s3:GetObject on the source bucket's objects (statement ReadFromSource).",
    };
  }
  return { ok: false, reason: `GetObject ${where} failed: ${describeAwsError(result.error)}` };
}

export function judgeSourceWrite(result: ProbeResult, where: string): Verdict {
  if (result.ok) {
    return {
      ok: false,
      reason:
        `the write to ${where} SUCCEEDED: the role may write to the source bucket, which its policy must not allow ` +
        "(delete that object).\nFix: grant only s3:GetObject on the source bucket (DocumentProcessorS3Access).",
    };
  }
  const { name, status } = awsErrorInfo(result.error);
  if (name === "AccessDenied" || status === 403) return { ok: true, detail: "AccessDenied, as it must be" };
  if (name === "NoSuchBucket") return { ok: false, reason: `the source bucket does not exist (${describeAwsError(result.error)})` };
  if (name === "PreconditionFailed" || name === "NoSuchKey" || status === 412 || status === 404 || status === 409) {
    return {
      ok: false,
      reason:
        `S3 authorized s3:PutObject on ${where} (only the If-Match guard stopped the write, so nothing was written): ` +
        "the role may write to the source bucket.\nFix: grant only s3:GetObject on the source bucket (DocumentProcessorS3Access).",
    };
  }
  return { ok: false, reason: `expected AccessDenied, got ${describeAwsError(result.error)}` };
}

export function judgeOtherServiceCall(result: ProbeResult): Verdict {
  if (result.ok) {
    return {
      ok: false,
      reason:
        "sts:GetAccessKeyInfo SUCCEEDED: the role has permissions beyond its policy (a wildcard action or another " +
        "attached policy).\nFix: attach only DocumentProcessorS3Access to the role.",
    };
  }
  const { name, status } = awsErrorInfo(result.error);
  if (name === "AccessDenied" || name === "UnauthorizedOperation" || status === 403) {
    return { ok: true, detail: `${name}, as it must be` };
  }
  return { ok: false, reason: `expected AccessDenied, got ${describeAwsError(result.error)}` };
}

export function judgeQueueProbes(probes: QueueProbes, queueUrl: string): Verdict {
  const problems: string[] = [];
  for (const [action, result] of Object.entries(probes) as [keyof QueueProbes, ProbeResult][]) {
    const kind = classifyProbe(result);
    if (kind === "authorized" || result.ok) continue;
    if (kind === "denied") problems.push(`sqs:${capitalize(action)} is denied (${describeAwsError(result.error)})`);
    else problems.push(`sqs:${capitalize(action)} failed: ${describeAwsError(result.error)}`);
  }
  if (problems.length === 0) {
    return { ok: true, detail: "sqs:ChangeMessageVisibility and sqs:DeleteMessage authorized (no message touched)" };
  }
  return {
    ok: false,
    reason:
      `${problems.join("; ")} on ${queueUrl}.\nFix: the role's policy needs sqs:ReceiveMessage, sqs:DeleteMessage and ` +
      "sqs:ChangeMessageVisibility on the queue's ARN (statement ConsumeNotifications), and queueUrl must be that queue.",
  };
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
