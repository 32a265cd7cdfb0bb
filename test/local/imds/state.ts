// The mock's two pieces of time-dependent state: session tokens and the role's rotating credentials. No I/O; the
// clock is passed in so tests can expire things without waiting.
import { randomBytes } from "node:crypto";
import type { ImdsCredentials } from "./types.js";

export const MAX_TOKEN_TTL_SECONDS = 21_600;
/** Real IMDS publishes new credentials at least this long before the old ones expire. */
export const MIN_REMAINING_SECONDS = 300;
export const DEFAULT_REFRESH_BEFORE_EXPIRY_SECONDS = 900;

/** Parses the TTL header: a plain integer 1..21600, anything else is null (400 to the client). */
export function parseTokenTtl(header: string | string[] | undefined): number | null {
  if (typeof header !== "string" || !/^\d{1,5}$/.test(header)) return null;
  const ttl = Number(header);
  return ttl >= 1 && ttl <= MAX_TOKEN_TTL_SECONDS ? ttl : null;
}

export class TokenStore {
  readonly #expiries = new Map<string, number>();

  issue(ttlSeconds: number, now: number): string {
    if (this.#expiries.size > 1000) this.#prune(now);
    const token = randomBytes(42).toString("base64");
    this.#expiries.set(token, now + ttlSeconds * 1000);
    return token;
  }

  isValid(token: string, now: number): boolean {
    const expiresAt = this.#expiries.get(token);
    return expiresAt !== undefined && now < expiresAt;
  }

  #prune(now: number): void {
    for (const [token, expiresAt] of this.#expiries) if (expiresAt <= now) this.#expiries.delete(token);
  }
}

interface Issued {
  roleName: string;
  credentials: ImdsCredentials;
  issuedAt: number;
}

function checkIssued(roleName: string, credentials: ImdsCredentials): void {
  for (const field of ["AccessKeyId", "SecretAccessKey", "Token"] as const) {
    if (typeof credentials[field] !== "string") throw new Error(`issueCredentials(${roleName}) returned no ${field}`);
    // Long-term user keys (AKIA…) have no token: real IMDS never serves them, but the stand-in can play an impostor
    // that does (the "caller is an IAM user" refusal), with an empty Token as the SDK then signs without one.
    const tokenless = field === "Token" && credentials.AccessKeyId.startsWith("AKIA");
    if (credentials[field] === "" && !tokenless) throw new Error(`issueCredentials(${roleName}) returned no ${field}`);
  }
  if (!(credentials.Expiration instanceof Date) || Number.isNaN(credentials.Expiration.getTime())) {
    throw new Error(`issueCredentials(${roleName}) returned an invalid Expiration`);
  }
}

/**
 * Serves the same credentials until they come within `refreshBeforeMs` of expiry (or a rotation is forced), then asks
 * the issuer for new ones, like IMDS does. Credentials with less than five minutes left are never handed out: an
 * issuer that returns such short-lived ones makes the request fail loudly (a stand-in bug, not a case to emulate).
 */
export class CredentialRotation {
  #current: Issued | undefined;
  #forced = false;

  constructor(
    private readonly issue: (roleName: string) => ImdsCredentials,
    private readonly refreshBeforeMs: number,
  ) {}

  rotateNow(): void {
    this.#forced = true;
  }

  get(roleName: string, now: number): Issued {
    const current = this.#current;
    if (current && current.roleName === roleName && !this.#forced && this.#remaining(current, now) >= this.refreshBeforeMs) {
      return current;
    }
    const credentials = this.issue(roleName);
    checkIssued(roleName, credentials);
    const issued = { roleName, credentials, issuedAt: now };
    if (this.#remaining(issued, now) < MIN_REMAINING_SECONDS * 1000) {
      throw new Error(
        `issueCredentials(${roleName}) returned credentials expiring at ${credentials.Expiration.toISOString()}, ` +
          `less than ${MIN_REMAINING_SECONDS} s away; IMDS never serves those`,
      );
    }
    this.#current = issued;
    this.#forced = false;
    return issued;
  }

  /** When the credentials now served were issued, if any (iam/info's LastUpdated). */
  lastUpdated(): number | undefined {
    return this.#current?.issuedAt;
  }

  #remaining(issued: Issued, now: number): number {
    // Judged on the expiry as served (whole seconds), so what the client sees is what was checked.
    return Math.floor(issued.credentials.Expiration.getTime() / 1000) * 1000 - now;
  }
}
