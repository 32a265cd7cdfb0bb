// What IAM itself stores about roles: trust policy, attached customer managed policies (with their versions) and
// inline policies (no permissions boundaries: the stand-in's roles have none), as the read calls of an operator's audit see them (GetRole, ListAttachedRolePolicies, GetPolicy,
// GetPolicyVersion, ListRolePolicies, GetRolePolicy) and as SimulatePrincipalPolicy evaluates them. The stand-in
// takes a role's enforced policies from here, so what the audit reads is exactly what the gateway enforces.
import type { PolicyDocument } from "./types.js";
import { sealPolicy } from "./validate.js";

export interface StoredDocument {
  document: PolicyDocument;
  /** The text IAM returns (URL-encoded on the wire) and positions in MatchedStatements refer to. */
  text: string;
}

export interface ManagedPolicy extends StoredDocument {
  name: string;
  arn: string;
  /** ANPA… */
  policyId: string;
  path: string;
  versionId: string;
  createDate: Date;
}

export interface RoleEntry {
  name: string;
  accountId: string;
  arn: string;
  roleId: string;
  path: string;
  createDate: Date;
  trust: StoredDocument;
  /** ARNs of the attached managed policies, in attachment order. */
  attached: string[];
  inline: Map<string, StoredDocument>;
}

/** A policy in force for a role, named as the simulator names its source. */
export interface PolicySource extends StoredDocument {
  /** SourcePolicyId: the managed policy's or the inline policy's name. */
  id: string;
  /** SourcePolicyType: "user-managed" for customer managed policies, "role" for inline ones. */
  type: "user-managed" | "role";
}

const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function policyId(): string {
  let id = "ANPA";
  while (id.length < 21) id += ID_ALPHABET[Math.floor(Math.random() * ID_ALPHABET.length)];
  return id;
}

function stored(document: PolicyDocument, kind: "identity" | "trust"): StoredDocument {
  // A frozen copy: the gateway enforces it on every request without validating it again.
  const valid = sealPolicy(document, kind);
  return { document: valid, text: JSON.stringify(valid, null, 2) };
}

const roleKey = (accountId: string, name: string): string => `${accountId}/${name}`;

export class IamDirectory {
  private readonly policies = new Map<string, ManagedPolicy>();
  private readonly roles = new Map<string, RoleEntry>();

  /** Creates a customer managed policy (version v1, the default) and returns it. */
  createPolicy(accountId: string, name: string, document: PolicyDocument): ManagedPolicy {
    const arn = `arn:aws:iam::${accountId}:policy/${name}`;
    if (this.policies.has(arn)) throw new Error(`policy ${arn} already exists`);
    const policy: ManagedPolicy = {
      name,
      arn,
      policyId: policyId(),
      path: "/",
      versionId: "v1",
      createDate: new Date(),
      ...stored(document, "identity"),
    };
    this.policies.set(arn, policy);
    return policy;
  }

  /** Registers a role IAM knows about (identities already made its id and ARN). */
  putRole(role: { name: string; accountId: string; arn: string; roleId: string }, trust: PolicyDocument): RoleEntry {
    const entry: RoleEntry = {
      ...role,
      path: "/",
      createDate: new Date(),
      trust: stored(trust, "trust"),
      attached: [],
      inline: new Map(),
    };
    this.roles.set(roleKey(role.accountId, role.name), entry);
    return entry;
  }

  attachRolePolicy(accountId: string, roleName: string, policyArn: string): void {
    const role = this.requireRole(accountId, roleName);
    if (!this.policies.has(policyArn)) throw new Error(`no policy ${policyArn}`);
    if (!role.attached.includes(policyArn)) role.attached.push(policyArn);
  }

  putRolePolicy(accountId: string, roleName: string, name: string, document: PolicyDocument): void {
    this.requireRole(accountId, roleName).inline.set(name, stored(document, "identity"));
  }

  role(accountId: string, name: string): RoleEntry | undefined {
    return this.roles.get(roleKey(accountId, name));
  }

  /** The role whose ARN is `arn` (arn:aws:iam::<account>:role[/path]/<name>). */
  roleByArn(arn: string): RoleEntry | undefined {
    return [...this.roles.values()].find((r) => r.arn === arn);
  }

  policy(arn: string): ManagedPolicy | undefined {
    return this.policies.get(arn);
  }

  /** The role's permission policies: attached managed ones, then inline ones. */
  sourcesOf(role: RoleEntry): PolicySource[] {
    const managed = role.attached.map((arn): PolicySource => {
      const policy = this.policies.get(arn)!;
      return { id: policy.name, type: "user-managed", document: policy.document, text: policy.text };
    });
    const inline = [...role.inline].map(([name, doc]): PolicySource => ({ id: name, type: "role", ...doc }));
    return [...managed, ...inline];
  }

  /** The documents to enforce for a role's sessions, or undefined for a role this directory does not hold. */
  enforcedPolicies(accountId: string, roleName: string): PolicyDocument[] | undefined {
    const role = this.role(accountId, roleName);
    return role && this.sourcesOf(role).map((s) => s.document);
  }

  private requireRole(accountId: string, name: string): RoleEntry {
    const role = this.role(accountId, name);
    if (!role) throw new Error(`no role ${name} in ${accountId}`);
    return role;
  }
}
