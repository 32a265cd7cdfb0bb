/**
 * Typed errors with stable codes. The CLI maps each code to a process exit code (sysexits.h values), so
 * systemd can tell a wrong identity or config (never restart) from a passing outage (restart).
 */

/** Exit codes of the daemon; documented in the README. */
export const ExitCode = {
  ok: 0,
  /** EX_SOFTWARE: an unexpected error (a bug); systemd restarts. */
  software: 70,
  /** EX_TEMPFAIL: IMDS or STS unreachable (or IMDS answering garbage) at start; systemd restarts, it may pass next time. */
  tempFail: 75,
  /** EX_NOPERM: static credentials present, the caller is not the expected role on this instance, or it may not consume the queue. */
  noPerm: 77,
  /** EX_CONFIG: the configuration is invalid. */
  config: 78,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const ErrorCode = {
  configInvalid: "CONFIG_INVALID",
  staticCredentials: "STATIC_CREDENTIALS_PRESENT",
  identityMismatch: "IDENTITY_MISMATCH",
  imdsUnavailable: "IMDS_UNAVAILABLE",
  stsUnavailable: "STS_UNAVAILABLE",
  processorLoad: "PROCESSOR_LOAD_FAILED",
  sourceMissingOrForbidden: "SOURCE_MISSING_OR_FORBIDDEN",
  sourceSuperseded: "SOURCE_SUPERSEDED",
  sourceReadFailed: "SOURCE_READ_FAILED",
  objectTooLarge: "OBJECT_TOO_LARGE",
  processorFailed: "PROCESSOR_FAILED",
  sinkWriteFailed: "SINK_WRITE_FAILED",
  aborted: "ABORTED",
  internal: "INTERNAL",
  /** IMDS answered the role's credentials with something unusable (HTML, cut-short JSON, a bad Expiration). */
  imdsCredentialsInvalid: "IMDS_CREDENTIALS_INVALID",
  /** prefix + source key + suffix is over S3's 1,024-byte key limit: the output can never be written. */
  outputKeyTooLong: "OUTPUT_KEY_TOO_LONG",
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
  IMDS_UNAVAILABLE: ExitCode.tempFail,
  STS_UNAVAILABLE: ExitCode.tempFail,
  SOURCE_MISSING_OR_FORBIDDEN: ExitCode.software,
  SOURCE_SUPERSEDED: ExitCode.software,
  SOURCE_READ_FAILED: ExitCode.software,
  OBJECT_TOO_LARGE: ExitCode.software,
  PROCESSOR_FAILED: ExitCode.software,
  SINK_WRITE_FAILED: ExitCode.software,
  ABORTED: ExitCode.software,
  INTERNAL: ExitCode.software,
  IMDS_CREDENTIALS_INVALID: ExitCode.tempFail,
  OUTPUT_KEY_TOO_LONG: ExitCode.software,
  QUEUE_ACCESS_DENIED: ExitCode.noPerm,
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

/** Exit code for anything thrown out of a command. */
export function exitCodeFor(err: unknown): ExitCode {
  return err instanceof DocProcessorError ? err.exitCode : ExitCode.software;
}

/** The AWS SDK error name and HTTP status, when `err` came from the SDK. */
export function awsErrorInfo(err: unknown): { name: string; status: number | undefined } {
  if (typeof err === "object" && err !== null) {
    const e = err as { name?: unknown; $metadata?: { httpStatusCode?: unknown } };
    const status = e.$metadata?.httpStatusCode;
    return {
      name: typeof e.name === "string" ? e.name : "Error",
      status: typeof status === "number" ? status : undefined,
    };
  }
  return { name: "Error", status: undefined };
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
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
