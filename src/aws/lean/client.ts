/**
 * The lean transport's request engine: SigV4 (sigv4.ts, one signer per service, its signing key derived once per
 * secret and day) over one keep-alive node:http(s) Agent, the SDK's standard retry strategy (@smithy/core/retry), clock-skew
 * correction from the server's Date, connection and socket idle timeouts, and AbortSignal. The service modules
 * (sqs.ts, s3.ts) build requests and read answers; errors come out in the SDK's shape (errors.ts).
 */
import type { Agent as HttpAgentType, ClientRequest, IncomingHttpHeaders, IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import {
  StandardRetryStrategy,
  isClockSkewError,
  isServerError,
  isThrottlingError,
  isTransientError,
} from "@smithy/core/retry";
import type { AwsCredentialIdentityProvider, RetryErrorInfo, RetryErrorType, StandardRetryBackoffStrategy, StandardRetryToken } from "@smithy/types";
import { raceAbort } from "./race-abort.js";
import { SigV4Signer } from "./sigv4.js";
import { ERROR_BODY_LIMIT, LeanAbortError, LeanResponseError, LeanTimeoutError, type LeanMetadata, type LeanServiceError } from "./errors.js";

// Not `import … from "node:http"`: an ES import of node:http reads all its exports, and its WebSocket getter loads
// undici (~7 MB RSS, measured) that the daemon never uses. getBuiltinModule returns the same module without that.
const { Agent: HttpAgent, request: httpRequest } = process.getBuiltinModule("node:http");

/** A parsed endpoint: where requests go and what Host they sign. */
export interface Target {
  protocol: "http:" | "https:";
  hostname: string;
  port: number | undefined;
  /** The Host header: hostname, plus :port when it is not the protocol's default. */
  host: string;
}

export function targetOf(url: URL, hostname = url.hostname): Target {
  const protocol = url.protocol === "http:" ? "http:" : "https:";
  const port = url.port === "" ? undefined : Number(url.port);
  // URL keeps IPv6 literals bracketed in hostname; node:http wants them bare, Host wants them bracketed.
  const bare = hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;
  return { protocol, hostname: bare, port, host: port === undefined ? hostname : `${hostname}:${port}` };
}

export interface ServiceSpec {
  /** Signing name: "s3" or "sqs". */
  name: "s3" | "sqs";
  /** Builds the SDK-shaped error of a non-2xx answer from its (capped) body. */
  error(status: number, headers: IncomingHttpHeaders, body: Buffer, metadata: LeanMetadata): LeanServiceError;
}

export interface LeanRequest {
  service: ServiceSpec;
  target: Target;
  method: "GET" | "PUT" | "POST" | "DELETE";
  /** Encoded path, without a query string (none of the transport's calls has one; the signer refuses it). */
  path: string;
  headers: Record<string, string>;
  /** Strings and bytes are replayed on a retry; a Readable is not once its first byte was read. */
  body?: string | Uint8Array;
  /** A stream body: called once the socket is connected to pipe it into the request; returns the source it reads. */
  stream?: (request: ClientRequest) => Readable;
  signal?: AbortSignal;
  /** At most this many attempts (below the client's own limit). */
  maxAttempts?: number;
}

export interface BufferedResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface StreamedResponse {
  status: number;
  headers: IncomingHttpHeaders;
  response: IncomingMessage;
  request: ClientRequest;
  /** Stops watching the request (abort and timeout listeners): call when the body is done. */
  release(): void;
  /** Makes an abort or a socket timeout destroy this stream (the caller's body) with the error. */
  attach(body: { destroy(error?: Error): void }): void;
}

export interface ClientOptions {
  credentials: AwsCredentialIdentityProvider;
  region: string;
  maxSockets: number;
  connectionTimeoutMs: number;
  requestTimeoutMs: number;
  maxAttempts: number;
  clock: () => number;
  random: () => number;
  /** Largest successful body read into memory (SQS answers); a larger one fails as UnexpectedResponse. */
  maxBodyBytes?: number;
}

/** Retry-After / skew checks: the SDK's window for treating a Date as a clock-skew correction. */
export const CLOCK_SKEW_THRESHOLD_MS = 240_000;
const DEFAULT_MAX_BODY = 32 * 1024 * 1024;

/** Jittered exponential backoff like the SDK's DefaultRetryBackoffStrategy, with an injectable random source. */
class Backoff implements StandardRetryBackoffStrategy {
  private base = 50;
  constructor(private readonly random: () => number) {}
  computeNextBackoffDelay(i: number): number {
    return Math.floor(this.random() * Math.min(this.base * 2 ** i, 20_000));
  }
  setDelayBase(delay: number): void {
    this.base = delay;
  }
}

/** The SDK's retry classification (retryMiddleware's getRetryErrorType). */
export function retryErrorType(error: unknown): RetryErrorType {
  const e = error as Parameters<typeof isThrottlingError>[0];
  if (isThrottlingError(e)) return "THROTTLING";
  if (isTransientError(e)) return "TRANSIENT";
  if (isServerError(e)) return "SERVER_ERROR";
  return "CLIENT_ERROR";
}

/** A Retry-After header as a Date (seconds or an HTTP date), as the SDK's parseRetryAfterHeader. */
export function retryAfterHint(value: string | undefined, now: number): Date | undefined {
  if (value === undefined || value === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return new Date(now + seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : new Date(date);
}

function abortError(signal: AbortSignal): LeanAbortError {
  return new LeanAbortError(signal.reason);
}

function headerString(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return typeof value === "string" ? value : undefined;
}

/** Marks an error as having come from a failure we must not retry (the credentials provider, a consumed stream). */
const NO_RETRY = Symbol("no-retry");

export class LeanClient {
  private readonly signers: Map<string, SigV4Signer> = new Map();
  private readonly httpAgent: HttpAgentType;
  private readonly httpsAgent: HttpsAgent;
  private readonly retry: StandardRetryStrategy;
  /** Server time minus local time, once they differed by more than CLOCK_SKEW_THRESHOLD_MS. */
  private clockOffset = 0;
  private readonly maxBody: number;

  constructor(private readonly options: ClientOptions) {
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets, scheduling: "lifo" as const };
    this.httpAgent = new HttpAgent(agentOptions);
    this.httpsAgent = new HttpsAgent(agentOptions);
    this.retry = new StandardRetryStrategy({ maxAttempts: options.maxAttempts, backoff: new Backoff(options.random) });
    this.maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  }

  /** The signer of a service (S3 signs the path as sent; other services URI-encode it once more). */
  signer(service: "s3" | "sqs"): SigV4Signer {
    let signer = this.signers.get(service);
    if (signer === undefined) {
      signer = new SigV4Signer({ service, region: this.options.region, credentials: this.options.credentials, uriEscapePath: service !== "s3" });
      this.signers.set(service, signer);
    }
    return signer;
  }

  /** The corrected time (local clock plus the server offset). */
  now(): number {
    return this.options.clock() + this.clockOffset;
  }

  get systemClockOffset(): number {
    return this.clockOffset;
  }

  /** Updates the offset from an answer's Date header; true when it moved. */
  private sampleClock(date: string | undefined): boolean {
    if (date === undefined) return false;
    const server = Date.parse(date);
    if (Number.isNaN(server)) return false;
    const local = this.options.clock();
    if (Math.abs(server - (local + this.clockOffset)) < CLOCK_SKEW_THRESHOLD_MS) return false;
    this.clockOffset = server - local;
    return true;
  }

  destroy(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /** Sends with retries; resolves with the whole (bounded) body of a 2xx answer. */
  async send(request: LeanRequest): Promise<BufferedResponse> {
    return this.withRetries(request, async (metadata) => {
      const exchange = await this.exchange(request, metadata);
      // An abort or a socket timeout while the body is read fails the read with that error.
      exchange.attach(exchange.response);
      try {
        const body = await this.readBody(exchange.response, this.maxBody, request.signal);
        if (body === undefined) {
          throw new LeanResponseError(`The ${request.service.name} answer's body exceeds ${this.maxBody} bytes`, {
            ...metadata,
            httpStatusCode: exchange.status,
          });
        }
        // A 2xx that came before the request body was all sent: node keeps the socket until the body ends, which a
        // stream body whose reader has stopped never does, and the pool would lose that socket for good.
        if (!exchange.request.writableFinished) exchange.request.destroy();
        return { status: exchange.status, headers: exchange.headers, body };
      } finally {
        exchange.release();
      }
    });
  }

  /** Sends with retries; resolves once a 2xx answer's headers arrived, its body still to be read. */
  async open(request: LeanRequest): Promise<StreamedResponse> {
    return this.withRetries(request, (metadata) => this.exchange(request, metadata));
  }

  private async withRetries<T>(request: LeanRequest, attempt: (metadata: LeanMetadata) => Promise<T>): Promise<T> {
    const { signal } = request;
    if (signal?.aborted) throw abortError(signal);
    let token: StandardRetryToken = await this.retry.acquireInitialRetryToken(request.service.name);
    let attempts = 0;
    let totalRetryDelay = 0;
    let skewRetried = false;
    for (;;) {
      attempts++;
      const metadata: LeanMetadata = { attempts, totalRetryDelay };
      try {
        const result = await attempt(metadata);
        this.retry.recordSuccess(token);
        return result;
      } catch (err) {
        if (signal?.aborted) throw abortError(signal);
        if (typeof err !== "object" || err === null || (err as Record<symbol, unknown>)[NO_RETRY] === true) {
          if (typeof err === "object" && err !== null) delete (err as Record<symbol, unknown>)[NO_RETRY];
          throw err;
        }
        const e = err as Error & { $metadata?: LeanMetadata; retryAfter?: string };
        if (e.$metadata === undefined) e.$metadata = metadata;
        else {
          e.$metadata.attempts = attempts;
          e.$metadata.totalRetryDelay = totalRetryDelay;
        }
        // A call limited to fewer attempts (a long poll: the receive loop retries it) ends here.
        if (request.maxAttempts !== undefined && attempts >= request.maxAttempts) throw e;
        // A skew error is retried once, and only when this answer moved the clock offset.
        if (e.$metadata.clockSkewCorrected === true) {
          if (skewRetried || !isClockSkewError(e as Parameters<typeof isClockSkewError>[0])) delete e.$metadata.clockSkewCorrected;
          else skewRetried = true;
        }
        const info: RetryErrorInfo = { errorType: retryErrorType(e) };
        const hint = retryAfterHint(e.retryAfter, Date.now());
        if (hint !== undefined) info.retryAfterHint = hint;
        const before = Date.now();
        try {
          token = await raceAbort(this.retry.refreshRetryTokenForRetry(token, info), signal, abortError);
        } catch (refusal) {
          if (refusal instanceof LeanAbortError) throw refusal;
          throw e;
        }
        totalRetryDelay += Date.now() - before;
        if (signal?.aborted) throw abortError(signal);
      }
    }
  }

  /** One attempt: signs, sends, waits for the headers; a non-2xx answer is read (capped) and thrown as an error. */
  private async exchange(request: LeanRequest, metadata: LeanMetadata): Promise<StreamedResponse> {
    const { target, signal } = request;
    const headers: Record<string, string> = { ...request.headers, host: target.host };
    if (request.body !== undefined) headers["content-length"] = String(Buffer.byteLength(request.body));
    let signed: Record<string, string>;
    try {
      // Raced: a slow credentials refresh (IMDS) must not hold an aborted call (a shutdown) until it resolves.
      // S3 requests name their payload's hash in x-amz-content-sha256; an SQS body is hashed by the signer.
      const input = { method: request.method, path: request.path, headers, ...(request.body !== undefined && { body: request.body }) };
      signed = await raceAbort(this.signer(request.service.name).sign(input, this.now()), signal, abortError);
    } catch (err) {
      if (err instanceof LeanAbortError) throw err;
      // The credentials provider's failure, unchanged: the daemon classifies it.
      if (typeof err === "object" && err !== null) (err as Record<symbol, unknown>)[NO_RETRY] = true;
      throw err;
    }
    if (signal?.aborted) throw abortError(signal);
    return new Promise<StreamedResponse>((resolve, reject) => {
      const send = target.protocol === "https:" ? httpsRequest : httpRequest;
      const req = send({
        agent: target.protocol === "https:" ? this.httpsAgent : this.httpAgent,
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        method: request.method,
        path: request.path,
        headers: signed,
        timeout: this.options.requestTimeoutMs,
      });
      let settled = false;
      let attached: { destroy(error?: Error): void } | undefined;
      // A failure after the 2xx was handed over but before its body was attached (a parse error on bytes after the
      // answer): node dumps the unread body then, so the body attached later must fail with it, not wait or end empty.
      let lateError: Error | undefined;
      let connectTimer: NodeJS.Timeout | undefined;
      let source: Readable | undefined;
      const fail = (error: Error): void => {
        if (connectTimer !== undefined) clearTimeout(connectTimer);
        if (source !== undefined) {
          source.unpipe();
          if (source.readableDidRead) (error as unknown as Record<symbol, unknown>)[NO_RETRY] = true;
        }
        if (attached !== undefined) attached.destroy(error);
        else if (settled) lateError ??= error;
        req.destroy(error);
        if (!settled) {
          settled = true;
          cleanup();
          reject(error);
        }
      };
      const onAbort = (): void => fail(abortError(signal!));
      const onTimeout = (): void => fail(new LeanTimeoutError(`No data for ${this.options.requestTimeoutMs} ms (socket idle timeout)`));
      const cleanup = (): void => {
        signal?.removeEventListener("abort", onAbort);
        req.off("timeout", onTimeout);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      req.on("timeout", onTimeout);
      req.on("error", (error) => fail(error));
      req.once("socket", (socket: Socket) => {
        const start = (): void => {
          if (connectTimer !== undefined) clearTimeout(connectTimer);
          connectTimer = undefined;
          if (request.stream !== undefined && !settled) source = request.stream(req);
        };
        if (socket.connecting) {
          connectTimer = setTimeout(
            () => fail(new LeanTimeoutError(`Connection not established within ${this.options.connectionTimeoutMs} ms`)),
            this.options.connectionTimeoutMs,
          );
          socket.once("connect", start);
        } else start();
      });
      req.once("response", (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        const resHeaders = res.headers;
        const skewMoved = this.sampleClock(headerString(resHeaders, "date"));
        metadata.httpStatusCode = status;
        const requestId = headerString(resHeaders, "x-amzn-requestid") ?? headerString(resHeaders, "x-amz-request-id");
        if (requestId !== undefined) metadata.requestId = requestId;
        const extendedRequestId = headerString(resHeaders, "x-amz-id-2");
        if (extendedRequestId !== undefined) metadata.extendedRequestId = extendedRequestId;
        if (status >= 200 && status < 300) {
          settled = true;
          resolve({
            status,
            headers: resHeaders,
            response: res,
            request: req,
            release: cleanup,
            attach: (body) => {
              attached = body;
              if (lateError !== undefined) body.destroy(lateError);
            },
          });
          return;
        }
        // An error answer: read at most ERROR_BODY_LIMIT of it, then build the service's error.
        this.readBody(res, ERROR_BODY_LIMIT, undefined, true).then(
          (body) => {
            if (settled) return;
            const error = request.service.error(status, resHeaders, body ?? Buffer.alloc(0), metadata);
            if (skewMoved) error.$metadata.clockSkewCorrected = true;
            const retryAfter = headerString(resHeaders, "retry-after");
            if (retryAfter !== undefined) error.retryAfter = retryAfter;
            settled = true;
            cleanup();
            if (source !== undefined) {
              source.unpipe();
              if (source.readableDidRead) (error as unknown as Record<symbol, unknown>)[NO_RETRY] = true;
            }
            // The request body may still be unsent (an early error answer): the socket is not reusable then.
            if (!req.writableFinished) req.destroy();
            reject(error);
          },
          (error: unknown) => fail(error as Error),
        );
      });
      if (request.stream === undefined) req.end(request.body);
    });
  }

  /**
   * Reads a body into one Buffer, at most `limit` bytes. Over the limit: `truncate` keeps the first `limit` bytes
   * (an error body) and drops the connection, else resolves undefined.
   */
  private readBody(res: IncomingMessage, limit: number, signal?: AbortSignal, truncate = false): Promise<Buffer | undefined> {
    return new Promise<Buffer | undefined>((resolve, reject) => {
      if (res.destroyed || res.readableEnded) {
        // Already consumed or destroyed (node dumps a body whose request failed): its bytes are gone.
        reject(res.errored ?? Object.assign(new Error("The answer's body was lost before it was read"), { code: "ECONNRESET" }));
        return;
      }
      const chunks: Buffer[] = [];
      let length = 0;
      let done = false;
      const finish = (value: Buffer | undefined, error?: Error): void => {
        if (done) return;
        done = true;
        res.off("data", onData);
        if (error !== undefined) reject(error);
        else resolve(value);
      };
      const onData = (chunk: Buffer): void => {
        if (length + chunk.length > limit) {
          if (truncate) chunks.push(chunk.subarray(0, limit - length));
          length = limit;
          res.destroy();
          finish(truncate ? Buffer.concat(chunks) : undefined);
          return;
        }
        chunks.push(chunk);
        length += chunk.length;
      };
      res.on("data", onData);
      res.once("end", () => finish(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length)));
      res.once("error", (error) => finish(undefined, signal?.aborted ? abortError(signal) : error));
      res.once("close", () => {
        if (!res.complete) finish(undefined, signal?.aborted ? abortError(signal) : Object.assign(new Error("The answer's body ended early"), { code: "ECONNRESET" }));
      });
    });
  }
}
