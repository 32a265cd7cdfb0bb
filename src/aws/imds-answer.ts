/**
 * Judging what IMDS answered for the role's credentials, and classifying the credential provider's failures. Pure.
 *
 * An answer that cannot be parsed (an HTML page from something in front of IMDS, JSON cut short, an Expiration that
 * is not a date) is IMDS's passing problem, not a wrong identity: it is retried, and reported as temporary. The
 * answer holds a secret, so it is described (content type, first character's class, length), never quoted: V8's
 * own JSON.parse messages quote the text, so they are never shown either.
 */
import type { AwsCredentialIdentity } from "@smithy/types";
import { DocProcessorError, ErrorCode, IdentityError } from "../errors/fatal.js";

/** The fields @smithy/credential-provider-imds requires to be strings (its isImdsCredentials). */
const REQUIRED_FIELDS = ["AccessKeyId", "SecretAccessKey", "Token", "Expiration"] as const;

export type CredentialsAnswerVerdict = { ok: true } | { ok: false; problem: string };

/** Whether a credentials body from IMDS is usable, and if not, what is wrong with it in words that quote nothing. */
export function judgeCredentialsAnswer(body: string): CredentialsAnswerVerdict {
  const trimmed = body.trim();
  if (trimmed === "") return bad("an empty body");
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return bad(trimmed.startsWith("{") ? "JSON that is cut short or broken" : "something that is not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return bad("JSON that is not an object");
  const fields = value as Record<string, unknown>;
  const code = fields["Code"];
  if (code !== undefined && code !== "Success") {
    // IMDS's own status word (e.g. AssumeRoleUnauthorizedAccess) is not a secret; anything else is not shown.
    const shown = typeof code === "string" && /^[A-Za-z]{1,64}$/.test(code) ? `"${code}"` : "an unexpected value";
    return bad(`JSON whose Code is ${shown}, not "Success"`);
  }
  const missing = REQUIRED_FIELDS.filter((f) => typeof fields[f] !== "string");
  if (missing.length > 0) return bad(`JSON without ${missing.join(", ")} (as strings)`);
  if (fields["AccessKeyId"] === "" || fields["SecretAccessKey"] === "") return bad("JSON with an empty AccessKeyId or SecretAccessKey");
  const expiration = fields["Expiration"] as string;
  if (Number.isNaN(Date.parse(expiration))) {
    return bad(`JSON whose Expiration is not a date (${expiration.length} characters)`);
  }
  return { ok: true };
}

function bad(problem: string): CredentialsAnswerVerdict {
  return { ok: false, problem };
}

/**
 * What IMDS sent, without its content: "content-type text/html, 1234 bytes, first character '<' (markup, such as an
 * HTML page)". `bytes` is the length received; `complete` false when the body was cut off at a size limit.
 */
export function describeAnswer(answer: { body: string; contentType: string | undefined; bytes: number; complete?: boolean }): string {
  const size = answer.complete === false ? `at least ${answer.bytes} bytes (not read further)` : `${answer.bytes} bytes`;
  return `content-type ${mediaType(answer.contentType)}, ${size}, ${firstCharacterClass(answer.body)}`;
}

/** The same without a content type (what the SDK's request function keeps): "1234 bytes, first character ...". */
export function describeBody(body: string): string {
  return `${Buffer.byteLength(body)} bytes, ${firstCharacterClass(body)}`;
}

/** The media type without parameters, or a word for a missing or odd header (the header is not trusted text). */
function mediaType(header: string | undefined): string {
  if (header === undefined || header.trim() === "") return "missing";
  const m = /^\s*([A-Za-z0-9!#$&^_.+-]{1,40}\/[A-Za-z0-9!#$&^_.+-]{1,60})\s*(?:;|$)/.exec(header);
  return m?.[1]?.toLowerCase() ?? "unreadable";
}

const SHOWN = new Map([
  ["<", "'<' (markup, such as an HTML page)"],
  ["{", "'{' (a JSON object)"],
  ["[", "'[' (a JSON array)"],
  ['"', "'\"' (a JSON string)"],
]);

/** The class of the first non-blank character: structural characters by name, anything else only by its kind. */
export function firstCharacterClass(body: string): string {
  const first = /\S/u.exec(body)?.[0];
  if (first === undefined) return body === "" ? "empty" : "only whitespace";
  const lead = body.length > 0 && /^\s/u.test(body) ? "after whitespace, " : "";
  const shown = SHOWN.get(first);
  const kind =
    shown !== undefined
      ? `first character ${shown}`
      : /[A-Za-z]/.test(first)
        ? "first character a letter (plain text)"
        : /[0-9-]/.test(first)
          ? "first character a digit or '-' (a number)"
          : first === "\uFFFD" || first.codePointAt(0)! < 0x20 || first === "\u007F"
            ? "first character a control or undecodable byte (binary data)"
            : first.codePointAt(0)! > 0x7f
              ? "first character non-ASCII"
              : "first character ASCII punctuation";
  return lead + kind;
}

/** Why credentials the provider returned cannot be used (never their content), or undefined when they can. */
export function unusableCredentials(creds: AwsCredentialIdentity): string | undefined {
  const notADate = (d: unknown): boolean => d !== undefined && !(d instanceof Date && Number.isFinite(d.getTime()));
  const original = (creds as { originalExpiration?: unknown }).originalExpiration;
  // The provider turns an unparseable Expiration into an Invalid Date, which every expiry check then treats as
  // "never expires"; a later outage copies it into originalExpiration.
  if (notADate(creds.expiration) || notADate(original)) return "an Expiration that is not a date";
  if (typeof creds.accessKeyId !== "string" || creds.accessKeyId === "") return "no AccessKeyId";
  if (typeof creds.secretAccessKey !== "string" || creds.secretAccessKey === "") return "no SecretAccessKey";
  return undefined;
}

/** What an operator needs to know about an unusable answer, wherever it is reported. */
export const UNUSABLE_ANSWER_ADVICE =
  "This is temporary as far as the daemon can tell (exit 75: systemd starts it again). If it persists, something " +
  "other than IMDS may be answering on the metadata address (a proxy, a firewall rule or an agent in front of " +
  "169.254.169.254).";

/** The typed error for an unusable credentials answer (exit 75). Carries no cause: its message may quote the answer. */
export function credentialsAnswerError(problem: string): IdentityError {
  return new IdentityError(
    ErrorCode.imdsCredentialsInvalid,
    `IMDS answered the role's credentials with ${problem}; STS was not asked.\n${UNUSABLE_ANSWER_ADVICE}`,
  );
}

/**
 * The credential provider's failure, when it means IMDS answered something unparseable: a SyntaxError from its
 * JSON.parse, or its CredentialsProviderError for JSON without the credential fields (the only CredentialsProviderError
 * fromInstanceMetadata throws under its own name; the class is compared by name because the SDK's CommonJS copy and
 * an ESM import of @smithy/core would be two different classes). Undefined for anything else.
 */
export function asCredentialsAnswerError(err: unknown): IdentityError | undefined {
  if (err instanceof DocProcessorError) {
    return err.code === ErrorCode.imdsCredentialsInvalid && err instanceof IdentityError ? err : undefined;
  }
  if (err instanceof SyntaxError) return credentialsAnswerError("something that is not JSON (or JSON cut short)");
  if (typeof err !== "object" || err === null) return undefined;
  const { name, statusCode } = err as { name?: unknown; statusCode?: unknown };
  if (name === "CredentialsProviderError" && statusCode === undefined) {
    return credentialsAnswerError(`JSON without ${REQUIRED_FIELDS.join(", ")} (as strings)`);
  }
  return undefined;
}

/**
 * One argument of the provider's log calls, as text safe to log: a SyntaxError's message quotes the answer it could
 * not parse, so only its kind is kept.
 */
export function safeProviderLogArgument(arg: unknown): string {
  if (arg instanceof SyntaxError) return "SyntaxError: the IMDS answer is not valid JSON (content not logged)";
  if (arg instanceof Error) return `${arg.name}: ${arg.message}`;
  return String(arg);
}
