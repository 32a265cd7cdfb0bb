/**
 * The Prometheus endpoint: `GET /metrics` in the text exposition format, on a loopback address only (the config
 * refuses any other host: the endpoint has no authentication). Off unless metricsPort is set. It binds before the
 * daemon starts consuming, so a port in use fails the start instead of leaving a daemon without its metrics; the
 * daemon's registry is attached once it exists.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { collectDefaultMetrics, Registry } from "prom-client";
import { ConfigError } from "../errors/fatal.js";
import { errorMessage } from "../errors/message.js";
import type { Logger } from "../logging/logger.js";

// Not an ES import of node:http: that loads undici through its WebSocket getter (see aws/lean/client.ts).
const { createServer } = process.getBuiltinModule("node:http");

export const METRICS_PATH = "/metrics";

export interface MetricsEndpointOptions {
  host: string;
  /** 0 picks a free port (the bound one is in `url` and in the log line). */
  port: number;
  log: Logger;
}

export interface MetricsEndpoint {
  /** e.g. http://127.0.0.1:9464/metrics */
  readonly url: string;
  /** Serves this registry from now on, after the process metrics (answers 503 until then). */
  serve(registry: Registry): void;
  close(): Promise<void>;
}

export async function startMetricsEndpoint(options: MetricsEndpointOptions): Promise<MetricsEndpoint> {
  const { log } = options;
  // Node's process metrics under their usual names (process_*, nodejs_*), which dashboards already know.
  const processRegistry = new Registry();
  collectDefaultMetrics({ register: processRegistry });
  let registries: Registry[] | undefined;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? "/").split("?", 1)[0];
    if (path !== METRICS_PATH) return reply(res, 404, "not found: the metrics are at /metrics\n");
    if (req.method !== "GET" && req.method !== "HEAD") return reply(res, 405, "method not allowed\n", { allow: "GET, HEAD" });
    if (registries === undefined) return reply(res, 503, "starting\n");
    const parts = await Promise.all(registries.map((r) => r.metrics()));
    reply(res, 200, parts.join("\n"), { "content-type": processRegistry.contentType }, req.method === "HEAD");
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ err }, "metrics endpoint: collecting the metrics failed");
      if (!res.headersSent) reply(res, 500, "collecting the metrics failed\n");
      else res.destroy();
    });
  });
  // A scraper that stalls must not hold a socket open for long.
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        new ConfigError(
          [
            {
              key: "metricsPort",
              value: options.port,
              message: `cannot listen on ${options.host}:${options.port} (${err.code ?? errorMessage(err)}): choose a free port, or unset metricsPort`,
            },
          ],
          "metrics endpoint",
        ),
      );
    };
    server.once("error", onError);
    server.listen({ host: options.host, port: options.port, exclusive: true }, () => {
      server.off("error", onError);
      resolve();
    });
  });
  server.on("error", (err) => log.error({ err }, "metrics endpoint error"));

  const { address, port } = server.address() as AddressInfo;
  const url = `http://${address.includes(":") ? `[${address}]` : address}:${port}${METRICS_PATH}`;
  log.info({ url }, "metrics endpoint listening");

  return {
    url,
    serve(registry) {
      registries = [processRegistry, registry];
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

function reply(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}, headOnly = false): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", ...headers, "content-length": Buffer.byteLength(body) });
  res.end(headOnly ? undefined : body);
}
