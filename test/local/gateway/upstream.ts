// The embedded fauxqs 1.9.2 (S3 + SQS emulator), bound to 127.0.0.1 through its exported buildApp() (startFauxqs
// would listen on 0.0.0.0) and reached only by the gateway. fauxqs checks no signatures, so requests go unsigned.
// The data path skips fauxqs's HTTP server: GetObject/PutObject of a plain key and the message operations of SQS call
// its own store and action functions in this process, answering what its HTTP routes answer for the same request
// (test/unit/local/upstream-direct.test.ts holds the two side by side). That hop (a second HTTP exchange per request)
// was about a third of the stand-in's CPU. Everything else still goes over HTTP.
import { existsSync, readFileSync, realpathSync } from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { buildApp } from "fauxqs";
import { raceAbort } from "../../../src/aws/lean/race-abort.js";

export interface UpstreamRequest {
  method: string;
  /** Path and query, exactly as they should reach fauxqs. */
  path: string;
  headers: http.OutgoingHttpHeaders;
  body?: Buffer;
  signal?: AbortSignal;
}

/** An answer held whole: what the direct path gives instead of a response stream. */
export interface BufferedAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
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
  /**
   * fauxqs's answer to `request` taken from its store without HTTP, or undefined when only its HTTP routes can answer
   * it (anything but a GetObject/PutObject of an existing bucket and a plain key, without conditions, ranges or copies).
   */
  direct(request: UpstreamRequest): BufferedAnswer | undefined;
  /** One SQS JSON-protocol call (the message operations in-process, the rest over HTTP). */
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

// ---- fauxqs internals ----------------------------------------------------------------------------------------------
// Its package "exports" name only the entry point, so the stores and actions are loaded by path, from the very files
// its app imports (same URLs, hence the same module instances and error classes).

const FAUXQS_VERSION = "1.9.2";

interface FauxqsObject {
  body: Buffer;
  contentType: string;
  contentLength: number;
  etag: string;
  lastModified: Date;
  metadata: Record<string, string>;
}
interface FauxqsS3Store {
  getObject(bucket: string, key: string): FauxqsObject;
  putObject(bucket: string, key: string, body: Buffer, contentType?: string, metadata?: Record<string, string>): FauxqsObject;
  hasBucket(name: string): boolean;
}
interface FauxqsSqsError extends Error {
  statusCode: number;
  queryErrorHeader: string;
  toJSON(): Record<string, unknown>;
}
type SqsAction = (body: Record<string, unknown>, store: object) => unknown;

interface FauxqsInternals {
  s3Store: FauxqsS3Store;
  sqsStore: object;
  snsStore: object;
  S3Error: abstract new (...args: never[]) => Error;
  SqsError: abstract new (...args: never[]) => FauxqsSqsError;
  sqsActions: Map<string, SqsAction>;
}

// The SQS operations answered in-process: those whose action reads only the body and the store (CreateQueue and
// GetQueueUrl also read the request's Host), i.e. everything a consumer or the S3 events do.
const DIRECT_SQS = {
  SendMessage: "sendMessage",
  SendMessageBatch: "sendMessageBatch",
  ReceiveMessage: "receiveMessage",
  DeleteMessage: "deleteMessage",
  DeleteMessageBatch: "deleteMessageBatch",
  ChangeMessageVisibility: "changeMessageVisibility",
  ChangeMessageVisibilityBatch: "changeMessageVisibilityBatch",
  GetQueueAttributes: "getQueueAttributes",
} as const;

function fauxqsRoot(): string {
  const require = createRequire(import.meta.url);
  for (const dir of require.resolve.paths("fauxqs") ?? []) {
    if (existsSync(join(dir, "fauxqs", "package.json"))) return realpathSync(join(dir, "fauxqs"));
  }
  throw new Error("fauxqs is not installed");
}

async function loadInternals(): Promise<FauxqsInternals> {
  const root = fauxqsRoot();
  const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
  // The direct path repeats what these versions' handlers answer; another version needs them read again.
  if (version !== FAUXQS_VERSION) throw new Error(`the stand-in's direct path mirrors fauxqs ${FAUXQS_VERSION}, found ${version}`);
  const load = async (path: string): Promise<Record<string, unknown>> =>
    (await import(pathToFileURL(join(root, "dist", path)).href)) as Record<string, unknown>;
  const [s3, sqs, sns, errors] = await Promise.all([load("s3/s3Store.js"), load("sqs/sqsStore.js"), load("sns/snsStore.js"), load("common/errors.js")]);
  const sqsActions = new Map<string, SqsAction>();
  for (const [operation, name] of Object.entries(DIRECT_SQS)) {
    sqsActions.set(operation, (await load(`sqs/actions/${name}.js`))[name] as SqsAction);
  }
  const construct = <T>(ctor: unknown): T => new (ctor as new () => T)();
  return {
    s3Store: construct<FauxqsS3Store>(s3["S3Store"]),
    sqsStore: construct<object>(sqs["SqsStore"]),
    snsStore: construct<object>(sns["SnsStore"]),
    S3Error: errors["S3Error"] as FauxqsInternals["S3Error"],
    SqsError: errors["SqsError"] as FauxqsInternals["SqsError"],
    sqsActions,
  };
}

// ---- the direct S3 path ------------------------------------------------------------------------------------------

// /bucket/key with nothing to decode or normalise: fastify's router would hand fauxqs the same bucket and key.
const PLAIN_KEY_PATH = /^\/([a-z0-9][a-z0-9.-]*)\/([A-Za-z0-9._~/-]+)$/;
// The SDK's operation marker is the only query parameter fauxqs's GetObject/PutObject route may ignore.
const PLAIN_QUERY = /^(x-id=[A-Za-z]+)?$/;
// Request headers after which fauxqs's getObject may answer other than 200 with the whole object (If-Match and
// If-None-Match are evaluated here, as it does: a plain comparison with the ETag).
const GET_MODIFIERS = ["if-modified-since", "if-unmodified-since", "range"];
// Its app parses these content types itself (SQS JSON, SNS form) instead of handing PutObject the bytes.
const PARSED_CONTENT_TYPE = /x-amz-json|x-www-form-urlencoded/i;
const FAUXQS_BODY_LIMIT = 11 * 1_048_576;

function headerText(value: http.OutgoingHttpHeader | undefined): string | undefined {
  return value === undefined ? undefined : Array.isArray(value) ? value.join(", ") : String(value);
}

function plainKey(path: string): { bucket: string; key: string } | undefined {
  const q = path.indexOf("?");
  if (q !== -1 && !PLAIN_QUERY.test(path.slice(q + 1))) return undefined;
  const m = PLAIN_KEY_PATH.exec(q === -1 ? path : path.slice(0, q));
  if (!m) return undefined;
  const key = m[2]!;
  if (key.split("/").some((segment) => segment === "" || segment === "." || segment === "..")) return undefined;
  return { bucket: m[1]!, key };
}

/**
 * fauxqs's GetObject (s3/actions/getObject.js) of an existing object whose ETag conditions hold, without date
 * conditions or range: 200 and the bytes. A 304 or 412 is left to its HTTP route.
 */
function directGet(store: FauxqsS3Store, S3Error: FauxqsInternals["S3Error"], target: { bucket: string; key: string }, req: UpstreamRequest): BufferedAnswer | undefined {
  if (GET_MODIFIERS.some((name) => req.headers[name] !== undefined)) return undefined;
  let object: FauxqsObject;
  try {
    object = store.getObject(target.bucket, target.key);
  } catch (error) {
    // NoSuchBucket / NoSuchKey: its error answer comes from the HTTP route.
    if (error instanceof S3Error) return undefined;
    throw error;
  }
  // Its tests, truthiness included (an empty header is no condition).
  const ifNoneMatch = headerText(req.headers["if-none-match"]);
  if (ifNoneMatch && ifNoneMatch === object.etag) return undefined;
  const ifMatch = headerText(req.headers["if-match"]);
  if (ifMatch && ifMatch !== object.etag) return undefined;
  const headers: http.IncomingHttpHeaders = {
    "content-type": object.contentType,
    etag: object.etag,
    "last-modified": object.lastModified.toUTCString(),
  };
  for (const [name, value] of Object.entries(object.metadata)) headers[`x-amz-meta-${name}`] = value;
  headers["content-length"] = String(object.contentLength);
  return { status: 200, headers, body: object.body };
}

/** fauxqs's PutObject (s3/actions/putObject.js) of bytes into an existing bucket: 200 with the ETag. */
function directPut(store: FauxqsS3Store, target: { bucket: string; key: string }, req: UpstreamRequest): BufferedAnswer | undefined {
  const contentType = headerText(req.headers["content-type"]);
  const body = req.body;
  // Without a content type, an empty body or one past its limit, fastify decides before the action does.
  if (contentType === undefined || PARSED_CONTENT_TYPE.test(contentType) || body === undefined || body.length === 0 || body.length > FAUXQS_BODY_LIMIT) {
    return undefined;
  }
  if (req.headers["x-amz-copy-source"] !== undefined || headerText(req.headers["content-encoding"])?.includes("aws-chunked")) return undefined;
  if (!store.hasBucket(target.bucket)) return undefined;
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    const text = headerText(value);
    if (name.toLowerCase().startsWith("x-amz-meta-") && text) metadata[name.toLowerCase().slice("x-amz-meta-".length)] = text;
  }
  // A copy, as fastify's body parser makes: the request's buffer may be a view of a larger socket read.
  const object = store.putObject(target.bucket, target.key, Buffer.from(body), contentType, metadata);
  return { status: 200, headers: { etag: object.etag, "content-length": "0" }, body: Buffer.alloc(0) };
}

function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error("The operation was aborted"), { name: "AbortError", code: "ABORT_ERR", cause: signal.reason as unknown });
}

/** A JSON round trip: what crossing fauxqs's HTTP did to a request or an answer (no shared objects, undefined dropped). */
function overTheWire(value: unknown): Record<string, unknown> {
  const text = JSON.stringify(value);
  return text === undefined ? {} : (JSON.parse(text) as Record<string, unknown>);
}

export async function startUpstream(options: { region: string }): Promise<Upstream> {
  const internals = await loadInternals();
  const { s3Store, sqsStore, S3Error, SqsError, sqsActions } = internals;
  const stores = { s3Store, sqsStore, snsStore: internals.snsStore } as unknown as NonNullable<NonNullable<Parameters<typeof buildApp>[0]>["stores"]>;
  const app = buildApp({ logger: false, defaultRegion: options.region, stores });
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

  const direct = (req: UpstreamRequest): BufferedAnswer | undefined => {
    // A request whose caller has gone is refused by http.request before fauxqs sees it: left to that path.
    if ((req.method !== "GET" && req.method !== "PUT") || req.signal?.aborted) return undefined;
    const target = plainKey(req.path);
    if (target === undefined) return undefined;
    return req.method === "GET" ? directGet(s3Store, S3Error, target, req) : directPut(s3Store, target, req);
  };

  const httpSqs = async (operation: string, input: Record<string, unknown>, signal?: AbortSignal): Promise<SqsCallResult> => {
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
  };

  /** What fauxqs's SqsRouter.handle answers, without its HTTP. */
  const directSqs = async (action: SqsAction, input: Record<string, unknown>, signal?: AbortSignal): Promise<SqsCallResult> => {
    // An aborted request never reaches fauxqs.
    if (signal?.aborted) throw abortError(signal);
    const json = { "content-type": "application/x-amz-json-1.0" };
    try {
      const result = action(overTheWire(input), sqsStore);
      const settled = result instanceof Promise ? await raceAbort(result as Promise<unknown>, signal, abortError) : result;
      return { status: 200, headers: json, json: overTheWire(settled) };
    } catch (error) {
      if (error instanceof SqsError) {
        return { status: error.statusCode, headers: { ...json, "x-amzn-query-error": error.queryErrorHeader }, json: overTheWire(error.toJSON()) };
      }
      if ((error as { name?: unknown }).name === "AbortError") throw error;
      // fastify's answer to a handler that threw something else.
      return {
        status: 500,
        headers: { "content-type": "application/json; charset=utf-8" },
        json: { statusCode: 500, error: "Internal Server Error", message: error instanceof Error ? error.message : String(error) },
      };
    }
  };

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    // fauxqs builds queue URLs from its default host "localhost" and the port of the request's Host header.
    queueUrlBase: `http://sqs.${options.region}.localhost:${port}`,
    request,
    direct,
    sqs(operation, input, signal) {
      const action = sqsActions.get(operation);
      return action === undefined ? httpSqs(operation, input, signal) : directSqs(action, input, signal);
    },
    async close() {
      agent.destroy();
      await app.close();
    },
  };
}
