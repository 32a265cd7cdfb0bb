/**
 * Credentials come from the instance profile through IMDSv2, and from nowhere else. Static keys anywhere the SDK or
 * the AWS CLI would find them make the daemon refuse to start: long-lived keys on an instance are the very
 * vulnerability the role replaces.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fromInstanceMetadata } from "@smithy/credential-provider-imds";
import { doesIdentityRequireRefresh, isIdentityExpired, memoizeIdentityProvider } from "@smithy/core";
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from "@smithy/types";
import { StaticCredentialsError } from "../errors/fatal.js";
import type { Env } from "../config/env.js";
import type { Logger } from "../logging/logger.js";
import { asCredentialsAnswerError, credentialsAnswerError, safeProviderLogArgument, unusableCredentials } from "./imds-answer.js";

/** Environment variables through which the default chains (SDK, CLI) pick up credentials other than IMDS. */
export const STATIC_CREDENTIAL_VARIABLES = [
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_PROFILE",
  "AWS_DEFAULT_PROFILE",
  "AWS_SHARED_CREDENTIALS_FILE",
  "AWS_WEB_IDENTITY_TOKEN_FILE",
  "AWS_ROLE_ARN",
  "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
  "AWS_CONTAINER_CREDENTIALS_FULL_URI",
  "AWS_CONTAINER_AUTHORIZATION_TOKEN",
  "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
] as const;

// Settings in an AWS config file that make it a credential source.
const CONFIG_FILE_CREDENTIAL_SETTINGS = /^\s*(aws_access_key_id|aws_secret_access_key|aws_session_token|credential_process|credential_source|role_arn|web_identity_token_file|sso_start_url|sso_session)\s*=/m;

export interface StaticCredentialProbe {
  env: Env;
  /** The service user's home directory, if it has one. */
  homeDir: string | undefined;
  /** Returns the file's text, or undefined when it does not exist or cannot be read. */
  readFile: (path: string) => string | undefined;
}

/** Every place a static credential was found, as a human-readable list. Pure apart from `readFile`. */
export function findStaticCredentials(probe: StaticCredentialProbe): string[] {
  const found: string[] = [];
  for (const name of STATIC_CREDENTIAL_VARIABLES) {
    if ((probe.env[name] ?? "") !== "") found.push(`environment variable ${name}`);
  }
  if (probe.homeDir) {
    const credentialsFile = join(probe.homeDir, ".aws", "credentials");
    if (probe.readFile(credentialsFile) !== undefined) found.push(`file ${credentialsFile}`);
  }
  const configFiles = new Set<string>();
  if (probe.homeDir) configFiles.add(join(probe.homeDir, ".aws", "config"));
  const configFileVar = probe.env["AWS_CONFIG_FILE"];
  if (configFileVar) configFiles.add(configFileVar);
  for (const path of configFiles) {
    const text = probe.readFile(path);
    const m = text === undefined ? null : CONFIG_FILE_CREDENTIAL_SETTINGS.exec(text);
    if (m) found.push(`setting ${m[1]} in ${path}`);
  }
  return found;
}

/** `readFile` for the probe: the file's text, or undefined when it is absent or unreadable. */
export function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

export function assertNoStaticCredentials(probe: StaticCredentialProbe): void {
  const found = findStaticCredentials(probe);
  if (found.length === 0) return;
  throw new StaticCredentialsError(
    found,
    [
      `refusing to start: static AWS credentials are present (${found.join("; ")}).`,
      "This daemon takes credentials only from the instance profile role through IMDSv2. Long-lived keys on an",
      "instance survive reboots, get copied into AMIs and backups, and are hard to rotate: they are the",
      "vulnerability the role replaces.",
      "Fix: remove them (unset the variables in the unit's environment and /etc/doc-processor/, delete the",
      "service user's ~/.aws/credentials), deactivate the exposed access key in IAM, and restart the service.",
    ].join("\n"),
  );
}

/** How soon after an IMDS failure the shared cache asks IMDS again (the SDK refreshes within 5 min of expiry). */
export const RETRY_AFTER_REUSE_MS = 30_000;
const SDK_REFRESH_WINDOW_MS = 300_000;

/**
 * During an IMDS outage the provider returns the previous credentials with an expiry 5-10 minutes out ("static
 * stability"), so every cache would wait that long before asking IMDS again, even after IMDS is back and the keys
 * have expired. Reused keys therefore get an expiry that makes the caches retry IMDS within RETRY_AFTER_REUSE_MS.
 */
export function capReusedExpiration(
  creds: AwsCredentialIdentity,
  lastKeyId: string | undefined,
  now: number,
): AwsCredentialIdentity {
  const extended = (creds as { originalExpiration?: unknown }).originalExpiration !== undefined;
  if (!extended && creds.accessKeyId !== lastKeyId) return creds;
  const cap = now + SDK_REFRESH_WINDOW_MS + RETRY_AFTER_REUSE_MS;
  if (creds.expiration === undefined || creds.expiration.getTime() <= cap) return creds;
  return { ...creds, expiration: new Date(cap) };
}

/**
 * Cached credentials handed out again while IMDS answers something unusable, as the SDK does during an outage: the
 * real expiry is kept as originalExpiration, and the caches ask IMDS again within RETRY_AFTER_REUSE_MS.
 */
export function reuseCached(creds: AwsCredentialIdentity, now: number): AwsCredentialIdentity {
  const due = now + SDK_REFRESH_WINDOW_MS + RETRY_AFTER_REUSE_MS;
  if (creds.expiration === undefined || creds.expiration.getTime() >= due) return creds;
  const original = (creds as { originalExpiration?: Date }).originalExpiration ?? creds.expiration;
  return { ...creds, originalExpiration: original, expiration: new Date(due) } as AwsCredentialIdentity;
}

/**
 * When the credentials really expire. During an IMDS outage the provider (and reuseCached) stretch `expiration` so
 * the SDK keeps signing with them; the real expiry is then `originalExpiration`. `extended` says it was stretched.
 */
export function realExpiration(creds: AwsCredentialIdentity): { expiration: Date | undefined; extended: boolean } {
  const original = (creds as { originalExpiration?: unknown }).originalExpiration;
  if (original instanceof Date) return { expiration: original, extended: true };
  return { expiration: creds.expiration, extended: false };
}

export interface ImdsProviderOptions {
  timeoutMs: number;
  maxRetries: number;
  log: Logger;
  /** The raw provider; default the SDK's fromInstanceMetadata (tests pass their own). */
  source?: AwsCredentialIdentityProvider;
}

/**
 * The one credential provider every client shares. Memoized here (not only per client) so three clients make
 * one IMDS fetch per credential lifetime; IMDSv1 fallback disabled; the provider's own warnings (such as the
 * static-stability notices during an IMDS outage) go to pino instead of the console.
 *
 * An unusable answer from IMDS (not JSON, an Expiration that is not a date) is an outage like any other: with
 * credentials cached, they are kept and IMDS is asked again soon; without (at start), a typed error (exit 75).
 */
export function createImdsCredentialProvider(options: ImdsProviderOptions): AwsCredentialIdentityProvider {
  const log = options.log.child({ component: "imds-credentials" });
  // The provider logs the errors it recovers from; a SyntaxError's message would quote the credentials answer.
  const detail = (args: unknown[]) => ({ detail: args.map(safeProviderLogArgument) });
  const logger = {
    debug: (...args: unknown[]) => log.debug(detail(args), "imds provider"),
    info: (...args: unknown[]) => log.info(detail(args), "imds provider"),
    warn: (...args: unknown[]) => log.warn(detail(args), "IMDS credential provider warning"),
    error: (...args: unknown[]) => log.error(detail(args), "imds provider error"),
  };
  const fetch =
    options.source ??
    fromInstanceMetadata({
      timeout: options.timeoutMs,
      maxRetries: options.maxRetries,
      ec2MetadataV1Disabled: true,
      logger,
    });
  let lastKeyId: string | undefined;
  let lastGood: AwsCredentialIdentity | undefined;
  const logged = async (): Promise<AwsCredentialIdentity> => {
    let fetched: AwsCredentialIdentity;
    try {
      fetched = await fetch();
    } catch (err) {
      // Typed (exit 75, "IMDS answered ...") instead of a SyntaxError that would read as STS rejecting the keys.
      throw asCredentialsAnswerError(err) ?? err;
    }
    const problem = unusableCredentials(fetched);
    if (problem !== undefined) {
      if (lastGood === undefined) throw credentialsAnswerError(problem);
      const reused = reuseCached(lastGood, Date.now());
      log.warn(
        {
          problem,
          expiration: realExpiration(reused).expiration?.toISOString(),
          accessKeyIdSuffix: reused.accessKeyId.slice(-4),
          retryInMs: RETRY_AFTER_REUSE_MS,
        },
        "IMDS answered unusable credentials; keeping the cached ones and asking again soon",
      );
      lastKeyId = reused.accessKeyId;
      return reused;
    }
    lastGood = fetched;
    const creds = capReusedExpiration(fetched, lastKeyId, Date.now());
    const fields = { expiration: creds.expiration?.toISOString(), accessKeyIdSuffix: creds.accessKeyId.slice(-4) };
    // During an IMDS outage the provider hands back the previous credentials with a later expiry (static
    // stability); that is not a new fetch, so it is not logged as one.
    if (creds.accessKeyId === lastKeyId) log.debug(fields, "credentials from IMDS unchanged");
    else log.info(fields, "credentials fetched from IMDS");
    lastKeyId = creds.accessKeyId;
    return creds;
  };
  return memoizeIdentityProvider(logged, isIdentityExpired, doesIdentityRequireRefresh) as AwsCredentialIdentityProvider;
}
