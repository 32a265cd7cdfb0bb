// The shape of a scenario and the steps most of them share: a stand-in with resilient admin clients, waiting until
// every document is done and the queue is empty, and the final audit (outputs, what is left in the queue and DLQ,
// lost documents, duplicates and their causes).
import { startHarness, type Harness } from "../../integration/helpers/daemon-harness.js";
import type { StandInOptions } from "../../local/stand-in.js";
import { auditDocuments, explainDuplicates, type DocumentAudit } from "./accounting.js";
import {
  adminClients,
  depthOf,
  keysInBody,
  listOutputKeys,
  readOutputs,
  takeAll,
  uploaderClients,
  type Clients,
  type Depth,
} from "./aws.js";
import type { Doc } from "./docs.js";
import { Fleet } from "./fleet.js";
import type { Rng } from "./random.js";
import { Report, listKeys, type Mode } from "./report.js";
import { pollUntil } from "./time.js";

export interface ScenarioContext {
  mode: Mode;
  rng: Rng;
  /** Aborted when the scenario exceeds its budget: stop waiting, clean up. */
  signal: AbortSignal;
  /** Progress for humans (stderr), not part of the result. */
  progress(text: string): void;
}

export interface Scenario {
  name: string;
  /** Hard limit of one run, cleanup included, per mode. */
  budgetMs: Record<Mode, number>;
  run(ctx: ScenarioContext): Promise<Report>;
}

/** Settings every scenario's daemons share: short long polls and small visibility so the runs stay short. */
export const BASE_DAEMON_CONFIG = {
  concurrency: 4,
  waitTimeSeconds: 1,
  visibilityTimeoutSeconds: 10,
  drainTimeoutSeconds: 5,
  imdsTimeoutMs: 1_000,
  imdsMaxRetries: 1,
} as const;

export interface Rig {
  harness: Harness;
  /** GetObject calls the daemons' role has made so far (documents started, retries included). */
  roleGetObjects(): number;
  fleet: Fleet;
  admin: Clients;
  uploader: Clients;
  close(): Promise<void>;
}

/** A stand-in, its fleet of daemons and resilient clients; close() stops the daemons first, then everything else. */
export async function startRig(ctx: ScenarioContext, options: StandInOptions, daemonConfig: Record<string, unknown> = {}): Promise<Rig> {
  let gets = 0;
  // Counted as decisions happen: the gateway's decision log keeps only the most recent entries.
  const harness = await startHarness({
    faultSeed: ctx.rng.seed(),
    ...options,
    logger: (entry) => {
      if (entry.action === "s3:GetObject" && entry.principal.includes(":assumed-role/")) gets += 1;
    },
  });
  const fleet = new Fleet(harness.stand, { ...BASE_DAEMON_CONFIG, ...daemonConfig }, ctx.signal);
  const admin = adminClients(harness.stand);
  const uploader = uploaderClients(harness.stand);
  return {
    harness,
    roleGetObjects: () => gets,
    fleet,
    admin,
    uploader,
    async close() {
      try {
        await fleet.stopAll();
      } finally {
        admin.destroy();
        uploader.destroy();
        await harness.close();
      }
    },
  };
}

export interface Settled {
  allDone: boolean;
  queue: Depth;
  dlq: Depth;
  /** ms from the call until every document was done and the queue empty (or the timeout). */
  ms: number;
}

/**
 * Waits until every key has a done line and the queue holds nothing (visible or in flight): duplicates still in
 * flight have then finished too. The DLQ depth is reported, not waited on.
 */
export async function settle(rig: Rig, keys: readonly string[], timeoutMs: number, signal: AbortSignal): Promise<Settled> {
  const started = Date.now();
  const { fleet, admin, harness } = rig;
  const allDone = await fleet.waitFor(() => keys.every((k) => fleet.doneKeys.has(k)), timeoutMs);
  let queue: Depth = { visible: Number.NaN, inFlight: Number.NaN };
  await pollUntil(
    async () => {
      queue = await depthOf(admin.sqs, harness.stand.queue.url);
      return queue.visible === 0 && queue.inFlight === 0;
    },
    { timeoutMs: Math.max(1_000, timeoutMs - (Date.now() - started)), intervalMs: 500, signal },
  );
  const dlq = await depthOf(admin.sqs, harness.stand.queue.dlqUrl);
  return { allDone, queue, dlq, ms: Date.now() - started };
}

/**
 * The end of a document scenario, once every daemon has stopped: reads each output and whatever is left in the
 * queue and the DLQ, then reports uploaded/processed/lost/duplicates and the causes of the duplicates. Outputs for
 * keys nobody uploaded (a key decoded wrongly, a poison record processed) fail the scenario too.
 */
export async function auditRun(rig: Rig, docs: readonly Doc[], report: Report, opts = { allProcessed: true }): Promise<DocumentAudit> {
  const { stand } = rig.harness;
  const expected = new Set(docs.map((d) => `${d.key}.json`));
  const unexpected = (await listOutputKeys(stand, rig.admin.s3)).filter((k) => !expected.has(k));
  report.check(unexpected.length === 0, `${unexpected.length} output(s) for keys nobody uploaded: ${listKeys(unexpected)}`);
  const outputs = await readOutputs(stand, rig.admin.s3, docs.map((d) => d.key));
  const leftovers = [...(await takeAll(rig.admin.sqs, stand.queue.url)), ...(await takeAll(rig.admin.sqs, stand.queue.dlqUrl))];
  const queued = new Set(leftovers.flatMap((m) => keysInBody(m.Body)));
  const audit = auditDocuments(docs, outputs, queued, rig.fleet.done);
  report.documents(audit, explainDuplicates(rig.fleet.done, rig.fleet.facts()), opts);
  return audit;
}

/** Checks shared by every scenario about the daemons themselves: none crashed, none logged a fatal error or a bug. */
export function checkDaemonsHealthy(rig: Rig, report: Report): void {
  for (const d of rig.fleet.crashed()) {
    report.fail(`daemon #${d.id} exited by itself (${d.exit?.code ?? d.exit?.signal}); stderr: ${d.process.stderr().slice(-400)}`);
  }
  const broken = rig.fleet.brokenLines();
  report.check(
    broken.length === 0,
    `${broken.length} fatal/bug log line(s), first: ${JSON.stringify(broken[0] ?? {}).slice(0, 300)}`,
  );
}
