// Poison and malformed messages sent straight to the queue as admin, among real documents: the daemon must never
// crash and must keep processing the real ones; each malformed body is logged with its typed reason on every receive,
// never deleted, and moved to the DLQ by the redrive policy (maxReceiveCount 2 here); each TestEvent or record it
// must not process is deleted with a logged reason; bodies SQS itself refuses never reach it.
import { createHash } from "node:crypto";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { discardTestEvent } from "../../integration/helpers/daemon-harness.js";
import type { LogLine } from "../../local/daemon-process.js";
import { depthOf, takeAll, uploadOne } from "../lib/aws.js";
import { makeDocs } from "../lib/docs.js";
import { READY } from "../lib/fleet.js";
import { Report } from "../lib/report.js";
import { auditRun, checkDaemonsHealthy, settle, startRig, type Scenario } from "../lib/scenario.js";
import { pollUntil } from "../lib/time.js";
import { poisonCorpus, type PoisonBody } from "./poison-corpus.js";

const MAX_RECEIVE_COUNT = 2;
const SETTINGS = {
  quick: { copies: 1, docs: 10 },
  full: { copies: 4, docs: 40 },
} as const;

const sha = (text: string | undefined) => createHash("sha256").update(text ?? "").digest("hex");

interface Sent {
  item: PoisonBody;
  copy: number;
  messageId: string | undefined;
  refusal: string | undefined;
}

export const poison: Scenario = {
  name: "poison",
  budgetMs: { quick: 120_000, full: 300_000 },
  async run(ctx) {
    const report = new Report();
    const settings = SETTINGS[ctx.mode];
    const rig = await startRig(ctx, { maxReceiveCount: MAX_RECEIVE_COUNT, visibilityTimeoutSeconds: 10 });
    try {
      const { fleet, harness, admin } = rig;
      const { stand } = harness;
      await discardTestEvent(stand);
      const daemon = fleet.start();
      await daemon.process.waitForLog((l) => l.msg === READY, 30_000);

      const corpus = poisonCorpus({ source: stand.config.sourceBucket, output: stand.config.outputBucket });
      const docs = makeDocs("poison-neighbours", settings.docs, ctx.rng);
      const sent: Sent[] = [];
      // Poison and real documents interleaved, so the real ones run while the daemon handles the rest.
      const toUpload = [...docs];
      const every = Math.max(1, Math.floor((corpus.length * settings.copies) / docs.length));
      for (let copy = 0; copy < settings.copies; copy++) {
        for (const [i, item] of corpus.entries()) {
          try {
            const out = await admin.sqs.send(new SendMessageCommand({ QueueUrl: stand.queue.url, MessageBody: item.body }));
            sent.push({ item, copy, messageId: out.MessageId, refusal: undefined });
          } catch (err) {
            sent.push({ item, copy, messageId: undefined, refusal: (err as Error).name });
          }
          const doc = i % every === 0 ? toUpload.shift() : undefined;
          if (doc) await uploadOne(stand, rig.uploader.s3, doc);
        }
      }
      for (const doc of toUpload) await uploadOne(stand, rig.uploader.s3, doc);
      const expectedInDlq = sent.filter((s) => s.item.expect.kind === "dlq" && s.messageId !== undefined).length;
      ctx.progress(`sent ${sent.length} bodies (${expectedInDlq} for the DLQ), uploaded ${docs.length} documents`);

      const settled = await settle(rig, docs.map((d) => d.key), 60_000, ctx.signal);
      let dlqDepth = 0;
      await pollUntil(
        async () => {
          const d = await depthOf(admin.sqs, stand.queue.dlqUrl);
          dlqDepth = d.visible + d.inFlight;
          return dlqDepth >= expectedInDlq;
        },
        { timeoutMs: 30_000 + MAX_RECEIVE_COUNT * 15_000, intervalMs: 500, signal: ctx.signal },
      );
      const alive = daemon.exit === undefined;
      const stop = await fleet.terminate(daemon);
      report.check(alive, `the daemon exited during the scenario (${daemon.exit?.code ?? daemon.exit?.signal})`);
      report.check(stop.code === 0 && stop.signal === null, `daemon exited ${stop.code ?? stop.signal} on SIGTERM, expected 0`);
      report.check(settled.allDone, "not every real document was processed");

      const inDlq = new Map((await takeAll(admin.sqs, stand.queue.dlqUrl)).map((m) => [m.MessageId, m]));
      const leftInQueue = new Set((await takeAll(admin.sqs, stand.queue.url)).map((m) => m.MessageId));
      const lines = daemon.process.logs;
      const byMessage = new Map<string, LogLine[]>();
      for (const l of lines) {
        const id = l["messageId"];
        if (typeof id !== "string") continue;
        byMessage.set(id, [...(byMessage.get(id) ?? []), l]);
      }

      let toDlq = 0;
      let dropped = 0;
      let refused = 0;
      const seen = { dlq: [] as string[], dropped: [] as string[], refused: [] as string[] };
      for (const s of sent) {
        const { item } = s;
        const label = settings.copies > 1 ? `${item.name}#${s.copy + 1}` : item.name;
        if (item.expect.kind === "refused") {
          if (report.check(s.refusal !== undefined, `${label}: SQS accepted a body it should refuse`)) refused += 1;
          if (s.copy === 0) seen.refused.push(`${label} (${s.refusal})`);
          continue;
        }
        if (!report.check(s.messageId !== undefined, `${label}: SendMessage failed (${s.refusal})`)) continue;
        const id = s.messageId!;
        const own = byMessage.get(id) ?? [];
        if (item.expect.kind === "dlq") {
          const malformed = own.filter((l) => l["outcome"] === "malformed");
          const reasons = new Set(malformed.map((l) => String(l["reason"])));
          const expected = item.expect.reasons;
          const ok =
            report.check(inDlq.has(id), `${label}: not in the DLQ${leftInQueue.has(id) ? " (still in the queue)" : ""}`) &&
            report.check(sha(inDlq.get(id)?.Body) === sha(item.body), `${label}: the DLQ copy differs from the body sent`) &&
            report.check(
              malformed.length === MAX_RECEIVE_COUNT,
              `${label}: logged as malformed ${malformed.length} time(s), expected once per receive (${MAX_RECEIVE_COUNT})`,
            ) &&
            report.check(
              [...reasons].every((r) => (expected as readonly string[]).includes(r)),
              `${label}: logged reason(s) ${[...reasons].join(",")}, expected ${expected.join(" or ")}`,
            ) &&
            report.check(own.every((l) => l.msg !== "document"), `${label}: a document was processed from a malformed message`);
          if (ok) toDlq += 1;
          if (s.copy === 0) seen.dlq.push(`${label} [${[...reasons].join(",")} x${malformed.length}]`);
          continue;
        }
        const outcome = item.expect.outcome;
        const line = own.find((l) => l["outcome"] === outcome);
        const gone = !inDlq.has(id) && !leftInQueue.has(id);
        let ok = report.check(line !== undefined, `${label}: no log line with outcome ${outcome}`) && report.check(gone, `${label}: not deleted`);
        if (ok && item.expect.outcome === "ignored") {
          const logged = ((line!["ignored"] ?? []) as { reason?: string }[]).map((r) => r.reason).sort();
          const expected = [...item.expect.reasons].sort();
          ok = report.check(
            JSON.stringify(logged) === JSON.stringify(expected),
            `${label}: logged ignore reasons [${logged.join(",")}], expected [${expected.join(",")}]`,
          );
        }
        if (ok) dropped += 1;
        const loggedReasons = ((line?.["ignored"] ?? []) as { reason?: string }[]).map((r) => r.reason);
        if (s.copy === 0) seen.dropped.push(`${label} [${outcome}${loggedReasons.length ? `: ${loggedReasons.join(",")}` : ""}]`);
      }
      report.detail(`malformed, logged on each receive, never deleted, moved to the DLQ by redrive: ${seen.dlq.join("; ")}`);
      report.detail(`deleted with a logged reason: ${seen.dropped.join("; ")}`);
      report.detail(`refused by SQS at SendMessage (never reach a consumer): ${seen.refused.join("; ")}`);

      await auditRun(rig, docs, report);
      const longest = Math.max(...lines.map((l) => JSON.stringify(l).length));
      report.figure("bodies", sent.length);
      report.figure("toDlq", `${toDlq}/${sent.filter((s) => s.item.expect.kind === "dlq").length}`);
      report.figure("dropped", `${dropped}/${sent.filter((s) => s.item.expect.kind === "dropped").length}`);
      report.figure("refusedBySqs", refused);
      report.figure("longestLogLine", longest);
      checkDaemonsHealthy(rig, report);
    } finally {
      await rig.close();
    }
    return report;
  },
};
