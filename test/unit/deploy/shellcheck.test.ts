// Every shell script the project ships or runs is shellcheck clean (issue 4's acceptance: `shellcheck scripts/*.sh`).
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { requireTool } from "../../helpers/tools.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

describe("shell scripts", () => {
  it("scripts/*.sh, scripts/dev/*.sh and .ci/run pass shellcheck", () => {
    const shellcheck = requireTool("/usr/bin/shellcheck", "apt-get install shellcheck");
    const scripts = ["scripts", "scripts/dev"].flatMap((dir) =>
      readdirSync(join(ROOT, dir))
        .filter((n) => n.endsWith(".sh"))
        .map((n) => join(ROOT, dir, n)),
    );
    expect(scripts.length).toBeGreaterThanOrEqual(6);
    const r = spawnSync(shellcheck, [...scripts, join(ROOT, ".ci", "run")], { encoding: "utf8" });
    expect({ status: r.status, findings: r.stdout }).toEqual({ status: 0, findings: "" });
  });
});
