/**
 * `doc-processor check`: the seed's manual confirmations ("In this section, I confirmed: N of M completed") as a
 * checklist, one line each (checklist.ts). The steps use the daemon's own start-up stages (startup.ts), so the
 * checklist proves what `run` will do. Every call stays inside the role's policy or is refused by it, and the probes
 * of the denied side change nothing even when a too-broad role is allowed them (denied-probes.ts); the only write is
 * one small probe object in the output bucket, overwritten on every run.
 */
import { randomUUID } from "node:crypto";
import { dirname } from "node:path";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { GetAccessKeyInfoCommand } from "@aws-sdk/client-sts";
import type { AwsClients } from "../aws/clients.js";
import { assertNoStaticCredentials, readIfExists } from "../aws/credentials.js";
import { tokenlessRequestStatus, type ImdsClientOptions, type InstanceIdentity } from "../aws/imds.js";
import type { Env } from "../config/env.js";
import { configPathOf, loadConfig } from "../config/load.js";
import { queueLocationOf, type QueueLocation } from "../config/queue-url.js";
import type { Config } from "../config/schema.js";
import { describeAwsError } from "../errors/aws.js";
import { ErrorCode, IdentityError } from "../errors/fatal.js";
import type { VerifiedIdentity } from "../identity/self-check.js";
import type { Logger } from "../logging/logger.js";
import { probeQueue, type ProbeResult } from "../queue/access-probe.js";
import {
  expiryDetail,
  judgeOtherServiceCall,
  judgeQueueProbes,
  judgeSourceRead,
  judgeSourceWrite,
  judgeTokenlessStatus,
  sizeFromContentRange,
} from "./check-verdicts.js";
import { NotChecked, need, runChecklist, skip, verdict, type CheckStep } from "./checklist.js";
import { PROBE_FOLDER, deniedProbes, judgeDeniedProbe, runDeniedProbe } from "./denied-probes.js";
import { connect, imdsOptionsOf, loadProcessors, readInstance, verifyCaller, type Connection, type ConnectOptions } from "./startup.js";

export { PROBE_FOLDER };

export interface CheckOptions {
  configPath: string | undefined;
  /** An object that exists in the source bucket; without it, reading from source is not checked. */
  sourceKey: string | undefined;
  env: Env;
  log: Logger;
  out: (line: string) => void;
}

/** The start-up stages the steps run (startup.ts and the IMDS/credential probes); replaced in tests. */
export interface CheckStages {
  loadConfig(configPath: string | undefined, env: Env): Config;
  loadProcessors(config: Config, baseDir: string): Promise<{ name: string }[]>;
  assertNoStaticCredentials(env: Env): void;
  tokenlessStatus(options: ImdsClientOptions): Promise<number>;
  readInstance(options: ImdsClientOptions): Promise<InstanceIdentity>;
  connect(options: ConnectOptions): Connection;
  verifyCaller(config: Config, clients: AwsClients, instance: InstanceIdentity): Promise<VerifiedIdentity>;
}

export const realStages: CheckStages = {
  loadConfig: (configPath, env) => loadConfig({ configPath, env }),
  loadProcessors,
  assertNoStaticCredentials: (env) => assertNoStaticCredentials({ env, homeDir: env["HOME"], readFile: readIfExists }),
  tokenlessStatus: tokenlessRequestStatus,
  readInstance,
  connect,
  verifyCaller,
};

/** What `check` cannot probe on the instance, and where it is checked instead. */
const NOT_PROBED = "sqs:SendMessage, sqs:PurgeQueue, sqs:SetQueueAttributes, s3:PutBucketPolicy, iam:*";
const AUDIT_HINT = "audit with the deployer's credentials: npm run audit";

// An ETag no object has: a write guarded by it can never land, even when S3 authorizes it.
const IMPOSSIBLE_ETAG = '"00000000000000000000000000000000"';

/** What the steps found so far; each later step takes what it needs with need(), or is skipped. */
interface CheckState {
  config?: Config;
  instance?: InstanceIdentity;
  /** Clients exist once the configuration and the role are known, even if the caller then fails verification. */
  connection?: Connection;
  /** Set only when the caller is the expected role: everything the permission probes need. */
  verified?: { config: Config; clients: AwsClients; queue: QueueLocation; identity: VerifiedIdentity };
  outputProbeWritten: boolean;
}

const IDENTITY = "the expected identity";

async function probe(call: () => Promise<unknown>): Promise<ProbeResult> {
  try {
    await call();
    return { ok: true };
  } catch (error) {
    return { ok: false, error };
  }
}

/** The checklist's steps, in order, sharing one state. Builds no client until a step needs one. */
export function checkSteps(options: CheckOptions, state: CheckState, stages: CheckStages = realStages): CheckStep[] {
  const { env } = options;
  const log = options.log;
  // IMDS is checked even when the config is broken, with the config's defaults.
  const imds = () => imdsOptionsOf(state.config);
  const outputProbeKey = (config: Config, identity: VerifiedIdentity) => `${config.outputPrefix}${PROBE_FOLDER}/${identity.instanceId}.txt`;

  // The probes of the denied side (denied-probes.ts), one line each; their never-written keys are new on every run.
  const nonce = randomUUID();
  // The names only, for the lines skipped before the configuration is known.
  const deniedNames = deniedProbes({ sourceBucket: "", outputBucket: "", outputPrefix: "", outputProbeKey: "", nonce, partition: "aws" });
  const deniedSteps: CheckStep[] = deniedNames.map(({ name }) => ({
    name,
    run: async () => {
      const { config, identity, clients } = need(state.verified, IDENTITY);
      const found = deniedProbes({
        sourceBucket: config.sourceBucket,
        outputBucket: config.outputBucket,
        outputPrefix: config.outputPrefix,
        outputProbeKey: outputProbeKey(config, identity),
        nonce,
        partition: identity.arn.split(":")[1] || "aws",
      }).find((p) => p.name === name);
      if (found === undefined) throw new Error(`no denied probe named "${name}"`);
      // Without its own probe object a read of the output cannot tell an allow from a deny (both may answer 403).
      if (found.kind === "getObject" && !state.outputProbeWritten) skip('the probe object from "write to output works"');
      return verdict(judgeDeniedProbe(found, await runDeniedProbe(await clients.s3(), found)));
    },
  }));

  return [
    {
      name: "configuration is valid",
      run: async () => {
        const path = configPathOf(options.configPath, env);
        const loaded = stages.loadConfig(options.configPath, env);
        const processors = await stages.loadProcessors(loaded, dirname(path));
        state.config = loaded;
        return `${path}; processors ${processors.map((p) => p.name).join(", ")}`;
      },
    },
    {
      name: "no static AWS credentials on this machine",
      run: async () => {
        stages.assertNoStaticCredentials(env);
        return "none in the environment or ~/.aws";
      },
    },
    {
      name: "IMDSv2 is enforced (a request without a token is refused)",
      run: async () => verdict(judgeTokenlessStatus(await stages.tokenlessStatus(imds()))),
    },
    {
      name: "an instance profile role is attached",
      run: async () => {
        const found = await stages.readInstance(imds());
        state.instance = found;
        if (!found.roleName) {
          const role = state.config?.expectedRoleName ?? "EC2DocumentProcessorRole";
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
        const config = need(state.config, "a valid configuration");
        const instance = need(state.instance?.roleName === undefined ? undefined : state.instance, "an attached role");
        const queue = queueLocationOf(config, env);
        const connection = stages.connect({ config, queue, instance, log, concurrency: 1, env });
        state.connection = connection;
        const identity = await stages.verifyCaller(config, connection.clients, instance);
        state.verified = { config, clients: connection.clients, queue, identity };
        return identity.arn;
      },
    },
    {
      name: "the credentials are temporary (session token, expiry)",
      run: async () => {
        const { clients } = need(state.connection, "a valid configuration and an attached role");
        const creds = await clients.sts.config.credentials();
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
        const { config, clients } = need(state.verified, IDENTITY);
        const bucket = config.sourceBucket;
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
          const got = await (await clients.s3()).send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: "bytes=0-0" }));
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
        const { config, identity, clients } = need(state.verified, IDENTITY);
        const key = outputProbeKey(config, identity);
        const body = `doc-processor check at ${new Date().toISOString()} as ${identity.arn}\n`;
        try {
          await (await clients.s3()).send(new PutObjectCommand({ Bucket: config.outputBucket, Key: key, Body: body, ContentType: "text/plain" }));
        } catch (err) {
          throw new Error(
            `PutObject s3://${config.outputBucket}/${key} failed (${describeAwsError(err)}).\n` +
              "Fix: the role's policy needs s3:PutObject on arn:aws:s3:::" + `${config.outputBucket}/* (statement WriteToOutput).`,
          );
        }
        state.outputProbeWritten = true;
        return `wrote s3://${config.outputBucket}/${key} (overwritten on every check)`;
      },
    },
    {
      name: "write to source is denied",
      run: async () => {
        const { config, identity, clients } = need(state.verified, IDENTITY);
        const bucket = config.sourceBucket;
        const key = `${PROBE_FOLDER}/${identity.instanceId}.txt`;
        // If-Match with an ETag no object has: if S3 authorizes the write (the role is too broad), the precondition
        // still stops it, so the probe never creates an object in the watched bucket (nor an event for it).
        const s3 = await clients.s3();
        const result = await probe(() =>
          s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: "", ContentLength: 0, IfMatch: IMPOSSIBLE_ETAG })),
        );
        return verdict(judgeSourceWrite(result, `s3://${bucket}/${key}`));
      },
    },
    ...deniedSteps,
    {
      name: "another service is denied (sts:GetAccessKeyInfo)",
      run: async () => {
        const { clients } = need(state.verified, IDENTITY);
        // An action the policy does not grant, on a client the daemon already has: the seed's "ec2
        // describe-instances is denied" without shipping an EC2 client.
        const creds = await clients.sts.config.credentials();
        const result = await probe(() => clients.sts.send(new GetAccessKeyInfoCommand({ AccessKeyId: creds.accessKeyId })));
        return verdict(judgeOtherServiceCall(result));
      },
    },
    {
      name: "the queue can be consumed",
      run: async () => {
        const { clients, queue } = need(state.verified, IDENTITY);
        // The same no-side-effect calls the daemon makes before READY (src/queue/access-probe.ts).
        return verdict(judgeQueueProbes(await probeQueue(clients.sqs, queue.url), queue.url));
      },
    },
    {
      name: "the queue cannot be written to or purged, bucket policies and IAM cannot be changed",
      // No request shows these permissions without using them (a message sent, the queue emptied, a policy replaced).
      run: async () => new NotChecked(`not checked on the instance (no harmless probe of ${NOT_PROBED}): ${AUDIT_HINT}`),
    },
  ];
}

export async function runChecks(options: CheckOptions, stages: CheckStages = realStages): Promise<number> {
  // The checklist is the output; the JSON logs would only interleave with it (warnings still show).
  const log = options.log.child({ command: "check" }, { level: "warn" });
  const state: CheckState = { outputProbeWritten: false };
  try {
    return await runChecklist(checkSteps({ ...options, log }, state, stages), options.out);
  } finally {
    state.connection?.clients.destroy();
  }
}
