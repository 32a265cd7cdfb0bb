// SIGTERM under load: a queue full of documents, every download slowed to 2.5 s, and daemons stopped with SIGTERM at
// random moments while four documents run, alternately with a drain timeout shorter than what is left of their
// downloads (they are aborted and released) and longer (they finish). Each stop must exit 0 within the drain timeout (plus the 2 s abort
// grace), and right after the exit nothing may be hidden: every unfinished message is visible again at once, not
// after the 60 s visibility timeout. A last daemon then finishes the queue: nothing lost.
import { discardTestEvent } from "../../integration/helpers/daemon-harness.js";
import { depthOf, uploadOne } from "../lib/aws.js";
import { makeDocs } from "../lib/docs.js";
import { READY } from "../lib/fleet.js";
import { Report } from "../lib/report.js";
import { auditRun, checkDaemonsHealthy, settle, startRig, type Scenario } from "../lib/scenario.js";
import { sleep } from "../lib/time.js";

/** Long enough that a message left hidden by a stop cannot come back during the scenario's checks. */
const VISIBILITY_SECONDS = 60;
const SLOW_GET_MS = 2_500;
/** Drain timeouts tried in turn: shorter than a slow download (abort and release), then long enough to finish. */
const DRAINS_SECONDS = [1, 6] as const;
/** The consumer's grace for aborted documents after the drain deadline (DEFAULT_ABORT_GRACE_MS). */
const ABORT_GRACE_MS = 2_000;
/** Process exit and pipe close on a busy 2-core machine. */
const EXIT_SLACK_MS = 2_000;
const CONCURRENCY = 4;

const SETTINGS = {
  quick: { docs: 60, rounds: 4 },
  full: { docs: 400, rounds: 16 },
} as const;

export const sigterm: Scenario = {
  name: "sigterm",
  budgetMs: { quick: 150_000, full: 600_000 },
  async run(ctx) {
    const report = new Report();
    const { docs: count, rounds } = SETTINGS[ctx.mode];
    const rig = await startRig(
      ctx,
      { visibilityTimeoutSeconds: VISIBILITY_SECONDS },
      { visibilityTimeoutSeconds: VISIBILITY_SECONDS, concurrency: CONCURRENCY },
    );
    try {
      const { fleet, harness, admin } = rig;
      const { stand } = harness;
      await discardTestEvent(stand);
      const docs = makeDocs("sigterm", count, ctx.rng);
      for (const doc of docs) await uploadOne(stand, rig.uploader.s3, doc);
      stand.faults.set("s3", { latencyMs: SLOW_GET_MS, operations: ["GetObject"] });
      const gets = rig.roleGetObjects;

      let released = 0;
      let timedOut = 0;
      let drained = 0;
      let slowestStopMs = 0;
      for (let round = 0; round < rounds; round++) {
        if (fleet.doneKeys.size === docs.length) break;
        const drainSeconds = DRAINS_SECONDS[round % DRAINS_SECONDS.length]!;
        const daemon = fleet.start({ drainTimeoutSeconds: drainSeconds });
        await daemon.process.waitForLog((l) => l.msg === READY, 30_000);
        const before = gets();
        // Under load: the pipeline is full (four downloads authorized), then a random moment early enough in their
        // downloads that a 1 s drain cannot finish them.
        const remaining = docs.length - fleet.doneKeys.size;
        await harness.waitForDecision(() => gets() >= before + Math.min(CONCURRENCY, remaining), 30_000);
        await sleep(ctx.rng.int(0, SLOW_GET_MS - 1_000), ctx.signal);

        const stop = await fleet.terminate(daemon);
        const depth = await depthOf(admin.sqs, stand.queue.url);
        const stopped = daemon.process.logs.find((l) => l.msg === "stopped");
        const limitMs = drainSeconds * 1000 + ABORT_GRACE_MS + EXIT_SLACK_MS;
        slowestStopMs = Math.max(slowestStopMs, stop.ms);
        released += Number(stopped?.["released"] ?? 0);
        if (stopped?.["timedOut"] === true) timedOut += 1;
        else drained += Number(stopped?.["completed"] ?? 0);
        const notDone = docs.length - fleet.doneKeys.size;
        const where = `stop ${round + 1} (drain ${drainSeconds} s)`;
        report.check(stop.code === 0 && stop.signal === null, `${where}: exited ${stop.code ?? stop.signal}, expected 0`);
        report.check(stop.ms <= limitMs, `${where}: took ${stop.ms} ms to exit, more than ${limitMs} ms`);
        report.check(stopped !== undefined, `${where}: no "stopped" log line`);
        report.check(depth.inFlight === 0, `${where}: ${depth.inFlight} message(s) still hidden right after the exit (not released)`);
        report.check(depth.visible === notDone, `${where}: ${depth.visible} message(s) visible, expected one per unfinished document (${notDone})`);
        ctx.progress(`${where}: exit ${stop.code} after ${stop.ms} ms, ${JSON.stringify(depth)}, ${notDone} not done`);
      }

      stand.faults.clear();
      const survivor = fleet.start();
      const settled = await settle(rig, docs.map((d) => d.key), 90_000, ctx.signal);
      const stop = await fleet.terminate(survivor);
      report.check(stop.code === 0 && stop.signal === null, `final daemon exited ${stop.code ?? stop.signal}, expected 0`);
      report.check(settled.allDone, "not every document was processed before the timeout");
      report.check(settled.queue.visible === 0 && settled.queue.inFlight === 0, `queue not empty at the end: ${JSON.stringify(settled.queue)}`);
      await auditRun(rig, docs, report);
      // Both paths must have happened, or the run proved less than it claims.
      report.check(released > 0, "no stop released a running message: the abort-and-release path was not exercised");
      report.check(drained > 0, "no stop let running documents finish: the drain path was not exercised");
      report.figure("stops", fleet.daemons.length - 1);
      report.figure("drainTimedOut", timedOut);
      report.figure("released", released);
      report.figure("finishedInDrain", drained);
      report.figure("slowestStop", `${(slowestStopMs / 1000).toFixed(1)}s`);
      checkDaemonsHealthy(rig, report);
    } finally {
      await rig.close();
    }
    return report;
  },
};
