// scripts/user-data.sh in a sandbox root: stub dnf, useradd, getent, chown, runuser, curl, systemctl and journalctl
// come first on PATH and record their calls; dnf "installs" node-22 (the Node running the tests). npm, npm-22 and npx
// are stubs that record and fail: the release carries its node_modules, and the bootstrap must never call npm.
// Every path the script writes is under ROOT; the real /etc, /opt and services are never touched.
// test/unit/deploy/package.test.ts installs a real `npm run package` tarball the same way.
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { requireTool } from "../../helpers/tools.js";

const SCRIPTS = fileURLToPath(new URL("../../../scripts/", import.meta.url));
const USER_DATA = join(SCRIPTS, "user-data.sh");
const STUBS = fileURLToPath(new URL("./fixtures/stubs/", import.meta.url));
const PACKAGES = fileURLToPath(new URL("./fixtures/packages/", import.meta.url));

const PARAMS = {
  RELEASE_URL: "https://github.com/example/doc-processor/releases/download/v1.2.3/doc-processor-1.2.3.tgz",
  QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/doc-processor-events",
  SOURCE_BUCKET: "cloudboxio-lab-source-123456789012",
  OUTPUT_BUCKET: "cloudboxio-lab-output-123456789012",
};

interface Release {
  version: string;
  path: string;
  sha256: string;
  unit: string;
}

interface ReleaseOptions {
  unitDescription?: string;
  /** false: a release without node_modules (an `npm pack` tarball, not `npm run package`). */
  nodeModules?: boolean;
  /** The body of dist/cli.js; by default it prints the version for --version. */
  cli?: string;
}

interface Sandbox {
  dir: string;
  root: string;
  state: string;
  bin: string;
}

interface Run {
  code: number;
  output: string;
}

const sandboxes: string[] = [];
let sandboxSerial = 0;
afterEach(() => {
  for (const dir of sandboxes.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function sandbox(): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), "dp-user-data-"));
  sandboxes.push(dir);
  const sb = { dir, root: join(dir, "root"), state: join(dir, "state"), bin: join(dir, "bin") };
  for (const d of [sb.root, sb.state, sb.bin]) mkdirSync(d);
  for (const name of readdirSync(STUBS)) {
    copyFileSync(join(STUBS, name), join(sb.bin, name));
    chmodSync(join(sb.bin, name), 0o755);
  }
  return sb;
}

/**
 * A small tarball with the layout of scripts/package.sh's (package/..., production node_modules included); its
 * dist/cli.js answers --version like the real one. Each call builds a new tarball (a new name for a new variant).
 */
function release(sb: Sandbox, version: string, options: ReleaseOptions = {}): Release {
  const { unitDescription = "doc-processor", nodeModules = true } = options;
  const cli =
    options.cli ??
    `if (process.argv.includes("--version")) console.log(${JSON.stringify(version)});\n` +
      `else console.log("doc-processor ${version}");\n`;
  const tag = `${version}-${sandboxSerial++}`;
  const src = join(sb.dir, `src-${tag}`, "package");
  mkdirSync(join(src, "dist"), { recursive: true });
  mkdirSync(join(src, "systemd"));
  writeFileSync(join(src, "package.json"), JSON.stringify({ name: "doc-processor", version }));
  writeFileSync(join(src, "npm-shrinkwrap.json"), JSON.stringify({ name: "doc-processor", version, lockfileVersion: 3 }));
  writeFileSync(join(src, "dist", "cli.js"), cli);
  if (nodeModules) {
    mkdirSync(join(src, "node_modules", "stub-dependency"), { recursive: true });
    writeFileSync(
      join(src, "node_modules", "stub-dependency", "package.json"),
      JSON.stringify({ name: "stub-dependency", version: "1.0.0" }),
    );
  }
  const unit = `[Unit]\nDescription=${unitDescription}\n\n[Service]\nExecStart=/usr/bin/node-22 /opt/doc-processor/current/dist/cli.js run\n`;
  writeFileSync(join(src, "systemd", "doc-processor.service"), unit);
  const path = join(sb.dir, `doc-processor-${tag}.tgz`);
  execFileSync("tar", ["-czf", path, "-C", join(src, ".."), "package"]);
  return { version, path, sha256: createHash("sha256").update(readFileSync(path)).digest("hex"), unit };
}

function runUserData(sb: Sandbox, rel: Release, env: Record<string, string> = {}): Promise<Run> {
  const childEnv = {
    PATH: `${sb.bin}:/usr/bin:/bin`,
    ROOT: sb.root,
    STUB_STATE: sb.state,
    STUB_PACKAGES: PACKAGES,
    STUB_NODE: process.execPath,
    STUB_CURL_FILE: rel.path,
    ...PARAMS,
    RELEASE_SHA256: rel.sha256,
    ...env,
  };
  return new Promise((resolve) => {
    execFile("bash", [USER_DATA], { env: childEnv, timeout: 15_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, output: stdout + stderr });
    });
  });
}

/** The recorded calls since the last take, each as [command, ...argv]; the log is emptied. */
function takeCalls(sb: Sandbox): string[][] {
  const log = join(sb.state, "calls.log");
  if (!existsSync(log)) return [];
  const lines = readFileSync(log, "utf8").split("\n").filter(Boolean);
  rmSync(log);
  return lines.map((line) => line.split("\t"));
}

const commands = (calls: string[][], name: string) => calls.filter((c) => c[0] === name).map((c) => c.slice(1));
// Every call of a stub npm, npm-22 or npx (each records, then fails): the bootstrap must make none.
const npmCalls = (calls: string[][]) => calls.filter((c) => ["npm", "npm-22", "npx"].includes(c[0] ?? ""));
// systemctl calls that change something (is-enabled/is-active only look).
const systemdChanges = (calls: string[][]) =>
  commands(calls, "systemctl")
    .map((argv) => argv.filter((a) => !a.startsWith("-")).join(" "))
    .filter((c) => !c.startsWith("is-"));

/** Everything installed under ROOT: type, mode, content hash, link target, inode and mtime (not the log). */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const key = `${rel}/${name}`;
      if (key === "/var/log" || key === "/var/tmp") continue;
      const st = lstatSync(path);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out[key] = `link ${readlinkSync(path)} ino=${st.ino} mtime=${st.mtimeMs}`;
      else if (st.isDirectory()) {
        out[key] = `dir ${mode}`;
        walk(path, key);
      } else {
        const hash = createHash("sha256").update(readFileSync(path)).digest("hex");
        out[key] = `file ${mode} ${hash} ino=${st.ino} mtime=${st.mtimeMs}`;
      }
    }
  };
  walk(root, "");
  return out;
}

const opt = (sb: Sandbox, ...p: string[]) => join(sb.root, "opt", "doc-processor", ...p);
const configPath = (sb: Sandbox) => join(sb.root, "etc", "doc-processor", "config.json");
const unitPath = (sb: Sandbox) => join(sb.root, "etc", "systemd", "system", "doc-processor.service");
const modeOf = (path: string) => lstatSync(path).mode & 0o777;

describe("scripts/user-data.sh", { timeout: 60_000 }, () => {
  it("installs Node 22 (no npm), the user, the verified release, the config and the unit, then starts the service", async () => {
    const sb = sandbox();
    const rel = release(sb, "1.2.3");

    const r = await runUserData(sb, rel);

    expect(r.output).toContain("done: doc-processor 1.2.3 running");
    expect(r.code).toBe(0);
    const calls = takeCalls(sb);
    expect(commands(calls, "dnf")).toEqual([["install", "-y", "nodejs22"]]);
    const [useradd] = commands(calls, "useradd");
    expect(useradd).toEqual(expect.arrayContaining(["--system", "--no-create-home", "--shell", "/sbin/nologin"]));
    expect(useradd?.at(-1)).toBe("doc-processor");
    const [curl] = commands(calls, "curl");
    expect(curl).toEqual(expect.arrayContaining(["--fail", "--location", "--retry", PARAMS.RELEASE_URL]));
    expect(npmCalls(calls)).toEqual([]);
    // The smoke check: the staged release's CLI answers --version on node-22 before anything switches to it.
    const smoke = commands(calls, "node-22").filter((argv) => argv.at(-1) === "--version");
    expect(smoke).toHaveLength(1);
    expect(smoke[0]?.[0]?.startsWith(opt(sb, "releases", ".staging."))).toBe(true);
    expect(smoke[0]?.[0]?.endsWith("/dist/cli.js")).toBe(true);
    expect(r.output).toContain("smoke check passed: node-22 dist/cli.js --version = 1.2.3");
    // ... run as the service user, never as root.
    expect(commands(calls, "runuser")).toEqual([["-u", "doc-processor", "--", "node-22", smoke[0]![0]!, "--version"]]);
    expect(systemdChanges(calls)).toEqual(["daemon-reload", "enable doc-processor", "start doc-processor"]);

    // The release, switched to through a relative symlink, with the dependencies it carried and its checksum marker.
    expect(readlinkSync(opt(sb, "current"))).toBe("releases/1.2.3");
    expect(readFileSync(opt(sb, "current", "dist", "cli.js"), "utf8")).toContain("1.2.3");
    expect(existsSync(opt(sb, "current", "node_modules", "stub-dependency", "package.json"))).toBe(true);
    expect(readFileSync(opt(sb, "releases", "1.2.3", ".release-sha256"), "utf8").trim()).toBe(rel.sha256);
    expect(readdirSync(opt(sb, "releases"))).toEqual(["1.2.3"]); // no staging leftovers
    expect(readdirSync(join(sb.root, "var", "tmp"))).toEqual([]);

    // The config: the parameters as JSON, readable by root and the service's group only.
    expect(JSON.parse(readFileSync(configPath(sb), "utf8"))).toEqual({
      queueUrl: PARAMS.QUEUE_URL,
      sourceBucket: PARAMS.SOURCE_BUCKET,
      outputBucket: PARAMS.OUTPUT_BUCKET,
      expectedRoleName: "EC2DocumentProcessorRole",
    });
    expect(modeOf(configPath(sb))).toBe(0o640);
    expect(modeOf(join(sb.root, "etc", "doc-processor"))).toBe(0o750);
    // Given to the group before it is renamed into place (chown is a stub: the sandbox has no such group).
    expect(commands(calls, "chown")).toContainEqual(["root:doc-processor", `${configPath(sb)}.new`]);

    // The unit, copied from the installed release.
    expect(readFileSync(unitPath(sb), "utf8")).toBe(rel.unit);
    expect(modeOf(unitPath(sb))).toBe(0o644);

    expect(readFileSync(join(sb.root, "var", "log", "doc-processor-bootstrap.log"), "utf8")).toContain(
      "checksum verified",
    );
  });

  it("changes nothing on a second run with the same parameters: no download, no rewrite, no restart", async () => {
    const sb = sandbox();
    const rel = release(sb, "1.2.3");
    expect((await runUserData(sb, rel)).code).toBe(0);
    takeCalls(sb);
    const before = snapshot(sb.root);

    const r = await runUserData(sb, rel);

    expect(r.output).toContain("nothing changed");
    expect(r.code).toBe(0);
    const calls = takeCalls(sb);
    for (const name of ["dnf", "useradd", "curl"]) expect(commands(calls, name)).toEqual([]);
    expect(npmCalls(calls)).toEqual([]);
    expect(systemdChanges(calls)).toEqual([]);
    expect(snapshot(sb.root)).toEqual(before);
  });

  it("refuses a release whose checksum does not match and leaves the installed one as it was", async () => {
    const sb = sandbox();
    const installed = release(sb, "1.2.3");
    expect((await runUserData(sb, installed)).code).toBe(0);
    takeCalls(sb);
    const before = snapshot(sb.root);
    const tampered = { ...release(sb, "1.3.0"), sha256: createHash("sha256").update("another file").digest("hex") };

    const r = await runUserData(sb, tampered);

    expect(r.code).not.toBe(0);
    expect(r.output).toContain(`checksum mismatch for ${PARAMS.RELEASE_URL}: expected ${tampered.sha256}`);
    const calls = takeCalls(sb);
    expect(commands(calls, "curl")).toHaveLength(1);
    expect(npmCalls(calls)).toEqual([]);
    expect(systemdChanges(calls)).toEqual([]);
    expect(snapshot(sb.root)).toEqual(before);
    expect(readlinkSync(opt(sb, "current"))).toBe("releases/1.2.3");
  });

  it("installs nothing on a fresh instance when the checksum does not match", async () => {
    const sb = sandbox();
    const rel = release(sb, "1.2.3");

    const r = await runUserData(sb, rel, { RELEASE_SHA256: "0".repeat(64) });

    expect(r.code).not.toBe(0);
    expect(r.output).toContain("checksum mismatch");
    expect(existsSync(opt(sb))).toBe(false);
    expect(existsSync(configPath(sb))).toBe(false);
    expect(existsSync(unitPath(sb))).toBe(false);
    expect(systemdChanges(takeCalls(sb))).toEqual([]);
  });

  it("installs a new release next to the old one, switches to it and restarts; the old one is reused by checksum", async () => {
    const sb = sandbox();
    const v1 = release(sb, "1.2.3");
    const v2 = release(sb, "1.3.0", { unitDescription: "doc-processor 1.3.0" });
    expect((await runUserData(sb, v1)).code).toBe(0);
    takeCalls(sb);

    const upgrade = await runUserData(sb, v2);

    expect(upgrade.code).toBe(0);
    expect(readlinkSync(opt(sb, "current"))).toBe("releases/1.3.0");
    expect(readdirSync(opt(sb, "releases")).sort()).toEqual(["1.2.3", "1.3.0"]);
    expect(readFileSync(unitPath(sb), "utf8")).toBe(v2.unit);
    let calls = takeCalls(sb);
    expect(commands(calls, "curl")).toHaveLength(1);
    expect(npmCalls(calls)).toEqual([]);
    expect(systemdChanges(calls)).toEqual(["daemon-reload", "restart doc-processor"]);

    // Rolling back to 1.2.3: its directory carries that checksum, so nothing is downloaded.
    const rollback = await runUserData(sb, v1, { STUB_CURL_FILE: "" });

    expect(rollback.code).toBe(0);
    expect(readlinkSync(opt(sb, "current"))).toBe("releases/1.2.3");
    calls = takeCalls(sb);
    expect(commands(calls, "curl")).toEqual([]);
    expect(npmCalls(calls)).toEqual([]);
    expect(systemdChanges(calls)).toEqual(["daemon-reload", "restart doc-processor"]);
  });

  it("rewrites a changed config as JSON, whatever its characters, and restarts without a download", async () => {
    const sb = sandbox();
    const rel = release(sb, "1.2.3");
    expect((await runUserData(sb, rel)).code).toBe(0);
    takeCalls(sb);
    const prefix = `processed/"quoted" \\ $(touch pwned) 'x'/`;

    const r = await runUserData(sb, rel, {
      OUTPUT_PREFIX: prefix,
      EXPECTED_ROLE_NAME: "OtherProcessorRole",
      EXPECTED_ACCOUNT_ID: "123456789012",
    });

    expect(r.code).toBe(0);
    expect(JSON.parse(readFileSync(configPath(sb), "utf8"))).toEqual({
      queueUrl: PARAMS.QUEUE_URL,
      sourceBucket: PARAMS.SOURCE_BUCKET,
      outputBucket: PARAMS.OUTPUT_BUCKET,
      outputPrefix: prefix,
      expectedRoleName: "OtherProcessorRole",
      expectedAccountId: "123456789012",
    });
    expect(modeOf(configPath(sb))).toBe(0o640);
    const calls = takeCalls(sb);
    expect(commands(calls, "curl")).toEqual([]);
    expect(systemdChanges(calls)).toEqual(["restart doc-processor"]);
    expect(existsSync(join(sb.root, "pwned"))).toBe(false);
  });

  it("refuses a release without node_modules and installs no dependencies itself", async () => {
    const sb = sandbox();
    const rel = release(sb, "1.2.3", { nodeModules: false });

    const r = await runUserData(sb, rel);

    expect(r.code).toBe(1);
    expect(r.output).toContain("the release has no node_modules: build it with npm run package");
    const calls = takeCalls(sb);
    expect(npmCalls(calls)).toEqual([]);
    expect(systemdChanges(calls)).toEqual([]);
    expect(readdirSync(opt(sb, "releases"))).toEqual([]); // the staging directory is gone
    expect(existsSync(opt(sb, "current"))).toBe(false);
    expect(existsSync(configPath(sb))).toBe(false);
    expect(r.output).not.toContain("done:");
  });

  it("refuses a release whose dist/cli.js --version fails or prints another version, keeping the installed one", async () => {
    const sb = sandbox();
    const installed = release(sb, "1.2.3");
    expect((await runUserData(sb, installed)).code).toBe(0);
    takeCalls(sb);
    const before = snapshot(sb.root);
    const broken = release(sb, "1.3.0", { cli: `require("missing-dependency");\n` });
    const mislabeled = release(sb, "1.3.0", { cli: `console.log("1.2.9");\n` });

    const r1 = await runUserData(sb, broken);
    const r2 = await runUserData(sb, mislabeled);

    expect(r1.code).toBe(1);
    expect(r1.output).toContain("node-22 dist/cli.js --version failed for release 1.3.0");
    expect(r1.output).toContain("missing-dependency"); // node's own error, in the log
    expect(r2.code).toBe(1);
    expect(r2.output).toContain("release 1.3.0: dist/cli.js --version printed '1.2.9'");
    const calls = takeCalls(sb);
    expect(commands(calls, "curl")).toHaveLength(2);
    expect(npmCalls(calls)).toEqual([]);
    expect(systemdChanges(calls)).toEqual([]);
    expect(snapshot(sb.root)).toEqual(before);
    expect(readlinkSync(opt(sb, "current"))).toBe("releases/1.2.3");
  });

  it("exits non-zero with the unit's status and the journal's last lines when the service does not start", async () => {
    const sb = sandbox();
    const rel = release(sb, "1.2.3");

    const r = await runUserData(sb, rel, { STUB_START_FAIL: "1" });

    expect(r.code).toBe(1);
    expect(r.output).toContain("systemctl start doc-processor failed");
    expect(r.output).toContain("status=77");
    expect(r.output).toContain("identity check failed: the caller is assumed-role/SomeOtherRole");
    const calls = takeCalls(sb);
    expect(commands(calls, "journalctl")).toHaveLength(1);
    expect(r.output).not.toContain("done:");
  });

  it("refuses missing or invalid parameters, all reported at once, before touching anything", async () => {
    const sb = sandbox();
    const rel = release(sb, "1.2.3");

    const r = await runUserData(sb, rel, {
      QUEUE_URL: "",
      SOURCE_BUCKET: "arn:aws:s3:::cloudboxio-lab-source",
      EXPECTED_ROLE_NAME: "arn:aws:iam::123456789012:role/EC2DocumentProcessorRole",
      RELEASE_SHA256: "abc",
      RELEASE_URL: "http://example.com/doc-processor.tgz",
    });

    expect(r.code).toBe(64);
    for (const name of ["RELEASE_URL", "RELEASE_SHA256", "QUEUE_URL", "SOURCE_BUCKET", "EXPECTED_ROLE_NAME"]) {
      expect(r.output).toContain(`invalid parameter: ${name}`);
    }
    expect(r.output).not.toContain("invalid parameter: OUTPUT_BUCKET");
    expect(takeCalls(sb)).toEqual([]);
    expect(existsSync(opt(sb))).toBe(false);
  });

  it("is shellcheck clean, with the stubs", () => {
    const shellcheck = requireTool("/usr/bin/shellcheck", "apt-get install shellcheck");
    const files = [
      USER_DATA,
      join(SCRIPTS, "package.sh"),
      ...readdirSync(STUBS).map((n) => join(STUBS, n)),
      ...readdirSync(PACKAGES).map((n) => join(PACKAGES, n)),
    ];
    const r = spawnSync(shellcheck, ["-s", "bash", ...files], { encoding: "utf8" });
    expect({ status: r.status, findings: r.stdout }).toEqual({ status: 0, findings: "" });
  });
});
