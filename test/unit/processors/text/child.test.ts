// How the extraction child is started and read, without starting one (host.test.ts starts real ones).
import { describe, expect, it } from "vitest";
import { childArguments, lastWords, packageRoot, parsePrivateRss } from "../../../../src/processors/builtin/text/child.js";

const MiB = 1024 * 1024;

describe("packageRoot", () => {
  it("is the first directory above the entry whose node_modules holds the parsers", () => {
    const has = new Set(["/opt/doc-processor/releases/0.1.0/node_modules/pdfjs-dist/package.json"]);
    const exists = (p: string): boolean => has.has(p);
    expect(packageRoot("/opt/doc-processor/releases/0.1.0/dist/processors/builtin/text/extract-child.js", exists)).toBe(
      "/opt/doc-processor/releases/0.1.0",
    );
    expect(() => packageRoot("/elsewhere/extract-child.js", exists)).toThrow(/no node_modules with pdfjs-dist above/);
  });
});

describe("childArguments", () => {
  it("caps the heap below the ceiling and lets the child read its package only", () => {
    const args = childArguments({ entry: "/r/dist/x.js", memoryLimitBytes: 256 * MiB, semiSpaceMiB: 2 }, "/r");
    expect(args).toEqual([
      "--max-old-space-size=192",
      "--max-semi-space-size=2",
      "--expose-gc",
      "--disallow-code-generation-from-strings",
      "--permission",
      "--allow-fs-read=/r",
      "--allow-fs-write=/proc/self/oom_score_adj",
      "--allow-addons",
      "--disable-warning=SecurityWarning",
      "/r/dist/x.js",
    ]);
    expect(childArguments({ entry: "/x.js", memoryLimitBytes: 32 * MiB, semiSpaceMiB: 2 }, "/")[0]).toBe("--max-old-space-size=16");
  });

  it("uses only flags this Node knows", () => {
    const flags = childArguments({ entry: "/x.js", memoryLimitBytes: 256 * MiB, semiSpaceMiB: 2 }, "/")
      .filter((a) => a.startsWith("--"))
      .map((a) => a.split("=")[0]!);
    for (const flag of flags) expect(process.allowedNodeEnvironmentFlags.has(flag), flag).toBe(true);
  });
});

describe("parsePrivateRss", () => {
  it("reads RssAnon + RssShmem in bytes (not RssFile, shared with the daemon), and nothing from a zombie", () => {
    const status = "Name:\tnode\nVmRSS:\t  120000 kB\nRssAnon:\t   52000 kB\nRssFile:\t   67000 kB\nRssShmem:\t    1000 kB\n";
    expect(parsePrivateRss(status)).toBe(53000 * 1024);
    expect(parsePrivateRss("Name:\tnode\nState:\tZ (zombie)\n")).toBeUndefined();
  });
});

describe("lastWords", () => {
  it("finds why a Node process died in its stderr", () => {
    const oom = [
      "<--- Last few GCs --->",
      "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
      "----- Native stack trace -----",
      " 1: 0xb8 node::OOMErrorHandler",
    ].join("\n");
    expect(lastWords(oom)).toBe("FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory");
    const missing = [
      "node:internal/modules/esm/resolve:275",
      "    throw new ERR_MODULE_NOT_FOUND(",
      "Error [ERR_MODULE_NOT_FOUND]: Cannot find module '/x.js'",
      "    at finalizeResolution (node:internal/modules/esm/resolve:275:11)",
      "",
      "Node.js v22.23.5",
    ].join("\n");
    expect(lastWords(missing)).toBe("Error [ERR_MODULE_NOT_FOUND]: Cannot find module '/x.js'");
    expect(lastWords("just a line\n")).toBe("just a line");
  });
});
