/**
 * `doc-processor check`: the seed's manual confirmations as a checklist, one line each (✓ or ✗ and a reason),
 * ending "N of M completed". Every call it makes is inside the role's policy and changes nothing.
 */
import { dirname } from "node:path";
import { ChangeMessageVisibilityCommand } from "@aws-sdk/client-sqs";
import { createAwsClients, type AwsClients } from "../aws/clients.js";
import { assertNoStaticCredentials, createImdsCredentialProvider, readIfExists } from "../aws/credentials.js";
import { fetchInstanceIdentity, type InstanceIdentity } from "../aws/imds.js";
import type { Env } from "../config/env.js";
import { CONFIG_PATH_ENV, DEFAULT_CONFIG_PATH, loadConfig } from "../config/load.js";
import { regionFromQueueUrl, type Config } from "../config/schema.js";
import { ExitCode, awsErrorInfo, errorMessage, exitCodeFor } from "../errors.js";
import { verifyIdentity } from "../identity/self-check.js";
import type { Logger } from "../observability/logger.js";
import { resolveProcessors } from "../processors/registry.js";

export interface CheckOptions {
  configPath: string | undefined;
  env: Env;
  log: Logger;
  out: (line: string) => void;
}

interface Step {
  name: string;
  run: () => Promise<string>;
}

const BOGUS_RECEIPT_HANDLE = "doc-processor-check-not-a-receipt-handle";

export async function runChecks(options: CheckOptions): Promise<number> {
  const { env, log, out } = options;
  let config: Config | undefined;
  let instance: InstanceIdentity | undefined;
  let clients: AwsClients | undefined;
  let identityOk = false;
  const need = (what: string, ok: boolean) => {
    if (!ok) throw new Skipped(`skipped: needs ${what}`);
  };

  const steps: Step[] = [
    {
      name: "no static AWS credentials on this machine",
      run: async () => {
        assertNoStaticCredentials({ env, homeDir: env["HOME"], readFile: readIfExists });
        return "none in the environment or ~/.aws";
      },
    },
    {
      name: "configuration is valid",
      run: async () => {
        const path = options.configPath ?? env[CONFIG_PATH_ENV] ?? DEFAULT_CONFIG_PATH;
        config = loadConfig({ configPath: options.configPath, env });
        const processors = await resolveProcessors(config.processor, dirname(path));
        return `${path}; processors ${processors.map((p) => p.name).join(", ")}`;
      },
    },
    {
      name: "IMDSv2 answers with this instance's identity",
      run: async () => {
        need("a valid configuration", config !== undefined);
        instance = await fetchInstanceIdentity({ timeoutMs: config!.imdsTimeoutMs, maxRetries: config!.imdsMaxRetries });
        return `${instance.instanceId} in ${instance.accountId}, ${instance.region}`;
      },
    },
    {
      name: "an instance profile role is attached",
      run: async () => {
        need("IMDS", instance !== undefined);
        if (!instance!.roleName) throw new Error("IMDS lists no role: attach the instance profile (Actions > Security > Modify IAM role)");
        return instance!.roleName;
      },
    },
    {
      name: "the caller is the expected role on this instance (not a user)",
      run: async () => {
        need("IMDS", instance !== undefined && config !== undefined);
        const region = config!.region ?? regionFromQueueUrl(config!.queueUrl) ?? instance!.region;
        const credentials = createImdsCredentialProvider({
          timeoutMs: config!.imdsTimeoutMs,
          maxRetries: config!.imdsMaxRetries,
          log,
        });
        clients = createAwsClients({ region, credentials, concurrency: 1 });
        const identity = await verifyIdentity({
          sts: clients.sts,
          instance: instance!,
          expectedRoleName: config!.expectedRoleName,
          expectedAccountId: config!.expectedAccountId,
        });
        identityOk = true;
        return identity.arn;
      },
    },
    {
      name: "credentials are temporary (issued by IMDS, expiring)",
      run: async () => {
        need("the identity check", identityOk && clients !== undefined);
        const creds = await clients!.sts.config.credentials();
        if (!creds.accessKeyId.startsWith("ASIA") || !creds.sessionToken || !creds.expiration) {
          throw new Error(`credentials ${creds.accessKeyId.slice(0, 4)}… are not temporary session credentials`);
        }
        return `expire ${creds.expiration.toISOString()}`;
      },
    },
    {
      name: "the queue accepts this role's calls",
      run: async () => {
        need("the identity check", identityOk && clients !== undefined);
        // A visibility change with a receipt handle that cannot exist: the queue answers "invalid handle" only
        // after authorizing the call, so it proves access without touching any message.
        try {
          await clients!.sqs.send(
            new ChangeMessageVisibilityCommand({
              QueueUrl: config!.queueUrl,
              ReceiptHandle: BOGUS_RECEIPT_HANDLE,
              VisibilityTimeout: 0,
            }),
          );
          return "reachable";
        } catch (err) {
          const { name } = awsErrorInfo(err);
          if (name === "ReceiptHandleIsInvalid" || name === "InvalidParameterValue") return "reachable and authorized";
          throw new Error(`${name}: ${errorMessage(err)}`);
        }
      },
    },
  ];

  let passed = 0;
  let firstFailure: number | undefined;
  try {
    for (const step of steps) {
      try {
        const detail = await step.run();
        passed++;
        out(`✓ ${step.name}: ${detail}`);
      } catch (err) {
        const reason = err instanceof Skipped ? err.message : errorMessage(err).replace(/\n/g, "\n    ");
        out(`✗ ${step.name}: ${reason}`);
        if (!(err instanceof Skipped)) firstFailure ??= exitCodeFor(err) === ExitCode.software ? 1 : exitCodeFor(err);
      }
    }
  } finally {
    clients?.destroy();
  }
  out(`${passed} of ${steps.length} completed`);
  return passed === steps.length ? ExitCode.ok : (firstFailure ?? 1);
}

class Skipped extends Error {}
