// Steady-state figures of a bench contender: the whole-run figures include start-up (credentials, first sockets) and
// JIT warm-up, which a long-running daemon pays once; these leave a warm-up prefix of documents out. Also the
// conversion of CPU per document into documents per hour on a t2.micro's baseline CPU budget. Pure arithmetic, so
// test/unit/bench/steady.test.ts can check exact numbers.

/**
 * The warm-up: the first 20% of the documents, at least 20. The one-off costs (IMDS credentials, opening keep-alive
 * sockets, lazy module loads, V8 tiering up the hot path) land in the first few receive batches; 20% (40 of the quick
 * run's 200) covers them with room and leaves 80% to measure. The floor keeps a small --docs run from measuring the
 * first batches (up to 10 messages per receive, per worker) as steady.
 */
export const WARMUP_FRACTION = 0.2;
export const WARMUP_MIN_DOCUMENTS = 20;
/**
 * Fewer documents than this after the warm-up give no steady figures: /proc CPU has a 10 ms tick, so a short window
 * would measure mostly the tick's rounding.
 */
export const STEADY_MIN_DOCUMENTS = 20;

/**
 * A t2.micro earns 6 CPU credits an hour; one credit is one vCPU at 100% for a minute, so its baseline is 10% of one
 * vCPU: 6 x 60 = 360 CPU-seconds per hour that it can spend forever without running its credits down.
 */
export const T2_MICRO_CREDITS_PER_HOUR = 6;
export const T2_MICRO_BASELINE_CPU_MS_PER_HOUR = T2_MICRO_CREDITS_PER_HOUR * 60 * 1000;

/** How many of `documents` count as warm-up; null when too few would remain after it for steady figures. */
export function warmupDocuments(documents: number): number | null {
  const warmup = Math.max(WARMUP_MIN_DOCUMENTS, Math.ceil(documents * WARMUP_FRACTION));
  return documents - warmup >= STEADY_MIN_DOCUMENTS ? warmup : null;
}

/** The bench clock (ms) and the contender's CPU (ms, utime+stime of its process tree) at one moment. */
export interface Sample {
  at: number;
  cpuMs: number | undefined;
}

export interface SteadyFigures {
  /** Documents left out at the start (their finishing ends the warm-up). */
  warmupDocuments: number;
  /** Documents finished after the warm-up, up to the last one. */
  documents: number;
  seconds: number;
  docsPerSecond: number;
  /** CPU from the warm-up's last document to the last document, per document; null when /proc was unreadable. */
  cpuMsPerDoc: number | null;
  /**
   * The bench process's CPU (the stand-in, mostly) over the same window, as a share of one core: near 1, the
   * stand-in set the pace and documents/s measure it as much as the contender. Set by the bench, not here.
   */
  standInBusy?: number | null;
  /** The same CPU per document: what the stand-in costs the bench, whoever sets the pace. Set by the bench. */
  standInCpuMsPerDoc?: number | null;
}

/**
 * Figures over the window from `atWarmup` (when the warm-up-th document finished) to `atEnd` (the last document):
 * `documents - warmup` documents. Null when the window is empty or has no time.
 */
export function steadyFigures(documents: number, warmup: number, atWarmup: Sample, atEnd: Sample): SteadyFigures | null {
  const count = documents - warmup;
  const seconds = (atEnd.at - atWarmup.at) / 1000;
  if (count <= 0 || !(seconds > 0)) return null;
  const cpu = atWarmup.cpuMs !== undefined && atEnd.cpuMs !== undefined ? atEnd.cpuMs - atWarmup.cpuMs : null;
  return { warmupDocuments: warmup, documents: count, seconds, docsPerSecond: count / seconds, cpuMsPerDoc: cpu === null ? null : cpu / count };
}

/** a / b, or null when either is missing or b is not a positive number. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined || !Number.isFinite(a) || !(b > 0) || !Number.isFinite(b)) return null;
  return a / b;
}

/** Documents an hour on a t2.micro's baseline CPU budget at `cpuMsPerDoc`; null when unmeasured or zero (below a tick). */
export function t2MicroDocsPerHour(cpuMsPerDoc: number | null | undefined): number | null {
  return ratio(T2_MICRO_BASELINE_CPU_MS_PER_HOUR, cpuMsPerDoc);
}

/** `n` to two significant figures with thousands separators ("1,200,000"): the CPU figure is no more precise. */
function approx(n: number): string {
  const digits = Math.max(0, Math.floor(Math.log10(Math.abs(n))) - 1);
  const rounded = n < 1 ? Number(n.toPrecision(2)) : Math.round(n / 10 ** digits) * 10 ** digits;
  return rounded.toLocaleString("en-US");
}

/** The printed line: each contender's documents per hour on the t2.micro baseline, with the assumption stated. */
export function formatT2MicroLine(contenders: readonly { name: string; cpuMsPerDoc: number | null | undefined }[]): string {
  const each = contenders.map(({ name, cpuMsPerDoc }) => {
    const perHour = t2MicroDocsPerHour(cpuMsPerDoc);
    return `${name} ${perHour === null ? "n/a" : `~${approx(perHour)} docs/h`}`;
  });
  return (
    `t2.micro baseline (${T2_MICRO_CREDITS_PER_HOUR} credits/h = 10% of 1 vCPU = ${T2_MICRO_BASELINE_CPU_MS_PER_HOUR / 1000} CPU-s/h, ` +
    `steady CPU ms/doc, this machine's CPU): ${each.join(", ")}`
  );
}
