// `doc-processor check` (the built CLI) against the stand-in: the seed's confirmations as a checklist, proven by the
// gateway's decisions (what was asked, allowed and denied) and by the buckets and the queue afterwards.
import { GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { childEnv, runCli, type CliResult } from "../helpers/cli.js";
import { OTHER_ROLE_NAME, ROLE_NAME } from "../local/gateway/identities.js";
import { OVER_GRANTS, repoPath, shippedPlus, writePolicyFile } from "../local/iam/index.js";
import {
  eventKeys,
  peekVisible,
  queueDepth,
  roleDecisions,
  startHarness,
  upload,
  type Harness,
  type StandIn,
} from "./helpers/daemon-harness.js";

const SOURCE_KEY = "inbox/check-me.txt";
const CHECKS = 17;
/** The line for what no harmless probe can show: never run on the instance, always "–". */
const AUDIT_LINE = "the queue cannot be written to or purged, bucket policies and IAM cannot be changed";
const DENIED_SIDE = [
  "reading the output is denied (s3:GetObject)",
  "deleting in the source is denied (s3:DeleteObject)",
  "deleting in the output is denied (s3:DeleteObject)",
  "listing the source bucket is denied (s3:ListBucket)",
  "listing the output bucket is denied (s3:ListBucket)",
];

function writeConfig(stand: StandIn, extra: Record<string, unknown> = {}): string {
  const file = join(mkdtempSync(join(tmpdir(), "dp-check-")), "config.json");
  writeFileSync(file, JSON.stringify({ ...stand.config, imdsTimeoutMs: 1_000, imdsMaxRetries: 1, ...extra }));
  return file;
}

async function check(stand: StandIn, args: string[] = [], config = writeConfig(stand)): Promise<CliResult> {
  return runCli(["check", "--config", config, ...args], childEnv(stand.env));
}

/** The checklist lines (✓, ✗ or –) with their continuation lines folded in. */
function checklist(r: CliResult): string[] {
  const lines: string[] = [];
  for (const line of r.stdout.split("\n")) {
    if (/^[✓✗–] /.test(line)) lines.push(line);
    else if (line.startsWith("    ") && lines.length > 0) lines[lines.length - 1] += `\n${line}`;
  }
  return lines;
}

function line(r: CliResult, name: string): string {
  const found = checklist(r).find((l) => l.slice(2).startsWith(name));
  if (found === undefined) throw new Error(`no line "${name}" in:\n${r.stdout}\n${r.stderr}`);
  return found;
}

/**
 * What anyone could see of the buckets and the queues, read as the stand-in's admin: every key with its ETag in both
 * buckets, and the queue's and the DLQ's message counts. `check`'s own probe object (overwritten on every run, the
 * documented exception) is left out.
 */
async function visibleState(stand: StandIn): Promise<Record<string, unknown>> {
  const probeObject = `/.doc-processor-check/${stand.instanceId()}.txt`;
  const listing = async (bucket: string): Promise<string[]> => {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await stand.clients.admin.s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        if (!`/${o.Key ?? ""}`.endsWith(probeObject)) keys.push(`${o.Key ?? ""} ${o.ETag ?? ""}`);
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return keys.sort();
  };
  const counts = async (queueUrl: string) =>
    (
      await stand.clients.admin.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: queueUrl,
          AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"],
        }),
      )
    ).Attributes;
  return {
    source: await listing(stand.config.sourceBucket),
    output: await listing(stand.config.outputBucket),
    queue: await counts(stand.queue.url),
    dlq: await counts(stand.queue.dlqUrl),
  };
}

const s3OrSqs = (stand: StandIn, since: number) =>
  stand.decisions.slice(since).filter((d) => d.service === "s3" || d.service === "sqs");

describe("doc-processor check against the stand-in", () => {
  let h: Harness;
  let stand: StandIn;

  beforeAll(async () => {
    h = await startHarness();
    stand = h.stand;
    await upload(stand, [{ key: SOURCE_KEY, body: "a document to read\n" }]);
  });
  afterAll(async () => {
    await h.close();
  });
  afterEach(() => {
    stand.imds.setMode("normal");
    stand.imds.setRole(ROLE_NAME);
    stand.serveUserKeysFromImds(undefined);
  });

  it("the right role with --source-key: every line ✓ but the audit one (–), 16 of 17 completed, exit 0; nothing touched but the probe", async () => {
    const before = await queueDepth(stand);
    const state = await visibleState(stand);
    const since = stand.decisions.length;
    const r = await check(stand, ["--source-key", SOURCE_KEY]);

    expect(checklist(r), r.stdout + r.stderr).toHaveLength(CHECKS);
    for (const l of checklist(r)) expect(l.startsWith(l.slice(2).startsWith(AUDIT_LINE) ? "– " : "✓ "), l).toBe(true);
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe(`${CHECKS - 1} of ${CHECKS} completed`);
    expect(r.code).toBe(0);
    for (const name of DENIED_SIDE) expect(line(r, name)).toBe(`✓ ${name}: AccessDenied 403, as it must be`);
    expect(line(r, AUDIT_LINE)).toContain("audit with the deployer's credentials: npm run audit");
    expect(await visibleState(stand)).toEqual(state);
    expect(line(r, "IMDSv2 is enforced")).toContain("HTTP 401");
    expect(line(r, "the caller is the expected role")).toContain(
      `arn:aws:sts::${stand.accountId}:assumed-role/${ROLE_NAME}/${stand.instanceId()}`,
    );
    expect(line(r, "read from source works")).toContain(`s3://${stand.config.sourceBucket}/${SOURCE_KEY} (19 bytes)`);
    expect(line(r, "write to source is denied")).toContain("AccessDenied");
    expect(line(r, "another service is denied")).toContain("AccessDenied");

    // The token-less GET really reached IMDS and was refused.
    expect(stand.imds.requests).toContainEqual(expect.objectContaining({ method: "GET", tokenPresent: false, status: 401 }));
    // What the role asked, and what the gateway decided, call by call.
    const role = roleDecisions(stand).filter((d) => stand.decisions.indexOf(d) >= since);
    const decided = role.map((d) => `${d.action} ${d.resource} ${d.decision}`);
    expect(decided).toEqual(
      expect.arrayContaining([
        `s3:GetObject arn:aws:s3:::${stand.config.sourceBucket}/${SOURCE_KEY} allow`,
        `s3:PutObject arn:aws:s3:::${stand.config.outputBucket}/.doc-processor-check/${stand.instanceId()}.txt allow`,
        `s3:PutObject arn:aws:s3:::${stand.config.sourceBucket}/.doc-processor-check/${stand.instanceId()}.txt implicit-deny`,
        `sts:GetAccessKeyInfo * implicit-deny`,
        `s3:GetObject arn:aws:s3:::${stand.config.outputBucket}/.doc-processor-check/${stand.instanceId()}.txt implicit-deny`,
        `s3:ListBucket arn:aws:s3:::${stand.config.sourceBucket} implicit-deny`,
        `s3:ListBucket arn:aws:s3:::${stand.config.outputBucket} implicit-deny`,
        `sqs:ChangeMessageVisibility ${stand.queue.arn} allow`,
        `sqs:DeleteMessage ${stand.queue.arn} allow`,
      ]),
    );
    expect(role.filter((d) => d.action === "sqs:ReceiveMessage")).toEqual([]);
    // One delete per bucket, of a key under .doc-processor-check/never-, and both refused.
    const deletes = role.filter((d) => d.action === "s3:DeleteObject");
    expect(deletes.map((d) => d.decision)).toEqual(["implicit-deny", "implicit-deny"]);
    expect(deletes.map((d) => d.resource.replace(/never-[0-9a-f-]{36}$/, "never-<uuid>"))).toEqual([
      `arn:aws:s3:::${stand.config.sourceBucket}/.doc-processor-check/never-<uuid>`,
      `arn:aws:s3:::${stand.config.outputBucket}/.doc-processor-check/never-<uuid>`,
    ]);
    // Nothing the role may not do was tried beyond the probes: no SQS writes, no bucket policy, no IAM.
    expect(role.filter((d) => /^sqs:(SendMessage|PurgeQueue|SetQueueAttributes)|^s3:PutBucketPolicy|^iam:/.test(d.action))).toEqual([]);

    // The probe object is in the output bucket; the queue's messages were not touched.
    const probe = await stand.clients.admin.s3.send(
      new GetObjectCommand({ Bucket: stand.config.outputBucket, Key: `.doc-processor-check/${stand.instanceId()}.txt` }),
    );
    expect(await probe.Body!.transformToString()).toContain(`as arn:aws:sts::${stand.accountId}:assumed-role/${ROLE_NAME}/`);
    expect(await queueDepth(stand)).toEqual(before);
  });

  it("the probe goes under outputPrefix", async () => {
    const since = stand.decisions.length;
    const r = await check(stand, [], writeConfig(stand, { outputPrefix: "processed/" }));
    expect(line(r, "write to output works")).toContain(
      `s3://${stand.config.outputBucket}/processed/.doc-processor-check/${stand.instanceId()}.txt`,
    );
    expect(stand.decisions.slice(since).map((d) => d.resource)).toContain(
      `arn:aws:s3:::${stand.config.outputBucket}/processed/.doc-processor-check/${stand.instanceId()}.txt`,
    );
  });

  it("without --source-key: reading is 'not checked', 15 of 17 completed, exit 0 (no check failed)", async () => {
    const r = await check(stand);
    const read = line(r, "read from source works");
    expect(read).toMatch(/^– /);
    expect(read).toContain("not checked: pass --source-key KEY");
    expect(checklist(r).filter((l) => l.startsWith("✓ "))).toHaveLength(CHECKS - 2);
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe(`${CHECKS - 2} of ${CHECKS} completed`);
    expect(r.code).toBe(0);
  });

  it("--source-key naming a missing object: ✗ with the missing-or-forbidden explanation, exit 1", async () => {
    const r = await check(stand, ["--source-key", "inbox/not-there.txt"]);
    const read = line(r, "read from source works");
    expect(read).toMatch(/^✗ /);
    expect(read).toContain("AccessDenied");
    expect(read).toContain("without s3:ListBucket");
    expect(r.stdout).toContain(`${CHECKS - 2} of ${CHECKS} completed`);
    expect(r.code).toBe(1);
  });

  it("another role attached: exit 77, the remediation, and no S3 or SQS call as that role", async () => {
    stand.imds.setRole(OTHER_ROLE_NAME);
    const since = stand.decisions.length;
    const r = await check(stand, ["--source-key", SOURCE_KEY]);
    expect(r.code).toBe(77);
    expect(line(r, "an instance profile role is attached")).toContain(OTHER_ROLE_NAME);
    const identity = line(r, "the caller is the expected role");
    expect(identity).toMatch(/^✗ /);
    expect(identity).toContain(`the role ${OTHER_ROLE_NAME}, but this daemon expects ${ROLE_NAME}`);
    expect(identity).toContain("Actions > Security > Modify IAM role");
    expect(identity).not.toContain("refusing to start");
    for (const name of ["read from source works", "write to output works", "write to source is denied", ...DENIED_SIDE, "the queue can be consumed"]) {
      expect(line(r, name)).toContain("skipped: needs the expected identity");
    }
    expect(r.stdout).toContain(`5 of ${CHECKS} completed`);
    expect(s3OrSqs(stand, since)).toEqual([]);
  });

  it("IMDS serving an IAM user's keys: exit 77, the user ARN with the Modify IAM role fix, credentials not temporary", async () => {
    stand.serveUserKeysFromImds(stand.users.cliUser);
    const since = stand.decisions.length;
    const r = await check(stand, ["--source-key", SOURCE_KEY]);
    expect(r.code).toBe(77);
    const identity = line(r, "the caller is the expected role");
    expect(identity).toContain(stand.users.cliUser.arn);
    expect(identity).toContain("an IAM user");
    expect(identity).toContain("Actions > Security > Modify IAM role");
    expect(identity).toContain("restart");
    const temporary = line(r, "the credentials are temporary");
    expect(temporary).toMatch(/^✗ AKIA|^✗ .*AKIA…/);
    expect(s3OrSqs(stand, since)).toEqual([]);
  });

  it("no instance profile: exit 77 with the attach fix; identity and permissions skipped", async () => {
    stand.imds.setRole(null);
    const r = await check(stand);
    expect(r.code).toBe(77);
    const attached = line(r, "an instance profile role is attached");
    expect(attached).toMatch(/^✗ /);
    expect(attached).toContain("Modify IAM role");
    expect(line(r, "the caller is the expected role")).toContain("skipped: needs an attached role");
  });

  it("IMDSv1 enabled (token-less GET answered): ✗ with the modify-instance-metadata-options fix, exit 77", async () => {
    stand.imds.setMode("v1-only");
    const r = await check(stand);
    const v2 = line(r, "IMDSv2 is enforced");
    expect(v2).toMatch(/^✗ /);
    expect(v2).toContain("HTTP 200");
    expect(v2).toContain("--http-tokens required");
    expect(r.code).toBe(77);
  });

  it("IMDS unreachable: ✗ with the endpoint named, exit 75 (temporary)", async () => {
    stand.imds.setMode("refuse");
    const r = await check(stand);
    expect(line(r, "IMDSv2 is enforced")).toContain("cannot reach the instance metadata service");
    expect(r.code).toBe(75);
  });

  it("--source-key belongs to check only", async () => {
    const r = await runCli(["run", "--source-key", SOURCE_KEY], childEnv());
    expect(r.code).toBe(64);
    expect(r.stderr).toContain("--source-key is an option of check");
  });

  it("an invalid config: ✗ configuration (exit 78) while the instance checks still run", async () => {
    const r = await check(stand, [], writeConfig(stand, { concurrency: 0 }));
    expect(line(r, "configuration is valid")).toContain("concurrency");
    expect(line(r, "IMDSv2 is enforced")).toMatch(/^✓ /);
    expect(line(r, "an instance profile role is attached")).toMatch(/^✓ /);
    expect(line(r, "the caller is the expected role")).toContain("skipped: needs a valid configuration");
    expect(r.code).toBe(78);
  });
});

describe("doc-processor check with a role broader than its policy", () => {
  let h: Harness;
  beforeAll(async () => {
    // The shipped policy plus what a careless edit adds: writes to every bucket and every STS action.
    const shipped = JSON.parse(readFileSync(repoPath("scripts", "iam", "DocumentProcessorS3Access.json"), "utf8")) as {
      Statement: unknown[];
    };
    const broad = { Sid: "TooBroad", Effect: "Allow", Action: ["s3:PutObject", "sts:*"], Resource: "*" };
    const file = join(mkdtempSync(join(tmpdir(), "dp-policy-")), "too-broad.json");
    writeFileSync(file, JSON.stringify({ ...shipped, Statement: [...shipped.Statement, broad] }));
    h = await startHarness({ rolePolicyFile: file });
  });
  afterAll(async () => {
    await h.close();
  });

  it("write to source and another service are ✗ (they were allowed), exit 1; the probe never lands in the source", async () => {
    const { stand } = h;
    const probeKey = `.doc-processor-check/${stand.instanceId()}.txt`;
    const since = stand.decisions.length;
    const r = await check(stand);
    expect(line(r, "write to source is denied")).toMatch(/^✗ /);
    expect(line(r, "write to source is denied")).toContain("the role may write to the source bucket");
    expect(line(r, "another service is denied")).toMatch(/^✗ /);
    expect(line(r, "another service is denied")).toContain("DocumentProcessorS3Access");
    expect(line(r, "the caller is the expected role")).toMatch(/^✓ /);
    expect(r.code).toBe(1);

    // The gateway did authorize the write (the role is too broad): only its If-Match guard stopped it.
    const decided = roleDecisions(stand)
      .filter((d) => stand.decisions.indexOf(d) >= since)
      .map((d) => `${d.action} ${d.resource} ${d.decision}`);
    expect(decided).toContain(`s3:PutObject arn:aws:s3:::${stand.config.sourceBucket}/${probeKey} allow`);
    // Read back as admin (who may list, so a missing key is NoSuchKey): the source bucket has no probe object...
    const probe = await stand.clients.admin.s3
      .send(new GetObjectCommand({ Bucket: stand.config.sourceBucket, Key: probeKey }))
      .then(
        () => "exists",
        (error: { name?: string }) => error.name,
      );
    expect(probe).toBe("NoSuchKey");
    // ...and the queue no event for one (the daemon would otherwise process the probe as a document).
    const events = (await peekVisible(stand)).flatMap((m) => (JSON.parse(m.Body ?? "{}") as { Records?: unknown }).Records ? eventKeys(m) : []);
    expect(events).not.toContain(probeKey);
    expect(line(r, "write to source is denied")).toContain("only the If-Match guard stopped the write, so nothing was written");
  });
});

describe("doc-processor check with the over-granted role of issue 13", () => {
  // The shipped policy plus s3:DeleteObject and s3:ListBucket on the source, s3:GetObject and s3:DeleteObject on the
  // output, sqs:SendMessage and sqs:PurgeQueue on the queue: the old check passed it 11 of 11.
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ rolePolicyFile: writePolicyFile("over-granted", shippedPlus(OVER_GRANTS)) });
    await upload(h.stand, [{ key: SOURCE_KEY, body: "a document to read\n" }]);
  });
  afterAll(async () => {
    await h.close();
  });

  it("✗ for each extra permission a harmless probe can show, the queue writes left to the audit, exit 1; nothing changed", async () => {
    const { stand } = h;
    // A check on a fresh stand-in first, so that the probe object exists and "before" is what a second run sees.
    await check(stand, ["--source-key", SOURCE_KEY]);
    const before = await visibleState(stand);
    const since = stand.decisions.length;
    const r = await check(stand, ["--source-key", SOURCE_KEY]);

    const { sourceBucket, outputBucket } = stand.config;
    // The line, the permission on the probed resource, and the grant the fix names.
    const extra = [
      ["reading the output is denied (s3:GetObject)", `s3:GetObject on arn:aws:s3:::${outputBucket}/.doc-processor-check/${stand.instanceId()}.txt`, `s3:GetObject on arn:aws:s3:::${outputBucket}/*`],
      ["deleting in the source is denied (s3:DeleteObject)", `s3:DeleteObject on arn:aws:s3:::${sourceBucket}/.doc-processor-check/never-`, `s3:DeleteObject on arn:aws:s3:::${sourceBucket}/*`],
      ["deleting in the output is denied (s3:DeleteObject)", `s3:DeleteObject on arn:aws:s3:::${outputBucket}/.doc-processor-check/never-`, `s3:DeleteObject on arn:aws:s3:::${outputBucket}/*`],
      ["listing the source bucket is denied (s3:ListBucket)", `s3:ListBucket on arn:aws:s3:::${sourceBucket}`, `s3:ListBucket on arn:aws:s3:::${sourceBucket}`],
    ] as const;
    for (const [name, used, grant] of extra) {
      const l = line(r, name);
      expect(l).toMatch(/^✗ /);
      expect(l).toContain(`the role may use ${used}`);
      expect(l).toContain(`Fix: remove ${grant} (or whichever resource pattern covers it) from the role's policies`);
    }
    // Not granted, so still refused.
    expect(line(r, "listing the output bucket is denied (s3:ListBucket)")).toMatch(/^✓ .*AccessDenied/);
    // SendMessage and PurgeQueue have no harmless probe: left to the audit, not a failure and not a pass.
    expect(line(r, AUDIT_LINE)).toMatch(/^– .*sqs:SendMessage, sqs:PurgeQueue.*audit with the deployer's credentials: npm run audit/);
    for (const name of ["read from source works", "write to output works", "write to source is denied", "the queue can be consumed"]) {
      expect(line(r, name)).toMatch(/^✓ /);
    }
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe(`12 of ${CHECKS} completed`);
    expect(r.code).toBe(1);

    // The gateway really authorized the deletes, the read and the listing...
    const decided = roleDecisions(stand)
      .filter((d) => stand.decisions.indexOf(d) >= since)
      .map((d) => `${d.operation} ${d.action} ${d.resource.replace(/never-[0-9a-f-]{36}$/, "never-<uuid>")} ${d.decision}`);
    expect(decided).toEqual(
      expect.arrayContaining([
        `GetObject s3:GetObject arn:aws:s3:::${stand.config.outputBucket}/.doc-processor-check/${stand.instanceId()}.txt allow`,
        `DeleteObject s3:DeleteObject arn:aws:s3:::${stand.config.sourceBucket}/.doc-processor-check/never-<uuid> allow`,
        `DeleteObject s3:DeleteObject arn:aws:s3:::${stand.config.outputBucket}/.doc-processor-check/never-<uuid> allow`,
        `ListObjectsV2 s3:ListBucket arn:aws:s3:::${stand.config.sourceBucket} allow`,
      ]),
    );
    expect(decided.filter((d) => /sqs:(SendMessage|PurgeQueue)/.test(d))).toEqual([]);
    // ...and still nothing in either bucket or the queue changed.
    expect(await visibleState(stand)).toEqual(before);
  });
});
