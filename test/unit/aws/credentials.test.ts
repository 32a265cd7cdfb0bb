import type { AwsCredentialIdentity } from "@smithy/types";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  assertNoStaticCredentials,
  capReusedExpiration,
  createImdsCredentialProvider,
  findStaticCredentials,
  realExpiration,
  RETRY_AFTER_REUSE_MS,
  reuseCached,
  STATIC_CREDENTIAL_VARIABLES,
} from "../../../src/aws/credentials.js";
import { ErrorCode, ExitCode, IdentityError, StaticCredentialsError } from "../../../src/errors/fatal.js";
import { createLogger } from "../../../src/logging/logger.js";
import { HTML_ANSWER_MARKER, startMockImds, type MockImds } from "../../local/imds/index.js";

const noFiles = (): string | undefined => undefined;

describe("findStaticCredentials", () => {
  it("finds nothing on a clean instance", () => {
    expect(findStaticCredentials({ env: { PATH: "/usr/bin", AWS_REGION: "us-east-1" }, homeDir: "/var/lib/dp", readFile: noFiles })).toEqual([]);
  });

  it.each(STATIC_CREDENTIAL_VARIABLES.map((v) => [v]))("finds %s in the environment", (name) => {
    expect(findStaticCredentials({ env: { [name]: "x" }, homeDir: undefined, readFile: noFiles })).toEqual([
      `environment variable ${name}`,
    ]);
  });

  it("ignores empty variables (an unset line in an EnvironmentFile)", () => {
    expect(findStaticCredentials({ env: { AWS_ACCESS_KEY_ID: "" }, homeDir: undefined, readFile: noFiles })).toEqual([]);
  });

  it("finds a credentials file in the service user's home", () => {
    const readFile = (p: string) => (p === "/home/svc/.aws/credentials" ? "[default]\n" : undefined);
    expect(findStaticCredentials({ env: {}, homeDir: "/home/svc", readFile })).toEqual(["file /home/svc/.aws/credentials"]);
  });

  it("finds credential settings in ~/.aws/config and AWS_CONFIG_FILE, but not harmless settings", () => {
    const files: Record<string, string> = {
      "/home/svc/.aws/config": "[default]\nregion = us-east-1\n",
      "/etc/aws.conf": "[profile x]\ncredential_process = /bin/give-me-keys\n",
    };
    const readFile = (p: string) => files[p];
    expect(findStaticCredentials({ env: { AWS_CONFIG_FILE: "/etc/aws.conf" }, homeDir: "/home/svc", readFile })).toEqual([
      "setting credential_process in /etc/aws.conf",
    ]);
  });

  it("refuses with exit 77 and explains why and how to fix", () => {
    let caught: unknown;
    try {
      assertNoStaticCredentials({ env: { AWS_ACCESS_KEY_ID: "AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY: "x" }, homeDir: undefined, readFile: noFiles });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(StaticCredentialsError);
    const err = caught as StaticCredentialsError;
    expect(err.exitCode).toBe(ExitCode.noPerm);
    expect(err.found).toEqual(["environment variable AWS_ACCESS_KEY_ID", "environment variable AWS_SECRET_ACCESS_KEY"]);
    expect(err.message).toMatch(/vulnerability the role replaces/);
    expect(err.message).toMatch(/Fix: remove them/);
    expect(err.message).not.toContain("AKIAEXAMPLE");
  });
});

describe("capReusedExpiration", () => {
  const now = Date.parse("2026-11-29T12:00:00Z");
  const creds = (accessKeyId: string, minutes: number, extra: object = {}) => ({
    accessKeyId,
    secretAccessKey: "s",
    sessionToken: "t",
    expiration: new Date(now + minutes * 60_000),
    ...extra,
  });

  it("leaves fresh credentials alone", () => {
    const c = creds("ASIANEW", 360);
    expect(capReusedExpiration(c, "ASIAOLD", now)).toBe(c);
  });

  it("makes reused keys (static stability during an IMDS outage) due for a retry within 30 s", () => {
    const capped = capReusedExpiration(creds("ASIAOLD", 8), "ASIAOLD", now);
    expect(capped.expiration?.getTime()).toBe(now + 300_000 + RETRY_AFTER_REUSE_MS);
  });

  it("caps credentials the provider marked as extended, even on first sight", () => {
    const capped = capReusedExpiration(creds("ASIAOLD", 9, { originalExpiration: new Date(now - 60_000) }), undefined, now);
    expect(capped.expiration?.getTime()).toBe(now + 330_000);
  });

  it("never extends an expiry that is already sooner", () => {
    const c = creds("ASIAOLD", 2);
    expect(capReusedExpiration(c, "ASIAOLD", now)).toBe(c);
  });
});

describe("reuseCached / realExpiration", () => {
  const now = Date.parse("2026-11-29T12:00:00Z");
  const creds = { accessKeyId: "ASIA1", secretAccessKey: "s", sessionToken: "t", expiration: new Date(now + 120_000) };

  it("hands the cached keys out again, due for another IMDS attempt within 30 s, keeping the real expiry", () => {
    const reused = reuseCached(creds, now);
    expect(reused.accessKeyId).toBe("ASIA1");
    expect(reused.expiration?.getTime()).toBe(now + 300_000 + RETRY_AFTER_REUSE_MS);
    expect(realExpiration(reused)).toEqual({ expiration: creds.expiration, extended: true });
    // Reused again: still the first real expiry.
    expect(realExpiration(reuseCached(reused, now + 60_000)).expiration).toEqual(creds.expiration);
  });

  it("leaves keys alone that outlive the retry window", () => {
    const long = { ...creds, expiration: new Date(now + 3_600_000) };
    expect(reuseCached(long, now)).toBe(long);
    expect(realExpiration(long)).toEqual({ expiration: long.expiration, extended: false });
  });
});

describe("createImdsCredentialProvider: unusable answers from IMDS", () => {
  const t0 = Date.parse("2026-11-29T12:00:00Z");
  let lines: Record<string, unknown>[];
  let raw: string;
  const log = () =>
    createLogger({
      level: "debug",
      destination: {
        write: (line: string) => {
          raw += line;
          lines.push(JSON.parse(line) as Record<string, unknown>);
        },
      },
    });
  beforeEach(() => {
    lines = [];
    raw = "";
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(t0);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A source the test switches: usable keys expiring in `minutes`, or keys with an Invalid Date (a bad Expiration). */
  const source = () => {
    const state = { n: 0, bad: false, minutes: 4, calls: 0 };
    const fetch = async (): Promise<AwsCredentialIdentity> => {
      state.calls += 1;
      if (state.bad) return { accessKeyId: "ASIABAD", secretAccessKey: "bad-secret", sessionToken: "t", expiration: new Date("9999-99-99T99:99:99Z") };
      return { accessKeyId: `ASIAGOOD${state.n}`, secretAccessKey: "s", sessionToken: "t", expiration: new Date(Date.now() + state.minutes * 60_000) };
    };
    return { state, fetch };
  };

  it("at start (nothing cached), a bad Expiration is a typed temporary error (75), not a crash nor 'STS rejected'", async () => {
    const { state, fetch } = source();
    state.bad = true;
    const provider = createImdsCredentialProvider({ timeoutMs: 1_000, maxRetries: 0, log: log(), source: fetch });
    const err = await provider().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IdentityError);
    expect((err as IdentityError).code).toBe(ErrorCode.imdsCredentialsInvalid);
    expect((err as IdentityError).exitCode).toBe(ExitCode.tempFail);
    expect((err as Error).message).toMatch(/^IMDS answered the role's credentials with an Expiration that is not a date/);
    // Asked again on the next call: IMDS may have recovered.
    state.bad = false;
    await expect(provider()).resolves.toMatchObject({ accessKeyId: "ASIAGOOD0" });
  });

  it("at start, the provider's SyntaxError becomes the typed error, without the answer", async () => {
    const fetch = async (): Promise<AwsCredentialIdentity> => JSON.parse(`<html>${HTML_ANSWER_MARKER}</html>`) as never;
    const provider = createImdsCredentialProvider({ timeoutMs: 1_000, maxRetries: 0, log: log(), source: fetch });
    const err = await provider().catch((e: unknown) => e);
    expect((err as IdentityError).code).toBe(ErrorCode.imdsCredentialsInvalid);
    expect((err as Error).message).not.toContain(HTML_ANSWER_MARKER.slice(0, 4));
  });

  it("while running, a bad Expiration keeps the cached keys (like an outage), asks again within 30 s, then takes new ones", async () => {
    const { state, fetch } = source();
    const provider = createImdsCredentialProvider({ timeoutMs: 1_000, maxRetries: 0, log: log(), source: fetch });
    const first = await provider();
    expect(first.accessKeyId).toBe("ASIAGOOD0");

    state.bad = true;
    const callsBefore = state.calls;
    // The cached keys expire within 5 minutes, so the SDK's cache asks again on the next call.
    const during = await provider();
    expect(state.calls).toBe(callsBefore + 1);
    expect(during.accessKeyId).toBe("ASIAGOOD0");
    expect(during.secretAccessKey).toBe("s");
    expect(realExpiration(during).expiration).toEqual(first.expiration);
    expect(during.expiration?.getTime()).toBe(t0 + 300_000 + RETRY_AFTER_REUSE_MS);
    const warning = lines.find((l) => l["msg"] === "IMDS answered unusable credentials; keeping the cached ones and asking again soon");
    expect(warning).toMatchObject({ level: "warn", problem: "an Expiration that is not a date", retryInMs: RETRY_AFTER_REUSE_MS });
    expect(raw).not.toContain("bad-secret");
    expect(raw).not.toContain("ASIABAD");

    // Not asked again before the retry is due; asked after it, and new keys are taken once IMDS is well again.
    await provider();
    expect(state.calls).toBe(callsBefore + 1);
    state.bad = false;
    state.n = 1;
    state.minutes = 360;
    vi.setSystemTime(t0 + RETRY_AFTER_REUSE_MS + 1_000);
    const after = await provider();
    expect(after.accessKeyId).toBe("ASIAGOOD1");
    expect(lines.filter((l) => l["msg"] === "credentials fetched from IMDS")).toHaveLength(2);
  });
});

describe("createImdsCredentialProvider with the SDK's provider and the mock IMDS", () => {
  let imds: MockImds | undefined;
  let savedEndpoint: string | undefined;
  beforeEach(() => {
    savedEndpoint = process.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"];
  });
  afterEach(async () => {
    vi.useRealTimers();
    await imds?.close();
    imds = undefined;
    if (savedEndpoint === undefined) delete process.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"];
    else process.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = savedEndpoint;
  });

  const start = async (lifetimeMs: number) => {
    let n = 0;
    imds = await startMockImds({
      instanceId: "i-0123456789abcdef0",
      accountId: "123456789012",
      region: "us-east-1",
      availabilityZone: "us-east-1a",
      roleName: "EC2DocumentProcessorRole",
      refreshBeforeExpirySeconds: 300,
      issueCredentials: () => {
        n += 1;
        return { AccessKeyId: `ASIAMOCK${n}`, SecretAccessKey: `mock-secret-${n}`, Token: `mock-token-${n}`, Expiration: new Date(Date.now() + lifetimeMs) };
      },
    });
    // The SDK's provider reads the endpoint from the environment on every call.
    process.env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = imds.url;
    return imds;
  };

  it.each(["html", "truncated", "bad-expiration"] as const)("at start, %s: the typed temporary error (75), nothing of the answer logged", async (answer) => {
    const m = await start(6 * 3_600_000);
    m.setCredentialsAnswer(answer);
    let raw = "";
    const log = createLogger({ level: "debug", destination: { write: (line: string) => void (raw += line) } });
    const err = await createImdsCredentialProvider({ timeoutMs: 1_000, maxRetries: 1, log })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IdentityError);
    expect((err as IdentityError).exitCode).toBe(ExitCode.tempFail);
    expect((err as Error).message).toMatch(/^IMDS answered the role's credentials with /);
    for (const secret of ["mock-secret", "mock-token", "<!DOCTYPE", HTML_ANSWER_MARKER]) {
      expect((err as Error).message).not.toContain(secret);
      expect(raw).not.toContain(secret);
    }
  });

  it("while running, an HTML answer: the SDK keeps the cached keys, and its warning does not quote the page", async () => {
    // 301 s, then 2 s later: the cached keys are due for a refresh (the SDK refreshes within 5 minutes of expiry).
    const m = await start(301_000);
    const lines: Record<string, unknown>[] = [];
    let raw = "";
    const log = createLogger({
      level: "debug",
      destination: {
        write: (line: string) => {
          raw += line;
          lines.push(JSON.parse(line) as Record<string, unknown>);
        },
      },
    });
    vi.useFakeTimers({ toFake: ["Date"] });
    const provider = createImdsCredentialProvider({ timeoutMs: 1_000, maxRetries: 0, log });
    const first = await provider();
    m.setCredentialsAnswer("html");
    vi.setSystemTime(Date.now() + 2_000);
    const during = await provider();
    vi.useRealTimers();
    expect(during.accessKeyId).toBe(first.accessKeyId);
    const warnings = lines.filter((l) => l["msg"] === "IMDS credential provider warning");
    expect(JSON.stringify(warnings)).toContain("SyntaxError: the IMDS answer is not valid JSON (content not logged)");
    expect(raw).not.toContain("<!DOCTYPE");
    expect(raw).not.toContain(HTML_ANSWER_MARKER);
  });
});
