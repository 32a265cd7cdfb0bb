// kill -9 at random points: documents arrive steadily while daemons are started and SIGKILLed at random moments
// (during start-up, mid-download, between the output write and the delete), each kill followed by a restart. With a
// 10 s visibility timeout the killed daemon's messages come back quickly. At the end every source object must have
// exactly its correct output, nothing left in the queue or the DLQ; duplicates are counted and explained.
import { uploadPaced } from "../lib/aws.js";
import { makeDocs } from "../lib/docs.js";
import { READY } from "../lib/fleet.js";
import { Report } from "../lib/report.js";
import { auditRun, checkDaemonsHealthy, settle, startRig, type Scenario } from "../lib/scenario.js";
import { sleep } from "../lib/time.js";

const VISIBILITY_SECONDS = 10;
const GET_LATENCY_MS = 300;

const SETTINGS = {
  quick: { docs: 100, kills: 6 },
  full: { docs: 600, kills: 30 },
} as const;

/** A kill lands this long after the daemon was spawned: sometimes during start-up, mostly while it works. */
const KILL_AFTER_MS = { min: 300, max: 4_000 };

export const kill9: Scenario = {
  name: "kill-9",
  budgetMs: { quick: 150_000, full: 600_000 },
  async run(ctx) {
    const report = new Report();
    const { docs: count, kills } = SETTINGS[ctx.mode];
    // Redrive only for a message received 20 times: kills must not push a healthy document to the DLQ.
    const rig = await startRig(
      ctx,
      { visibilityTimeoutSeconds: VISIBILITY_SECONDS, maxReceiveCount: 20 },
      { visibilityTimeoutSeconds: VISIBILITY_SECONDS },
    );
    try {
      const { fleet, harness } = rig;
      const docs = makeDocs("kill9", count, ctx.rng);
      // Every download takes GET_LATENCY_MS (a slow S3 first byte), so documents are in flight for a while and kills
      // land mid-document as well as between the output write and the delete.
      harness.stand.faults.set("s3", { latencyMs: GET_LATENCY_MS, operations: ["GetObject"] });
      // Uploads span the kill phase, so every daemon has work whenever it is killed.
      const expectedPhaseMs = kills * ((KILL_AFTER_MS.min + KILL_AFTER_MS.max) / 2 + 300);
      const uploads = uploadPaced(harness.stand, rig.uploader.s3, docs, expectedPhaseMs, ctx.signal);
      // Awaited below; handled here too so an abort before that point is not an unhandled rejection.
      uploads.catch(() => undefined);

      let duringStartup = 0;
      // Documents a kill cut short: started (GetObject) by the killed daemon without a done line from it. Only one
      // daemon runs during this phase, so the counts are its own.
      let cut = 0;
      for (let k = 0; k < kills; k++) {
        const getsBefore = rig.roleGetObjects();
        const daemon = fleet.start();
        await sleep(ctx.rng.int(KILL_AFTER_MS.min, KILL_AFTER_MS.max), ctx.signal);
        if (daemon.exit !== undefined) {
          report.fail(`daemon #${daemon.id} exited before its kill (${daemon.exit.code ?? daemon.exit.signal})`);
          continue;
        }
        const ready = daemon.process.logs.some((l) => l.msg === READY);
        if (!ready) duringStartup += 1;
        await fleet.kill(daemon);
        cut += Math.max(0, rig.roleGetObjects() - getsBefore - fleet.done.filter((d) => d.daemon === daemon.id).length);
        ctx.progress(`kill ${k + 1}/${kills}: daemon #${daemon.id} ${ready ? "running" : "starting"}, ${fleet.doneKeys.size}/${count} done`);
      }
      await uploads;

      harness.stand.faults.clear();
      const survivor = fleet.start();
      const settled = await settle(rig, docs.map((d) => d.key), ctx.mode === "quick" ? 90_000 : 300_000, ctx.signal);
      const stop = await fleet.terminate(survivor);
      report.check(stop.code === 0 && stop.signal === null, `final daemon exited ${stop.code ?? stop.signal} on SIGTERM, expected 0`);
      report.check(settled.allDone, "not every document was processed before the timeout");
      report.check(settled.queue.visible === 0 && settled.queue.inFlight === 0, `queue not empty at the end: ${JSON.stringify(settled.queue)}`);
      report.check(settled.dlq.visible === 0 && settled.dlq.inFlight === 0, `DLQ not empty at the end: ${JSON.stringify(settled.dlq)}`);

      await auditRun(rig, docs, report);
      report.figure("kills", kills);
      report.figure("killedInStartup", duringStartup);
      report.figure("docsCutByKills", cut);
      report.figure("daemons", fleet.daemons.length);
      report.figure("finishAfterLastKill", `${(settled.ms / 1000).toFixed(1)}s`);
      checkDaemonsHealthy(rig, report);
    } finally {
      await rig.close();
    }
    return report;
  },
};
