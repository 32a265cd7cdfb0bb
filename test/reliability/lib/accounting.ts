// Pure bookkeeping of a reliability scenario: which uploaded documents ended with their correct output, which are
// still waiting as a message (queue or DLQ), which are lost (neither), and why a document was processed more than
// once. Delivery is at least once, so duplicates are expected; each one is explained from what the run recorded.

export interface SourceDoc {
  key: string;
  sha256: string;
  size: number;
}

/** What the metadata processor wrote for a key (its `<key>.json`), as far as correctness is concerned. */
export interface OutputSeen {
  sourceKey: string;
  sha256: string;
  bytes: number;
}

/** One `document` log line with outcome "done": a processing that wrote the key's output. */
export interface DoneLine {
  key: string;
  /** Index of the daemon process that logged it. */
  daemon: number;
  messageId: string;
  receiveCount: number;
  /** Epoch ms of the log line. */
  time: number;
}

export interface DocumentAudit {
  uploaded: number;
  /** Output present and matching the source (sha256, size, source key). */
  correct: number;
  /** Output present but not matching the source. */
  wrong: string[];
  /** No correct output, but a message for the key is still in the queue or the DLQ: not lost, not done. */
  waiting: string[];
  /** No correct output and no message anywhere: lost. */
  lost: string[];
  /** Processings beyond the first, over all keys. */
  duplicates: number;
}

export function auditDocuments(
  docs: readonly SourceDoc[],
  outputs: ReadonlyMap<string, OutputSeen | undefined>,
  queuedKeys: ReadonlySet<string>,
  done: readonly DoneLine[],
): DocumentAudit {
  const audit: DocumentAudit = { uploaded: docs.length, correct: 0, wrong: [], waiting: [], lost: [], duplicates: 0 };
  for (const doc of docs) {
    const out = outputs.get(doc.key);
    const correct = out !== undefined && out.sourceKey === doc.key && out.sha256 === doc.sha256 && out.bytes === doc.size;
    if (correct) audit.correct += 1;
    else if (out !== undefined) audit.wrong.push(doc.key);
    if (correct) continue;
    if (queuedKeys.has(doc.key)) audit.waiting.push(doc.key);
    else audit.lost.push(doc.key);
  }
  const uploaded = new Set(docs.map((d) => d.key));
  for (const lines of groupByKey(done).values()) {
    if (uploaded.has(lines[0]!.key)) audit.duplicates += lines.length - 1;
  }
  return audit;
}

/** What each daemon process went through, as far as duplicates are concerned. */
export interface DaemonFacts {
  /** How the process ended: killed with SIGKILL, stopped with SIGTERM, or still running / other. */
  end: "sigkill" | "sigterm" | "other";
  /** Message ids whose delete the daemon reported as failed ("the message will be redelivered"). */
  deleteFailed: ReadonlySet<string>;
  /** Message ids whose visibility extension failed or whose receipt handle expired while running. */
  visibilityLost: ReadonlySet<string>;
}

export type DuplicateCause = "second-event" | "delete-failed" | "visibility-lapsed" | "killed-before-delete" | "redelivered";

export const CAUSE_TEXT: Record<DuplicateCause, string> = {
  "second-event":
    "a second S3 event for the same object (the upload was retried after its answer was lost: two ObjectCreated events)",
  "delete-failed": "DeleteMessage failed after the output was written (injected fault): the message was redelivered",
  "visibility-lapsed": "a visibility extension failed while it ran: the message became visible again and was redelivered",
  "killed-before-delete":
    "the daemon was SIGKILLed after writing the output and before its DeleteMessage completed: redelivered after the visibility timeout",
  "redelivered": "the visibility timeout lapsed before the delete landed (slow or retried calls): redelivered",
};

export interface DuplicateExplanation {
  key: string;
  /** How many times the key was processed. */
  count: number;
  /** One cause per processing after the first. */
  causes: DuplicateCause[];
}

/**
 * For every key processed more than once, why each repeat happened: the previous processing's message and daemon
 * say whether S3 sent two events, or the same message came back (delete failed, visibility lost, daemon killed).
 */
export function explainDuplicates(done: readonly DoneLine[], daemons: readonly DaemonFacts[]): DuplicateExplanation[] {
  const out: DuplicateExplanation[] = [];
  for (const lines of groupByKey(done).values()) {
    if (lines.length < 2) continue;
    const causes: DuplicateCause[] = [];
    for (let i = 1; i < lines.length; i++) causes.push(causeOf(lines[i - 1]!, lines[i]!, daemons));
    out.push({ key: lines[0]!.key, count: lines.length, causes });
  }
  return out;
}

function causeOf(previous: DoneLine, current: DoneLine, daemons: readonly DaemonFacts[]): DuplicateCause {
  if (previous.messageId !== current.messageId) return "second-event";
  const facts = daemons[previous.daemon];
  if (facts?.deleteFailed.has(previous.messageId)) return "delete-failed";
  if (facts?.visibilityLost.has(previous.messageId)) return "visibility-lapsed";
  if (facts?.end === "sigkill") return "killed-before-delete";
  return "redelivered";
}

/** Counts per cause, most frequent first, e.g. "3 killed-before-delete, 1 second-event". */
export function summarizeCauses(explanations: readonly DuplicateExplanation[]): [DuplicateCause, number][] {
  const counts = new Map<DuplicateCause, number>();
  for (const e of explanations) for (const c of e.causes) counts.set(c, (counts.get(c) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1]);
}

function groupByKey(done: readonly DoneLine[]): Map<string, DoneLine[]> {
  const byKey = new Map<string, DoneLine[]>();
  for (const line of done) {
    const list = byKey.get(line.key);
    if (list) list.push(line);
    else byKey.set(line.key, [line]);
  }
  for (const list of byKey.values()) list.sort((a, b) => a.time - b.time || a.daemon - b.daemon);
  return byKey;
}
