// Public shapes of the mock IMDS. The gateway issues the credentials (it must later verify signatures made with them),
// so the mock only decides when to ask for new ones.

export interface ImdsCredentials {
  AccessKeyId: string;
  SecretAccessKey: string;
  Token: string;
  Expiration: Date;
}

export interface ImdsRequestLogEntry {
  method: string;
  /** The request target as sent, query included. */
  path: string;
  /** HTTP status answered; 0 when the mock deliberately gave no answer ("hang" mode). */
  status: number;
  /** Whether an X-aws-ec2-metadata-token header was sent (valid or not). */
  tokenPresent: boolean;
}

export interface MockImdsOptions {
  /** Default 0 (ephemeral). Always bound to 127.0.0.1. */
  port?: number;
  instanceId: string;
  accountId: string;
  region: string;
  availabilityZone: string;
  /** null = no instance profile (404 on the role listing). */
  roleName: string | null;
  /** Called to get credentials for the attached role; the gateway issues them (it knows how to verify them). */
  issueCredentials: (roleName: string) => ImdsCredentials;
  /** Serve new credentials once the current ones have less than this left (default 15 min; never < 5 min). */
  refreshBeforeExpirySeconds?: number;
  log?: (entry: ImdsRequestLogEntry) => void;
  /** Clock in epoch milliseconds (default Date.now); tests move it to expire tokens and credentials without waiting. */
  now?: () => number;
}

export type ImdsMode =
  | "normal"
  | "refuse" /* close connections */
  | "hang" /* accept, never answer */
  | "error-500"
  | "v1-only" /* token PUT 403 (IMDSv2 unsupported); GETs without token served */;

/**
 * What the credentials path serves: the real answer, or a broken one (an HTML error page from something in front of
 * IMDS, the JSON cut off in the middle of the session token, or an Expiration that is not a date).
 */
export type ImdsCredentialsAnswer = "valid" | "html" | "truncated" | "bad-expiration";

export interface MockImds {
  /** "http://127.0.0.1:PORT/" WITH trailing slash (the AWS CLI needs it). */
  readonly url: string;
  setMode(mode: ImdsMode): void;
  /** Change the attached role (e.g. "another role"); the next credentials request gets the new role's. */
  setRole(roleName: string | null): void;
  setInstanceId(id: string): void;
  /** Change what the role's credentials path answers (status 200 either way); "valid" is the real answer. */
  setCredentialsAnswer(answer: ImdsCredentialsAnswer): void;
  /** Force new credentials on the next request. */
  rotateNow(): void;
  readonly requests: ReadonlyArray<ImdsRequestLogEntry>;
  /** Stops listening and ends every open connection, hanging requests included. */
  close(): Promise<void>;
}
