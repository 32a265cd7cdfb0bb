// The (action, resource) pairs the audit asks IAM about, each tied to the claim it proves: the seed's paragraph
// ("This role can read from source and write to output. It cannot list buckets, delete objects, modify bucket
// policy, or touch any other AWS service. An EC2 instance carrying this role cannot escalate its own privileges,
// create other IAM entities, or access resources outside these two specific paths.") plus the queue the daemon
// consumes (docs DESIGN: the seed's policy lacks it, notifications need it). Pure.

export type Expected = "allowed" | "denied";

export interface Expectation {
  /** The claim this pair proves, worded as the seed words it. */
  claim: string;
  action: string;
  resource: string;
  expected: Expected;
}

export interface MatrixInput {
  partition: string;
  accountId: string;
  roleArn: string;
  policyName: string;
  sourceBucket: string;
  outputBucket: string;
  queue: { accountId: string; name: string; region: string };
}

export const CLAIMS = {
  read: "can read from source",
  write: "can write to output",
  consume: "can consume the notification queue",
  list: "cannot list buckets",
  delete: "cannot delete objects",
  bucketPolicy: "cannot modify bucket policy",
  otherService: "cannot touch any other AWS service",
  escalate: "cannot escalate its own privileges",
  createIam: "cannot create other IAM entities",
  outside: "cannot access resources outside these two specific paths",
} as const;

// Example object keys: any key under the bucket is what the policy's "<bucket>/*" has to answer for.
const SAMPLE_KEY = "doc-processor-audit/any-document.pdf";

export function buildMatrix(input: MatrixInput): Expectation[] {
  const { partition: p, accountId, roleArn, policyName, sourceBucket: src, outputBucket: out, queue } = input;
  const s3 = (bucket: string, key?: string): string => `arn:${p}:s3:::${bucket}${key === undefined ? "" : `/${key}`}`;
  const sqs = (name: string): string => `arn:${p}:sqs:${queue.region}:${queue.accountId}:${name}`;
  const iam = (kind: string, name: string): string => `arn:${p}:iam::${accountId}:${kind}/${name}`;
  const srcObject = s3(src, SAMPLE_KEY);
  const outObject = s3(out, `${SAMPLE_KEY}.json`);
  const q = sqs(queue.name);
  const allowed = (claim: string, action: string, resource: string): Expectation => ({ claim, action, resource, expected: "allowed" });
  const denied = (claim: string, action: string, resource: string): Expectation => ({ claim, action, resource, expected: "denied" });
  const c = CLAIMS;
  return [
    allowed(c.read, "s3:GetObject", srcObject),
    allowed(c.write, "s3:PutObject", outObject),
    allowed(c.consume, "sqs:ReceiveMessage", q),
    allowed(c.consume, "sqs:DeleteMessage", q),
    allowed(c.consume, "sqs:ChangeMessageVisibility", q),

    denied(c.list, "s3:ListBucket", s3(src)),
    denied(c.list, "s3:ListBucket", s3(out)),
    denied(c.list, "s3:ListBucketVersions", s3(src)),
    denied(c.list, "s3:ListAllMyBuckets", "*"),

    denied(c.delete, "s3:DeleteObject", srcObject),
    denied(c.delete, "s3:DeleteObject", outObject),
    denied(c.delete, "s3:DeleteObjectVersion", srcObject),
    denied(c.delete, "s3:DeleteObjectVersion", outObject),

    denied(c.bucketPolicy, "s3:PutBucketPolicy", s3(src)),
    denied(c.bucketPolicy, "s3:PutBucketPolicy", s3(out)),
    denied(c.bucketPolicy, "s3:DeleteBucketPolicy", s3(src)),
    denied(c.bucketPolicy, "s3:DeleteBucketPolicy", s3(out)),
    denied(c.bucketPolicy, "s3:PutBucketAcl", s3(out)),
    denied(c.bucketPolicy, "s3:PutObjectAcl", outObject),

    // Only the two paths: no reading what was written, no writing what is read, no other bucket (one whose name
    // starts like ours catches a "<bucket>*" wildcard), no older versions, and the DESIGN's choices.
    denied(c.outside, "s3:GetObject", outObject),
    denied(c.outside, "s3:PutObject", srcObject),
    denied(c.outside, "s3:GetObject", s3(`${src}-other`, SAMPLE_KEY)),
    denied(c.outside, "s3:PutObject", s3(`${out}-other`, `${SAMPLE_KEY}.json`)),
    denied(c.outside, "s3:GetObjectVersion", srcObject),
    denied(c.outside, "s3:AbortMultipartUpload", outObject),
    denied(c.outside, "sqs:ReceiveMessage", sqs(`${queue.name}-dlq`)),
    denied(c.outside, "sqs:GetQueueAttributes", q),

    denied(c.otherService, "sqs:SendMessage", q),
    denied(c.otherService, "sqs:PurgeQueue", q),
    denied(c.otherService, "sqs:SetQueueAttributes", q),
    denied(c.otherService, "sqs:DeleteQueue", q),
    denied(c.otherService, "ec2:DescribeInstances", "*"),
    denied(c.otherService, "ec2:RunInstances", "*"),
    denied(c.otherService, "ec2:ModifyInstanceMetadataOptions", "*"),
    denied(c.otherService, "ec2:ReplaceIamInstanceProfileAssociation", "*"),
    // SSE-S3 (what provisioning sets) needs no KMS permission at all.
    denied(c.otherService, "kms:Decrypt", "*"),
    denied(c.otherService, "kms:GenerateDataKey", "*"),
    denied(c.otherService, "secretsmanager:GetSecretValue", "*"),
    denied(c.otherService, "ssm:GetParameter", "*"),
    denied(c.otherService, "sts:GetAccessKeyInfo", "*"),

    denied(c.escalate, "iam:AttachRolePolicy", roleArn),
    denied(c.escalate, "iam:PutRolePolicy", roleArn),
    denied(c.escalate, "iam:UpdateAssumeRolePolicy", roleArn),
    denied(c.escalate, "iam:CreatePolicyVersion", iam("policy", policyName)),
    denied(c.escalate, "iam:PassRole", roleArn),
    denied(c.escalate, "sts:AssumeRole", iam("role", "doc-processor-audit-another-role")),

    denied(c.createIam, "iam:CreateUser", iam("user", "doc-processor-audit-probe")),
    denied(c.createIam, "iam:CreateRole", iam("role", "doc-processor-audit-probe")),
    denied(c.createIam, "iam:CreateAccessKey", iam("user", "doc-processor-audit-probe")),
    denied(c.createIam, "iam:CreatePolicy", iam("policy", "doc-processor-audit-probe")),
  ];
}
