// The real daemon processing real uploads through the policy-enforcing stand-in: end to end inside the shipped
// least-privilege policy, the policy really enforced, and the 403 (deleted) and 412 (overwritten) source paths.
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { shippedPolicyDocument, shippedWithout, statementsOf, writePolicyFile } from "../local/iam/index.js";
import {
  discardTestEvent,
  documentLines,
  eventKeys,
  queueDepth,
  readOutput,
  roleArnPrefix,
  roleDecisions,
  startHarness,
  stopDaemon,
  upload,
  waitForOutcomes,
  type DaemonProcess,
  type Harness,
  type StandIn,
} from "./helpers/daemon-harness.js";

// The shipped policy's actions, plus sts:GetCallerIdentity which needs no permission (the start-up identity check).
const POLICY_ACTIONS = [
  "s3:GetObject",
  "s3:PutObject",
  "sqs:ReceiveMessage",
  "sqs:DeleteMessage",
  "sqs:ChangeMessageVisibility",
  "sts:GetCallerIdentity",
];
const sha256 = (body: string | Buffer) => createHash("sha256").update(body).digest("hex");

/** The role's sqs:DeleteMessage decisions after the start-up queue probe (whose DeleteMessage, with an impossible
 *  receipt handle, deletes nothing: src/queue/access-probe.ts). */
function deletesAfterProbe(stand: StandIn, daemon: DaemonProcess) {
  const probed = daemon.logs.find((l) => typeof l.msg === "string" && l.msg.startsWith("queue access verified"));
  if (probed === undefined) throw new Error("the daemon logged no queue probe");
  const since = Date.parse(String(probed["time"]));
  return roleDecisions(stand).filter((d) => d.action === "sqs:DeleteMessage" && Date.parse(d.time) > since);
}

describe("end to end inside the shipped least-privilege policy", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  // Keys S3 encodes in events ('+' for space, %XX for the rest), and literal percent sequences that a double
  // decode would corrupt.
  const keys = [
    "plain.txt",
    "with space/quarterly report 2024.txt",
    "plus+sign/a+b=c.txt",
    "percent/100% done.txt",
    "percent/literal%2520twice.txt",
    "percent/%41%42 not letters.txt",
    "percent/%.txt",
    "unicode/ünïcödé — naïve.csv",
    "unicode/日本語のファイル.txt",
    "unicode/emoji 🎉 party.md",
    "nested/a/b/c/d/e/f/deep.txt",
    "nested/trailing-dot./x.txt",
    "symbols/!$&'()*,;=@.txt",
    "symbols/tilde~under_score-dash.txt",
    "symbols/question?mark#hash.txt",
    "symbols/[brackets]{braces}^caret`tick|pipe.txt",
    "spaces/  two leading and two trailing  .txt",
    "mixed/a+b c%20d+%2B.txt",
    "json/data.json",
    "binary/pixel.png",
  ];
  const PNG = Buffer.from(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000" + "1f15c4890000000d49444154789c6360000000000500010d0a2db40000000049454e44ae426082",
    "hex",
  );
  const bodyOf = (key: string, i: number): Buffer =>
    key.endsWith(".png") ? PNG : key.endsWith(".json") ? Buffer.from(JSON.stringify({ i, key })) : Buffer.from(`document ${i}: ${key}\n`);
  const docs = keys.map((key, i) => ({ key, body: bodyOf(key, i) }));

  it("processes 20 uploads with tricky keys: every output exists, the queue and DLQ end empty, zero denials for the role", async () => {
    const { stand } = h;
    const daemon = h.startDaemon();
    const ready = await daemon.waitForLog((l) => l.msg === "ready: consuming notifications");
    // The default transport: every request below is the lean transport's, signed and checked by the stand-in.
    expect(ready["transport"]).toBe("lean");
    await upload(stand, docs);
    await waitForOutcomes(daemon, keys);
    // A clean stop sends every pending delete before exiting.
    expect(await stopDaemon(daemon)).toEqual({ code: 0, signal: null });

    const lines = documentLines(daemon);
    expect(lines.length).toBeGreaterThanOrEqual(keys.length);
    expect(lines.filter((l) => l["outcome"] !== "done")).toEqual([]);
    for (const { key, body } of docs) {
      const output = await readOutput(stand, key);
      expect(output, key).toBeDefined();
      expect(output!.source.key).toBe(key);
      expect(output!.source.bucket).toBe(stand.config.sourceBucket);
      expect(output!.sha256, key).toBe(sha256(body));
      expect(output!.bytes).toBe(body.length);
    }
    expect(await queueDepth(stand)).toEqual({ visible: 0, inFlight: 0 });
    expect(await queueDepth(stand, stand.queue.dlqUrl)).toEqual({ visible: 0, inFlight: 0 });

    const role = roleDecisions(stand);
    expect(role.length).toBeGreaterThan(0);
    expect(role.filter((d) => d.decision !== "allow")).toEqual([]);
    expect(stand.counters().authFailures).toBe(0);
    // The run really went through the policy: every action the daemon needs was authorized for the role, and it
    // asked for nothing else.
    const allowed = new Set(role.map((d) => d.action));
    for (const action of ["s3:GetObject", "s3:PutObject", "sqs:ReceiveMessage", "sqs:DeleteMessage"]) expect(allowed).toContain(action);
    expect([...allowed].filter((a) => !POLICY_ACTIONS.includes(a))).toEqual([]);
  }, 40_000);
});

describe("the role's policy is really enforced", () => {
  let h: Harness;
  beforeAll(async () => {
    // A copy of the shipped policy without s3:PutObject: what a provisioning mistake would deploy.
    const policy = shippedWithout("s3:PutObject");
    expect(statementsOf(policy).length).toBe(statementsOf(shippedPolicyDocument()).length - 1);
    h = await startHarness({ rolePolicyFile: writePolicyFile("no-put", policy) });
    await discardTestEvent(h.stand);
  });
  afterAll(async () => {
    await h.close();
  });

  it("without s3:PutObject: retry with SINK_WRITE_FAILED, AccessDenied logged for s3:PutObject, message not deleted", async () => {
    const { stand } = h;
    const key = "denied/report.txt";
    await upload(stand, [{ key, body: "will not be written\n" }]);
    const daemon = h.startDaemon();
    const [line] = await waitForOutcomes(daemon, [key], "retry");
    expect(line!["code"]).toBe("SINK_WRITE_FAILED");
    expect(String(line!["reason"])).toContain("AccessDenied");
    expect(await stopDaemon(daemon)).toEqual({ code: 0, signal: null });

    const denied = roleDecisions(stand).filter((d) => d.decision !== "allow");
    expect(denied).toEqual([
      expect.objectContaining({
        action: "s3:PutObject",
        resource: `arn:aws:s3:::${stand.config.outputBucket}/${key}.json`,
        decision: "implicit-deny",
        code: "AccessDenied",
      }),
    ]);
    expect(deletesAfterProbe(stand, daemon)).toEqual([]);
    expect(await readOutput(stand, key)).toBeUndefined();
    // Still in the queue, hidden by the failure backoff.
    expect(await queueDepth(stand)).toEqual({ visible: 0, inFlight: 1 });
  }, 30_000);
});

describe("without sqs:ReceiveMessage", () => {
  let h: Harness;
  beforeAll(async () => {
    // The start-up probe proves the visibility and delete calls without touching a message; a receive cannot be
    // proved that way, so this mistake shows only once the daemon runs.
    const policy = shippedWithout("sqs:ReceiveMessage");
    expect(JSON.stringify(statementsOf(policy))).not.toContain("sqs:ReceiveMessage");
    h = await startHarness({ rolePolicyFile: writePolicyFile("no-receive", policy) });
    await discardTestEvent(h.stand);
  });
  afterAll(async () => {
    await h.close();
  });

  it("logs ReceiveMessage refused as an error naming the fix, takes no message, and still stops cleanly", async () => {
    const { stand } = h;
    await upload(stand, [{ key: "unreceived/report.txt", body: "stays in the queue\n" }]);
    const daemon = h.startDaemon();
    const refused = await daemon.waitForLog((l) => String(l.msg).startsWith("ReceiveMessage refused: "), 15_000);
    expect(refused).toMatchObject({ level: "error", code: "AccessDenied" });
    expect(String(refused["fix"])).toContain("sqs:ReceiveMessage");
    expect(await stopDaemon(daemon)).toEqual({ code: 0, signal: null });
    expect(roleDecisions(stand).filter((d) => d.decision !== "allow").map((d) => d.action)).toContain("sqs:ReceiveMessage");
    expect(await queueDepth(stand)).toEqual({ visible: 1, inFlight: 0 });
  }, 30_000);
});

describe("an object deleted before processing (the 403 path)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ maxReceiveCount: 1 });
    await discardTestEvent(h.stand);
  });
  afterAll(async () => {
    await h.close();
  });

  it("retry with SOURCE_MISSING_OR_FORBIDDEN, message kept, then moved to the DLQ by the redrive policy", async () => {
    const { stand } = h;
    const key = "gone/vanished report.txt";
    await upload(stand, [{ key, body: "here for a moment\n" }]);
    await stand.clients.admin.s3.send(new DeleteObjectCommand({ Bucket: stand.config.sourceBucket, Key: key }));
    // The event is already queued; the daemon only sees it now.
    const daemon = h.startDaemon();
    const [line] = await waitForOutcomes(daemon, [key], "retry");
    expect(line!["code"]).toBe("SOURCE_MISSING_OR_FORBIDDEN");
    expect(String(line!["reason"])).toContain("missing or forbidden");
    expect(line!["receiveCount"]).toBe(1);
    // Without s3:ListBucket the missing key is answered 403, as S3 does.
    expect(roleDecisions(stand).filter((d) => d.decision !== "allow")).toEqual([
      expect.objectContaining({ action: "s3:ListBucket", resource: `arn:aws:s3:::${stand.config.sourceBucket}`, code: "AccessDenied" }),
    ]);

    // After the failure backoff the message is received again, past maxReceiveCount 1: SQS moves it to the DLQ.
    let dead: string[] = [];
    for (let attempt = 0; attempt < 3 && dead.length === 0; attempt++) {
      const { Messages = [] } = await stand.clients.admin.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: stand.queue.dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 10 }),
      );
      dead = Messages.flatMap(eventKeys);
    }
    expect(dead).toEqual([key]);
    expect(await stopDaemon(daemon)).toEqual({ code: 0, signal: null });
    expect(deletesAfterProbe(stand, daemon)).toEqual([]);
    expect(documentLines(daemon).map((l) => [l["key"], l["outcome"]])).toEqual([[key, "retry"]]);
    expect(await queueDepth(stand)).toEqual({ visible: 0, inFlight: 0 });
  }, 45_000);
});

describe("messages that can never be processed as they are (too large, output key too long)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await discardTestEvent(h.stand);
  });
  afterAll(async () => {
    await h.close();
  });

  it("are rejected before any download, made visible again at once, and reach the DLQ in seconds, not minutes", async () => {
    const { stand } = h;
    const big = "limits/too large.txt";
    // S3 allows this key (1,020 bytes); its output "<key>.json" (1,025) it does not.
    const long = `limits/${"k".repeat(1013)}`;
    await upload(stand, [
      { key: big, body: "x".repeat(100) },
      { key: long, body: "small\n" },
    ]);
    const started = Date.now();
    const daemon = h.startDaemon({ config: { maxObjectBytes: 50 } });
    const dead: string[] = [];
    while (dead.length < 2 && Date.now() - started < 25_000) {
      const { Messages = [] } = await stand.clients.admin.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: stand.queue.dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 2 }),
      );
      dead.push(...Messages.flatMap(eventKeys));
    }
    expect(dead.sort()).toEqual([long, big].sort());
    // maxReceiveCount 5: five receives each, every one rejected at once (the backoff would take about 2.5 minutes).
    const lines = documentLines(daemon);
    expect(lines.filter((l) => l["key"] === big).map((l) => [l["outcome"], l["code"]])).toEqual(Array(5).fill(["rejected", "OBJECT_TOO_LARGE"]));
    const tooLong = lines.filter((l) => l["key"] === long);
    expect(tooLong.map((l) => [l["outcome"], l["code"]])).toEqual(Array(5).fill(["rejected", "OUTPUT_KEY_TOO_LONG"]));
    expect(String(tooLong[0]!["reason"])).toMatch(/^output key would be 1025 bytes of UTF-8, above S3's limit of 1024/);
    expect(daemon.logs.filter((l) => l.msg === "message can never be processed as is; made visible at once for the redrive policy (DLQ)")).toHaveLength(10);
    // Nothing downloaded, nothing written (and both messages reached the DLQ: never deleted).
    expect(roleDecisions(stand).filter((d) => d.action === "s3:GetObject" || d.action === "s3:PutObject")).toEqual([]);
    expect(await stopDaemon(daemon)).toEqual({ code: 0, signal: null });
    expect(await queueDepth(stand)).toEqual({ visible: 0, inFlight: 0 });
  }, 45_000);
});

describe("an object overwritten before processing (the 412 path)", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it("the first event is superseded and deleted, the second processes v2", async () => {
    const { stand } = h;
    const key = "versions/contract draft.txt";
    const v1 = "version one\n";
    const v2 = "version two, longer than the first\nwith a second line\n";
    await upload(stand, [
      { key, body: v1 },
      { key, body: v2 },
    ]);
    const daemon = h.startDaemon();
    const [superseded] = await waitForOutcomes(daemon, [key], "superseded");
    expect(String(superseded!["reason"])).toContain("412");
    await waitForOutcomes(daemon, [key], "done");
    expect(await stopDaemon(daemon)).toEqual({ code: 0, signal: null });

    const output = await readOutput(stand, key);
    expect(output?.sha256).toBe(sha256(v2));
    expect(output?.bytes).toBe(Buffer.byteLength(v2));
    expect(output?.source.eTag).toBe(createHash("md5").update(v2).digest("hex"));
    expect(documentLines(daemon).map((l) => l["outcome"]).sort()).toEqual(["done", "superseded"]);
    // Both messages were acknowledged: nothing left to redeliver.
    expect(await queueDepth(stand)).toEqual({ visible: 0, inFlight: 0 });
    // Non-empty first: on an empty list the checks below would pass with no decision at all.
    const decisions = roleDecisions(stand);
    expect(decisions.length).toBeGreaterThan(0);
    expect(decisions.filter((d) => d.decision !== "allow")).toEqual([]);
    expect(decisions.filter((d) => d.principal !== `${roleArnPrefix(stand)}${stand.instanceId()}`)).toEqual([]);
  }, 30_000);
});
