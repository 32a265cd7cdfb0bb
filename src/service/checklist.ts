/**
 * How `check` runs its steps, apart from what they check: in order, one line each (✓ passed, ✗ failed or skipped
 * because an earlier step did not provide what it needs, – not checked), then "N of M completed", and the exit code
 * of the first failure. Knows nothing of AWS, so the order and the skipping are tested with plain steps.
 */
import { ExitCode, exitCodeFor } from "../errors/fatal.js";
import { errorMessage } from "../errors/message.js";

/** A passed check's detail, or a failure's reason and the exit code it stands for (default 1). */
export type Verdict = { ok: true; detail: string } | { ok: false; reason: string; exitCode?: number };

/** A step that deliberately did not check (no --source-key, or nothing harmless to probe): neither ✓ nor a failure. */
export class NotChecked {
  constructor(readonly reason: string) {}
}

export interface CheckStep {
  name: string;
  /** The ✓ line's detail, or NotChecked; throws to fail (need() to skip, verdict() for a judged failure). */
  run: () => Promise<string | NotChecked>;
}

class Skipped extends Error {}

class CheckFailed extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** Skips this step: "✗ <name>: skipped: needs <what>" (an earlier step did not provide it). */
export function skip(what: string): never {
  throw new Skipped(`skipped: needs ${what}`);
}

/** What an earlier step provides, or a skip of this step. */
export function need<T>(value: T | undefined, what: string): T {
  return value === undefined ? skip(what) : value;
}

/** A judged result: the ✓ detail, or a failure with the verdict's exit code. */
export function verdict(v: Verdict): string {
  if (!v.ok) throw new CheckFailed(v.reason, v.exitCode ?? ExitCode.failed);
  return v.detail;
}

/** Typed errors keep their exit code (77 identity, 78 config, 75 unreachable); anything else is 1. */
function failureExitCode(err: unknown): number {
  if (err instanceof CheckFailed) return err.exitCode;
  const code = exitCodeFor(err);
  return code === ExitCode.software ? ExitCode.failed : code;
}

/** Runs every step in order, writes its line, and returns the first failure's exit code (0 when none failed). */
export async function runChecklist(steps: readonly CheckStep[], out: (line: string) => void): Promise<number> {
  let passed = 0;
  let firstFailure: number | undefined;
  for (const step of steps) {
    try {
      const result = await step.run();
      if (result instanceof NotChecked) {
        out(`– ${step.name}: ${result.reason}`);
        continue;
      }
      passed++;
      out(`✓ ${step.name}: ${result}`);
    } catch (err) {
      if (err instanceof Skipped) {
        out(`✗ ${step.name}: ${err.message}`);
        continue;
      }
      // The daemon's messages speak of refusing to start; here the same finding is a failed check.
      const reason = errorMessage(err).replace(/^refusing to start: (the caller is )?/, "").replace(/\n/g, "\n    ");
      out(`✗ ${step.name}: ${reason}`);
      firstFailure ??= failureExitCode(err);
    }
  }
  out(`${passed} of ${steps.length} completed`);
  // A check that was not run (reading, without --source-key) is not completed, but it is not a failure either.
  return firstFailure ?? ExitCode.ok;
}
