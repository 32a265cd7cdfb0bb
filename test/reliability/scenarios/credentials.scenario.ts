// Credentials rotating with short lifetimes (IMDS serves a new role session about every 5 s) and an IMDS outage
// (500s, refused connections and a metadata service that accepts and never answers, in a seeded order) while
// documents keep arriving. The daemon must not crash, must lose nothing, and must carry on by itself.
//
// The SDK's static stability shapes what can be asserted: the first failed refresh extends the cached credentials
// by 5 to 10 minutes, so the SDK calls IMDS again only after a random 0 to 5 minutes.
// - quick: a 30 s outage well inside the credentials' remaining ~5 minutes: processing goes on throughout on the
//   cached credentials, no request fails authentication; the next fetch after the outage is reported, not awaited.
// - full: a 6 minute outage, longer than the credentials' remaining lifetime: they expire mid-outage and calls fail;
//   once IMDS is back the daemon must fetch new credentials and finish every document by itself, within the SDK's
//   deferral (5 minutes) plus a margin.
import type { ImdsMode } from "../../local/imds/types.js";
import { discardTestEvent, roleDecisions } from "../../integration/helpers/daemon-harness.js";
import { uploadPaced } from "../lib/aws.js";
import { makeDocs } from "../lib/docs.js";
import { CREDENTIALS_FETCHED, READY } from "../lib/fleet.js";
import { Report } from "../lib/report.js";
import { auditRun, checkDaemonsHealthy, settle, startRig, type Scenario } from "../lib/scenario.js";
import { sleep } from "../lib/time.js";

const SETTINGS = {
  quick: { docs: 60, warmMs: 12_000, outageMs: 30_000, afterMs: 8_000, expires: false, resumeWithinMs: 0 },
  full: { docs: 300, warmMs: 30_000, outageMs: 360_000, afterMs: 30_000, expires: true, resumeWithinMs: 360_000 },
} as const;

const OUTAGE_MODES: readonly ImdsMode[] = ["error-500", "refuse", "hang"];
/** The provider's static-stability notice: a refresh failed and the cached credentials were extended. */
const EXTENDED = "Attempting credential expiration extension";

// IMDS never serves credentials with less than 5 minutes left and the SDK refreshes 5 minutes before expiry, so a
// 305 s lifetime makes both rotate about every 5 s.
const SHORT_LIVED = { credentialTtlSeconds: 305, refreshBeforeExpirySeconds: 300 };

export const credentials: Scenario = {
  name: "credentials",
  budgetMs: { quick: 150_000, full: 1_200_000 },
  async run(ctx) {
    const report = new Report();
    const s = SETTINGS[ctx.mode];
    const rig = await startRig(ctx, SHORT_LIVED);
    try {
      const { fleet, harness } = rig;
      const { stand } = harness;
      await discardTestEvent(stand);
      const daemon = fleet.start();
      const lines = daemon.process.logs;
      await daemon.process.waitForLog((l) => l.msg === READY, 30_000);
      const fetchedSince = (from: number) => lines.slice(from).filter((l) => l.msg === CREDENTIALS_FETCHED);
      const extendedSince = (from: number) =>
        lines.slice(from).filter((l) => Array.isArray(l["detail"]) && String(l["detail"][0]).startsWith(EXTENDED));

      const docs = makeDocs("credentials", s.docs, ctx.rng);
      const uploads = uploadPaced(stand, rig.uploader.s3, docs, s.warmMs + s.outageMs + s.afterMs, ctx.signal);
      // Awaited below; handled here too so an abort before that point is not an unhandled rejection.
      uploads.catch(() => undefined);
      await sleep(s.warmMs, ctx.signal);

      const rotations = new Set(fetchedSince(0).map((l) => String(l["accessKeyIdSuffix"]))).size;
      const doneBefore = fleet.doneKeys.size;
      const outageFrom = lines.length;
      const modes = ctx.rng.shuffle(OUTAGE_MODES);
      const failedIn: string[] = [];
      for (const mode of modes) {
        const from = lines.length;
        stand.imds.setMode(mode);
        ctx.progress(`IMDS ${mode}`);
        await sleep(s.outageMs / modes.length, ctx.signal);
        if (extendedSince(from).length > 0) failedIn.push(mode);
      }
      stand.imds.setMode("normal");
      const outageEnded = Date.now();
      const recoveredFrom = lines.length;
      const doneDuring = fleet.doneKeys.size - doneBefore;
      const failedRefreshes = extendedSince(outageFrom).length;
      const authFailuresInOutage = stand.counters().authFailures;
      ctx.progress(`IMDS back: ${failedRefreshes} failed refresh(es), ${doneDuring} documents done during the outage`);

      await uploads;
      // Resumes by itself: new credentials from IMDS without a restart (full mode waits for the SDK's deferral).
      const refreshed = await fleet.waitFor(() => fetchedSince(recoveredFrom).length > 0, s.resumeWithinMs);
      const settled = await settle(rig, docs.map((d) => d.key), 60_000, ctx.signal);
      const firstFetch = fetchedSince(recoveredFrom)[0];
      const refreshedAfterMs = firstFetch ? Date.parse(String(firstFetch["time"])) - outageEnded : Number.NaN;
      const alive = daemon.exit === undefined;
      const stop = await fleet.terminate(daemon);

      report.check(alive, "the daemon exited during the scenario");
      report.check(stop.code === 0 && stop.signal === null, `daemon exited ${stop.code ?? stop.signal} on SIGTERM, expected 0`);
      report.check(settled.allDone, "not every document was processed before the timeout");
      report.check(settled.queue.visible === 0 && settled.queue.inFlight === 0, `queue not empty at the end: ${JSON.stringify(settled.queue)}`);
      report.check(rotations >= 2, `only ${rotations} set(s) of credentials before the outage: rotation not exercised`);
      report.check(failedRefreshes > 0, "no refresh failed during the outage: the outage was not exercised");
      // Requests signed with credentials that expired during the outage are refused (ExpiredToken): expected in full
      // mode. Anything else refused is a failure.
      const expired = (d: { decision: string; code?: string }) => d.decision === "unauthenticated" && d.code === "ExpiredToken";
      const denied = roleDecisions(stand).filter((d) => d.decision !== "allow" && !(s.expires && expired(d)));
      report.check(denied.length === 0, `${denied.length} request(s) of the role refused, first: ${JSON.stringify(denied[0])}`);
      if (s.expires) {
        report.check(refreshed, `no new credentials within ${s.resumeWithinMs / 1000} s after IMDS came back`);
        const late = roleDecisions(stand).filter((d) => expired(d) && Date.parse(d.time) >= outageEnded);
        const lastLate = late.at(-1);
        if (lastLate) {
          report.detail(
            `after IMDS came back, ${late.length} request(s) still used the expired credentials (ExpiredToken) until ` +
              `${((Date.parse(lastLate.time) - outageEnded) / 1000).toFixed(1)} s later: the SDK had deferred its next refresh`,
          );
        }
      } else {
        report.check(doneDuring > 0, "no document processed during the outage: the cached credentials were not used");
        report.check(stand.counters().authFailures === 0, `${stand.counters().authFailures} request(s) failed authentication`);
      }
      await auditRun(rig, docs, report);

      report.figure("credentialSets", new Set(fetchedSince(0).map((l) => String(l["accessKeyIdSuffix"]))).size);
      report.figure("outage", `${s.outageMs / 1000}s`);
      report.figure("failedRefreshes", `${failedRefreshes}(${failedIn.join(",") || "-"})`);
      report.figure("doneDuringOutage", doneDuring);
      report.figure("authFailures", `${authFailuresInOutage}+${stand.counters().authFailures - authFailuresInOutage}`);
      report.figure("refreshedAfter", Number.isFinite(refreshedAfterMs) ? `${(refreshedAfterMs / 1000).toFixed(1)}s` : "later");
      report.detail(
        `outage modes in order: ${modes.join(", ")}; a refresh failed during: ${failedIn.join(", ") || "none"} ` +
          "(after a failure the SDK extends the cached credentials and retries only 0-5 min later)",
      );
      if (!s.expires && !refreshed) {
        report.detail("no IMDS fetch yet after the outage: the SDK's static stability deferred it (expected; the credentials were still valid)");
      }
      checkDaemonsHealthy(rig, report);
    } finally {
      await rig.close();
    }
    return report;
  },
};
