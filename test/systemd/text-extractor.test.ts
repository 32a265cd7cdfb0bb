// The text processor's extraction child under the shipped unit (systemd 252 in a container, as doc-processor.test.ts
// boots it): the unit's sandbox (syscall filter, no new privileges, private users, ProtectProc) lets the daemon start
// it, it runs with the settings the host gives it (oom_score_adj 1000, one allocator setting for environment), a
// Flate bomb is refused at the ceiling without restarting the daemon, and `systemctl stop` leaves nothing to kill.
// Then the same for the OCR processor's child (its own process, same sandbox): an image's words come out.
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { flateBombPdf, makePdf } from "../fixtures/documents/build.js";
import { cropToInk, encodePng, textPage } from "../fixtures/documents/images.js";
import { assertDaemonBuilt, upload } from "../integration/helpers/daemon-harness.js";
import { startStandIn, type StandIn } from "../local/stand-in.js";
import { bootContainer, ensureRootfs, eventually, requireContainerHost, type Container } from "./container.js";

const REPO = join(import.meta.dirname, "..", "..");
const VERSION = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;
const CACHE_DIR = process.env["DOC_PROCESSOR_SYSTEMD_CACHE"] ?? "/var/cache/doc-processor-test";
const UNIT = "doc-processor.service";
const RELEASE = `/opt/doc-processor/releases/${VERSION}`;
const MiB = 1024 * 1024;

let container: Container;
let stand: StandIn;

async function show(...properties: string[]): Promise<Record<string, string>> {
  const out = await container.check(["systemctl", "show", UNIT, ...properties.map((p) => `--property=${p}`)]);
  return Object.fromEntries(out.split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
}

async function output(key: string): Promise<string | undefined> {
  try {
    const out = await stand.clients.admin.s3.send(new GetObjectCommand({ Bucket: stand.config.outputBucket, Key: key }));
    return await out.Body!.transformToString();
  } catch (error) {
    if ((error as { name?: string }).name === "NoSuchKey") return undefined;
    throw error;
  }
}

/** The daemon's extraction children (by their command line and parent): the text extractor's, or the OCR one's. */
async function extractors(mainPid: string, entry = "extract-child.js"): Promise<string[]> {
  const found = await container.run(["sh", "-c", `grep -l ${entry} /proc/[0-9]*/cmdline 2>/dev/null`]);
  const pids = found.stdout.split("\n").map((l) => /^\/proc\/(\d+)\//.exec(l)?.[1]).filter((p) => p !== undefined);
  const children: string[] = [];
  for (const pid of pids) {
    const status = await container.run(["cat", `/proc/${pid}/status`]);
    if (new RegExp(`^PPid:\\s+${mainPid}$`, "m").test(status.stdout)) children.push(pid);
  }
  return children;
}

beforeAll(async () => {
  requireContainerHost();
  assertDaemonBuilt();
  const rootfs = await ensureRootfs(CACHE_DIR);
  // Installed as doc-processor.test.ts installs it (the bootstrap's layout, this host's node as /usr/bin/node-22).
  container = await bootContainer(rootfs, [
    { host: realpathSync(process.execPath), container: "/usr/bin/node-22" },
    ...["dist", "node_modules", "package.json", "systemd"].map((p) => ({ host: join(REPO, p), container: `${RELEASE}/${p}` })),
  ]);
  await container.check([
    "useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
    "doc-processor",
  ]);
  await container.check(["ln", "-sfn", `releases/${VERSION}`, "/opt/doc-processor/current"]);
  await container.check(["install", "-d", "-m", "0750", "-o", "root", "-g", "doc-processor", "/etc/doc-processor"]);
  await container.check(["install", "-m", "0644", `${RELEASE}/systemd/doc-processor.service`, `/etc/systemd/system/${UNIT}`]);
  stand = await startStandIn();
  await writeConfig(["metadata", "text"]);
  const lines = Object.entries(stand.env).map(([k, v]) => `Environment="${k}=${v}"`);
  await container.writeFile(
    "/etc/systemd/system/doc-processor.service.d/local.conf",
    `[Service]\n${lines.join("\n")}\nTimeoutStartSec=30s\n`,
    "root:root",
    "0644",
  );
  await container.check(["systemctl", "daemon-reload"]);
}, 20 * 60_000);

async function writeConfig(processor: string[]): Promise<void> {
  const config = { ...stand.config, waitTimeSeconds: 2, imdsTimeoutMs: 1_000, imdsMaxRetries: 1, processor };
  await container.writeFile("/etc/doc-processor/config.json", `${JSON.stringify(config, null, 2)}\n`, "root:doc-processor", "0640");
}

afterAll(async () => {
  await stand?.close();
  await container?.poweroff();
});

describe("the text processor's extractor under doc-processor.service", () => {
  it("runs sandboxed as the unit allows, refuses a Flate bomb at its ceiling without a restart, and leaves with the daemon", async () => {
    const start = await container.run(["systemctl", "--no-pager", "start", UNIT], { timeoutMs: 90_000 });
    expect(start.code, start.stderr).toBe(0);
    const { MainPID: mainPid } = await show("MainPID");

    await upload(stand, [
      { key: "x/report.pdf", body: makePdf(["extracted under systemd"]) },
      { key: "x/bomb.pdf", body: flateBombPdf(2048 * MiB) },
    ]);
    expect(await eventually("the PDF's text", () => output("x/report.pdf.txt"))).toBe("extracted under systemd\n");
    const record = await eventually("the bomb's error record", () => output("x/bomb.pdf.error.json"), { timeoutMs: 120_000 });
    expect(JSON.parse(record)).toMatchObject({ code: "MEMORY_LIMIT" });
    // Refused by the daemon's ceiling, not by the kernel: the daemon never restarted.
    expect(await show("MainPID", "NRestarts")).toEqual({ MainPID: mainPid, NRestarts: "0" });

    // A document after the bomb starts a fresh extractor; look at it while it idles.
    await upload(stand, [{ key: "x/after.pdf", body: makePdf(["after the bomb"]) }]);
    expect(await eventually("the next PDF's text", () => output("x/after.pdf.txt"))).toBe("after the bomb\n");
    const [child] = await extractors(mainPid!);
    expect(child, "an idle extractor in the unit's cgroup").toBeDefined();
    expect((await container.check(["cat", `/proc/${child}/oom_score_adj`])).trim()).toBe("1000");
    expect(await container.check(["cat", `/proc/${child}/environ`])).toBe("GLIBC_TUNABLES=glibc.malloc.mmap_threshold=65536\0");
    const status = await container.check(["cat", `/proc/${child}/status`]);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(status).toMatch(/^Seccomp:\s+2$/m);

    const cursor = (/-- cursor: (.+)/.exec(await container.check(["journalctl", "--lines=0", "--show-cursor", "--no-pager"])) ?? [])[1]!;
    const stop = await container.run(["systemctl", "--no-pager", "stop", UNIT], { timeoutMs: 90_000 });
    expect(stop.code, stop.stderr).toBe(0);
    expect((await container.run(["test", "-d", `/proc/${child}`])).code).not.toBe(0);
    // The daemon killed its extractor as it exited: systemd found nothing left to kill.
    const journal = await container.check(["journalctl", `--unit=${UNIT}`, `--after-cursor=${cursor}`, "--output=cat", "--no-pager"]);
    expect(journal, `main ${mainPid}, extractor ${child}`).not.toMatch(/Killing process|left-over process/);
  });

  it("runs OCR in its own sandboxed child under the unit: an image's words come out, and the child leaves with the daemon", { timeout: 240_000 }, async () => {
    await writeConfig(["metadata", "ocr"]);
    const start = await container.run(["systemctl", "--no-pager", "start", UNIT], { timeoutMs: 90_000 });
    expect(start.code, start.stderr).toBe(0);
    const { MainPID: mainPid } = await show("MainPID");

    const image = encodePng(cropToInk(await textPage(["Recognised under systemd"])));
    await upload(stand, [{ key: "y/scan.png", body: image }]);
    const text = await eventually("the image's text", () => output("y/scan.png.txt"), { timeoutMs: 180_000 });
    expect(text).toContain("Recognised under systemd");
    // The outputs are written one after another: the record may land a moment after the text.
    const record = JSON.parse(await eventually("the OCR record", () => output("y/scan.png.ocr.json"), { timeoutMs: 30_000 })) as {
      pages?: number;
      ocrPages?: number;
    };
    expect(record).toMatchObject({ pages: 1, ocrPages: 1 });

    const [child] = await extractors(mainPid!, "ocr-child.js");
    expect(child, "an idle OCR process in the unit's cgroup").toBeDefined();
    expect((await container.check(["cat", `/proc/${child}/oom_score_adj`])).trim()).toBe("1000");
    const status = await container.check(["cat", `/proc/${child}/status`]);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(status).toMatch(/^Seccomp:\s+2$/m);
    expect(await show("NRestarts")).toEqual({ NRestarts: "0" });

    const stop = await container.run(["systemctl", "--no-pager", "stop", UNIT], { timeoutMs: 90_000 });
    expect(stop.code, stop.stderr).toBe(0);
    expect((await container.run(["test", "-d", `/proc/${child}`])).code).not.toBe(0);
  });
});
