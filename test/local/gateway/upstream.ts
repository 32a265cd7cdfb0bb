// The embedded fauxqs 1.9.2 (S3 + SQS emulator), bound to 127.0.0.1 through its exported buildApp() (startFauxqs
// would listen on 0.0.0.0) and reached only by the gateway. fauxqs checks no signatures, so requests go unsigned.
import http from "node:http";
import { buildApp } from "fauxqs";

export interface UpstreamRequest {
  method: string;
  /** Path and query, exactly as they should reach fauxqs. */
  path: string;
  headers: http.OutgoingHttpHeaders;
  body?: Buffer;
  signal?: AbortSignal;
}

export interface SqsCallResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON body ({} when empty). */
  json: Record<string, unknown>;
}

export interface Upstream {
  port: number;
  /** http://127.0.0.1:<port> */
  url: string;
  /** The host part fauxqs puts in its queue URLs (http://sqs.<region>.localhost:<port>). */
  queueUrlBase: string;
  request(request: UpstreamRequest): Promise<http.IncomingMessage>;
  /** One SQS JSON-protocol call. */
  sqs(operation: string, input: Record<string, unknown>, signal?: AbortSignal): Promise<SqsCallResult>;
  close(): Promise<void>;
}

/** The whole of `stream` (events rather than an async iterator: this runs for every upstream answer). */
export function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const readable = stream as NodeJS.ReadableStream & { readableEnded?: boolean; destroyed?: boolean };
  if (readable.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const cleanup = (): void => {
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.off("close", onClose);
    };
    const onData = (chunk: Buffer | string): void => void chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const onClose = (): void => {
      if (readable.readableEnded) return;
      cleanup();
      reject(Object.assign(new Error("Premature close"), { code: "ERR_STREAM_PREMATURE_CLOSE" }));
    };
    stream.on("data", onData);
    stream.on("end", onEnd);
    // Left in place once settled: a late error must not go unhandled (the promise ignores a second outcome).
    stream.on("error", onError);
    stream.on("close", onClose);
  });
}

export async function startUpstream(options: { region: string }): Promise<Upstream> {
  const app = buildApp({ logger: false, defaultRegion: options.region });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const address = app.server.address();
  if (address === null || typeof address === "string") throw new Error("fauxqs did not report a TCP address");
  const port = address.port;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  const request = (req: UpstreamRequest): Promise<http.IncomingMessage> =>
    new Promise((resolve, reject) => {
      const headers = { ...req.headers, host: `127.0.0.1:${port}` };
      if (req.body !== undefined) headers["content-length"] = req.body.length;
      const outgoing = http.request(
        { host: "127.0.0.1", port, method: req.method, path: req.path, headers, agent, ...(req.signal && { signal: req.signal }) },
        resolve,
      );
      outgoing.on("error", reject);
      outgoing.end(req.body);
    });

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    // fauxqs builds queue URLs from its default host "localhost" and the port of the request's Host header.
    queueUrlBase: `http://sqs.${options.region}.localhost:${port}`,
    request,
    async sqs(operation, input, signal) {
      const response = await request({
        method: "POST",
        path: "/",
        headers: { "content-type": "application/x-amz-json-1.0", "x-amz-target": `AmazonSQS.${operation}` },
        body: Buffer.from(JSON.stringify(input)),
        ...(signal && { signal }),
      });
      const text = (await readAll(response)).toString("utf8");
      const json = text.trim() === "" ? {} : (JSON.parse(text) as Record<string, unknown>);
      return { status: response.statusCode ?? 500, headers: response.headers, json };
    },
    async close() {
      agent.destroy();
      await app.close();
    },
  };
}
