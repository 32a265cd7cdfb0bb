// The two error taxonomies stay apart (a per-document code never becomes an exit code), every exit code the CLI
// uses is in ExitCode and in the README's table, and AWS errors read the same wherever they are described.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { awsErrorLabel, describeAwsError } from "../../../src/errors/aws.js";
import {
  BUILTIN_DOCUMENT_ERROR_CODES,
  DocumentError,
  OutcomeCode,
  OutputKeyTooLongError,
} from "../../../src/errors/document.js";
import { DocProcessorError, ErrorCode, ExitCode, exitCodeFor } from "../../../src/errors/fatal.js";

describe("error taxonomies", () => {
  it("maps every fatal code to an exit code other than 70 (70 is for bugs)", () => {
    for (const code of Object.values(ErrorCode)) {
      const exit = new DocProcessorError(code, "x").exitCode;
      expect(Object.values(ExitCode)).toContain(exit);
      expect(exit).not.toBe(ExitCode.software);
    }
  });

  it("keeps per-document codes out of the fatal codes, and a per-document error thrown out of a command is a bug (70)", () => {
    const fatal = new Set<string>(Object.values(ErrorCode));
    expect(Object.values(OutcomeCode).filter((c) => fatal.has(c))).toEqual([]);
    expect(exitCodeFor(new DocumentError(OutcomeCode.aborted, "shutting down"))).toBe(ExitCode.software);
    expect(exitCodeFor(new OutputKeyTooLongError("k", 2000, 1024))).toBe(ExitCode.software);
    expect(exitCodeFor(new Error("anything"))).toBe(ExitCode.software);
  });

  it("lists in ExitCode exactly the exit codes of the README's table", () => {
    const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
    const table = readme.slice(readme.indexOf("**Exit codes**"));
    const rows = [...table.slice(0, table.indexOf("\n\n", table.indexOf("| code |"))).matchAll(/^\| (\d+) \|/gm)];
    const documented = rows.map((m) => Number(m[1]));
    expect(documented.length).toBeGreaterThan(0);
    expect([...Object.values(ExitCode)].sort((a, b) => a - b)).toEqual(documented.sort((a, b) => a - b));
  });
});

describe("document error codes", () => {
  it("lists every built-in code, upper snake case, in the README's error-record table (TOO_MANY_PAGES included)", () => {
    const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
    const table = readme.slice(readme.indexOf("**Error records.**"));
    const rows = [...table.slice(0, table.indexOf("\n\n", table.indexOf("| code |"))).matchAll(/^\| `([A-Z_]+)` \|/gm)];
    const documented = rows.map((m) => m[1]);
    expect(BUILTIN_DOCUMENT_ERROR_CODES).toContain("TOO_MANY_PAGES");
    for (const code of BUILTIN_DOCUMENT_ERROR_CODES) expect(code).toMatch(/^[A-Z][A-Z0-9_]{0,63}$/);
    expect([...documented].sort()).toEqual([...BUILTIN_DOCUMENT_ERROR_CODES].sort());
  });
});

describe("describeAwsError", () => {
  const sdkError = (name: string, status: number | undefined, message: string): Error =>
    Object.assign(new Error(message), { name }, status === undefined ? {} : { $metadata: { httpStatusCode: status } });

  it("names the error, its HTTP status and its text", () => {
    expect(describeAwsError(sdkError("AccessDenied", 403, "Access Denied"))).toBe("AccessDenied 403: Access Denied");
    expect(awsErrorLabel(sdkError("AccessDenied", 403, "Access Denied"))).toBe("AccessDenied 403");
  });

  it("leaves the status out when no HTTP answer came, and copes with anything thrown", () => {
    expect(describeAwsError(sdkError("TimeoutError", undefined, "socket timed out"))).toBe("TimeoutError: socket timed out");
    expect(describeAwsError("plain string")).toBe("Error: plain string");
    expect(awsErrorLabel(undefined)).toBe("Error");
  });
});
