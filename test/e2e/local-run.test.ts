// The README's first command, `npm run local -- --once` (and its --ocr form), as a user runs it: the stand-in, the
// built daemon as a child process, the samples. main.ts checks every output itself and exits non-zero on any
// shortfall; this test holds it to that and to the summary it prints, so the command cannot rot unnoticed.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { childEnv } from "../helpers/cli.js";

const MAIN = fileURLToPath(new URL("../local/main.ts", import.meta.url));
const REPO = fileURLToPath(new URL("../../", import.meta.url));

interface Summary {
  uploaded: number;
  processed: number;
  outputs: number;
  refused: number;
  errorRecords: number;
  failed: number;
  denied: number;
  daemonExit: number | string;
}

function runLocal(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // Every endpoint defaults to a closed loopback port (childEnv): main.ts points the daemon at its stand-in itself.
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, "--once", ...args], {
      cwd: REPO,
      env: childEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function summaryOf(stdout: string): Summary {
  const line = stdout.split("\n").findLast((l) => l.startsWith("{"));
  if (line === undefined) throw new Error(`no summary line in:\n${stdout}`);
  return JSON.parse(line) as Summary;
}

describe("npm run local -- --once", () => {
  it("processes every sample, refuses the broken ones with error records, nothing failed or denied", async () => {
    const r = await runLocal([]);
    const summary = summaryOf(r.stdout);
    expect({ code: r.code, summary }, r.stdout + r.stderr).toMatchObject({
      code: 0,
      summary: { failed: 0, denied: 0, daemonExit: 0 },
    });
    expect(summary.uploaded).toBeGreaterThan(5);
    expect(summary.processed + summary.refused).toBe(summary.uploaded);
    expect(summary.outputs).toBe(summary.processed);
    expect(summary.errorRecords).toBe(summary.refused);
    expect(summary.refused).toBeGreaterThan(0);
  }, 180_000);

  it("--ocr writes text for the scanned samples (their words checked by main.ts)", async () => {
    const r = await runLocal(["--ocr"]);
    const summary = summaryOf(r.stdout);
    expect({ code: r.code, summary }, r.stdout + r.stderr).toMatchObject({
      code: 0,
      summary: { failed: 0, denied: 0, daemonExit: 0 },
    });
    expect(summary.outputs).toBe(summary.processed);
    expect(summary.errorRecords).toBe(summary.refused);
    // The scanned letter and the receipt photo are among the processed: main.ts prints their text (to stderr).
    expect(r.stderr).toMatch(/scanned letter\.pdf: ".*Dear Ms Almeida/);
    expect(r.stderr).toMatch(/receipt photo\.jpg: ".*CORNER BAKERY/);
  }, 300_000);
});
