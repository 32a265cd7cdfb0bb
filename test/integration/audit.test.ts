// The operator audit (scripts/audit.ts, `npm run audit`) end to end against the stand-in, run the way an operator
// runs it: a separate process with the deployer's keys (the stand-in's admin user), its IAM and STS calls sent to the
// gateway, which answers them from the same IAM directory it enforces for the role's sessions.
import { AttachRolePolicyCommand, CreateUserCommand, GetRoleCommand, IAMClient } from "@aws-sdk/client-iam";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { childEnv, runCli } from "../helpers/cli.js";
import { OVER_GRANTS, shippedPlus, validatePolicy, writePolicyFile } from "../local/iam/index.js";
import { startStandIn, type StandIn } from "../local/stand-in.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const AUDIT = fileURLToPath(new URL("../../scripts/audit.ts", import.meta.url));
const ROLE = "EC2DocumentProcessorRole";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function audit(stand: StandIn, keys: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }, args?: string[]): Promise<Run> {
  const env = childEnv({
    AWS_ACCESS_KEY_ID: keys.accessKeyId,
    AWS_SECRET_ACCESS_KEY: keys.secretAccessKey,
    ...(keys.sessionToken !== undefined && { AWS_SESSION_TOKEN: keys.sessionToken }),
    // Only IAM and STS go to the stand-in; every other endpoint stays on the closed loopback port.
    AWS_ENDPOINT_URL_IAM: stand.urls.gateway,
    AWS_ENDPOINT_URL_STS: stand.urls.gateway,
    AWS_REGION: stand.region,
  });
  const argv = args ?? ["--source-bucket", stand.config.sourceBucket, "--output-bucket", stand.config.outputBucket, "--queue-url", stand.queue.url];
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", AUDIT, ...argv], { env, cwd: REPO, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

const admin = (stand: StandIn) => stand.users.admin;

/** The table row of `pair` (its first columns), e.g. "s3:ListBucket arn:aws:s3:::b". */
function row(run: Run, pair: string): string {
  const found = run.stdout.split("\n").find((l) => l.trimStart().startsWith(`${pair} `));
  if (found === undefined) throw new Error(`no row "${pair}" in:\n${run.stdout}\n${run.stderr}`);
  return found.trim().replace(/\s+/g, " ");
}

const fixes = (run: Run): string[] => run.stdout.split("\n").filter((l) => l.startsWith("✗ "));

describe("npm run audit against the stand-in", () => {
  describe("the shipped role", () => {
    let stand: StandIn;
    beforeAll(async () => {
      stand = await startStandIn();
    });
    afterAll(async () => {
      await stand.close();
    });

    it("every pair and the trust policy as designed: N of N, exit 0; only IAM reads and simulations as the admin", async () => {
      const since = stand.decisions.length;
      const run = await audit(stand, admin(stand));
      expect(run.stderr).toBe("");
      const summary = run.stdout.trimEnd().split("\n").at(-1)!;
      const [, n, total] = /^(\d+) of (\d+) as designed$/.exec(summary) ?? [];
      expect(summary, run.stdout).toMatch(/^\d+ of \d+ as designed$/);
      expect(n).toBe(total);
      expect(Number(total)).toBeGreaterThanOrEqual(35);
      expect(run.code).toBe(0);
      const src = `arn:aws:s3:::${stand.config.sourceBucket}`;
      const out = `arn:aws:s3:::${stand.config.outputBucket}`;
      expect(row(run, `s3:GetObject ${src}/doc-processor-audit/any-document.pdf`)).toMatch(/ allowed allowed ✓$/);
      expect(row(run, `s3:PutObject ${out}/doc-processor-audit/any-document.pdf.json`)).toMatch(/ allowed allowed ✓$/);
      for (const action of ["ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility"]) {
        expect(row(run, `sqs:${action} ${stand.queue.arn}`)).toMatch(/ allowed allowed ✓$/);
      }
      expect(row(run, `s3:ListBucket ${src}`)).toMatch(/ denied denied ✓$/);
      expect(row(run, "iam:CreateUser")).toMatch(/ denied denied ✓$/);
      expect(row(run, "trust: who may assume the role")).toContain("Service:ec2.amazonaws.com only Service:ec2.amazonaws.com ✓");
      expect(run.stdout).toContain("not bucket or queue policies");

      // What the audit did at the gateway: IAM reads and simulations, all as the admin, nothing else.
      const calls = stand.decisions.slice(since);
      expect(new Set(calls.map((d) => d.principal))).toEqual(new Set([admin(stand).arn]));
      expect(new Set(calls.map((d) => d.action))).toEqual(
        new Set([
          "sts:GetCallerIdentity",
          "iam:GetRole",
          "iam:ListAttachedRolePolicies",
          "iam:GetPolicy",
          "iam:GetPolicyVersion",
          "iam:ListRolePolicies",
          "iam:SimulatePrincipalPolicy",
        ]),
      );
      expect(calls.every((d) => d.decision === "allow")).toBe(true);
    }, 60_000);

    it("with the role's own credentials: refused (exit 2), the deployer's are needed", async () => {
      const session = stand.identities.issueRoleSession(ROLE, stand.instanceId(), 600);
      const run = await audit(stand, session);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain("these are the role's own credentials");
      expect(stand.decisions.filter((d) => d.principal === session.principal.arn).map((d) => d.action)).toEqual(["sts:GetCallerIdentity"]);
    }, 60_000);

    it("the role's own sessions may not read IAM nor create anything there (AccessDenied at the gateway)", async () => {
      const session = stand.identities.issueRoleSession(ROLE, stand.instanceId(), 600);
      const iam = new IAMClient({
        endpoint: stand.urls.gateway,
        region: stand.region,
        credentials: { accessKeyId: session.accessKeyId, secretAccessKey: session.secretAccessKey, sessionToken: session.sessionToken },
      });
      try {
        const denied = async (send: () => Promise<unknown>) => send().then(() => "allowed", (e: { name?: string }) => e.name);
        expect(await denied(() => iam.send(new GetRoleCommand({ RoleName: ROLE })))).toBe("AccessDenied");
        expect(await denied(() => iam.send(new CreateUserCommand({ UserName: "escalated" })))).toBe("AccessDenied");
        expect(await denied(() => iam.send(new AttachRolePolicyCommand({ RoleName: ROLE, PolicyArn: "arn:aws:iam::aws:policy/AdministratorAccess" })))).toBe(
          "AccessDenied",
        );
      } finally {
        iam.destroy();
      }
    });

    it("with credentials that may not read IAM (the uploader): exit 2, naming what the audit needs", async () => {
      const run = await audit(stand, stand.users.uploader);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain("iam:GetRole");
      expect(run.stderr).toContain("AccessDenied");
      expect(run.stderr).toContain("deployer's credentials");
    }, 60_000);

    it("without the buckets: usage, exit 64", async () => {
      const run = await audit(stand, admin(stand), ["--queue-url", stand.queue.url]);
      expect(run.code).toBe(64);
      expect(run.stderr).toContain("missing --source-bucket, --output-bucket");
    }, 60_000);
  });

  describe("the over-granted role of issue 13 (check shows the S3 extras; the queue's are the audit's)", () => {
    let stand: StandIn;
    beforeAll(async () => {
      stand = await startStandIn({ rolePolicyFile: writePolicyFile("over-granted", shippedPlus(OVER_GRANTS)) });
    });
    afterAll(async () => {
      await stand.close();
    });

    it("each extra permission named with the statement to remove it from; exit 1", async () => {
      const config = join(mkdtempSync(join(tmpdir(), "dp-audit-")), "config.json");
      writeFileSync(config, JSON.stringify({ ...stand.config, imdsTimeoutMs: 1_000, imdsMaxRetries: 1 }));
      await stand.clients.uploader.s3.send(new PutObjectCommand({ Bucket: stand.config.sourceBucket, Key: "audit/test.txt", Body: "test\n" }));
      const checked = await runCli(["check", "--config", config, "--source-key", "audit/test.txt"], childEnv(stand.env));
      // check's harmless probes show the four S3 extras; SendMessage and PurgeQueue only the audit can show.
      expect(checked.stdout).toContain("12 of 17 completed");
      expect(checked.code).toBe(1);

      const run = await audit(stand, admin(stand));
      expect(run.code).toBe(1);
      const src = `arn:aws:s3:::${stand.config.sourceBucket}`;
      const out = `arn:aws:s3:::${stand.config.outputBucket}`;
      const extra = [
        [`s3:ListBucket ${src}`, "ExtraSourceBucket"],
        [`s3:DeleteObject ${src}/doc-processor-audit/any-document.pdf`, "ExtraSourceObjects"],
        [`s3:GetObject ${out}/doc-processor-audit/any-document.pdf.json`, "ExtraOutputObjects"],
        [`s3:DeleteObject ${out}/doc-processor-audit/any-document.pdf.json`, "ExtraOutputObjects"],
        [`sqs:SendMessage ${stand.queue.arn}`, "ExtraQueue"],
        [`sqs:PurgeQueue ${stand.queue.arn}`, "ExtraQueue"],
      ] as const;
      for (const [pair, sid] of extra) {
        expect(row(run, pair)).toMatch(/ denied allowed ✗$/);
        const fix = fixes(run).find((l) => l.startsWith(`✗ ${pair}: `));
        expect(fix, run.stdout).toContain(`allowed by statement "${sid}" (lines `);
        expect(fix).toContain("of managed policy DocumentProcessorS3Access: remove ");
      }
      expect(row(run, "DocumentProcessorS3Access document")).toMatch(/ differs ✗$/);
      const document = fixes(run).find((l) => l.startsWith("✗ DocumentProcessorS3Access document: "));
      expect(document).toContain("not in the shipped file: ExtraSourceObjects, ExtraSourceBucket, ExtraOutputObjects, ExtraQueue");
      // Nothing else is reported: the needed five are still allowed, everything else still denied.
      expect(fixes(run)).toHaveLength(extra.length + 1);
      const summary = run.stdout.trimEnd().split("\n").find((l) => / of \d+ as designed; \d+ not:$/.test(l));
      expect(summary).toMatch(new RegExp(`; ${extra.length + 1} not:$`));
    }, 60_000);
  });

  describe("a role changed after provisioning", () => {
    let stand: StandIn;
    beforeAll(async () => {
      stand = await startStandIn();
    });
    afterEach(() => {
      const role = stand.iam.role(stand.accountId, ROLE)!;
      role.inline.clear();
    });
    afterAll(async () => {
      await stand.close();
    });

    it("a trust policy that also lets another account assume the role: both trust rows named, exit 1", async () => {
      const role = stand.iam.role(stand.accountId, ROLE)!;
      const shipped = role.trust;
      const widened = validatePolicy(
        {
          Version: "2012-10-17",
          Statement: [
            { Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" },
            { Effect: "Allow", Principal: { AWS: "arn:aws:iam::210987654321:root" }, Action: ["sts:AssumeRole", "sts:TagSession"] },
          ],
        },
        "trust",
      );
      role.trust = { document: widened, text: JSON.stringify(widened) };
      try {
        const run = await audit(stand, admin(stand));
        expect(run.code).toBe(1);
        expect(row(run, "trust: who may assume the role")).toMatch(/AWS:arn:aws:iam::210987654321:root, Service:ec2.amazonaws.com ✗$/);
        expect(fixes(run).join("\n")).toContain("lets AWS:arn:aws:iam::210987654321:root assume the role besides EC2");
        expect(row(run, "trust: what they may do")).toMatch(/sts:AssumeRole, sts:TagSession ✗$/);
      } finally {
        role.trust = shipped;
      }
    }, 60_000);

    it("an inline policy added by hand: the attachment row and what it grants are named, exit 1", async () => {
      stand.iam.putRolePolicy(stand.accountId, ROLE, "DebugAccess", {
        Version: "2012-10-17",
        Statement: [{ Sid: "Debug", Effect: "Allow", Action: ["ec2:Describe*", "ssm:GetParameter"], Resource: "*" }],
      });
      const run = await audit(stand, admin(stand));
      expect(run.code).toBe(1);
      expect(row(run, "inline policies")).toMatch(/none DebugAccess ✗$/);
      expect(fixes(run).find((l) => l.startsWith("✗ ec2:DescribeInstances *: "))).toContain(
        'allowed by statement "Debug" (lines 4-12: ec2:Describe*, ssm:GetParameter on *) of inline policy DebugAccess',
      );
      expect(row(run, "ssm:GetParameter *")).toMatch(/ denied allowed ✗$/);
      // The stand-in enforces what the audit reads: the role's sessions may now describe instances.
      expect(fixes(run)).toHaveLength(3);
    }, 60_000);
  });
});
