// The seed's manual checks, run for real: scripts/validate-role.sh with Debian's AWS CLI (/usr/bin/aws 2.x) against
// the local stand-in, whose gateway enforces the role's policy file and whose IMDS hands the CLI its credentials.
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStandIn, type StandIn } from "../local/stand-in.js";
import { requireTool } from "../helpers/tools.js";

const SCRIPT = fileURLToPath(new URL("../../scripts/validate-role.sh", import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function validateRole(standIn: StandIn, aws: string): Promise<Run> {
  const home = mkdtempSync(join(tmpdir(), "dp-cli-home-"));
  // Only what the CLI needs: no inherited keys, profiles or config; IMDS and the gateway on loopback.
  const env = {
    PATH: "/usr/bin:/bin",
    HOME: home,
    AWS_CLI: aws,
    AWS_EC2_METADATA_SERVICE_ENDPOINT: standIn.urls.imds, // the CLI needs the trailing slash; the URL has it
    AWS_ENDPOINT_URL: standIn.urls.gateway,
    AWS_DEFAULT_REGION: standIn.region,
    AWS_CONFIG_FILE: join(home, "config"),
    AWS_SHARED_CREDENTIALS_FILE: join(home, "credentials"),
    AWS_PAGER: "",
  };
  return new Promise((resolve) => {
    execFile(
      "bash",
      [SCRIPT, standIn.config.sourceBucket, standIn.config.outputBucket, "validate-role/test.txt"],
      { env, timeout: 120_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe("scripts/validate-role.sh with the real AWS CLI", () => {
  let aws: string;
  let standIn: StandIn;

  beforeAll(async () => {
    aws = requireTool("/usr/bin/aws", "apt-get install awscli");
    standIn = await startStandIn();
    await standIn.clients.uploader.s3.send(
      new PutObjectCommand({ Bucket: standIn.config.sourceBucket, Key: "validate-role/test.txt", Body: "test file\n" }),
    );
  });
  afterAll(async () => {
    await standIn?.close();
  });

  it("passes 5 of 5 as the instance role", async () => {
    const r = await validateRole(standIn, aws);
    // Shown in the test output on purpose: the evidence that the real CLI passed the seed's checks.
    console.log(`validate-role.sh with ${aws}:\n${r.stdout}`);
    expect(r.stdout).toContain("5 of 5 checks passed");
    expect(r.stdout).toMatch(/✓ caller is the role: arn:aws:sts::123456789012:assumed-role\/EC2DocumentProcessorRole\/i-/);
    expect(r.stdout).toMatch(/✓ write to source denied \(AccessDenied\)/);
    expect(r.stdout).toMatch(/✓ ec2 describe-instances denied \(UnauthorizedOperation\)/);
    expect(r.code).toBe(0);
    // The gateway saw the CLI's denied calls as the role, proving the checks really went through it.
    const denied = standIn.decisions.filter((d) => d.decision !== "allow").map((d) => d.action);
    expect(denied).toEqual(expect.arrayContaining(["s3:PutObject", "ec2:DescribeInstances"]));
  });

  it("fails the identity check when IMDS serves another role", async () => {
    standIn.imds.setRole("SomeOtherRole");
    try {
      const r = await validateRole(standIn, aws);
      expect(r.stdout).toMatch(/✗ caller is not EC2DocumentProcessorRole: arn:aws:sts::123456789012:assumed-role\/SomeOtherRole\//);
      expect(r.stdout).toMatch(/✗ read s3:\/\/.* failed/);
      expect(r.stdout).not.toContain("5 of 5");
      expect(r.code).not.toBe(0);
    } finally {
      standIn.imds.setRole("EC2DocumentProcessorRole");
    }
  });
});
