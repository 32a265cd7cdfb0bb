import { describe, expect, it } from "vitest";
import {
  assertNoStaticCredentials,
  capReusedExpiration,
  findStaticCredentials,
  RETRY_AFTER_REUSE_MS,
  STATIC_CREDENTIAL_VARIABLES,
} from "../../../src/aws/credentials.js";
import { ExitCode, StaticCredentialsError } from "../../../src/errors.js";

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
