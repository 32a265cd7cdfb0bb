// The real daemon with metricsPort set, against the stand-in: documents go through, and two scrapes of the loopback
// endpoint show the counters moving. Also: off by default, and a port in use refuses to start (exit 78).
import { request } from "node:http";
import { createServer } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  READY,
  daemonExit,
  discardTestEvent,
  startHarness,
  stopDaemon,
  upload,
  waitForOutcomes,
  type Harness,
} from "./helpers/daemon-harness.js";

const P = "doc_processor_";
const LISTENING = "metrics endpoint listening";

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on("error", reject)
      .end();
  });
}

async function scrape(url: string): Promise<Map<string, number>> {
  const { status, body } = await get(url);
  expect(status).toBe(200);
  const samples = new Map<string, number>();
  for (const line of body.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

const value = (s: Map<string, number>, name: string): number => {
  const v = s.get(name);
  if (v === undefined) throw new Error(`${name} is not in the scrape`);
  return v;
};

describe("metrics endpoint of the running daemon", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await discardTestEvent(h.stand);
  });
  afterAll(async () => {
    await h.close();
  });
  afterEach(async () => {
    await h.stopDaemons();
  });

  it("two scrapes during processing show the counters moving", async () => {
    const daemon = h.startDaemon({ config: { metricsPort: 0 } });
    const listening = await daemon.waitForLog((l) => l.msg === LISTENING);
    const url = String(listening["url"]);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    await daemon.waitForLog((l) => l.msg === READY);

    const first = [
      { key: "metrics/a.txt", body: "alpha\n" },
      { key: "metrics/b.txt", body: "bravo bravo\n" },
    ];
    await upload(h.stand, first);
    await waitForOutcomes(daemon, first.map((d) => d.key));
    const one = await scrape(url);
    expect(value(one, `${P}s3_objects_processed_total`)).toBe(2);
    expect(value(one, `${P}s3_bytes_processed_total`)).toBe(6 + 12);
    expect(value(one, `${P}sqs_messages_received_total`)).toBe(2);
    expect(value(one, `${P}s3_object_processing_seconds_count{outcome="done"}`)).toBe(2);
    expect(value(one, `${P}s3_event_lag_seconds_count`)).toBe(2);
    expect(value(one, `${P}s3_objects_inflight`)).toBe(0);
    expect(one.has(`${P}sqs_messages_inflight`)).toBe(true);
    expect(value(one, "process_resident_memory_bytes")).toBeGreaterThan(0);

    const second = [
      { key: "metrics/c.txt", body: "charlie\n" },
      { key: "metrics/d.txt", body: "delta\n" },
      { key: "metrics/e.txt", body: "echo\n" },
    ];
    await upload(h.stand, second);
    await waitForOutcomes(daemon, second.map((d) => d.key));
    const two = await scrape(url);
    expect(value(two, `${P}s3_objects_processed_total`)).toBe(5);
    expect(value(two, `${P}s3_bytes_processed_total`)).toBe(6 + 12 + 8 + 6 + 5);
    expect(value(two, `${P}sqs_messages_received_total`)).toBe(5);
    expect(value(two, `${P}s3_object_processing_seconds_count{outcome="done"}`)).toBe(5);
    expect(value(two, `${P}s3_bytes_written_total`)).toBeGreaterThan(value(one, `${P}s3_bytes_written_total`));
    expect(value(two, `${P}sqs_messages_deleted_total`)).toBeGreaterThanOrEqual(value(one, `${P}sqs_messages_deleted_total`));
    expect(value(two, "process_cpu_seconds_total")).toBeGreaterThanOrEqual(value(one, "process_cpu_seconds_total"));

    // Stopping closes the endpoint and still exits 0.
    expect(await stopDaemon(daemon)).toEqual({ code: 0, signal: null });
    await expect(get(url)).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("is off by default: no endpoint when metricsPort is unset", async () => {
    const daemon = h.startDaemon();
    await daemon.waitForLog((l) => l.msg === READY);
    expect(daemon.logs.filter((l) => l.msg === LISTENING)).toEqual([]);
  });

  it("a metricsPort in use: exit 78 before consuming, naming the key", async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    try {
      const port = (blocker.address() as { port: number }).port;
      const since = h.stand.decisions.length;
      const daemon = h.startDaemon({ config: { metricsPort: port } });
      const { code } = await daemonExit(daemon);
      expect(code).toBe(78);
      expect(daemon.stderr()).toContain("metricsPort");
      expect(daemon.stderr()).toContain("EADDRINUSE");
      expect(daemon.logs.filter((l) => l.msg === READY)).toEqual([]);
      // Identity verified, then refused before the first receive.
      expect(h.stand.decisions.slice(since).map((d) => d.action)).toEqual(["sts:GetCallerIdentity"]);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });
});
