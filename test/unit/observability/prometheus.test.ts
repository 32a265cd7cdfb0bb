// The loopback metrics endpoint: what it answers before and after the daemon's registry is attached, the process
// metrics next to ours, a port in use as a config error, and the config refusing any non-loopback host.
import { request } from "node:http";
import { createServer, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config/load.js";
import { isLoopbackAddress } from "../../../src/config/schema.js";
import { ConfigError, ExitCode } from "../../../src/errors/fatal.js";
import { silentLogger } from "../../../src/logging/logger.js";
import { METRIC_PREFIX, Metrics } from "../../../src/observability/metrics.js";
import { startMetricsEndpoint, type MetricsEndpoint } from "../../../src/observability/prometheus.js";

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(url: string, method = "GET"): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

const opened: MetricsEndpoint[] = [];
const blockers: Server[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((e) => e.close()));
  await Promise.all(blockers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function open(host = "127.0.0.1", port = 0): Promise<MetricsEndpoint> {
  const endpoint = await startMetricsEndpoint({ host, port, log: silentLogger() });
  opened.push(endpoint);
  return endpoint;
}

describe("startMetricsEndpoint", () => {
  it("answers 503 until the daemon's registry is attached, then the Prometheus text with ours and Node's metrics", async () => {
    const endpoint = await open();
    expect(endpoint.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect((await call(endpoint.url)).status).toBe(503);

    const metrics = new Metrics();
    metrics.onConsumerEvent({ type: "cycle", result: "received", received: 2 });
    endpoint.serve(metrics.registry);
    const answer = await call(endpoint.url);
    expect(answer.status).toBe(200);
    expect(answer.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(answer.body).toContain(`# TYPE ${METRIC_PREFIX}sqs_messages_received_total counter`);
    expect(answer.body).toContain(`\n${METRIC_PREFIX}sqs_messages_received_total 2\n`);
    // prom-client's default collectors, under their usual names.
    expect(answer.body).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(answer.body).toMatch(/^process_resident_memory_bytes \d/m);
    expect(answer.body).toMatch(/^nodejs_eventloop_lag_seconds /m);

    // Counters move between scrapes.
    metrics.onConsumerEvent({ type: "cycle", result: "received", received: 1 });
    expect((await call(endpoint.url)).body).toContain(`\n${METRIC_PREFIX}sqs_messages_received_total 3\n`);
  });

  it("serves only GET/HEAD /metrics", async () => {
    const endpoint = await open();
    endpoint.serve(new Metrics().registry);
    expect((await call(endpoint.url.replace("/metrics", "/"))).status).toBe(404);
    const post = await call(endpoint.url, "POST");
    expect(post.status).toBe(405);
    expect(post.headers["allow"]).toBe("GET, HEAD");
    const head = await call(endpoint.url, "HEAD");
    expect(head.status).toBe(200);
    expect(head.body).toBe("");
    expect((await call(`${endpoint.url}?name[]=x`)).status).toBe(200);
  });

  it("listens on IPv6 loopback too", async () => {
    const endpoint = await open("::1");
    expect(endpoint.url).toMatch(/^http:\/\/\[::1\]:\d+\/metrics$/);
    endpoint.serve(new Metrics().registry);
    expect((await call(endpoint.url)).status).toBe(200);
  });

  it("a port in use is a configuration error on metricsPort (exit 78), not a crash", async () => {
    const blocker = createServer();
    blockers.push(blocker);
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    const port = (blocker.address() as { port: number }).port;
    const err = await startMetricsEndpoint({ host: "127.0.0.1", port, log: silentLogger() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(ExitCode.config);
    expect((err as ConfigError).problems[0]).toMatchObject({ key: "metricsPort", value: port });
    expect((err as ConfigError).message).toContain("EADDRINUSE");
  });

  it("close() stops listening", async () => {
    const endpoint = await startMetricsEndpoint({ host: "127.0.0.1", port: 0, log: silentLogger() });
    endpoint.serve(new Metrics().registry);
    await endpoint.close();
    await expect(call(endpoint.url)).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });
});

describe("metricsPort and metricsHost in the config", () => {
  const base = {
    queueUrl: "https://sqs.us-east-1.amazonaws.com/123456789012/q",
    sourceBucket: "source-bucket",
    outputBucket: "output-bucket",
  };
  const load = (extra: Record<string, unknown>, env: Record<string, string> = {}) =>
    loadConfig({ configPath: "/c.json", env, readFile: () => JSON.stringify({ ...base, ...extra }) });

  it("is off by default and binds to 127.0.0.1 when a port is given", () => {
    expect(load({}).metricsPort).toBeUndefined();
    expect(load({ metricsPort: 9464 })).toMatchObject({ metricsPort: 9464, metricsHost: "127.0.0.1" });
    expect(load({}, { DOC_PROCESSOR_METRICS_PORT: "9464", DOC_PROCESSOR_METRICS_HOST: "::1" })).toMatchObject({
      metricsPort: 9464,
      metricsHost: "::1",
    });
  });

  it.each(["0.0.0.0", "::", "10.0.0.5", "169.254.169.254", "localhost", "example.com", "::ffff:127.0.0.1"])(
    "refuses the non-loopback host %s",
    (host) => {
      expect(() => load({ metricsPort: 9464, metricsHost: host })).toThrow(ConfigError);
      try {
        load({ metricsPort: 9464, metricsHost: host });
      } catch (err) {
        expect((err as ConfigError).problems).toEqual([
          expect.objectContaining({ key: "metricsHost", message: expect.stringContaining("loopback") as unknown }),
        ]);
      }
    },
  );

  it("accepts every loopback spelling", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "::1", "0:0:0:0:0:0:0:1"]) expect(isLoopbackAddress(host), host).toBe(true);
  });

  it("refuses a port out of range", () => {
    expect(() => load({ metricsPort: 70_000 })).toThrow(/metricsPort/);
  });
});
