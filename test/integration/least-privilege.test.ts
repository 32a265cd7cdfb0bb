// Least privilege, proven from both sides against the stand-in, whose gateway enforces the role's policy file:
// - used vs granted: the real daemon runs its representative paths (documents incl. a multipart output, a message
//   whose object is gone, one whose key cannot be decoded, visibility heartbeats, release on stop, `check`,
//   `process KEY`); every IAM decision the gateway made for the role's sessions is compared with the policy. A grant
//   never used fails, and so does a request the policy does not cover.
// - policy mutation: each action of the policy removed in turn, and each resource narrowed in turn, each on a fresh
//   stand-in; the named behaviours are run and one of them must break, else the grant is not needed.
// LEAST_PRIVILEGE_POLICY=<file> runs both against another policy file (placeholders as in scripts/iam/): a copy of
// the shipped policy with one more grant must make both fail, naming that grant.
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { childEnv, runCli, type CliResult } from "../helpers/cli.js";
import {
  OVER_GRANTS,
  SHIPPED_POLICY_FILE,
  checkProbes,
  compareUsage,
  describeGrant,
  isIncidental,
  loadPolicyFile,
  mutations,
  repoPath,
  shippedPlus,
  writePolicyFile,
  type PolicyDocument,
} from "../local/iam/index.js";
import {
  READY,
  daemonExit,
  discardTestEvent,
  queueDepth,
  readOutput,
  roleDecisions,
  startHarness,
  stopDaemon,
  upload,
  waitForOutcomes,
  type Harness,
  type StandIn,
} from "./helpers/daemon-harness.js";

const POLICY_FILE = process.env["LEAST_PRIVILEGE_POLICY"] ?? SHIPPED_POLICY_FILE;

function renderedPolicy(stand: StandIn, file = POLICY_FILE): PolicyDocument {
  return loadPolicyFile(file, { SourceBucket: stand.config.sourceBucket, OutputBucket: stand.config.outputBucket, QueueArn: stand.queue.arn });
}

function configFile(stand: StandIn, extra: Record<string, unknown> = {}): string {
  const file = join(mkdtempSync(join(tmpdir(), "dp-least-")), "config.json");
  writeFileSync(file, JSON.stringify({ ...stand.config, imdsTimeoutMs: 1_000, imdsMaxRetries: 1, ...extra }));
  return file;
}

const cli = (stand: StandIn, args: string[]): Promise<CliResult> => runCli(args, childEnv(stand.env));

/** The checklist line of `check` whose text starts with `name`. */
function checkLine(r: CliResult, name: string): string {
  return r.stdout.split("\n").find((l) => /^[✓✗–] /.test(l) && l.slice(2).startsWith(name)) ?? `(no line "${name}")`;
}

/** An S3 ObjectCreated event whose key is `rawKey` exactly as written (S3 would have encoded it). */
function eventWithRawKey(stand: StandIn, rawKey: string): string {
  const bucket = { name: stand.config.sourceBucket, arn: `arn:aws:s3:::${stand.config.sourceBucket}` };
  const object = { key: rawKey, size: 3, eTag: "0123456789abcdef0123456789abcdef", sequencer: "0062E99A88DC407460" };
  const record = { eventVersion: "2.1", eventSource: "aws:s3", awsRegion: stand.region, eventTime: new Date().toISOString() };
  return JSON.stringify({ Records: [{ ...record, eventName: "ObjectCreated:Put", s3: { s3SchemaVersion: "1.0", bucket, object } }] });
}

/** Plain text in lines, as the text processor reads it; big enough that its .txt output goes up in parts (8 MiB). */
function bigText(bytes: number): Buffer {
  const line = "The quick brown fox jumps over the lazy dog while the daemon streams every byte.\n";
  return Buffer.from(line.repeat(Math.ceil(bytes / line.length)).slice(0, bytes));
}

describe("every permission is used: what the gateway authorized for the role vs what the policy grants", () => {
  let h: Harness;
  let stand: StandIn;
  beforeAll(async () => {
    // maxReceiveCount 1: the two messages that cannot be processed go to the DLQ on their next receive, so no
    // visibility change but the heartbeat's happens while the held documents wait.
    h = await startHarness({ rolePolicyFile: POLICY_FILE, maxReceiveCount: 1 });
    stand = h.stand;
  });
  afterAll(async () => {
    await h.close();
  });

  it("the daemon's paths, check and process use every grant, and nothing it asks for is outside the policy", async () => {
    const pdf = readFileSync(repoPath("test", "local", "samples", "annual report.pdf"));
    const docs = [
      { key: "lp/notes.txt", body: "a small note\nwith two lines\n" },
      { key: "lp/annual report.pdf", body: pdf },
      { key: "lp/big.txt", body: bigText(9 * 1024 * 1024) },
    ];
    // Its event stays queued after the object is deleted: GetObject answers 403 (no s3:ListBucket), a retry.
    const gone = "lp/gone.txt";
    await upload(stand, [...docs, { key: gone, body: "here for a moment\n" }]);
    await stand.clients.admin.s3.send(new DeleteObjectCommand({ Bucket: stand.config.sourceBucket, Key: gone }));
    // A key that cannot be percent-decoded: the body is refused as it is (no S3 call at all).
    await stand.clients.admin.sqs.send(new SendMessageCommand({ QueueUrl: stand.queue.url, MessageBody: eventWithRawKey(stand, "lp/bad%ZZkey.txt") }));

    // Phase 1: documents (metadata and text; big.txt's text goes up as a multipart upload), the TestEvent, the gone
    // object and the bad key.
    const daemon = h.startDaemon({ config: { processor: ["metadata", "text"], concurrency: 2, visibilityTimeoutSeconds: 10 } });
    await waitForOutcomes(daemon, docs.map((d) => d.key), "done", 60_000);
    await waitForOutcomes(daemon, [gone], "retry");
    const multipart = roleDecisions(stand).filter((d) => d.operation === "CompleteMultipartUpload" && d.decision === "allow");
    expect(multipart.map((d) => d.resource)).toEqual([`arn:aws:s3:::${stand.config.outputBucket}/lp/big.txt.txt`]);

    // Phase 2: documents held past half the visibility timeout (slow reads): the heartbeat extends them; then SIGTERM
    // releases the ones waiting for a slot.
    stand.faults.set("s3", { latencyMs: 6_000, operations: ["GetObject"] });
    const held = ["lp/held-1.txt", "lp/held-2.txt", "lp/held-3.txt", "lp/held-4.txt"];
    await upload(stand, held.map((key) => ({ key, body: `${key}\n` })));
    const heldSince = Date.now();
    await h.waitForDecision(
      (d) => d.action === "sqs:ChangeMessageVisibility" && d.decision === "allow" && Date.parse(d.time) >= heldSince + 4_000,
      20_000,
    );
    expect(await stopDaemon(daemon)).toEqual({ code: 0, signal: null });
    stand.faults.clear();
    const stopped = await daemon.waitForLog((l) => l.msg === "stopped");
    const metrics = stopped["metrics"] as Record<string, number>;
    expect(metrics["sqs_visibility_timeout_extensions_total"]).toBeGreaterThan(0);
    expect(metrics["sqs_messages_released_total"]).toBeGreaterThan(0);

    // Phase 3: the operator's commands.
    const checked = await cli(stand, ["check", "--config", configFile(stand), "--source-key", "lp/notes.txt"]);
    expect(checked.stdout.trimEnd().split("\n").at(-1), checked.stdout + checked.stderr).toBe("16 of 17 completed");
    const processed = await cli(stand, ["process", "--config", configFile(stand), "lp/notes.txt"]);
    expect(processed.code, processed.stdout + processed.stderr).toBe(0);

    const report = compareUsage(renderedPolicy(stand), roleDecisions(stand), checkProbes(stand.config.sourceBucket));
    const unused = report.unused.map(describeGrant);
    expect(unused, `granted but never used by the daemon, check or process: ${unused.join("; ")}`).toEqual([]);
    expect(report.ungranted, `asked for by the role but not granted: ${report.ungranted.join("; ")}`).toEqual([]);
    expect(report.probesAllowed, "check's probes of the denied side must be denied").toEqual([]);
    // The comparison itself can fail: the same decisions against the shipped policy plus the over-grant.
    const broader = compareUsage(
      loadPolicyFile(writePolicyFile("over-granted", shippedPlus(OVER_GRANTS)), {
        SourceBucket: stand.config.sourceBucket,
        OutputBucket: stand.config.outputBucket,
        QueueArn: stand.queue.arn,
      }),
      roleDecisions(stand),
      checkProbes(stand.config.sourceBucket),
    );
    expect(broader.unused.map((g) => g.action).sort()).toEqual(
      ["s3:DeleteObject", "s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "sqs:PurgeQueue", "sqs:SendMessage"].sort(),
    );
    console.log(`used by the role (${report.used.length} distinct pairs):\n  ${report.used.join("\n  ")}`);
  }, 120_000);
});

/** What one run of the named behaviours showed. */
type Behaviours = Record<string, { ok: boolean; evidence: string }>;

const DOC = "mutation/report.txt";

/** On a fresh stand-in with `policyFile`: `check --source-key`, then the daemon processing one uploaded document. */
async function exerciseBehaviours(policyFile: string): Promise<Behaviours> {
  const h = await startHarness({ rolePolicyFile: policyFile });
  try {
    const { stand } = h;
    await discardTestEvent(stand);
    await upload(stand, [{ key: DOC, body: "a document for the mutation test\n" }]);
    const checked = await cli(stand, ["check", "--config", configFile(stand), "--source-key", DOC]);
    const line = (name: string) => {
      const text = checkLine(checked, name);
      return { ok: text.startsWith("✓ "), evidence: text.split(":")[0]!.slice(0, 120) };
    };

    const prior = new Set(stand.decisions);
    const daemon = h.startDaemon();
    const quiet = <T>(p: Promise<T>) => p.then(() => undefined, () => undefined);
    // Whichever comes first: the document's outcome, the daemon's exit, or a denial for the role.
    await Promise.race([
      quiet(waitForOutcomes(daemon, [DOC], "done", 15_000)),
      quiet(daemon.exited),
      quiet(h.waitForDecision((d) => !prior.has(d) && d.principal.includes(":assumed-role/") && d.decision !== "allow" && !isIncidental(d), 15_000)),
    ]);
    // A denial during start-up is followed by the daemon's own exit (77): let it come before any SIGTERM.
    await Promise.race([quiet(daemon.waitForLog((l) => l.msg === READY, 10_000)), quiet(daemon.exited)]);
    const exit = daemon.child.exitCode === null ? await stopDaemon(daemon) : await daemonExit(daemon);
    const role = roleDecisions(stand).filter((d) => !prior.has(d));
    const denied = role.filter((d) => d.decision !== "allow" && !isIncidental(d)).map((d) => `${d.action} denied`);
    const document = daemon.logs.find((l) => l.msg === "document" && l["key"] === DOC);
    const output = await readOutput(stand, DOC);
    const depth = await queueDepth(stand);
    const ran = (ok: boolean, evidence: string) => ({ ok, evidence: ok ? evidence : [evidence, ...new Set(denied)].join("; ") });
    return {
      "check: read from source works": line("read from source works"),
      "check: write to output works": line("write to output works"),
      "check: the queue can be consumed": line("the queue can be consumed"),
      "run: starts (queue access proven before READY)": ran(
        daemon.logs.some((l) => l.msg === READY),
        daemon.logs.some((l) => l.msg === READY) ? "ready" : `exit ${exit.code ?? exit.signal}`,
      ),
      "run: receives the notification": ran(document !== undefined, document ? "received" : "never received"),
      "run: reads the source and writes the output": ran(output !== undefined, document ? `outcome ${String(document["outcome"])}` : "no output"),
      "run: deletes the processed message": ran(
        depth.visible === 0 && depth.inFlight === 0 && role.some((d) => d.action === "sqs:DeleteMessage" && d.decision === "allow"),
        `queue ${depth.visible} visible, ${depth.inFlight} in flight`,
      ),
    };
  } finally {
    await h.close();
  }
}

const broken = (b: Behaviours): string[] => Object.entries(b).filter(([, v]) => !v.ok).map(([name, v]) => `${name} (${v.evidence})`);

describe("policy mutation: removing any action or narrowing any resource breaks a named behaviour", () => {
  const written = JSON.parse(readFileSync(POLICY_FILE, "utf8")) as PolicyDocument;
  const table: string[] = [];
  afterAll(() => {
    console.log(`policy mutations of ${POLICY_FILE}:\n${table.join("\n")}`);
  });

  it("the unmutated policy: every behaviour works (so a break below is the mutation's doing)", async () => {
    const behaviours = await exerciseBehaviours(POLICY_FILE);
    expect(broken(behaviours)).toEqual([]);
  }, 60_000);

  it.each(mutations(written).map((m) => [m.name, m] as const))("%s", async (_name, mutation) => {
    const behaviours = await exerciseBehaviours(writePolicyFile("mutant", mutation.policy));
    const failed = broken(behaviours);
    table.push(`  ${mutation.name}\n    breaks: ${failed.join("\n            ") || "NOTHING"}`);
    expect(
      failed,
      `${mutation.kind === "remove-action" ? "removing" : "narrowing"} ${mutation.target} (${mutation.name}) broke no behaviour: the policy grants it but nothing needs it`,
    ).not.toEqual([]);
  }, 60_000);
});
