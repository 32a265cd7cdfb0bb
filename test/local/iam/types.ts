// Shapes of the IAM policy subset the stand-in understands. Kept apart from the logic so the gateway can import the
// types without pulling in file access.

export interface PolicyStatement {
  Sid?: string;
  Effect: "Allow" | "Deny";
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: unknown;
  Principal?: unknown;
}

export interface PolicyDocument {
  Version?: string;
  Statement: PolicyStatement | PolicyStatement[];
}

export type Decision =
  | { effect: "allow"; sid?: string }
  | { effect: "explicit-deny"; sid?: string }
  | { effect: "implicit-deny" };

export interface AuthorizationRequest {
  /** "service:Action", e.g. "s3:GetObject". */
  action: string;
  /** Full ARN, or "*" for actions that take no resource (ec2:DescribeInstances). */
  resource: string;
}

/**
 * "identity": a policy attached to a principal (needs Resource, must not name a Principal): what evaluate() takes.
 * "trust": a role's trust policy (names a Principal, has no Resource); validated only, never evaluated here.
 */
export type PolicyKind = "identity" | "trust";
