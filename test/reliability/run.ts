// `npm run test:reliability [-- --full] [-- --only kill-9,faults] [-- --seed N]`: runs the reliability scenarios one
// after another against fresh local stand-ins and the built daemon. Prints one line per scenario with its figures,
// indented details (duplicate causes, failures), and last, alone on its line, "N passed, M failed". Exit 1 if any
// scenario failed, 64 on a usage error. Quick mode (the default, what CI runs) takes a few minutes on 2 cores.
import "../helpers/safe-env.js";
import { parseArgs } from "node:util";
import { assertDaemonBuilt } from "../integration/helpers/daemon-harness.js";
import { createRng } from "./lib/random.js";
import { Report, scenarioLine, summaryLine, type Mode } from "./lib/report.js";
import type { Scenario } from "./lib/scenario.js";
import { credentials } from "./scenarios/credentials.scenario.js";
import { faults, faultsSdk } from "./scenarios/faults.scenario.js";
import { hostile, hostileOcr } from "./scenarios/hostile.scenario.js";
import { kill9 } from "./scenarios/kill9.scenario.js";
import { poison } from "./scenarios/poison.scenario.js";
import { sigterm } from "./scenarios/sigterm.scenario.js";

const SCENARIOS: readonly Scenario[] = [kill9, faults, faultsSdk, credentials, poison, sigterm, hostile, hostileOcr];
/** After a scenario's budget, how long its cleanup may take before the runner gives up on it. */
const CLEANUP_GRACE_MS = 30_000;

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: test/reliability/run.ts [--quick | --full] [--only NAME,...] [--seed N] [--verbose]\n` +
      `scenarios: ${SCENARIOS.map((s) => s.name).join(", ")}\n`,
  );
  process.exit(64);
}

function options(): { mode: Mode; only: Scenario[]; seed: number; verbose: boolean } {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        full: { type: "boolean", default: false },
        quick: { type: "boolean", default: false },
        only: { type: "string" },
        seed: { type: "string" },
        verbose: { type: "boolean", default: false },
      },
    }));
  } catch (err) {
    usage((err as Error).message);
  }
  if (values.full && values.quick) usage("--full and --quick exclude each other");
  const names = values.only?.split(",").map((s) => s.trim()).filter(Boolean);
  const only = names ? SCENARIOS.filter((s) => names.includes(s.name)) : [...SCENARIOS];
  const unknown = names?.filter((n) => !SCENARIOS.some((s) => s.name === n)) ?? [];
  if (unknown.length > 0) usage(`unknown scenario(s): ${unknown.join(", ")}`);
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0) usage(`--seed takes a non-negative integer (got ${values.seed})`);
  return { mode: values.full ? "full" : "quick", only, seed, verbose: values.verbose };
}

/** Runs one scenario within its budget; a throw or a timeout is a failure of that scenario, not of the run. */
async function runOne(scenario: Scenario, mode: Mode, seed: number, verbose: boolean): Promise<Report> {
  const controller = new AbortController();
  const budget = scenario.budgetMs[mode];
  const started = Date.now();
  const progress = (text: string): void => {
    if (verbose) process.stderr.write(`  [${scenario.name} ${((Date.now() - started) / 1000).toFixed(1)}s] ${text}\n`);
  };
  const run = scenario
    .run({ mode, rng: createRng(seed), signal: controller.signal, progress })
    .catch((err: unknown) => {
      const report = new Report();
      report.fail(controller.signal.aborted ? `exceeded its budget of ${budget / 1000} s` : `threw: ${(err as Error).stack ?? String(err)}`);
      return report;
    });
  let timer: NodeJS.Timeout | undefined;
  const overBudget = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, budget);
  });
  const first = await Promise.race([run, overBudget.then(() => undefined)]);
  clearTimeout(timer);
  if (first !== undefined) return first;
  // Over budget: abort its waits and give its cleanup (daemons, stand-in) a bounded time.
  controller.abort();
  let graceTimer: NodeJS.Timeout | undefined;
  const grace = new Promise<undefined>((resolve) => {
    graceTimer = setTimeout(() => resolve(undefined), CLEANUP_GRACE_MS);
  });
  const late = await Promise.race([run, grace]);
  clearTimeout(graceTimer);
  const report = late ?? new Report();
  if (!report.failures.some((f) => f.startsWith("exceeded"))) report.fail(`exceeded its budget of ${budget / 1000} s`);
  return report;
}

async function main(): Promise<number> {
  const { mode, only, seed, verbose } = options();
  assertDaemonBuilt();
  process.stdout.write(`reliability: ${mode} mode, seed ${seed}, ${only.length} scenario(s)\n`);
  let passed = 0;
  let failed = 0;
  for (const scenario of only) {
    const started = Date.now();
    // Each scenario its own seed derived from the run's, so --only replays the same scenario the same way.
    const report = await runOne(scenario, mode, (seed + (SCENARIOS.indexOf(scenario) + 1) * 7919) >>> 0, verbose);
    const lines = [scenarioLine(scenario.name, report, Date.now() - started)];
    for (const failure of report.failures) lines.push(`  ✗ ${failure}`);
    for (const detail of report.details) lines.push(`  ${detail}`);
    process.stdout.write(`${lines.join("\n")}\n`);
    if (report.failures.length === 0) passed += 1;
    else failed += 1;
  }
  process.stdout.write(`${summaryLine(passed, failed)}\n`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main();
