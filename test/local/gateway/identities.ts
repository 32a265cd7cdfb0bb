// Who may call the gateway: IAM users with long-term AKIA keys and roles whose temporary ASIA sessions are issued
// per instance (what IMDS hands out). Credentials are looked up by access key id when a signature is verified;
// policies are looked up at authorization time, so a changed role policy applies to sessions already issued (as in
// IAM).
import { randomBytes, randomInt } from "node:crypto";
import type { PolicyDocument } from "../iam/index.js";

export const DEFAULT_ACCOUNT_ID = "123456789012";

export interface Principal {
  kind: "assumed-role" | "user";
  /** arn:aws:sts::<acct>:assumed-role/<role>/<session> or arn:aws:iam::<acct>:user/<name>. */
  arn: string;
  /** AROA…:<session> or AIDA…, as GetCallerIdentity's UserId. */
  userId: string;
  accountId: string;
  /** Role or user name. */
  name: string;
  /** The role session name (the instance id for instance-profile sessions). */
  sessionName?: string;
}

export interface CredentialRecord {
  accessKeyId: string;
  secretAccessKey: string;
  /** Present for role sessions; must match x-amz-security-token. */
  sessionToken?: string;
  expiration?: Date;
  principal: Principal;
}

export interface RoleSession {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
  principal: Principal;
}

export interface UserKeys {
  accessKeyId: string;
  secretAccessKey: string;
  /** Same as principal.arn. */
  arn: string;
  principal: Principal;
}

export interface RoleInfo {
  name: string;
  accountId: string;
  /** arn:aws:iam::<acct>:role/<name> */
  arn: string;
  /** AROA… (21 characters). */
  roleId: string;
}

interface Entity {
  policies: readonly PolicyDocument[];
}

// IAM ids use upper-case letters and the digits 2-7 after their four-letter prefix.
const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function randomId(prefix: string, length: number): string {
  let id = prefix;
  while (id.length < length) id += ID_ALPHABET[randomInt(ID_ALPHABET.length)];
  return id;
}

function randomSecret(): string {
  return randomBytes(30).toString("base64").replace(/[+/]/g, "A").slice(0, 40);
}

function randomSessionToken(): string {
  // Real tokens are long opaque base64; the prefix is what real ones start with.
  return `IQoJb3JpZ2luX2VjE${randomBytes(240).toString("base64")}`;
}

const roleKey = (accountId: string, name: string): string => `${accountId}/role/${name}`;
const userKey = (accountId: string, name: string): string => `${accountId}/user/${name}`;

export interface IdentitiesOptions {
  accountId?: string;
  /** Clock for expiry decisions, in epoch ms; tests may pass their own. */
  now?: () => number;
}

export class Identities {
  readonly accountId: string;
  private readonly now: () => number;
  private readonly roles = new Map<string, RoleInfo & Entity>();
  private readonly users = new Map<string, UserKeys & Entity>();
  private readonly credentials = new Map<string, CredentialRecord>();

  constructor(options: IdentitiesOptions = {}) {
    this.accountId = options.accountId ?? DEFAULT_ACCOUNT_ID;
    this.now = options.now ?? Date.now;
  }

  addRole(name: string, policies: readonly PolicyDocument[], accountId = this.accountId): RoleInfo {
    const key = roleKey(accountId, name);
    if (this.roles.has(key)) throw new Error(`role ${name} in ${accountId} already exists`);
    const role = { name, accountId, arn: `arn:aws:iam::${accountId}:role/${name}`, roleId: randomId("AROA", 21), policies };
    this.roles.set(key, role);
    return { name, accountId, arn: role.arn, roleId: role.roleId };
  }

  hasRole(name: string, accountId = this.accountId): boolean {
    return this.roles.has(roleKey(accountId, name));
  }

  setRolePolicies(name: string, policies: readonly PolicyDocument[], accountId = this.accountId): void {
    this.requireRole(name, accountId).policies = policies;
  }

  /** Long-term keys (AKIA…) for a new IAM user; keys may be given to make them predictable. */
  addUser(
    name: string,
    policies: readonly PolicyDocument[],
    options: { accountId?: string; accessKeyId?: string; secretAccessKey?: string } = {},
  ): UserKeys {
    const accountId = options.accountId ?? this.accountId;
    const key = userKey(accountId, name);
    if (this.users.has(key)) throw new Error(`user ${name} in ${accountId} already exists`);
    const principal: Principal = {
      kind: "user",
      arn: `arn:aws:iam::${accountId}:user/${name}`,
      userId: randomId("AIDA", 21),
      accountId,
      name,
    };
    const keys: UserKeys = {
      accessKeyId: options.accessKeyId ?? randomId("AKIA", 20),
      secretAccessKey: options.secretAccessKey ?? randomSecret(),
      arn: principal.arn,
      principal,
    };
    if (this.credentials.has(keys.accessKeyId)) throw new Error(`access key ${keys.accessKeyId} is already in use`);
    this.users.set(key, { ...keys, policies });
    this.credentials.set(keys.accessKeyId, { ...keys });
    return keys;
  }

  user(name: string, accountId = this.accountId): UserKeys {
    const user = this.users.get(userKey(accountId, name));
    if (!user) throw new Error(`no user ${name} in ${accountId}`);
    return { accessKeyId: user.accessKeyId, secretAccessKey: user.secretAccessKey, arn: user.arn, principal: user.principal };
  }

  /**
   * Temporary credentials for `roleName` with the instance id as session name, as EC2 issues them to an instance
   * profile. A ttl of 0 or less gives credentials that are already expired (for ExpiredToken tests).
   */
  issueRoleSession(roleName: string, instanceId: string, ttlSeconds: number, accountId = this.accountId): RoleSession {
    const role = this.requireRole(roleName, accountId);
    const session: RoleSession = {
      accessKeyId: randomId("ASIA", 20),
      secretAccessKey: randomSecret(),
      sessionToken: randomSessionToken(),
      // Whole seconds: IMDS serves second precision, and the AWS CLI parses exactly that.
      expiration: new Date(Math.floor((this.now() + ttlSeconds * 1000) / 1000) * 1000),
      principal: {
        kind: "assumed-role",
        arn: `arn:aws:sts::${accountId}:assumed-role/${roleName}/${instanceId}`,
        userId: `${role.roleId}:${instanceId}`,
        accountId,
        name: roleName,
        sessionName: instanceId,
      },
    };
    this.credentials.set(session.accessKeyId, { ...session });
    return session;
  }

  /** Makes a session's credentials expired from now on (rotation must not do this; tests of ExpiredToken do). */
  expireSession(accessKeyId: string): void {
    const record = this.credentials.get(accessKeyId);
    if (!record?.sessionToken) throw new Error(`${accessKeyId} is not a session key`);
    record.expiration = new Date(this.now() - 1000);
  }

  lookup(accessKeyId: string): CredentialRecord | undefined {
    return this.credentials.get(accessKeyId);
  }

  isExpired(record: CredentialRecord): boolean {
    return record.expiration !== undefined && record.expiration.getTime() <= this.now();
  }

  /** The policies in force for `principal` right now. */
  policiesFor(principal: Principal): readonly PolicyDocument[] {
    const entity =
      principal.kind === "user"
        ? this.users.get(userKey(principal.accountId, principal.name))
        : this.roles.get(roleKey(principal.accountId, principal.name));
    return entity?.policies ?? [];
  }

  private requireRole(name: string, accountId: string): RoleInfo & Entity {
    const role = this.roles.get(roleKey(accountId, name));
    if (!role) throw new Error(`no role ${name} in ${accountId}`);
    return role;
  }
}

/** A policy that allows everything: the admin user's. */
export const ADMIN_POLICY: PolicyDocument = {
  Version: "2012-10-17",
  Statement: [{ Sid: "Everything", Effect: "Allow", Action: "*", Resource: "*" }],
};

/** The uploader: writes documents into the source bucket and may read everything (what the local run uploads as). */
export function uploaderPolicy(sourceBucket: string): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "UploadToSource",
        Effect: "Allow",
        Action: ["s3:PutObject", "s3:AbortMultipartUpload"],
        Resource: `arn:aws:s3:::${sourceBucket}/*`,
      },
      {
        Sid: "ReadEverything",
        Effect: "Allow",
        Action: ["s3:Get*", "s3:List*", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ListQueues", "sqs:ListQueueTags"],
        Resource: "*",
      },
    ],
  };
}

export const ROLE_NAME = "EC2DocumentProcessorRole";
export const OTHER_ROLE_NAME = "SomeOtherRole";

export interface StandardIdentities {
  identities: Identities;
  role: RoleInfo;
  otherRole: RoleInfo;
  admin: UserKeys;
  uploader: UserKeys;
  cliUser: UserKeys;
}

/**
 * The stand-in's cast: the instance role with the shipped policy (`rolePolicy`, rendered from scripts/iam/), a role
 * with no permissions, and the users admin (everything), uploader and cli-user (the role's policy attached to a user:
 * the seed's "identity is a user ARN" case).
 */
export function standardIdentities(options: {
  accountId?: string;
  sourceBucket: string;
  rolePolicy: PolicyDocument;
  roleName?: string;
  now?: () => number;
}): StandardIdentities {
  const identities = new Identities({
    ...(options.accountId !== undefined && { accountId: options.accountId }),
    ...(options.now !== undefined && { now: options.now }),
  });
  return {
    identities,
    role: identities.addRole(options.roleName ?? ROLE_NAME, [options.rolePolicy]),
    otherRole: identities.addRole(OTHER_ROLE_NAME, []),
    admin: identities.addUser("admin", [ADMIN_POLICY]),
    uploader: identities.addUser("uploader", [uploaderPolicy(options.sourceBucket)]),
    cliUser: identities.addUser("cli-user", [options.rolePolicy]),
  };
}
