/**
 * The commands (run | check | process <key>...): argv in, exit code out; the one place errors become exit codes.
 * No wiring here: `run` and `process` are composed in app.ts, `check` is service/check.ts. src/cli.ts is the
 * executable entry that calls main().
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { processKeys, runUntilStopped } from "./app.js";
import type { Env } from "./config/env.js";
import { CONFIG_PATH_ENV, DEFAULT_CONFIG_PATH } from "./config/load.js";
import { DocProcessorError, ExitCode, exitCodeFor } from "./errors/fatal.js";
import { errorMessage } from "./errors/message.js";
import type { Logger } from "./logging/logger.js";
import { ShutdownSignals } from "./service/lifecycle.js";

const HELP = `doc-processor: least-privilege S3 document processing for EC2 (IMDSv2 instance-profile credentials only)

Usage:
  doc-processor run [--config PATH]             consume the queue until SIGTERM (what systemd starts)
  doc-processor check [--config PATH] [--source-key KEY]
                                                verify the instance, its role and its permissions as a checklist
  doc-processor process [--config PATH] KEY...  process named source keys once, without the queue (backfills)
  doc-processor --help | --version

check: one line per confirmation (✓ passed, ✗ failed, – not checked), then "N of M completed": config, no static
  keys, IMDSv2 enforced, role attached, caller is the expected role, temporary credentials, read from source, write
  to output, write to source denied, another service denied, queue access. Reading is checked only with
  --source-key KEY, an object that exists (without s3:ListBucket a missing key and a forbidden one look alike);
  without it that line is "not checked" and does not fail the command. The one write is a small probe object,
  <outputPrefix>.doc-processor-check/<instance-id>.txt in the output bucket, overwritten on every run.
  Exit 0 when no check failed, else the first failure's code (below).

Config: --config PATH, else $${CONFIG_PATH_ENV}, else ${DEFAULT_CONFIG_PATH}; DOC_PROCESSOR_* variables override it.
Exit codes: 0 ok, 1 some documents failed (process) or a check failed (check), 64 usage,
            70 internal error, 75 IMDS/STS/SQS unreachable (temporary), 77 static keys, wrong identity or a queue
            the role may not consume, 78 bad config.
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

export async function main(argv: string[], env: Env, log: Logger): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: "string", short: "c" },
        "source-key": { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "v" },
      },
    });
  } catch (err) {
    process.stderr.write(`${errorMessage(err)}\n\n${HELP}`);
    return ExitCode.usage;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(HELP);
    return ExitCode.ok;
  }
  if (values.version) {
    process.stdout.write(`${version()}\n`);
    return ExitCode.ok;
  }
  const [command, ...rest] = positionals;
  const configPath = values.config;
  const sourceKey = values["source-key"];
  if (sourceKey !== undefined && command !== "check") return usage("--source-key is an option of check");

  switch (command) {
    case "run":
      if (rest.length > 0) return usage(`run takes no arguments (got ${rest.join(" ")})`);
      return run(configPath, env, log);
    case "check": {
      if (rest.length > 0) return usage(`check takes no arguments (got ${rest.join(" ")})`);
      // Loaded for this command only: check uses the SDK's S3 client, which `run` on the lean transport never loads.
      const { runChecks } = await import("./service/check.js");
      return runChecks({ configPath, sourceKey, env, log, out: (line) => process.stdout.write(`${line}\n`) });
    }
    case "process":
      if (rest.length === 0) return usage("process needs at least one source key");
      return processKeys(configPath, rest, env, log);
    case undefined:
      return usage("a command is required");
    default:
      return usage(`unknown command "${command}"`);
  }
}

function usage(message: string): number {
  process.stderr.write(`doc-processor: ${message}\n\n${HELP}`);
  return ExitCode.usage;
}

/** `run`: signals are watched from the very start, so a stop during start-up is handled too. */
async function run(configPath: string | undefined, env: Env, log: Logger): Promise<number> {
  const signals = new ShutdownSignals(process, log, (code) => process.exit(code));
  try {
    return await runUntilStopped(configPath, env, log, signals);
  } finally {
    signals.dispose();
  }
}

/** Logs a fatal error as JSON (journal) and as plain text on stderr (what `systemctl status` shows best). */
export function reportFatal(err: unknown, log: Logger): number {
  const code = exitCodeFor(err);
  if (err instanceof DocProcessorError) {
    log.fatal({ code: err.code, exitCode: code }, err.message);
  } else {
    log.fatal({ err, exitCode: code }, "unexpected error");
  }
  process.stderr.write(`doc-processor: ${errorMessage(err)}\n`);
  return code;
}
