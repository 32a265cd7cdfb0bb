// The real daemon through credential rotation, an IMDS outage and SIGTERM with documents in flight: it keeps going,
// stops cleanly, and loses nothing (every document ends processed or its message back in the queue).
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { HTML_ANSWER_MARKER } from "../local/imds/index.js";
import {
  CREDENTIALS_FETCHED,
  READY,
  discardTestEvent,
  documentLines,
  eventKeys,
  peekVisible,
  queueDepth,
  readOutput,
  roleArnPrefix,
  roleDecisions,
  startHarness,
  stopDaemon,
  upload,
  waitForOutcomes,
  type Harness,
  type StandIn,
} from "./helpers/daemon-harness.js";

const docsNamed = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ key: `${prefix}/doc ${i + 1}.txt`, body: `${prefix} document ${i + 1}\n` }));
const keysOf = (docs: readonly { key: string }[]) => docs.map((d) => d.key);

/** Role session keys (ASIA…) the gateway saw requests signed with. */
function roleKeysUsed(stand: StandIn): string[] {
  const used = [...stand.requestsByAccessKey().keys()];
  const prefix = roleArnPrefix(stand);
  return used.filter((key) => stand.identities.lookup(key)?.principal.arn.startsWith(prefix) === true);
}

async function expectOutputs(stand: StandIn, keys: readonly string[]): Promise<void> {
  for (const key of keys) expect((await readOutput(stand, key))?.source.key, key).toBe(key);
}

// IMDS never serves credentials with less than 5 minutes left and the SDK refreshes 5 minutes before expiry, so a
// 305 s lifetime makes both rotate about every 5 s: several rotations within one test.
const SHORT_LIVED = { credentialTtlSeconds: 305, refreshBeforeExpirySeconds: 300 };

describe("credentials rotating mid-run", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(SHORT_LIVED);
  });
  afterAll(async () => {
    await h.close();
  });

  it("keeps processing with the new keys: both keys used by the role, no failure, no denial", async () => {
    const { stand } = h;
    const daemon = h.startDaemon();
    await daemon.waitForLog((l) => l.msg === READY);
    const first = await daemon.waitForLog((l) => l.msg === CREDENTIALS_FETCHED);
    const before = docsNamed("before-rotation", 3);
    await upload(stand, before);
    await waitForOutcomes(daemon, keysOf(before));
    // The SDK refreshes from IMDS on its own, which by then serves a new session.
    await daemon.waitForLog((l) => l.msg === CREDENTIALS_FETCHED && l["accessKeyIdSuffix"] !== first["accessKeyIdSuffix"], 20_000);
    const after = docsNamed("after-rotation", 3);
    await upload(stand, after);
    await waitForOutcomes(daemon, keysOf(after));
    expect(await stopDaemon(daemon)).toEqual({ code: 0, signal: null });

    expect(roleKeysUsed(stand).length).toBeGreaterThanOrEqual(2);
    expect(stand.counters().authFailures).toBe(0);
    expect(roleDecisions(stand).filter((d) => d.decision !== "allow")).toEqual([]);
    expect(documentLines(daemon).filter((l) => l["outcome"] !== "done")).toEqual([]);
    await expectOutputs(stand, keysOf([...before, ...after]));
    expect(await queueDepth(stand)).toEqual({ visible: 0, inFlight: 0 });
  }, 45_000);
});

describe("IMDS outage and recovery while running", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(SHORT_LIVED);
  });
  afterAll(async () => {
    await h.close();
  });

  it("does not crash; keeps working on the cached (still valid) credentials; nothing uploaded meanwhile is lost", async () => {
    const { stand } = h;
    const daemon = h.startDaemon();
    await daemon.waitForLog((l) => l.msg === READY);
    const start = docsNamed("before-outage", 2);
    await upload(stand, start);
    await waitForOutcomes(daemon, keysOf(start));

    stand.imds.setMode("error-500");
    const outageFrom = stand.imds.requests.length;
    // The credentials need a refresh during the outage: the SDK's static stability keeps the cached ones.
    await daemon.waitForLog((l) => l.msg === "IMDS credential provider warning", 20_000);
    expect(stand.imds.requests.slice(outageFrom).some((r) => r.status === 500)).toBe(true);
    const during = docsNamed("during-outage", 3);
    await upload(stand, during);
    await waitForOutcomes(daemon, keysOf(during));
    expect(daemon.child.exitCode).toBeNull();
    expect(daemon.child.signalCode).toBeNull();

    stand.imds.setMode("normal");
    const recovered = docsNamed("after-outage", 2);
    await upload(stand, recovered);
    await waitForOutcomes(daemon, keysOf(recovered));
    expect(await stopDaemon(daemon)).toEqual({ code: 0, signal: null });

    expect(documentLines(daemon).filter((l) => l["outcome"] !== "done")).toEqual([]);
    expect(stand.counters().authFailures).toBe(0);
    expect(roleDecisions(stand).filter((d) => d.decision !== "allow")).toEqual([]);
    await expectOutputs(stand, keysOf([...start, ...during, ...recovered]));
    expect(await queueDepth(stand)).toEqual({ visible: 0, inFlight: 0 });
  }, 45_000);
});

describe("IMDS answering unusable credentials while running", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(SHORT_LIVED);
  });
  afterEach(async () => {
    await h.stopDaemons();
    h.stand.imds.setCredentialsAnswer("valid");
  });
  afterAll(async () => {
    await h.close();
  });

  it("an HTML page: like an outage (the cached keys are kept, no crash), and the page never reaches the log", async () => {
    const { stand } = h;
    const daemon = h.startDaemon();
    await daemon.waitForLog((l) => l.msg === READY);
    stand.imds.setCredentialsAnswer("html");
    // The next refresh (within seconds: 305 s keys) gets the page; the SDK's static stability keeps the cached keys.
    const warning = await daemon.waitForLog((l) => l.msg === "IMDS credential provider warning", 20_000);
    expect(JSON.stringify(warning)).toContain("SyntaxError: the IMDS answer is not valid JSON (content not logged)");
    const during = docsNamed("during-html", 2);
    await upload(stand, during);
    await waitForOutcomes(daemon, keysOf(during));
    expect(daemon.child.exitCode).toBeNull();
    expect(await stopDaemon(daemon)).toEqual({ code: 0, signal: null });
    expect(JSON.stringify(daemon.logs) + daemon.stderr()).not.toMatch(new RegExp(`${HTML_ANSWER_MARKER}|<!DOCTYPE|Bad Gateway`));
    expect(documentLines(daemon).filter((l) => l["outcome"] !== "done")).toEqual([]);
    await expectOutputs(stand, keysOf(during));
  }, 45_000);

  it("an Expiration that is not a date: the cached keys are kept, documents go on, and new keys are taken once IMDS is well", async () => {
    const { stand } = h;
    const daemon = h.startDaemon();
    await daemon.waitForLog((l) => l.msg === READY);
    const first = await daemon.waitForLog((l) => l.msg === CREDENTIALS_FETCHED);
    stand.imds.setCredentialsAnswer("bad-expiration");
    stand.imds.rotateNow();
    const kept = await daemon.waitForLog((l) => l.msg === "IMDS answered unusable credentials; keeping the cached ones and asking again soon", 20_000);
    expect(kept).toMatchObject({ level: "warn", problem: "an Expiration that is not a date", accessKeyIdSuffix: first["accessKeyIdSuffix"] });
    const during = docsNamed("during-bad-expiration", 3);
    await upload(stand, during);
    await waitForOutcomes(daemon, keysOf(during));
    expect(daemon.child.exitCode).toBeNull();

    stand.imds.setCredentialsAnswer("valid");
    stand.imds.rotateNow();
    // Asked again within 30 s of the bad answer.
    await daemon.waitForLog((l) => l.msg === CREDENTIALS_FETCHED && l["accessKeyIdSuffix"] !== first["accessKeyIdSuffix"], 40_000);
    const after = docsNamed("after-bad-expiration", 2);
    await upload(stand, after);
    await waitForOutcomes(daemon, keysOf(after));
    expect(await stopDaemon(daemon)).toEqual({ code: 0, signal: null });

    expect(documentLines(daemon).filter((l) => l["outcome"] !== "done")).toEqual([]);
    expect(stand.counters().authFailures).toBe(0);
    expect(roleDecisions(stand).filter((d) => d.decision !== "allow")).toEqual([]);
    await expectOutputs(stand, keysOf([...during, ...after]));
  }, 75_000);
});

describe("SIGTERM", () => {
  // As SQS does, a long poll whose caller has gone keeps what it takes hidden for the visibility timeout ("keep"): a
  // daemon that aborted its poll and then handed messages back would lose them to it for that long. A fresh stand-in
  // per case, so an idle daemon's aborted poll (it holds nothing then) cannot hide messages from the next case.
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness({ abandonedReceives: "keep" });
  });
  afterEach(async () => {
    await h.stopDaemons();
    await h.close();
  });

  /** Resolves once the role's GetObject for `n` documents has been authorized (they are running). */
  const running = (stand: StandIn, n: number) =>
    h.waitForDecision(() => roleDecisions(stand).filter((d) => d.action === "s3:GetObject").length >= n);

  it("with documents in flight past the drain deadline: exit 0, each document processed or back in the queue, a second daemon finishes", async () => {
    const { stand } = h;
    await discardTestEvent(stand);
    const docs = docsNamed("sigterm", 6);
    await upload(stand, docs);
    // Slow reads keep three documents running well past the 1 s drain timeout.
    stand.faults.set("s3", { latencyMs: 4_000, operations: ["GetObject"] });
    const first = h.startDaemon({ config: { concurrency: 3, drainTimeoutSeconds: 1 } });
    await running(stand, 3);
    expect(await stopDaemon(first)).toEqual({ code: 0, signal: null });
    const stopped = await first.waitForLog((l) => l.msg === "stopped");
    expect(stopped).toMatchObject({ timedOut: true });
    expect(stopped["released"]).toBeGreaterThanOrEqual(1);

    stand.faults.clear();
    const done = new Set(documentLines(first).filter((l) => l["outcome"] === "done").map((l) => String(l["key"])));
    // Released with visibility 0: everything not processed is visible again at once, nothing hidden.
    expect(await queueDepth(stand)).toEqual({ visible: docs.length - done.size, inFlight: 0 });
    const queued = new Set((await peekVisible(stand)).flatMap(eventKeys));
    for (const key of keysOf(docs)) expect(done.has(key) || queued.has(key), key).toBe(true);

    const second = h.startDaemon();
    await waitForOutcomes(second, keysOf(docs).filter((k) => !done.has(k)));
    expect(await stopDaemon(second)).toEqual({ code: 0, signal: null });
    await expectOutputs(stand, keysOf(docs));
    expect(await queueDepth(stand)).toEqual({ visible: 0, inFlight: 0 });
    expect(roleDecisions(stand).filter((d) => d.decision !== "allow")).toEqual([]);
  }, 45_000);

  it("with documents in flight within the drain deadline: they finish before the daemon exits 0", async () => {
    const { stand } = h;
    const docs = docsNamed("drained", 3);
    await upload(stand, docs);
    stand.faults.set("s3", { latencyMs: 1_500, operations: ["GetObject"] });
    const daemon = h.startDaemon({ config: { concurrency: 3, drainTimeoutSeconds: 20 } });
    await running(stand, 3);
    expect(await stopDaemon(daemon)).toEqual({ code: 0, signal: null });
    expect(await daemon.waitForLog((l) => l.msg === "stopped")).toMatchObject({ timedOut: false, released: 0 });
    stand.faults.clear();
    expect(documentLines(daemon).filter((l) => l["outcome"] !== "done")).toEqual([]);
    await expectOutputs(stand, keysOf(docs));
    expect(await queueDepth(stand)).toEqual({ visible: 0, inFlight: 0 });
  }, 30_000);

  // Guards the start-up window: signal handlers must be in place before the consumer receives anything, or a SIGTERM
  // gets Node's default action and the process dies without releasing what it received.
  it("right after the ready line: a clean stop with exit 0 (the signal handler must be in place once it consumes)", async () => {
    const daemon = h.startDaemon();
    await daemon.waitForLog((l) => l.msg === READY);
    expect(await stopDaemon(daemon)).toEqual({ code: 0, signal: null });
    await daemon.waitForLog((l) => l.msg === "stopped");
  });
});
