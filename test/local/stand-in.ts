// The local AWS stand-in: fauxqs behind the policy-enforcing gateway, plus the mock IMDS handing out role sessions the
// gateway issued. Everything listens on 127.0.0.1. Used in-process by the integration tests and by `npm run local`.
// Dev-only: it never imports daemon code (it would test the daemon against itself), and src/ never imports it.
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import { randomBytes } from "node:crypto";
import { Faults } from "./gateway/faults.js";
import { ROLE_NAME, standardIdentities, type Identities, type UserKeys } from "./gateway/identities.js";
import { IamDirectory } from "./iam/directory.js";
import { startGateway, type DecisionEntry, type Gateway, type GatewayCounters } from "./gateway/server.js";
import { startUpstream, type Upstream } from "./gateway/upstream.js";
import { loadPolicyFile, repoPath } from "./iam/index.js";
import { startMockImds, type MockImds } from "./imds/index.js";

export interface StandInOptions {
  /** Default "123456789012". */
  accountId?: string;
  /** Default "us-east-1". */
  region?: string;
  /** Bucket and queue names start with it. Default "doc-processor". */
  prefix?: string;
  /** Default a random i-<17 hex>. */
  instanceId?: string;
  roleName?: string;
  /** The role's policy file; default scripts/iam/DocumentProcessorS3Access.json (what provisioning deploys). */
  rolePolicyFile?: string;
  gatewayPort?: number;
  imdsPort?: number;
  /** Lifetime of the role sessions IMDS serves (default 6 h, as on EC2). */
  credentialTtlSeconds?: number;
  /** Passed to the mock IMDS: how long before expiry it serves new credentials. */
  refreshBeforeExpirySeconds?: number;
  /** Receives before a message goes to the DLQ. Default 5. */
  maxReceiveCount?: number;
  /** The queue's default visibility timeout. Default 30. */
  visibilityTimeoutSeconds?: number;
  /** Every authorization decision and authentication failure. */
  logger?: (entry: DecisionEntry) => void;
  faultSeed?: number;
  /** The gateway's handling of a long poll whose caller has gone (GatewayOptions.abandonedReceives). */
  abandonedReceives?: "release" | "keep";
}

export interface DaemonConfig {
  queueUrl: string;
  sourceBucket: string;
  outputBucket: string;
  expectedRoleName: string;
  expectedAccountId: string;
  region: string;
}

export interface AwsClients {
  s3: S3Client;
  sqs: SQSClient;
}

export interface StandIn {
  urls: { gateway: string; imds: string; emulator: string };
  /** For the daemon process: IMDS and endpoint variables only, no keys. */
  env: Record<string, string>;
  config: DaemonConfig;
  accountId: string;
  region: string;
  instanceId(): string;
  queue: { url: string; arn: string; name: string; dlqUrl: string; dlqArn: string; dlqName: string };
  identities: Identities;
  users: { admin: UserKeys; uploader: UserKeys; cliUser: UserKeys };
  clients: { admin: AwsClients; uploader: AwsClients };
  /** A client configuration for the gateway with the given keys (explicit endpoint, region, path style). */
  clientConfig(credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }): {
    endpoint: string;
    region: string;
    forcePathStyle: true;
    credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  };
  gateway: Gateway;
  decisions: readonly DecisionEntry[];
  counters(): GatewayCounters;
  faults: Faults;
  /** The mock IMDS; setInstanceId also changes the session name of the role sessions issued afterwards. */
  imds: MockImds;
  /** Account of the role sessions IMDS serves from now on (the "another account" case; the role is created there). */
  setCredentialAccount(accountId: string): void;
  /**
   * Session name (instance id) of the role sessions IMDS serves from now on, leaving the identity document alone:
   * credentials issued for another instance. undefined goes back to this instance's id.
   */
  setCredentialInstanceId(instanceId: string | undefined): void;
  /**
   * IMDS serves these long-term keys (empty Token) instead of a role session from now on: an impostor metadata
   * endpoint, the "caller is an IAM user" case. undefined goes back to role sessions.
   */
  serveUserKeysFromImds(keys: UserKeys | undefined): void;
  /**
   * What IAM holds about the roles (trust policy, the managed policy DocumentProcessorS3Access, inline policies): the
   * audit reads it through the gateway, and the gateway enforces it for the role's sessions.
   */
  iam: IamDirectory;
  /** Requests the gateway received per access key id since setup (every signed request is looked up once). */
  requestsByAccessKey(): ReadonlyMap<string, number>;
  close(): Promise<void>;
}

/**
 * MaximumMessageSize of both queues, as scripts/cloudformation/doc-processor.json creates them (a test keeps the two
 * equal): fauxqs would otherwise accept SQS's 1 MiB maximum, which the deployed queues refuse.
 */
export const QUEUE_MAXIMUM_MESSAGE_SIZE = 262_144;

function randomInstanceId(): string {
  return `i-${randomBytes(9).toString("hex").slice(0, 17)}`;
}

export async function startStandIn(options: StandInOptions = {}): Promise<StandIn> {
  const accountId = options.accountId ?? "123456789012";
  const region = options.region ?? "us-east-1";
  const prefix = options.prefix ?? "doc-processor";
  const roleName = options.roleName ?? ROLE_NAME;
  const sourceBucket = `${prefix}-source-${accountId}`;
  const outputBucket = `${prefix}-output-${accountId}`;
  const queueName = `${prefix}-events`;
  const dlqName = `${prefix}-events-dlq`;
  const queueArn = `arn:aws:sqs:${region}:${accountId}:${queueName}`;
  const dlqArn = `arn:aws:sqs:${region}:${accountId}:${dlqName}`;
  const ttlSeconds = options.credentialTtlSeconds ?? 6 * 3600;

  const rolePolicy = loadPolicyFile(options.rolePolicyFile ?? repoPath("scripts", "iam", "DocumentProcessorS3Access.json"), {
    SourceBucket: sourceBucket,
    OutputBucket: outputBucket,
    QueueArn: queueArn,
  });
  const cast = standardIdentities({ accountId, sourceBucket, rolePolicy, roleName });
  const { identities } = cast;
  // The roles as provisioning creates them: the EC2 trust policy and one customer managed policy.
  const iam = new IamDirectory();
  const trust = loadPolicyFile(repoPath("scripts", "iam", "ec2-trust-policy.json"), {}, "trust");
  const managed = iam.createPolicy(accountId, "DocumentProcessorS3Access", rolePolicy);
  iam.putRole(cast.role, trust);
  iam.attachRolePolicy(accountId, cast.role.name, managed.arn);
  iam.putRole(cast.otherRole, trust);
  // IAM decides what a role it holds may do, so a policy put there later is enforced at once, as in IAM.
  const policiesFor = identities.policiesFor.bind(identities);
  identities.policiesFor = (principal) =>
    (principal.kind === "assumed-role" ? iam.enforcedPolicies(principal.accountId, principal.name) : undefined) ?? policiesFor(principal);
  // Counts which keys signed requests (a rotation is visible as a second key of the role), without touching the gateway.
  const keyRequests = new Map<string, number>();
  const lookup = identities.lookup.bind(identities);
  identities.lookup = (accessKeyId: string) => {
    keyRequests.set(accessKeyId, (keyRequests.get(accessKeyId) ?? 0) + 1);
    return lookup(accessKeyId);
  };

  const cleanups: (() => Promise<void>)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  };

  try {
    const upstream: Upstream = await startUpstream({ region });
    cleanups.push(() => upstream.close());
    const faults = new Faults(options.faultSeed ?? 1);
    const gateway = await startGateway({
      identities,
      upstream,
      region,
      accountId,
      faults,
      ...(options.gatewayPort !== undefined && { port: options.gatewayPort }),
      ...(options.logger && { logger: options.logger }),
      ...(options.abandonedReceives !== undefined && { abandonedReceives: options.abandonedReceives }),
      iam,
    });
    cleanups.push(() => gateway.close());

    let instanceId = options.instanceId ?? randomInstanceId();
    let credentialAccount = accountId;
    let credentialInstanceId: string | undefined;
    let servedUserKeys: UserKeys | undefined;
    const issueCredentials = (role: string) => {
      if (servedUserKeys) {
        return {
          AccessKeyId: servedUserKeys.accessKeyId,
          SecretAccessKey: servedUserKeys.secretAccessKey,
          Token: "",
          Expiration: new Date(Math.floor(Date.now() / 1000 + ttlSeconds) * 1000),
        };
      }
      // IMDS may be switched to any role; one unknown to IAM gets no permissions (it can still call STS).
      if (!identities.hasRole(role, credentialAccount)) identities.addRole(role, [], credentialAccount);
      const session = identities.issueRoleSession(role, credentialInstanceId ?? instanceId, ttlSeconds, credentialAccount);
      return {
        AccessKeyId: session.accessKeyId,
        SecretAccessKey: session.secretAccessKey,
        Token: session.sessionToken,
        Expiration: session.expiration,
      };
    };
    const imdsHandle = await startMockImds({
      ...(options.imdsPort !== undefined && { port: options.imdsPort }),
      instanceId,
      accountId,
      region,
      availabilityZone: `${region}a`,
      roleName,
      issueCredentials,
      ...(options.refreshBeforeExpirySeconds !== undefined && { refreshBeforeExpirySeconds: options.refreshBeforeExpirySeconds }),
    });
    cleanups.push(() => imdsHandle.close());
    const imds: MockImds = Object.assign(Object.create(imdsHandle) as MockImds, {
      setInstanceId(id: string) {
        instanceId = id;
        imdsHandle.setInstanceId(id);
        imdsHandle.rotateNow();
      },
    });

    const clientConfig: StandIn["clientConfig"] = (credentials) => ({
      endpoint: gateway.url,
      region,
      forcePathStyle: true,
      credentials: { ...credentials },
    });
    const clientsFor = (keys: UserKeys): AwsClients => {
      const config = clientConfig({ accessKeyId: keys.accessKeyId, secretAccessKey: keys.secretAccessKey });
      return { s3: new S3Client(config), sqs: new SQSClient(config) };
    };
    const admin = clientsFor(cast.admin);
    const uploader = clientsFor(cast.uploader);
    cleanups.push(async () => {
      for (const client of [admin.s3, admin.sqs, uploader.s3, uploader.sqs]) client.destroy();
    });

    // Set up through the gateway as admin, the way provisioning would.
    await admin.s3.send(new CreateBucketCommand({ Bucket: sourceBucket }));
    await admin.s3.send(new CreateBucketCommand({ Bucket: outputBucket }));
    const dlq = await admin.sqs.send(
      new CreateQueueCommand({ QueueName: dlqName, Attributes: { MaximumMessageSize: String(QUEUE_MAXIMUM_MESSAGE_SIZE) } }),
    );
    const queue = await admin.sqs.send(
      new CreateQueueCommand({
        QueueName: queueName,
        Attributes: {
          VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? 30),
          MaximumMessageSize: String(QUEUE_MAXIMUM_MESSAGE_SIZE),
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: options.maxReceiveCount ?? 5 }),
        },
      }),
    );
    const queueUrl = queue.QueueUrl!;
    const attributes = await admin.sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }));
    if (attributes.Attributes?.["QueueArn"] !== queueArn) {
      throw new Error(`queue ARN is ${attributes.Attributes?.["QueueArn"]}, expected ${queueArn}`);
    }
    // Counters and the decision log start empty for the caller: setup is not part of what they measure.
    gateway.resetCounters();
    keyRequests.clear();
    await gateway.addNotification({ bucket: sourceBucket, queueName, configurationId: `${prefix}-object-created` });

    const imdsUrl = imdsHandle.url;
    return {
      urls: { gateway: gateway.url, imds: imdsUrl, emulator: upstream.url },
      env: {
        AWS_EC2_METADATA_SERVICE_ENDPOINT: imdsUrl,
        AWS_EC2_METADATA_V1_DISABLED: "true",
        AWS_ENDPOINT_URL_S3: gateway.url,
        AWS_ENDPOINT_URL_SQS: gateway.url,
        AWS_ENDPOINT_URL_STS: gateway.url,
        AWS_REGION: region,
      },
      config: { queueUrl, sourceBucket, outputBucket, expectedRoleName: roleName, expectedAccountId: accountId, region },
      accountId,
      region,
      instanceId: () => instanceId,
      queue: { url: queueUrl, arn: queueArn, name: queueName, dlqUrl: dlq.QueueUrl!, dlqArn, dlqName },
      identities,
      users: { admin: cast.admin, uploader: cast.uploader, cliUser: cast.cliUser },
      clients: { admin, uploader },
      clientConfig,
      gateway,
      decisions: gateway.decisions,
      counters: () => gateway.counters(),
      faults,
      imds,
      setCredentialAccount(id: string) {
        credentialAccount = id;
        imdsHandle.rotateNow();
      },
      setCredentialInstanceId(id: string | undefined) {
        credentialInstanceId = id;
        imdsHandle.rotateNow();
      },
      serveUserKeysFromImds(keys: UserKeys | undefined) {
        servedUserKeys = keys;
        imdsHandle.rotateNow();
      },
      iam,
      requestsByAccessKey: () => new Map(keyRequests),
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
