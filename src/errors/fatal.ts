/**
 * Process-fatal errors: what ends a command, with a stable code each, and the process exit code (sysexits.h values)
 * for every code, so systemd can tell a wrong identity or config (never restart) from a passing outage (restart).
 * Per-document failures are another taxonomy (document.ts): they never end the process.
 */

/** Every exit code of the CLI; documented in the README. */
export const ExitCode = {
  ok: 0,
  /** `check`: a check failed; `process`: a document failed. */
  failed: 1,
  /** EX_USAGE: unknown command or bad arguments. */
  usage: 64,
  /** EX_SOFTWARE: an unexpected error (a bug); systemd restarts. */
  software: 70,
  /**
   * EX_TEMPFAIL: IMDS or STS unreachable (or IMDS answering garbage) at start, or a second signal during the drain;
   * systemd restarts, it may pass next time.
   */
  tempFail: 75,
  /** EX_NOPERM: static credentials present, the caller is not the expected role on this instance, or it may not consume the queue. */
  noPerm: 77,
  /** EX_CONFIG: the configuration is invalid. */
  config: 78,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Codes of the errors that end a command; each maps to one exit code. */
export const ErrorCode = {
  configInvalid: "CONFIG_INVALID",
  staticCredentials: "STATIC_CREDENTIALS_PRESENT",
  identityMismatch: "IDENTITY_MISMATCH",
  imdsUnavailable: "IMDS_UNAVAILABLE",
  stsUnavailable: "STS_UNAVAILABLE",
  processorLoad: "PROCESSOR_LOAD_FAILED",
  /** IMDS answered the role's credentials with something unusable (HTML, cut-short JSON, a bad Expiration). */
  imdsCredentialsInvalid: "IMDS_CREDENTIALS_INVALID",
  /** The role may not consume the queue (denied, or a queue it cannot see): proven before READY. */
  queueAccessDenied: "QUEUE_ACCESS_DENIED",
  /** SQS did not answer the start-up queue probe (network, 5xx, throttling). */
  queueUnavailable: "QUEUE_UNAVAILABLE",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const exitCodeOf: Record<ErrorCode, ExitCode> = {
  CONFIG_INVALID: ExitCode.config,
  PROCESSOR_LOAD_FAILED: ExitCode.config,
  STATIC_CREDENTIALS_PRESENT: ExitCode.noPerm,
  IDENTITY_MISMATCH: ExitCode.noPerm,
  QUEUE_ACCESS_DENIED: ExitCode.noPerm,
  IMDS_UNAVAILABLE: ExitCode.tempFail,
  STS_UNAVAILABLE: ExitCode.tempFail,
  IMDS_CREDENTIALS_INVALID: ExitCode.tempFail,
  QUEUE_UNAVAILABLE: ExitCode.tempFail,
};

export class DocProcessorError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }

  get exitCode(): ExitCode {
    return exitCodeOf[this.code];
  }
}

/** Exit code for anything thrown out of a command: a typed error's own, else 70 (a bug). */
export function exitCodeFor(err: unknown): ExitCode {
  return err instanceof DocProcessorError ? err.exitCode : ExitCode.software;
}

/** One problem in the configuration: the key (dotted path), the bad value and what is wrong. */
export interface ConfigProblem {
  key: string;
  message: string;
  value?: unknown;
}

export class ConfigError extends DocProcessorError {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[], source: string) {
    const lines = problems.map((p) => {
      const shown = p.value === undefined ? "" : ` (got ${JSON.stringify(p.value)})`;
      return `  - ${p.key}: ${p.message}${shown}`;
    });
    super(
      ErrorCode.configInvalid,
      `invalid configuration (${source}), ${problems.length} problem(s):\n${lines.join("\n")}`,
    );
    this.problems = problems;
  }
}

export class StaticCredentialsError extends DocProcessorError {
  readonly found: readonly string[];

  constructor(found: readonly string[], message: string) {
    super(ErrorCode.staticCredentials, message);
    this.found = found;
  }
}

export class IdentityError extends DocProcessorError {
  constructor(
    code:
      | typeof ErrorCode.identityMismatch
      | typeof ErrorCode.imdsUnavailable
      | typeof ErrorCode.stsUnavailable
      | typeof ErrorCode.imdsCredentialsInvalid,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** The start-up proof that the role can consume the queue failed: denied (77) or SQS unreachable (75). */
export class QueueAccessError extends DocProcessorError {
  constructor(
    code: typeof ErrorCode.queueAccessDenied | typeof ErrorCode.queueUnavailable,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** A configured processor could not be loaded (exit 78: a configuration problem, not worth restarting). */
export class ProcessorLoadError extends DocProcessorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.processorLoad, message, options);
  }
}
