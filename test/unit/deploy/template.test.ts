// The CloudFormation template and its wrappers, without AWS: the template is evaluated here (Ref, Fn::GetAtt,
// Fn::Sub, Fn::If...) against made-up stack values, and deploy.sh/teardown.sh run against a stub `aws` that records
// its calls. The IAM documents must equal scripts/iam/*.json (their one source) and keep the lab's two statements.
import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { configSchema } from "../../../src/config/schema.js";

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };
interface Resource {
  Type: string;
  Condition?: string;
  DependsOn?: string | string[];
  Properties: JsonObject;
}
interface Template {
  Parameters: Record<string, JsonObject>;
  Conditions: Record<string, Json>;
  Resources: Record<string, Resource>;
  Outputs: Record<string, JsonObject>;
}

const root = fileURLToPath(new URL("../../../", import.meta.url));
const templatePath = join(root, "scripts/cloudformation/doc-processor.json");
const deployScript = join(root, "scripts/deploy.sh");
const teardownScript = join(root, "scripts/teardown.sh");
const userDataPath = join(root, "scripts/user-data.sh");
const readJson = (path: string): Json => JSON.parse(readFileSync(path, "utf8")) as Json;
const template = readJson(templatePath) as unknown as Template;
const policyFile = readJson(join(root, "scripts/iam/DocumentProcessorS3Access.json"));
const trustFile = readJson(join(root, "scripts/iam/ec2-trust-policy.json"));

const ACCOUNT = "123456789012";
const REGION = "eu-west-1";
const SHA = "0123456789abcdef".repeat(4);
const REQUIRED = {
  SshCidr: "203.0.113.7/32",
  ReleaseUrl: "https://example.com/doc-processor-0.1.0.tgz",
  ReleaseSha256: SHA,
};
const REQUIRED_ARGS = ["--ssh-cidr", REQUIRED.SshCidr, "--release-url", REQUIRED.ReleaseUrl, "--release-sha256", SHA];

// The lab's policy, as the seed prints it ({your-account-id} included).
const SEED_STATEMENTS = [
  {
    Sid: "ReadFromSource",
    Effect: "Allow",
    Action: "s3:GetObject",
    Resource: "arn:aws:s3:::cloudboxio-lab-source-{your-account-id}/*",
  },
  {
    Sid: "WriteToOutput",
    Effect: "Allow",
    Action: "s3:PutObject",
    Resource: "arn:aws:s3:::cloudboxio-lab-output-{your-account-id}/*",
  },
];

// --- helpers: JSON access -------------------------------------------------------------------------------------------

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
function obj(v: Json | undefined, what = "value"): JsonObject {
  if (!isObject(v)) throw new Error(`${what} is not an object: ${JSON.stringify(v)}`);
  return v;
}
function arr(v: Json | undefined, what = "value"): Json[] {
  if (!Array.isArray(v)) throw new Error(`${what} is not an array: ${JSON.stringify(v)}`);
  return v;
}
function str(v: Json | undefined, what = "value"): string {
  if (typeof v !== "string") throw new Error(`${what} is not a string: ${JSON.stringify(v)}`);
  return v;
}
function resource(id: string): Resource {
  const r = template.Resources[id];
  if (!r) throw new Error(`no resource ${id}`);
  return r;
}
function resourcesOfType(type: string): [string, Resource][] {
  return Object.entries(template.Resources).filter(([, r]) => r.Type === type);
}
/** Substitutes `${Name}` placeholders of a policy file, as Fn::Sub would. */
function fillPlaceholders(doc: Json, values: Record<string, string>): Json {
  return JSON.parse(
    JSON.stringify(doc).replace(/\$\{(\w+)\}/g, (_, name: string) => {
      const v = values[name];
      if (v === undefined) throw new Error(`no value for \${${name}}`);
      return v;
    }),
  ) as Json;
}

// --- helpers: a small CloudFormation evaluator ----------------------------------------------------------------------

const PSEUDO: Record<string, string> = {
  "AWS::AccountId": ACCOUNT,
  "AWS::Region": REGION,
  "AWS::Partition": "aws",
  "AWS::StackName": "dp-test",
  "AWS::StackId": `arn:aws:cloudformation:${REGION}:${ACCOUNT}:stack/dp-test/1`,
  "AWS::URLSuffix": "amazonaws.com",
};
// Attributes Fn::GetAtt may name, per resource type used by the template.
const ATTRIBUTES: Record<string, string[]> = {
  "AWS::SQS::Queue": ["Arn", "QueueName", "QueueUrl"],
  "AWS::S3::Bucket": ["Arn", "DomainName", "RegionalDomainName"],
  "AWS::IAM::Role": ["Arn", "RoleId"],
  "AWS::IAM::InstanceProfile": ["Arn"],
  "AWS::IAM::ManagedPolicy": ["PolicyArn"],
  "AWS::EC2::SecurityGroup": ["GroupId", "VpcId"],
  "AWS::EC2::LaunchTemplate": ["LaunchTemplateId", "LatestVersionNumber", "DefaultVersionNumber"],
  "AWS::EC2::Instance": ["InstanceId", "PublicDnsName", "PublicIp", "PrivateDnsName", "PrivateIp", "AvailabilityZone"],
  "AWS::AutoScaling::ScalingPolicy": ["Arn"],
};
const NO_VALUE: JsonObject = { "<AWS::NoValue>": true };

class Stack {
  readonly params: Record<string, string>;
  constructor(overrides: Record<string, string> = {}) {
    this.params = {};
    for (const [name, p] of Object.entries(template.Parameters)) {
      const def = p["Default"];
      if (typeof def === "string" || typeof def === "number") this.params[name] = String(def);
    }
    this.params["LatestAmiId"] = "ami-0123456789abcdef0"; // what the SSM parameter type resolves to
    Object.assign(this.params, REQUIRED, overrides);
  }

  condition(name: string): boolean {
    const c = template.Conditions[name];
    if (c === undefined) throw new Error(`no condition ${name}`);
    return this.test(c);
  }

  private test(node: Json): boolean {
    const o = obj(node, "condition");
    const [fn, args] = Object.entries(o)[0] ?? [];
    switch (fn) {
      case "Fn::Equals": {
        const [a, b] = arr(args).map((x) => JSON.stringify(this.resolve(x)));
        return a === b;
      }
      case "Fn::Not":
        return !this.test(arr(args)[0] ?? null);
      case "Fn::And":
        return arr(args).every((x) => this.test(x));
      case "Fn::Or":
        return arr(args).some((x) => this.test(x));
      case "Condition":
        return this.condition(str(args));
      default:
        throw new Error(`unsupported condition function ${fn}`);
    }
  }

  /** Ref of a resource: what CloudFormation returns for each type (names, URLs, ids). */
  ref(id: string): Json {
    if (id in PSEUDO) return PSEUDO[id]!;
    if (id === "AWS::NoValue") return NO_VALUE;
    const p = template.Parameters[id];
    const value = this.params[id];
    if (p && value !== undefined) return p["Type"] === "CommaDelimitedList" ? value.split(",") : value;
    const r = resource(id);
    const prop = (name: string) => this.resolve(r.Properties[name] ?? null);
    switch (r.Type) {
      case "AWS::S3::Bucket":
        return str(prop("BucketName"));
      case "AWS::SQS::Queue":
        return `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${str(prop("QueueName"))}`;
      case "AWS::IAM::Role":
        return str(prop("RoleName"));
      case "AWS::IAM::ManagedPolicy":
        return `arn:aws:iam::${ACCOUNT}:policy/${str(prop("ManagedPolicyName"))}`;
      default:
        return `${id}-id`;
    }
  }

  getAtt(id: string, attr: string): Json {
    const r = resource(id);
    if (!(ATTRIBUTES[r.Type] ?? []).includes(attr)) throw new Error(`${r.Type} has no attribute ${attr} (${id}.${attr})`);
    if (r.Type === "AWS::SQS::Queue") {
      const name = str(this.resolve(r.Properties["QueueName"] ?? null));
      if (attr === "Arn") return `arn:aws:sqs:${REGION}:${ACCOUNT}:${name}`;
      if (attr === "QueueName") return name;
    }
    if (r.Type === "AWS::S3::Bucket" && attr === "Arn") return `arn:aws:s3:::${str(this.ref(id))}`;
    if (r.Type === "AWS::IAM::Role" && attr === "Arn") return `arn:aws:iam::${ACCOUNT}:role/${str(this.ref(id))}`;
    return `${id}.${attr}`;
  }

  sub(text: string, vars: JsonObject = {}): string {
    return text.replace(/\$\{([^}]*)\}/g, (_, name: string) => {
      if (name.startsWith("!")) return `\${${name.slice(1)}}`;
      if (name in vars) return str(this.resolve(vars[name] ?? null), `Fn::Sub variable ${name}`);
      const dot = name.indexOf(".");
      if (dot > 0 && !name.startsWith("AWS::")) return str(this.getAtt(name.slice(0, dot), name.slice(dot + 1)));
      return str(this.ref(name), `\${${name}}`);
    });
  }

  resolve(node: Json): Json {
    if (Array.isArray(node)) return node.map((x) => this.resolve(x)).filter((x) => x !== NO_VALUE);
    if (!isObject(node)) return node;
    const keys = Object.keys(node);
    const only = keys.length === 1 ? keys[0]! : "";
    const args = node[only] ?? null;
    switch (only) {
      case "Ref":
        return this.ref(str(args));
      case "Fn::GetAtt": {
        const [id, attr] = typeof args === "string" ? args.split(".") : arr(args).map((x) => str(x));
        return this.getAtt(id!, attr!);
      }
      case "Fn::Sub": {
        if (typeof args === "string") return this.sub(args);
        const [text, vars] = arr(args);
        return this.sub(str(text), obj(vars));
      }
      case "Fn::Join": {
        const [sep, list] = arr(args);
        return arr(this.resolve(list ?? null)).map((x) => str(x)).join(str(sep));
      }
      case "Fn::Select": {
        const [index, list] = arr(args);
        return arr(this.resolve(list ?? null))[Number(index)] ?? null;
      }
      case "Fn::If": {
        const [name, yes, no] = arr(args);
        return this.resolve((this.condition(str(name)) ? yes : no) ?? null);
      }
      case "Fn::Base64":
        return Buffer.from(str(this.resolve(args)), "utf8").toString("base64");
      case "Fn::GetAZs":
        return [`${REGION}a`, `${REGION}b`];
      default: {
        const out: JsonObject = {};
        for (const [k, v] of Object.entries(node)) {
          const r = this.resolve(v);
          if (r !== NO_VALUE) out[k] = r;
        }
        return out;
      }
    }
  }
}

function userDataOf(t: Template, stack: Stack): string {
  const lt = obj(t.Resources["LaunchTemplate"]?.Properties["LaunchTemplateData"], "LaunchTemplateData");
  return Buffer.from(str(stack.resolve(lt["UserData"] ?? null)), "base64").toString("utf8");
}

// --- helpers: running the wrappers against a stub `aws` -------------------------------------------------------------

const D = "$"; // \`${D}{\` writes a shell "${" inside the raw template literal below
const STUB = String.raw`#!/usr/bin/env bash
# Stub AWS CLI: records each call (arguments tab-separated) and answers like the real one would.
set -euo pipefail
{ printf 'aws'; printf '\t%s' "$@"; printf '\n'; } >>"$STUB_DIR/calls"
arg_after() { local want=$1; shift; while [ $# -gt 1 ]; do [ "$1" = "$want" ] && { echo "$2"; return; }; shift; done; }
case "$1 $2" in
  "cloudformation deploy")
    cp "$(arg_after --template-file "$@")" "$STUB_DIR/deployed-template.json"
    exit "${D}{STUB_DEPLOY_EXIT:-0}" ;;
  "cloudformation describe-stacks")
    case "$*" in
      *SourceBucketName*) echo src-bucket ;;
      *OutputBucketName*) echo out-bucket ;;
      *Outputs*) printf 'QueueUrl\thttps://sqs.example/q\n' ;;
      *) echo '{}' ;;
    esac ;;
  "cloudformation describe-stack-events") printf 'Instance\tResource creation failed: stub\n' ;;
  "s3api head-bucket") ;;
  "s3api list-object-versions")
    bucket=$(arg_after --bucket "$@")
    if [ -e "$STUB_DIR/listed-$bucket" ]; then
      echo '{"Objects": [], "Quiet": true}'
    else
      touch "$STUB_DIR/listed-$bucket"
      echo '{"Objects": [{"Key": "doc 1.pdf", "VersionId": "null"}], "Quiet": true}'
    fi ;;
  "s3api delete-objects")
    file=$(arg_after --delete "$@")
    cp "${D}{file#file://}" "$STUB_DIR/deleted-$(arg_after --bucket "$@").json"
    echo '{}' ;;
  "cloudformation delete-stack" | "cloudformation wait") ;;
  *) echo "stub aws: unexpected call: $*" >&2; exit 2 ;;
esac
`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
function run(script: string, args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile("bash", [script, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

let stubDir = "";
function stubEnv(extra: Record<string, string> = {}): Record<string, string> {
  // The stub is both AWS_CLI and the first `aws` on PATH: nothing here can reach a real AWS CLI.
  const path = `${stubDir}${delimiter}${process.env["PATH"] ?? ""}`;
  return { AWS_CLI: join(stubDir, "aws"), PATH: path, STUB_DIR: stubDir, ...extra };
}
function calls(): string[][] {
  const path = join(stubDir, "calls");
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .trim()
    .split("\n")
    .map((line) => line.split("\t").slice(1));
}

beforeEach(() => {
  stubDir = mkdtempSync(join(tmpdir(), "dp-deploy-"));
  writeFileSync(join(stubDir, "aws"), STUB);
  chmodSync(join(stubDir, "aws"), 0o755);
});
afterEach(() => {
  rmSync(stubDir, { recursive: true, force: true });
});

// --- the tests ------------------------------------------------------------------------------------------------------

describe("IAM documents: the template's equal scripts/iam/*.json", () => {
  const policyDoc = () => obj(resource("DocumentProcessorS3Access").Properties["PolicyDocument"]);

  it("the managed policy renders to DocumentProcessorS3Access.json with the placeholders bound to the stack's resources", () => {
    const cases: Record<string, string>[] = [{}, { SourceBucketName: "my-docs-in", OutputBucketName: "my-docs-out" }];
    for (const overrides of cases) {
      const stack = new Stack(overrides);
      const expected = fillPlaceholders(policyFile, {
        SourceBucket: str(stack.ref("SourceBucket")),
        OutputBucket: str(stack.ref("OutputBucket")),
        QueueArn: str(stack.getAtt("Queue", "Arn")),
      });
      expect(stack.resolve(policyDoc())).toEqual(expected);
    }
  });

  it("the role trusts exactly ec2-trust-policy.json and carries only the managed policy", () => {
    const role = resource("Role");
    expect(role.Properties["AssumeRolePolicyDocument"]).toEqual(trustFile);
    expect(role.Properties["ManagedPolicyArns"]).toEqual([{ Ref: "DocumentProcessorS3Access" }]);
    expect(role.Properties["Policies"]).toBeUndefined();
    expect(resourcesOfType("AWS::IAM::Policy")).toEqual([]);
    expect(resourcesOfType("AWS::IAM::ManagedPolicy").map(([id]) => id)).toEqual(["DocumentProcessorS3Access"]);
    const stack = new Stack();
    expect(stack.ref("Role")).toBe("EC2DocumentProcessorRole");
    const policyName = resource("DocumentProcessorS3Access").Properties["ManagedPolicyName"] ?? null;
    expect(stack.resolve(policyName)).toBe("DocumentProcessorS3Access");
    expect(stack.resolve(resource("InstanceProfile").Properties)).toEqual({
      InstanceProfileName: "EC2DocumentProcessorRole",
      Roles: ["EC2DocumentProcessorRole"],
    });
  });

  it("the policy file holds the lab's two statements unchanged, plus only the queue statement", () => {
    const stack = new Stack();
    const bound = obj(
      fillPlaceholders(policyFile, {
        SourceBucket: str(stack.ref("SourceBucket")),
        OutputBucket: str(stack.ref("OutputBucket")),
        QueueArn: "QUEUE-ARN",
      }),
    );
    const seed = SEED_STATEMENTS.map((s) => ({ ...s, Resource: s.Resource.replace("{your-account-id}", ACCOUNT) }));
    const statements = arr(bound["Statement"]);
    expect(statements.slice(0, 2)).toEqual(seed);
    expect(statements.slice(2)).toEqual([
      {
        Sid: "ConsumeNotifications",
        Effect: "Allow",
        Action: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"],
        Resource: "QUEUE-ARN",
      },
    ]);
  });
});

describe("buckets", () => {
  const buckets = ["SourceBucket", "OutputBucket"];

  it("default to the lab's names and take names from parameters", () => {
    expect(new Stack().ref("SourceBucket")).toBe(`cloudboxio-lab-source-${ACCOUNT}`);
    expect(new Stack().ref("OutputBucket")).toBe(`cloudboxio-lab-output-${ACCOUNT}`);
    const named = new Stack({ SourceBucketName: "in-b", OutputBucketName: "out-b" });
    expect([named.ref("SourceBucket"), named.ref("OutputBucket")]).toEqual(["in-b", "out-b"]);
  });

  it.each(buckets)("%s blocks public access, encrypts with SSE-S3, enforces bucket ownership and TLS", (id) => {
    const p = resource(id).Properties;
    expect(p["PublicAccessBlockConfiguration"]).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(p["BucketEncryption"]).toEqual({
      ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }],
    });
    expect(p["OwnershipControls"]).toEqual({ Rules: [{ ObjectOwnership: "BucketOwnerEnforced" }] });
    const policies = resourcesOfType("AWS::S3::BucketPolicy").filter(
      ([, r]) => JSON.stringify(r.Properties["Bucket"]) === JSON.stringify({ Ref: id }),
    );
    expect(policies).toHaveLength(1);
    const statement = obj(arr(obj(policies[0]![1].Properties["PolicyDocument"])["Statement"])[0]);
    expect(statement).toMatchObject({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } });
  });

  it("the output bucket aborts incomplete multipart uploads (the role cannot abort them itself)", () => {
    const rules = arr(obj(resource("OutputBucket").Properties["LifecycleConfiguration"])["Rules"]);
    expect(rules).toContainEqual(
      expect.objectContaining({
        Status: "Enabled",
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: expect.any(Number) as number },
      }),
    );
  });

  it("the source bucket notifies the queue of every created object, after the queue policy exists", () => {
    const source = resource("SourceBucket");
    expect(obj(source.Properties["NotificationConfiguration"])["QueueConfigurations"]).toEqual([
      { Event: "s3:ObjectCreated:*", Queue: { "Fn::GetAtt": ["Queue", "Arn"] } },
    ]);
    expect([source.DependsOn].flat()).toContain("QueuePolicy");
    expect(resource("OutputBucket").Properties["NotificationConfiguration"]).toBeUndefined();
  });
});

describe("queue", () => {
  it("takes any S3 event message, redrives to the DLQ after 5 receives, and outlives nothing in the DLQ", () => {
    const q = resource("Queue").Properties;
    const dlq = resource("DeadLetterQueue").Properties;
    expect(q["MaximumMessageSize"]).toBeGreaterThanOrEqual(65536); // S3 event messages reach 64 KiB
    expect(q["RedrivePolicy"]).toEqual({ deadLetterTargetArn: { "Fn::GetAtt": ["DeadLetterQueue", "Arn"] }, maxReceiveCount: 5 });
    // A message's age counts from its first enqueue, so the DLQ must keep messages longer than the queue.
    expect(Number(dlq["MessageRetentionPeriod"])).toBeGreaterThan(Number(q["MessageRetentionPeriod"]));
  });

  it("has a visibility timeout at least the daemon's default request", () => {
    const defaults = configSchema.parse({
      queueUrl: `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/q`,
      sourceBucket: "source-b",
      outputBucket: "output-b",
    });
    expect(Number(resource("Queue").Properties["VisibilityTimeout"])).toBeGreaterThanOrEqual(defaults.visibilityTimeoutSeconds);
  });

  const names: Record<string, string>[] = [{}, { SourceBucketName: "my-docs-in" }];
  it.each(names)("lets only S3 send, only from the source bucket of this account (%o)", (overrides) => {
    const stack = new Stack(overrides);
    const doc = obj(stack.resolve(resource("QueuePolicy").Properties));
    expect(doc["Queues"]).toEqual([stack.ref("Queue")]);
    expect(arr(obj(doc["PolicyDocument"])["Statement"])).toEqual([
      {
        Sid: expect.any(String) as string,
        Effect: "Allow",
        Principal: { Service: "s3.amazonaws.com" },
        Action: "sqs:SendMessage",
        Resource: stack.getAtt("Queue", "Arn"),
        Condition: {
          ArnEquals: { "aws:SourceArn": stack.getAtt("SourceBucket", "Arn") },
          StringEquals: { "aws:SourceAccount": ACCOUNT },
        },
      },
    ]);
  });
});

describe("compute", () => {
  it("requires IMDSv2 with a hop limit of 1 on a t2.micro running Amazon Linux 2023 with the instance profile", () => {
    const data = obj(resource("LaunchTemplate").Properties["LaunchTemplateData"]);
    expect(data["MetadataOptions"]).toMatchObject({ HttpTokens: "required", HttpPutResponseHopLimit: 1, HttpEndpoint: "enabled" });
    expect(data["IamInstanceProfile"]).toEqual({ Arn: { "Fn::GetAtt": ["InstanceProfile", "Arn"] } });
    expect(data["ImageId"]).toEqual({ Ref: "LatestAmiId" });
    expect(template.Parameters["LatestAmiId"]).toMatchObject({
      Type: "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
      Default: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
    });
    expect(new Stack().resolve(data["InstanceType"] ?? null)).toBe("t2.micro");
  });

  it("allows SSH from the one given CIDR only, which has no default and cannot be the world", () => {
    for (const [, sg] of resourcesOfType("AWS::EC2::SecurityGroup")) {
      const ingress = arr(sg.Properties["SecurityGroupIngress"] ?? []).map((r) => obj(r));
      expect(ingress).toEqual([expect.objectContaining({ IpProtocol: "tcp", FromPort: 22, ToPort: 22, CidrIp: { Ref: "SshCidr" } })]);
      for (const rule of ingress) {
        expect(rule["CidrIp"]).not.toBe("0.0.0.0/0");
        expect(rule["CidrIpv6"]).toBeUndefined();
      }
    }
    expect(resourcesOfType("AWS::EC2::SecurityGroupIngress")).toEqual([]);
    const param = template.Parameters["SshCidr"]!;
    expect(param["Default"]).toBeUndefined();
    const pattern = new RegExp(str(param["AllowedPattern"]));
    expect(pattern.test("203.0.113.7/32")).toBe(true);
    expect(pattern.test("198.51.100.0/24")).toBe(true);
    for (const bad of ["0.0.0.0/0", "10.0.0.0/8", "203.0.113.7", "256.1.1.1/32", "::/0"]) expect(pattern.test(bad)).toBe(false);
  });

  it("creates one instance or an Auto Scaling group scaled on the queue backlog, as DeploymentMode says", () => {
    const single = new Stack();
    const scaled = new Stack({ DeploymentMode: "autoscaling" });
    const present = (stack: Stack, id: string) => {
      const c = resource(id).Condition;
      return c === undefined || stack.condition(c);
    };
    expect(present(single, "Instance") && !present(single, "AutoScalingGroup")).toBe(true);
    expect(!present(scaled, "Instance") && present(scaled, "AutoScalingGroup")).toBe(true);
    expect(resource("Instance").Properties["LaunchTemplate"]).toEqual(resource("AutoScalingGroup").Properties["LaunchTemplate"]);

    // Each scaling policy is driven by an alarm on the queue's backlog.
    const policies = resourcesOfType("AWS::AutoScaling::ScalingPolicy").map(([id]) => id);
    expect(policies.length).toBeGreaterThanOrEqual(2);
    for (const id of policies) {
      const alarms = resourcesOfType("AWS::CloudWatch::Alarm").filter(([, a]) =>
        JSON.stringify(a.Properties["AlarmActions"] ?? []).includes(JSON.stringify({ Ref: id })),
      );
      expect(alarms, id).toHaveLength(1);
      const watched = scaled.resolve(alarms[0]![1].Properties);
      expect(JSON.stringify(watched)).toContain('"ApproximateNumberOfMessagesVisible"');
      expect(JSON.stringify(watched)).toContain(JSON.stringify({ Name: "QueueName", Value: scaled.getAtt("Queue", "QueueName") }));
    }
    const out = obj(scaled.resolve(resource("ScaleOutPolicy").Properties));
    expect(arr(out["StepAdjustments"]).every((s) => Number(obj(s)["ScalingAdjustment"]) > 0)).toBe(true);
    const asg = obj(scaled.resolve(resource("AutoScalingGroup").Properties));
    expect([asg["MinSize"], asg["MaxSize"]]).toEqual(["1", "3"]);
    expect(template.Parameters["AsgMinSize"]?.["AllowedValues"]).toEqual(["0", "1"]);
  });

  it("outputs the buckets, queues, role and the instance or group", () => {
    const single = new Stack();
    const outputs = Object.entries(template.Outputs).filter(
      ([, o]) => o["Condition"] === undefined || single.condition(str(o["Condition"])),
    );
    const values = Object.fromEntries(outputs.map(([k, o]) => [k, single.resolve(o["Value"] ?? null)]));
    expect(values).toMatchObject({
      SourceBucketName: `cloudboxio-lab-source-${ACCOUNT}`,
      OutputBucketName: `cloudboxio-lab-output-${ACCOUNT}`,
      QueueUrl: single.ref("Queue"),
      DeadLetterQueueUrl: single.ref("DeadLetterQueue"),
      RoleArn: `arn:aws:iam::${ACCOUNT}:role/EC2DocumentProcessorRole`,
      InstanceId: "Instance-id",
    });
    expect(values["AutoScalingGroupName"]).toBeUndefined();
    expect(template.Outputs["AutoScalingGroupName"]?.["Condition"]).toBe("IsAutoScaling");
  });
});

describe("references", () => {
  interface Use {
    from: string;
    kind: "Ref" | "GetAtt" | "Sub" | "Condition" | "DependsOn";
    target: string;
    attr?: string;
    // Conditions under which this use is evaluated (the element's own, plus enclosing Fn::If true branches).
    guards: string[];
  }
  const parameters = new Set(Object.keys(template.Parameters));
  const resources = new Set(Object.keys(template.Resources));
  const conditions = new Set(Object.keys(template.Conditions));

  function collect(node: Json, from: string, guards: string[], uses: Use[]): void {
    if (Array.isArray(node)) return node.forEach((x) => collect(x, from, guards, uses));
    if (!isObject(node)) return;
    for (const [k, v] of Object.entries(node)) {
      if (k === "Ref") uses.push({ from, kind: "Ref", target: str(v), guards });
      else if (k === "Fn::GetAtt") {
        const [target, attr] = typeof v === "string" ? v.split(".") : arr(v).map((x) => str(x));
        uses.push({ from, kind: "GetAtt", target: target!, attr: attr!, guards });
      } else if (k === "Fn::Sub") {
        const [text, vars] = typeof v === "string" ? [v, {}] : arr(v);
        const local = Object.keys(obj(vars ?? {}));
        for (const m of str(text).matchAll(/\$\{([^!}][^}]*)\}/g)) {
          const name = m[1]!;
          if (local.includes(name)) continue;
          const dot = name.indexOf(".");
          if (dot > 0 && !name.startsWith("AWS::")) {
            uses.push({ from, kind: "GetAtt", target: name.slice(0, dot), attr: name.slice(dot + 1), guards });
          } else {
            uses.push({ from, kind: "Sub", target: name, guards });
          }
        }
        collect(vars ?? null, from, guards, uses);
        continue;
      } else if (k === "Fn::If") {
        const [c, yes, no] = arr(v);
        uses.push({ from, kind: "Condition", target: str(c), guards });
        collect(yes ?? null, from, [...guards, str(c)], uses);
        collect(no ?? null, from, guards, uses);
        continue;
      } else if (k === "Condition" && typeof v === "string") uses.push({ from, kind: "Condition", target: v, guards });
      collect(v, from, guards, uses);
    }
  }

  const uses: Use[] = [];
  for (const [id, c] of Object.entries(template.Conditions)) collect(c, `Conditions.${id}`, [], uses);
  for (const [id, r] of Object.entries(template.Resources)) {
    const guards = r.Condition ? [r.Condition] : [];
    if (r.Condition) uses.push({ from: id, kind: "Condition", target: r.Condition, guards: [] });
    for (const d of [r.DependsOn ?? []].flat()) uses.push({ from: id, kind: "DependsOn", target: d, guards });
    collect(r.Properties, id, guards, uses);
  }
  for (const [id, o] of Object.entries(template.Outputs)) {
    const c = typeof o["Condition"] === "string" ? o["Condition"] : undefined;
    collect(o["Value"] ?? null, `Outputs.${id}`, c ? [c] : [], uses);
  }

  it("every Ref, Fn::GetAtt, ${} and condition names something defined", () => {
    const undefinedUses = uses.filter((u) => {
      switch (u.kind) {
        case "Ref":
        case "Sub":
          return !(parameters.has(u.target) || resources.has(u.target) || u.target in PSEUDO || u.target === "AWS::NoValue");
        case "GetAtt":
          return !resources.has(u.target) || !(ATTRIBUTES[template.Resources[u.target]!.Type] ?? []).includes(u.attr!);
        case "Condition":
          return !conditions.has(u.target);
        case "DependsOn":
          return !resources.has(u.target);
      }
    });
    expect(undefinedUses).toEqual([]);
    expect(uses.filter((u) => u.kind === "GetAtt").length).toBeGreaterThan(5); // the walk found them
  });

  it("a conditional resource is used only under its own condition", () => {
    const unguarded = uses.filter((u) => {
      const c = u.kind === "Condition" ? undefined : template.Resources[u.target]?.Condition;
      return c !== undefined && !u.guards.includes(c);
    });
    expect(unguarded).toEqual([]);
  });

  it("the resources form no dependency cycle (the queue policy names the bucket without referencing it)", () => {
    const deps = new Map<string, Set<string>>();
    for (const u of uses) {
      if (!resources.has(u.from) || !resources.has(u.target) || u.kind === "Condition") continue;
      if (!deps.has(u.from)) deps.set(u.from, new Set());
      deps.get(u.from)!.add(u.target);
    }
    const state = new Map<string, "visiting" | "done">();
    const cycle: string[] = [];
    const visit = (id: string, path: string[]): void => {
      if (state.get(id) === "done" || cycle.length > 0) return;
      if (state.get(id) === "visiting") {
        cycle.push(...path.slice(path.indexOf(id)), id);
        return;
      }
      state.set(id, "visiting");
      for (const d of deps.get(id) ?? []) visit(d, [...path, id]);
      state.set(id, "done");
    };
    for (const id of resources) visit(id, []);
    expect(cycle).toEqual([]);
    expect(deps.get("SourceBucket")).toContain("QueuePolicy");
    expect(deps.get("QueuePolicy")).not.toContain("SourceBucket");
  });
});

describe("user data: the template runs scripts/user-data.sh with the stack's values", () => {
  const body = readFileSync(userDataPath, "utf8");
  // The script's parameters: `NAME=${NAME:-default}` lines, which keep a value exported before them (ROOT is its test hook).
  const scriptParams = [...body.matchAll(/^([A-Z][A-Z0-9_]*)=\$\{\1:-[^}]*\}$/gm)].map((m) => m[1]!).filter((n) => n !== "ROOT");

  it("deploy.sh inlines the script verbatim after a preamble that exports every parameter the script reads", async () => {
    const out = join(stubDir, "rendered.json");
    const r = await run(deployScript, [...REQUIRED_ARGS, "--render-only", out], stubEnv());
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(calls()).toEqual([]);

    const rendered = readJson(out) as unknown as Template;
    const stack = new Stack({ OutputPrefix: "processed/(v1)*" });
    const userData = userDataOf(rendered, stack);
    expect(userData.endsWith(body)).toBe(true);
    const preamble = userData.slice(0, userData.length - body.length);
    expect(preamble.startsWith("#!/bin/bash\n")).toBe(true);
    const exported = [...preamble.matchAll(/^export ([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!);
    expect(scriptParams.length).toBeGreaterThanOrEqual(7);
    expect([...exported].sort()).toEqual([...scriptParams].sort());

    // What a shell sees: the quoting of the preamble keeps each value intact.
    const shell = await new Promise<string>((resolve, reject) => {
      const show = exported.map((n) => `printf '%s=%s\\n' ${n} "$${n}"`).join("\n");
      execFile("bash", ["-c", `${preamble}\n${show}`], (err, stdout) => {
        if (err) reject(new Error(`the preamble failed in bash: ${err.message}`));
        else resolve(stdout);
      });
    });
    const seen = shell.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]);
    expect(Object.fromEntries(seen)).toEqual({
      RELEASE_URL: REQUIRED.ReleaseUrl,
      RELEASE_SHA256: SHA,
      QUEUE_URL: stack.ref("Queue"),
      SOURCE_BUCKET: `cloudboxio-lab-source-${ACCOUNT}`,
      OUTPUT_BUCKET: `cloudboxio-lab-output-${ACCOUNT}`,
      EXPECTED_ROLE_NAME: "EC2DocumentProcessorRole",
      EXPECTED_ACCOUNT_ID: ACCOUNT,
      OUTPUT_PREFIX: "processed/(v1)*",
    });
  });

  it("the script lets every exported value win (no plain assignment overrides one)", () => {
    for (const name of scriptParams) {
      const assignments = body.split("\n").filter((l) => new RegExp(`^\\s*(export\\s+)?${name}=`).test(l));
      for (const line of assignments) expect(line, name).toContain(`\${${name}`);
    }
  });

  it("stays within EC2's 16 KiB of user data and CloudFormation's 51,200 bytes of inline template", async () => {
    const out = join(stubDir, "rendered.json");
    expect((await run(deployScript, [...REQUIRED_ARGS, "--render-only", out], stubEnv())).code).toBe(0);
    expect(readFileSync(out).length).toBeLessThan(51_200);
    const long = new Stack({
      ReleaseUrl: `https://example.com/${"r".repeat(400)}.tgz`,
      OutputPrefix: "p".repeat(512),
      SourceBucketName: "s".repeat(63),
      OutputBucketName: "o".repeat(63),
      RoleName: "R".repeat(64),
    });
    expect(Buffer.byteLength(userDataOf(readJson(out) as unknown as Template, long))).toBeLessThanOrEqual(16_384);
  });

  it("the committed template, deployed without deploy.sh, fails the bootstrap loudly instead of running nothing", () => {
    const userData = userDataOf(template, new Stack());
    expect(userData).not.toContain("set -Eeuo pipefail");
    expect(userData).toMatch(/deployed without scripts\/deploy\.sh[^\n]*\n\s*exit 1\s*$/);
  });
});

describe("deploy.sh", () => {
  const args = ["--stack-name", "dp-test", ...REQUIRED_ARGS];

  it("deploys the rendered template with named-IAM capability and the parameters, then prints the outputs", async () => {
    const r = await run(deployScript, [...args, "--parameter", "OutputPrefix=processed/"], stubEnv());
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const [deploy, describeStacks, ...rest] = calls();
    expect(rest).toEqual([]);
    expect(deploy!.slice(0, 2)).toEqual(["cloudformation", "deploy"]);
    expect(deploy!.join(" ")).toContain("--stack-name dp-test");
    expect(deploy!.join(" ")).toContain("--capabilities CAPABILITY_NAMED_IAM");
    const overrides = deploy!.slice(deploy!.indexOf("--parameter-overrides") + 1);
    expect(overrides).toEqual([
      "DeploymentMode=instance",
      "SshCidr=203.0.113.7/32",
      `ReleaseUrl=${REQUIRED.ReleaseUrl}`,
      `ReleaseSha256=${SHA}`,
      "OutputPrefix=processed/",
    ]);
    for (const o of overrides) expect(template.Parameters).toHaveProperty(o.slice(0, o.indexOf("=")));
    expect(describeStacks!.slice(0, 2)).toEqual(["cloudformation", "describe-stacks"]);
    expect(r.stdout).toContain("https://sqs.example/q");
    const deployed = readJson(join(stubDir, "deployed-template.json")) as unknown as Template;
    expect(userDataOf(deployed, new Stack()).endsWith(readFileSync(userDataPath, "utf8"))).toBe(true);
  });

  it("passes --mode autoscaling through", async () => {
    expect((await run(deployScript, [...args, "--mode", "autoscaling"], stubEnv())).code).toBe(0);
    expect(calls()[0]).toContain("DeploymentMode=autoscaling");
  });

  it.each([
    [["--release-url", REQUIRED.ReleaseUrl, "--release-sha256", SHA], "--ssh-cidr"],
    [["--ssh-cidr", "0.0.0.0/0", "--release-url", REQUIRED.ReleaseUrl, "--release-sha256", SHA], "opens SSH to the world"],
    [["--ssh-cidr", "203.0.113.7/32", "--release-sha256", SHA], "--release-url"],
    [[...args, "--mode", "fleet"], "--mode"],
  ])("refuses %j before calling AWS", async (bad, reason) => {
    const r = await run(deployScript, bad, stubEnv());
    expect(r.code).toBe(64);
    expect(r.stderr).toContain(reason);
    expect(calls()).toEqual([]);
  });

  it("on a failed deploy exits 1 and shows the failed events", async () => {
    const r = await run(deployScript, args, stubEnv({ STUB_DEPLOY_EXIT: "255" }));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("Resource creation failed: stub");
    expect(calls().map((c) => c[1])).toEqual(["deploy", "describe-stack-events"]);
  });
});

describe("teardown.sh", () => {
  it("empties both buckets (every version), then deletes the stack and waits", async () => {
    const r = await run(teardownScript, ["--stack-name", "dp-test", "--yes"], stubEnv());
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const sequence = calls().map((c) => `${c[1]}${c.includes("--bucket") ? ` ${c[c.indexOf("--bucket") + 1]}` : ""}`);
    expect(sequence.filter((s) => s !== "describe-stacks")).toEqual([
      "head-bucket src-bucket",
      "list-object-versions src-bucket",
      "delete-objects src-bucket",
      "list-object-versions src-bucket",
      "head-bucket out-bucket",
      "list-object-versions out-bucket",
      "delete-objects out-bucket",
      "list-object-versions out-bucket",
      "delete-stack",
      "wait",
    ]);
    expect(readJson(join(stubDir, "deleted-src-bucket.json"))).toEqual({
      Objects: [{ Key: "doc 1.pdf", VersionId: "null" }],
      Quiet: true,
    });
    expect(calls().at(-1)).toEqual(["cloudformation", "wait", "stack-delete-complete", "--stack-name", "dp-test"]);
  });

  it("does not delete anything unconfirmed", async () => {
    const r = await run(teardownScript, ["--stack-name", "dp-test"], stubEnv());
    expect(r.code).toBe(64);
    expect(r.stderr).toContain("--yes");
    expect(calls().map((c) => c[1])).not.toContain("delete-stack");
    expect(calls().map((c) => c[1])).not.toContain("delete-objects");
  });
});
