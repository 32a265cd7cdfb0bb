// The extraction child process for real: time and memory limits, aborts, crashes, a child that breaks the protocol,
// and what is left afterwards (the child's pid, the daemon's own memory). The hostile documents would take seconds
// (slowPdf) or gigabytes (flateBombPdf) unchecked; the assertions are on how the run ends, on pids and on memory.
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExtractionJob } from "../../../../src/processors/builtin/text/extract.js";
import { ExtractionHost, type ExtractionHostOptions } from "../../../../src/processors/builtin/text/host.js";
import { PermanentDocumentError } from "../../../../src/processors/types.js";
import { flateBombPdf, makeDocx, makePdf, slowPdf, zipBombDocx } from "../../../fixtures/documents/build.js";
import { buildExtractor } from "./helpers.js";
import { installMisbehavingChild } from "./misbehaving-child.js";

const MiB = 1024 * 1024;
const limits = { maxTextBytes: 16 * MiB, maxUncompressedBytes: 256 * MiB };
const pdfJob = (data: Buffer): ExtractionJob => ({ kind: "pdf", data: new Uint8Array(data), limits });
/** For the stand-in child: an HTML "document" that is one of its commands. */
const command = (text: string): ExtractionJob => ({ kind: "html", data: new Uint8Array(Buffer.from(text)), limits });
const live = (): AbortSignal => new AbortController().signal;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

let extractorUrl: URL;
let misbehavingUrl: URL;
let dir: string;
let cleanup: () => void;
beforeAll(() => {
  ({ extractorUrl, dir, cleanup } = buildExtractor());
  misbehavingUrl = installMisbehavingChild(dir);
});
afterAll(() => cleanup());

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected a failure");
    },
    (e: unknown) => e,
  );
}

/** Whether `pid` is a live process (a zombie no longer counts: it holds no memory and runs nothing). */
function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "latin1"));
  } catch {
    return false;
  }
}

async function until(condition: () => boolean, ms = 5_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) {
    if (condition()) return true;
  }
  return condition();
}

/** This process's RSS once its garbage is collected (what the daemon keeps, not what it has yet to free). */
async function settledRss(): Promise<number> {
  gc();
  await new Promise((r) => setTimeout(r, 200));
  gc();
  return process.memoryUsage.rss();
}

function host(options: Partial<ExtractionHostOptions> = {}): ExtractionHost {
  return new ExtractionHost({ extractorUrl, memoryLimitBytes: 256 * MiB, ...options });
}

/** Runs `body` with a host, always closing it. */
async function using<T>(h: ExtractionHost, body: (h: ExtractionHost) => Promise<T>): Promise<T> {
  try {
    return await body(h);
  } finally {
    await h.close();
  }
}

describe("ExtractionHost: extraction in a child process", () => {
  it("extracts in a child process and reuses it for the next job", async () => {
    const h = host();
    await using(h, async () => {
      const first = await h.run(pdfJob(makePdf(["one"])), { signal: live(), timeoutMs: 30_000 });
      expect(first.result).toMatchObject({ text: "one\n", pages: 1 });
      const pid = h.childPid!;
      expect(pid).not.toBe(process.pid);
      expect(alive(pid)).toBe(true);
      expect(first.peakRssBytes).toBeGreaterThan(10 * MiB);
      const docx = await h.run({ kind: "docx", data: new Uint8Array(makeDocx(["two"])), limits }, { signal: live(), timeoutMs: 30_000 });
      expect(docx.result.text).toBe("two\n\n");
      expect(h.childPid).toBe(pid);
      await h.close();
      expect(h.hasChild).toBe(false);
      expect(alive(pid)).toBe(false);
    });
  });

  it("collects PDF.js's console warnings about a document it had to repair", async () => {
    await using(host(), async (h) => {
      // A wrong startxref offset: PDF.js rebuilds the cross-reference table by scanning, and says so.
      const pdf = Buffer.from(makePdf(["repaired"]).toString("latin1").replace(/startxref\n\d+/, "startxref\n12"), "latin1");
      const run = await h.run(pdfJob(pdf), { signal: live(), timeoutMs: 30_000 });
      expect(run.result.text).toBe("repaired\n");
      expect(run.result.warnings.join("\n")).toMatch(/xref|Indexing/i);
    });
  });

  it("passes the document's permanent errors on, keeping the child", async () => {
    await using(host(), async (h) => {
      await h.run(pdfJob(makePdf(["warm"])), { signal: live(), timeoutMs: 30_000 });
      const pid = h.childPid;
      const err = await failure(
        h.run({ kind: "docx", data: new Uint8Array(zipBombDocx(64 * MiB)), limits }, { signal: live(), timeoutMs: 30_000 }),
      );
      expect(err).toBeInstanceOf(PermanentDocumentError);
      expect(err).toMatchObject({ code: "UNSAFE_ARCHIVE", detectedType: { ext: "docx" } });
      expect(h.childPid).toBe(pid);
    });
  });

  it("gives the child one allocator setting for environment and nothing but its job: no files outside the package, no processes, no eval", async () => {
    await using(host(), async (h) => {
      await h.run(pdfJob(makePdf(["x"])), { signal: live(), timeoutMs: 30_000 });
      // The real child asks the kernel's OOM killer to take it first.
      expect(readFileSync(`/proc/${h.childPid}/oom_score_adj`, "utf8").trim()).toBe("1000");
    });
    // The stand-in runs with the same settings and reports what they let it do.
    await using(host({ extractorUrl: misbehavingUrl }), async (h) => {
      const { result } = await h.run(command("sandbox"), { signal: live(), timeoutMs: 30_000 });
      expect(process.env["AWS_REGION"]).toBeDefined(); // set for every test process: the child must not inherit it
      expect(result.warnings).toEqual([
        'env:{"GLIBC_TUNABLES":"glibc.malloc.mmap_threshold=65536"}',
        "cwd:/",
        "read /etc/hostname:denied:ERR_ACCESS_DENIED",
        "write /tmp:denied:ERR_ACCESS_DENIED",
        "eval:denied:EvalError",
        "spawn:denied:ERR_ACCESS_DENIED",
      ]);
    });
  });

  it("queues jobs one at a time; a job aborted while waiting never runs", async () => {
    await using(host(), async (h) => {
      const first = h.run(pdfJob(makePdf(["first"])), { signal: live(), timeoutMs: 30_000 });
      const ac = new AbortController();
      const second = h.run(pdfJob(makePdf(["second"])), { signal: ac.signal, timeoutMs: 30_000 });
      ac.abort(new Error("gone"));
      await expect(second).rejects.toThrow("gone");
      await expect(first).resolves.toMatchObject({ result: { text: "first\n" } });
    });
  });

  it("close() in the middle of a job fails it transiently, kills the child and refuses later runs", async () => {
    const h = host({ extractorUrl: misbehavingUrl });
    const pid = Number((await h.run(command("pid"), { signal: live(), timeoutMs: 30_000 })).result.text);
    const run = h.run(command("spin"), { signal: live(), timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 100));
    await h.close();
    const err = await failure(run);
    expect(err).not.toBeInstanceOf(PermanentDocumentError);
    expect((err as Error).message).toMatch(/extractor exited \(signal SIGKILL\)/);
    expect(alive(pid)).toBe(false);
    await expect(h.run(command("pid"), { signal: live(), timeoutMs: 30_000 })).rejects.toThrow(/closed/);
  });

  it("reports a child that cannot start as a plain (retryable) error", async () => {
    const h = host({ extractorUrl: new URL("./does-not-exist.js", extractorUrl) });
    const err = await failure(h.run(pdfJob(makePdf(["x"])), { signal: live(), timeoutMs: 30_000 }));
    expect(err).not.toBeInstanceOf(PermanentDocumentError);
    expect((err as Error).message).toMatch(/could not start.*Cannot find module/);
    expect(h.hasChild).toBe(false);
    await h.close();
  });

  it("reports a ceiling below what the parsers need as a failure to start, not as the document's fault", async () => {
    const h = host({ memoryLimitBytes: 40 * MiB });
    const err = await failure(h.run(pdfJob(makePdf(["x"])), { signal: live(), timeoutMs: 30_000 }));
    expect(err).not.toBeInstanceOf(PermanentDocumentError);
    // Its V8 heap (capped below the ceiling) or its memory, whichever runs out first while the parsers load.
    expect((err as Error).message).toMatch(/could not start: .* than the 40 MiB extractionMemoryBytes allows/);
    expect(h.hasChild).toBe(false);
    await h.close();
  });
});

describe("ExtractionHost: limits kill the child, which is gone before the run rejects", () => {
  it("stops a parse that runs past the time limit (TIMEOUT), and the next job gets a fresh child", async () => {
    await using(host({ memoryLimitBytes: 1024 * MiB }), async (h) => {
      await h.run(pdfJob(makePdf(["warm"])), { signal: live(), timeoutMs: 30_000 });
      const pid = h.childPid!;
      // 64 MiB of "q Q " operators: many seconds of synchronous PDF.js work, stopped at one second.
      const err = await failure(
        h.run(pdfJob(slowPdf(64)), { signal: live(), timeoutMs: 1_000, detectedType: { mime: "application/pdf", ext: "pdf" } }),
      );
      expect(err).toBeInstanceOf(PermanentDocumentError);
      expect(err).toMatchObject({ code: "TIMEOUT", detectedType: { mime: "application/pdf" } });
      expect(h.hasChild).toBe(false);
      expect(alive(pid)).toBe(false);
      const next = await h.run(pdfJob(makePdf(["after"])), { signal: live(), timeoutMs: 30_000 });
      expect(next.result.text).toBe("after\n");
      expect(h.childPid).not.toBe(pid);
    });
  });

  it("stops Flate bombs at the ceiling (MEMORY_LIMIT), and the daemon's own memory stays where it was", async () => {
    const limit = 256 * MiB;
    await using(host({ memoryLimitBytes: limit }), async (h) => {
      await h.run(pdfJob(makePdf(["warm"])), { signal: live(), timeoutMs: 30_000 });
      const bomb = flateBombPdf(2048 * MiB);
      const before = await settledRss();
      // Three in a row, as redeliveries would bring them: with a worker thread each one left the process bigger.
      for (let i = 0; i < 3; i++) {
        const pid = h.childPid;
        const err = await failure(h.run(pdfJob(bomb), { signal: live(), timeoutMs: 120_000 }));
        expect(err).toBeInstanceOf(PermanentDocumentError);
        expect(err).toMatchObject({ code: "MEMORY_LIMIT" });
        const seen = /took the extractor to (\d+) MiB, above the 256 MiB it may use/.exec((err as Error).message);
        // Sampling every 20 ms lets one growth step overshoot (PDF.js doubles its buffer), never run away.
        expect(Number(seen?.[1])).toBeLessThan(512);
        expect(h.hasChild).toBe(false);
        if (pid !== undefined) expect(alive(pid)).toBe(false);
        const after = await settledRss();
        expect((after - before) / MiB).toBeLessThan(48);
      }
    });
  });

  it("reports the child's heap running out as MEMORY_LIMIT too", async () => {
    // Sampling off: only V8's own limit can stop the stand-in, which allocates objects until it dies.
    await using(host({ extractorUrl: misbehavingUrl, memoryLimitBytes: 160 * MiB, sampleIntervalMs: 600_000 }), async (h) => {
      const err = await failure(h.run(command("heap"), { signal: live(), timeoutMs: 60_000 }));
      expect(err).toBeInstanceOf(PermanentDocumentError);
      expect(err).toMatchObject({ code: "MEMORY_LIMIT" });
      expect(h.hasChild).toBe(false);
    });
  });

  it("an abort while the child is still loading its parsers kills it and rethrows the caller's reason", async () => {
    await using(host(), async (h) => {
      const ac = new AbortController();
      const run = h.run(pdfJob(makePdf(["x"])), { signal: ac.signal, timeoutMs: 30_000 });
      expect(await until(() => h.childPid !== undefined)).toBe(true);
      const pid = h.childPid!;
      ac.abort(new Error("stopping early"));
      const err = await failure(run);
      expect((err as Error).message).toBe("stopping early");
      expect(h.hasChild).toBe(false);
      expect(alive(pid)).toBe(false);
    });
  });

  it("kills the child on abort and rethrows the caller's reason, which is not the document's fault", async () => {
    await using(host({ memoryLimitBytes: 1024 * MiB }), async (h) => {
      await h.run(pdfJob(makePdf(["warm"])), { signal: live(), timeoutMs: 30_000 });
      const pid = h.childPid!;
      const ac = new AbortController();
      const run = h.run(pdfJob(slowPdf(64)), { signal: ac.signal, timeoutMs: 120_000 });
      await new Promise((r) => setTimeout(r, 300));
      ac.abort(new Error("shutting down"));
      const err = await failure(run);
      expect(err).not.toBeInstanceOf(PermanentDocumentError);
      expect((err as Error).message).toBe("shutting down");
      expect(h.hasChild).toBe(false);
      expect(alive(pid)).toBe(false);
    });
  });
});

describe("ExtractionHost: a child that crashes or misbehaves fails that document transiently", () => {
  it("a child killed from outside in the middle of a parse: a plain error, and the next document works", async () => {
    await using(host({ memoryLimitBytes: 1024 * MiB }), async (h) => {
      await h.run(pdfJob(makePdf(["warm"])), { signal: live(), timeoutMs: 30_000 });
      const pid = h.childPid!;
      const run = h.run(pdfJob(slowPdf(64)), { signal: live(), timeoutMs: 120_000 });
      await new Promise((r) => setTimeout(r, 300));
      process.kill(pid, "SIGKILL");
      const err = await failure(run);
      expect(err).not.toBeInstanceOf(PermanentDocumentError);
      expect((err as Error).message).toMatch(/extractor exited \(signal SIGKILL\)/);
      const next = await h.run(pdfJob(makePdf(["next"])), { signal: live(), timeoutMs: 30_000 });
      expect(next.result.text).toBe("next\n");
    });
  });

  it("a child that exits in the middle of a job: a plain error, and the next document works", async () => {
    await using(host({ extractorUrl: misbehavingUrl }), async (h) => {
      const err = await failure(h.run(command("exit"), { signal: live(), timeoutMs: 30_000 }));
      expect(err).not.toBeInstanceOf(PermanentDocumentError);
      expect((err as Error).message).toMatch(/extractor exited \(code 3\)/);
      const next = await h.run(command("<p>next</p>"), { signal: live(), timeoutMs: 30_000 });
      expect(next.result.text).toBe("next\n");
    });
  });

  it.each([
    ["oversized", /broke the protocol: a frame payload of 16777217 bytes \(at most 16777216 now\)/],
    ["huge-declared", /broke the protocol: a frame payload of 4294967295 bytes/],
    ["not-json", /broke the protocol: a frame header that is not JSON/],
    ["wrong-id", /sent "reply" instead of the reply to job/],
    ["bad-code", /broke the protocol: an error reply with an invalid code/],
  ])("a child that answers %s is killed: a plain error, nothing buffered for it", async (what, message) => {
    await using(host({ extractorUrl: misbehavingUrl }), async (h) => {
      const first = await h.run(command("pid"), { signal: live(), timeoutMs: 30_000 });
      const pid = Number(first.result.text);
      const rss = process.memoryUsage.rss();
      const err = await failure(h.run(command(what), { signal: live(), timeoutMs: 30_000 }));
      expect(err).not.toBeInstanceOf(PermanentDocumentError);
      expect((err as Error).message).toMatch(message);
      expect(alive(pid)).toBe(false);
      expect(process.memoryUsage.rss() - rss).toBeLessThan(64 * MiB);
      const next = await h.run(command("pid"), { signal: live(), timeoutMs: 30_000 });
      expect(Number(next.result.text)).not.toBe(pid);
    });
  });

  it("a child that speaks while idle without being asked is replaced", async () => {
    await using(host({ extractorUrl: misbehavingUrl }), async (h) => {
      expect((await h.run(command("chatty"), { signal: live(), timeoutMs: 30_000 })).result.text).toBe("chatty");
      const pid = h.childPid!;
      expect(await until(() => !alive(pid))).toBe(true);
      expect(h.hasChild).toBe(false);
    });
  });

  it("a child that keeps memory after a job is killed at once, not at the idle timeout; one that does not is kept", async () => {
    await using(host({ extractorUrl: misbehavingUrl, memoryLimitBytes: 512 * MiB }), async (h) => {
      const a = Number((await h.run(command("pid"), { signal: live(), timeoutMs: 30_000 })).result.text);
      const b = Number((await h.run(command("pid"), { signal: live(), timeoutMs: 30_000 })).result.text);
      expect(b).toBe(a);
      await h.run(command("keep"), { signal: live(), timeoutMs: 30_000 });
      // Its leftovers go back to the system now: no next document needed (the idle timeout is 60 s).
      expect(await until(() => !alive(a))).toBe(true);
      expect(h.hasChild).toBe(false);
      const c = Number((await h.run(command("pid"), { signal: live(), timeoutMs: 30_000 })).result.text);
      expect(c).not.toBe(a);
      expect(alive(a)).toBe(false);
    });
  });

  it("a job that lasts longer than the idle timeout keeps its child (new or reused)", async () => {
    await using(host({ extractorUrl: misbehavingUrl, idleTimeoutMs: 200 }), async (h) => {
      expect((await h.run(command("sleep"), { signal: live(), timeoutMs: 30_000 })).result.text).toBe("slept");
      const pid = h.childPid;
      expect((await h.run(command("sleep"), { signal: live(), timeoutMs: 30_000 })).result.text).toBe("slept");
      expect(h.childPid).toBe(pid);
      expect(await until(() => !h.hasChild, 2_000)).toBe(true);
    });
  });

  it("an idle child that grows past the ceiling is killed", async () => {
    await using(host({ extractorUrl: misbehavingUrl, memoryLimitBytes: 256 * MiB }), async (h) => {
      const pid = Number((await h.run(command("pid"), { signal: live(), timeoutMs: 30_000 })).result.text);
      await h.run(command("grow-idle"), { signal: live(), timeoutMs: 30_000 });
      expect(await until(() => !alive(pid))).toBe(true);
      expect(h.hasChild).toBe(false);
    });
  });
});

describe("ExtractionHost: no child outlives the daemon's process", () => {
  /** A daemon stand-in: a Node process with a host, printing its child's pid. */
  function daemon(mode: "exit-mid-job" | "idle", entry: URL): { pid: Promise<number>; exited: Promise<void>; kill: () => void } {
    const script = join(dir, "builtin/text/daemon-stand-in.js");
    writeFileSync(
      script,
      `import { ExtractionHost } from "./host.js";
const host = new ExtractionHost({ extractorUrl: new URL(${JSON.stringify(entry.href)}), memoryLimitBytes: 256 * 1024 * 1024 });
const limits = { maxTextBytes: 1 << 20, maxUncompressedBytes: 1 << 20 };
const job = (text) => ({ kind: "html", data: new Uint8Array(Buffer.from(text)), limits });
const signal = new AbortController().signal;
await host.run(job("<p>warm</p>"), { signal, timeoutMs: 30000 });
process.stdout.write(host.childPid + "\\n");
if (${JSON.stringify(mode)} === "exit-mid-job") {
  host.run(job("spin"), { signal, timeoutMs: 60000 }).catch(() => undefined);
  setTimeout(() => process.exit(0), 300);
} else {
  setInterval(() => undefined, 1000);
}
`,
    );
    const proc = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    const pid = new Promise<number>((resolve, reject) => {
      proc.stdout.on("data", (c: Buffer) => {
        out += c.toString();
        if (out.includes("\n")) resolve(Number(out.trim()));
      });
      proc.once("exit", () => reject(new Error(`the stand-in exited before printing a pid: ${out}`)));
    });
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    return { pid, exited, kill: () => proc.kill("SIGKILL") };
  }

  it("a daemon that exits in the middle of a job takes its child with it", async () => {
    // The stand-in spins: it never notices that its channel closed, only a kill can stop it.
    const d = daemon("exit-mid-job", misbehavingUrl);
    const pid = await d.pid;
    expect(alive(pid)).toBe(true);
    await d.exited;
    try {
      expect(await until(() => !alive(pid), 2_000)).toBe(true);
    } finally {
      if (alive(pid)) process.kill(pid, "SIGKILL");
    }
  });

  it("a daemon killed outright (SIGKILL) leaves an idle child that goes away by itself", async () => {
    const d = daemon("idle", extractorUrl);
    const pid = await d.pid;
    expect(alive(pid)).toBe(true);
    d.kill();
    await d.exited;
    try {
      expect(await until(() => !alive(pid), 5_000)).toBe(true);
    } finally {
      if (alive(pid)) process.kill(pid, "SIGKILL");
    }
  });
});
