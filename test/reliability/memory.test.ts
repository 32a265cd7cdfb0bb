// The hostile scenario's memory limit: a verdict of "no OOM kill" is only worth something if the limit really kills a
// process over it, counts the kill, follows the process's children, and leaves nothing behind.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createMemoryLimit, processTree, RssSampler, type MemoryLimit } from "./lib/memory.js";
import { parseSystemdSize, readUnitLimits } from "./lib/unit.js";

const MiB = 1024 * 1024;

/** A Node process that touches `mib` MiB, 8 MiB at a time, then waits; `fork` makes it do so in a child of its own. */
function hog(mib: number, fork = false): ChildProcess {
  const grow =
    "const a=[];let n=0;const t=setInterval(()=>{" +
    `if(n>=${mib}){clearInterval(t);return}a.push(Buffer.alloc(8<<20,1));n+=8},5);setTimeout(()=>{},60000);`;
  const forked = `require("child_process").spawn(process.execPath,["-e",${JSON.stringify(grow)}],{stdio:"inherit"});`;
  const code = fork ? `${forked}setTimeout(()=>{},60000);` : grow;
  return spawn(process.execPath, ["-e", code], { stdio: "ignore" });
}

const exited = (child: ChildProcess): Promise<NodeJS.Signals | number | null> =>
  new Promise((resolve) => child.once("exit", (code, signal) => resolve(signal ?? code)));

async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

async function withLimit<T>(limit: MemoryLimit, run: (limit: MemoryLimit) => Promise<T>): Promise<T> {
  try {
    return await run(limit);
  } finally {
    await limit.close();
  }
}

describe("the memory limit", () => {
  it("kills a process over it and counts one OOM kill (whichever kind this machine allows)", async () => {
    await withLimit(createMemoryLimit({ limitBytes: 96 * MiB, swapMaxBytes: 0 }), async (limit) => {
      const child = hog(256);
      limit.adopt(child.pid!);
      expect(await exited(child)).toBe("SIGKILL");
      expect(await until(() => limit.oomKills() === 1, 2_000)).toBe(true);
    });
  });

  it("leaves a process under it alone, and removes its group on close", async () => {
    const limit = createMemoryLimit({ limitBytes: 256 * MiB, swapMaxBytes: 0 });
    const group = /(\/sys\/fs\/cgroup\/\S+)/.exec(limit.description)?.[1];
    const child = hog(48);
    const exit = exited(child);
    await withLimit(limit, async () => {
      limit.adopt(child.pid!);
      const sampler = new RssSampler(() => limit.pids(), 20);
      sampler.start();
      expect(await until(() => sampler.current > 48 * MiB, 10_000)).toBe(true);
      sampler.stop();
      expect(limit.oomKills()).toBe(0);
      expect(limit.pids()).toContain(child.pid);
    });
    // close() kills what is left, and the group is gone.
    expect(await exit).toBe("SIGKILL");
    if (group !== undefined) expect(existsSync(group)).toBe(false);
  });

  it("keeps the main process's RSS apart from its children's", async () => {
    await withLimit(createMemoryLimit({ limitBytes: 512 * MiB, swapMaxBytes: 0 }), async (limit) => {
      const parent = hog(96, true);
      limit.adopt(parent.pid!);
      const sampler = new RssSampler(() => limit.pids(), 20, () => parent.pid);
      sampler.start();
      try {
        expect(await until(() => sampler.processes === 2 && sampler.current > 96 * MiB, 10_000)).toBe(true);
        const { total, main } = await sampler.median(200);
        // The parent holds no buffers of its own: the child's 96 MiB are in the total, not in the main process's.
        expect(main).toBeDefined();
        expect(total - main!).toBeGreaterThan(96 * MiB);
        expect(main!).toBeLessThan(total - 64 * MiB);
      } finally {
        sampler.stop();
      }
    });
  });

  it("watchdog: counts the children of an adopted process and kills the whole tree over the limit", async () => {
    await withLimit(createMemoryLimit({ limitBytes: 96 * MiB, only: "watchdog" }), async (limit) => {
      const parent = hog(256, true);
      const exit = exited(parent);
      limit.adopt(parent.pid!);
      expect(await exit).toBe("SIGKILL");
      expect(limit.oomKills()).toBe(1);
      expect(limit.description).toContain("watchdog");
    });
  });

  it("processTree finds descendants", async () => {
    const parent = hog(8, true);
    const exit = exited(parent);
    let tree: number[] = [];
    try {
      expect(await until(() => (tree = processTree([parent.pid!])).length === 2, 10_000)).toBe(true);
      expect(tree[0]).toBe(parent.pid);
    } finally {
      for (const pid of tree.length > 0 ? tree : [parent.pid!]) process.kill(pid, "SIGKILL");
      await exit;
    }
  });
});

describe("the unit's limits", () => {
  it("reads MemoryMax and the Node flags from the shipped unit", () => {
    const unit = readUnitLimits();
    expect(unit.memoryMaxBytes).toBe(512 * MiB);
    expect(["continue", "stop", "kill"]).toContain(unit.oomPolicy);
    expect(unit.nodeFlags.some((f) => f.startsWith("--max-old-space-size="))).toBe(true);
    expect(unit.environment["GLIBC_TUNABLES"]).toMatch(/^glibc\.malloc\.mmap_threshold=\d+$/);
  });

  it("reads a unit's memory settings, OOM policy (default stop), restart delay and Node flags", () => {
    const dir = mkdtempSync(join(tmpdir(), "dp-unit-"));
    const unit = (body: string): string => {
      const path = join(dir, `u${Math.random()}.service`);
      writeFileSync(path, `[Service]\n${body}\n`);
      return path;
    };
    try {
      const exec = "ExecStart=/usr/bin/node-22 --max-old-space-size=320 --max-semi-space-size=2 /opt/x/dist/cli.js run --config c";
      expect(readUnitLimits(unit(`${exec}\nMemoryMax=512M\nMemoryHigh=448M\nMemorySwapMax=0\nRestartSec=10s`))).toEqual({
        memoryMaxBytes: 512 * MiB,
        memoryHighBytes: 448 * MiB,
        memorySwapMaxBytes: 0,
        oomPolicy: "stop",
        restartMs: 10_000,
        nodeFlags: ["--max-old-space-size=320", "--max-semi-space-size=2"],
        environment: {},
      });
      expect(readUnitLimits(unit(`${exec}\nMemoryMax=1G\nOOMPolicy=continue`))).toMatchObject({ oomPolicy: "continue", restartMs: 100 });
      expect(readUnitLimits(unit(`${exec}\nMemoryMax=1G\nEnvironment=A=1 B=x=y\nEnvironment=C=`)).environment).toEqual({ A: "1", B: "x=y", C: "" });
      expect(() => readUnitLimits(unit(`${exec}\nMemoryMax=1G\nEnvironment="A=1 2"`))).toThrow(/unsupported Environment/);
      expect(() => readUnitLimits(unit(exec))).toThrow(/MemoryMax/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("parses systemd sizes in base 1024", () => {
    expect(parseSystemdSize("448M")).toBe(448 * MiB);
    expect(parseSystemdSize("1G")).toBe(1024 * MiB);
    expect(parseSystemdSize("infinity")).toBeUndefined();
    expect(() => parseSystemdSize("50%")).toThrow(/percentages/);
  });
});
