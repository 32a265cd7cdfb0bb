// Injected faults on S3 and SQS at more than 10% of calls: 500 InternalError, 503 SlowDown/RequestThrottled,
// connection resets, and added latency. The first half of the run fails requests before they take effect, the second
// half after (the call happened, its answer is lost: a delete that worked although the caller saw an error, an upload
// whose event went out twice). The SDK's own retries absorb most single faults, so there are also short storms where
// every call of a service fails: S3 (documents fail and back off), SQS (receives back off, deletes fail and messages
// come back), then SQS again with the calls taking effect (deletes that worked, receives whose messages stay hidden). Nothing may be lost; every document ends with its correct output.
import type { MetricsSnapshot } from "../../../src/observability/metrics.js";
import type { LogLine } from "../../local/daemon-process.js";
import type { FaultService, FaultSettings } from "../../local/gateway/faults.js";
import { discardTestEvent } from "../../integration/helpers/daemon-harness.js";
import { uploadPaced } from "../lib/aws.js";
import { makeDocs } from "../lib/docs.js";
import { Report } from "../lib/report.js";
import { auditRun, checkDaemonsHealthy, settle, startRig, type Scenario } from "../lib/scenario.js";
import { sleep } from "../lib/time.js";

const SETTINGS = {
  quick: { docs: 100, uploadSpanMs: 15_000 },
  full: { docs: 600, uploadSpanMs: 90_000 },
} as const;

/** 4% + 4% + 4% = 12% of calls fail; 10% more are slow. */
const FAULTS: FaultSettings = { errorRate: 0.04, throttleRate: 0.04, resetRate: 0.04, latencyMs: 300, latencyRate: 0.1 };
/** Every call of the service fails for STORM_MS. */
const STORM: FaultSettings = { errorRate: 0.5, throttleRate: 0.25, resetRate: 0.25 };
const STORM_MS = 4_000;
const SERVICES = ["s3", "sqs"] as const satisfies readonly FaultService[];

type Phase = "before" | "after";
interface Step {
  /** Fraction of the upload span, plus `after` ms. */
  at: number;
  after?: number;
  label: string;
  faults: Record<"s3" | "sqs", FaultSettings>;
}

/** The scenario on one transport: `lean` (the default) as "faults", the SDK fallback as "faults-sdk". */
function faultsOn(transport: "lean" | "sdk"): Scenario {
  return {
    name: transport === "lean" ? "faults" : "faults-sdk",
    budgetMs: { quick: 150_000, full: 600_000 },
    async run(ctx) {
      const report = new Report();
      const { docs: count, uploadSpanMs } = SETTINGS[ctx.mode];
      const rig = await startRig(ctx, { visibilityTimeoutSeconds: 10, maxReceiveCount: 10 }, { transport });
      try {
        const { fleet, harness } = rig;
        const { stand } = harness;
        await discardTestEvent(stand);

        // Calls that drew from the fault generator, per service: the denominator of the fault rate.
        const calls: Record<string, number> = { s3: 0, sqs: 0 };
        const decide = stand.faults.decide.bind(stand.faults);
        stand.faults.decide = (service, operation) => {
          const decision = decide(service, operation);
          if (Object.keys(stand.faults.get(service)).length > 0) calls[service] = (calls[service] ?? 0) + 1;
          return decision;
        };
        // The fault timeline runs beside the uploads; each step sets both services at a fraction of the upload span.
        const base = (phase: Phase): Step["faults"] => ({ s3: { ...FAULTS, phase }, sqs: { ...FAULTS, phase } });
        const steps: Step[] = [
          { at: 0, label: "faults before the call", faults: base("before") },
          { at: 0.2, label: "S3 storm: documents fail", faults: { ...base("before"), s3: { ...STORM, phase: "before" } } },
          { at: 0.2, after: STORM_MS, label: "faults before the call", faults: base("before") },
          { at: 0.4, label: "SQS storm: receives and deletes fail", faults: { ...base("before"), sqs: { ...STORM, phase: "before" } } },
          { at: 0.4, after: STORM_MS, label: "faults before the call", faults: base("before") },
          { at: 0.6, label: "faults after the call took effect", faults: base("after") },
          // SQS only: an S3 storm "after" would mostly multiply the uploader's events (each retried PutObject lands).
          { at: 0.8, label: "SQS storm after the call took effect", faults: { ...base("after"), sqs: { ...STORM, phase: "after" } } },
          { at: 0.8, after: STORM_MS, label: "faults after the call took effect", faults: base("after") },
        ];
        const started = Date.now();
        const timeline = async (): Promise<void> => {
          for (const step of steps) {
            const due = started + step.at * uploadSpanMs + (step.after ?? 0) - Date.now();
            if (due > 0) await sleep(due, ctx.signal);
            for (const service of SERVICES) stand.faults.set(service, step.faults[service]);
            ctx.progress(`${step.label} (${fleet.doneKeys.size} done)`);
          }
        };

        for (const service of SERVICES) stand.faults.set(service, steps[0]!.faults[service]);
        const daemon = fleet.start();
        const docs = makeDocs("faults", count, ctx.rng);
        await Promise.all([timeline(), uploadPaced(stand, rig.uploader.s3, docs, uploadSpanMs, ctx.signal)]);
        const settled = await settle(rig, docs.map((d) => d.key), ctx.mode === "quick" ? 100_000 : 300_000, ctx.signal);
        stand.faults.clear();

        const stop = await fleet.terminate(daemon);
        report.check(stop.code === 0 && stop.signal === null, `daemon exited ${stop.code ?? stop.signal} on SIGTERM, expected 0`);
        report.check(settled.allDone, "not every document was processed before the timeout");
        report.check(settled.queue.visible === 0 && settled.queue.inFlight === 0, `queue not empty at the end: ${JSON.stringify(settled.queue)}`);
        report.check(settled.dlq.visible === 0, `${settled.dlq.visible} message(s) in the DLQ`);
        await auditRun(rig, docs, report);

        const counters = stand.faults.counters();
        for (const service of SERVICES) {
          const c = counters[service];
          const failedCalls = c.error + c.throttle + c.reset;
          const rate = calls[service] ? (100 * failedCalls) / calls[service] : 0;
          report.figure(`${service}Faults`, `${failedCalls}/${calls[service]}=${rate.toFixed(1)}%`);
          report.check(rate >= 10, `${service} fault rate ${rate.toFixed(1)}% is below the 10% the scenario promises`);
          report.detail(`${service}: ${c.error} InternalError, ${c.throttle} throttled, ${c.reset} resets, ${c.latency} slowed by ${FAULTS.latencyMs} ms`);
        }
        // Counted by the daemons' own metrics (the last snapshot each logged, on its way out), not from log text.
        const metrics = finalMetrics(fleet.lines());
        report.check(
          metrics.daemons === fleet.daemons.length,
          `${fleet.daemons.length - metrics.daemons} daemon(s) logged no metrics snapshot`,
        );
        report.figure("retriedDocs", metrics.total("s3_objects_failed_total"));
        report.figure("receiveErrors", metrics.total("sqs_receive_errors_total"));
        report.figure("deleteFailures", metrics.total("sqs_messages_delete_failed_total"));
        report.figure("settle", `${(settled.ms / 1000).toFixed(1)}s`);
        checkDaemonsHealthy(rig, report);
      } finally {
        await rig.close();
      }
      return report;
    },
  };
}

export const faults = faultsOn("lean");
export const faultsSdk = faultsOn("sdk");

type Counter = { [K in keyof MetricsSnapshot]: MetricsSnapshot[K] extends number ? K : never }[keyof MetricsSnapshot];

/**
 * The last `metrics` snapshot each daemon logged (the periodic status lines and the final "stopped" line carry one),
 * and a counter's sum over them: each process counts only its own work.
 */
export function finalMetrics(lines: readonly (LogLine & { daemon: number })[]): {
  daemons: number;
  total: (counter: Counter) => number;
} {
  const last = new Map<number, Record<string, unknown>>();
  for (const line of lines) {
    const m = line["metrics"];
    if (typeof m === "object" && m !== null) last.set(line.daemon, m as Record<string, unknown>);
  }
  return {
    daemons: last.size,
    total: (counter) => [...last.values()].reduce((n, m) => n + (typeof m[counter] === "number" ? m[counter] : 0), 0),
  };
}
