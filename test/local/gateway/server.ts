// The gateway: one HTTP server on 127.0.0.1 in front of fauxqs. Every request is authenticated (SigV4 against the
// credentials the identities module issued), routed by its credential scope's service, authorized against the
// principal's IAM policies, then answered here (STS, EC2) or forwarded to fauxqs (S3, SQS). Errors come back in
// each protocol's native format; objects created in a configured bucket produce S3 event notifications.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { pipeline } from "node:stream/promises";
import { setTimeout as delay } from "node:timers/promises";
import { evaluate } from "../iam/index.js";
import type { IamDirectory } from "../iam/directory.js";
import {
  AwsError,
  authError,
  deniedMessage,
  hostId,
  renderError,
  type Protocol,
  type Service,
} from "./errors.js";
import { evaluateWriteConditions, parseWriteConditions } from "./conditional-write.js";
import { Faults, type FaultDecision, type FaultService } from "./faults.js";
import { answerIam, iamAuthorization } from "./iam-service.js";
import type { Identities, Principal } from "./identities.js";
import { KeyLock } from "./key-lock.js";
import {
  Sequencer,
  newRequestId,
  objectEvent,
  ownerIdFor,
  ruleMatches,
  testEvent,
  type CreatedEventName,
  type NotificationRule,
  type RemovedEventName,
} from "./notifications.js";
import { classifyS3, deleteObjectsKeys, type S3Check, type S3Operation } from "./s3-operations.js";
import { ReceiptHandles, invalidHandleError, markRefusedEntries, unwrapRequest, wrapReceived } from "./receipt-handles.js";
import { headerMap, parseAuthorization, parseQuery, verifySigV4, type VerifyOptions } from "./sigv4.js";
import { QueueTranslator, parseQueueUrl, sqsAuthorization } from "./sqs.js";
import { sendSizeError } from "./sqs-limits.js";
import { jsonToQueryXml, parseForm, queryToJson } from "./sqs-query.js";
import { readAll, type SqsCallResult, type Upstream } from "./upstream.js";
import { escapeXml, firstTag } from "./xml.js";

export type DecisionOutcome = "allow" | "explicit-deny" | "implicit-deny" | "unauthenticated";

export interface DecisionEntry {
  time: string;
  service: Service | "unknown";
  operation: string;
  /** The caller's ARN; for unauthenticated requests the access key id, or "anonymous". */
  principal: string;
  action: string;
  resource: string;
  decision: DecisionOutcome;
  sid?: string;
  /** The error code sent, for denials and authentication failures. */
  code?: string;
}

export interface GatewayCounters {
  requests: number;
  /** Authorization denials (AccessDenied / UnauthorizedOperation), including the missing-key 403. */
  denied: number;
  /** Requests refused before authorization (bad signature, unknown key, expired token, skew…). */
  authFailures: number;
  /** Authorization checks per IAM action (allowed or not). */
  byAction: Record<string, number>;
  deniedByAction: Record<string, number>;
  /** S3 event notifications sent (test events included). */
  events: number;
  /** Unexpected gateway errors answered with 500. */
  internalErrors: number;
  /**
   * Messages made visible again because the ReceiveMessage that took them upstream had lost its caller (a long poll
   * whose client disconnected): fauxqs cannot tell, and would otherwise hide them for the visibility timeout.
   */
  abandonedReceivesReleased: number;
  /** With `abandonedReceives: "keep"`: messages such a poll took and left hidden, as SQS does. */
  abandonedReceivesKept: number;
  /** Now (not reset): ReceiveMessage calls forwarded to fauxqs whose answer is not yet sent or released. */
  receivesOpen: number;
  /** Now (not reset): of `receivesOpen`, those whose caller has gone; their messages will be released. */
  receivesAbandoned: number;
}

/** The gauges of GatewayCounters, read from live state rather than counted. */
type Gauges = "receivesOpen" | "receivesAbandoned";

export interface GatewayOptions {
  identities: Identities;
  upstream: Upstream;
  region: string;
  /** The account callers see; default the identities' account. */
  accountId?: string;
  port?: number;
  /** Called for every authorization decision and authentication failure. */
  logger?: (entry: DecisionEntry) => void;
  faults?: Faults;
  /** Request bodies are buffered up to this size (the emulator refuses more than 11 MiB in one request anyway). */
  maxBodyBytes?: number;
  /** How many decisions `decisions` keeps (oldest dropped first). */
  decisionLogLimit?: number;
  /** Unexpected errors (answered 500); default: ignored apart from the counter. */
  onError?: (error: unknown) => void;
  /** Roles and policies the IAM read and simulation calls answer from; without it, IAM calls are refused. */
  iam?: IamDirectory;
  /**
   * What becomes of the messages a long poll took after its caller disconnected. "release" (default) makes them
   * visible again at once, so a killed test daemon cannot hide messages from the next case; "keep" leaves them hidden
   * for their visibility timeout, as SQS does (aws/aws-sdk-js#2350), for tests of a consumer's own stop.
   */
  abandonedReceives?: "release" | "keep";
}

export interface Gateway {
  url: string;
  port: number;
  accountId: string;
  region: string;
  faults: Faults;
  translator: QueueTranslator;
  /** Recent decisions, oldest first (a live view). */
  readonly decisions: readonly DecisionEntry[];
  counters(): GatewayCounters;
  /** Clears counters and the decision log. */
  resetCounters(): void;
  /** Starts sending S3 events for `rule`, after an s3:TestEvent to its queue as S3 does when the rule is saved. */
  addNotification(rule: NotificationRule): Promise<void>;
  close(): Promise<void>;
}

interface Context {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  requestId: string;
  service: Service;
  protocol: Protocol;
  principal: Principal;
  operation: string;
  method: string;
  rawPath: string;
  rawQuery: string;
  headers: Map<string, string>;
  payload: Buffer;
  /** Aborted when the caller goes away (or the gateway closes), so upstream work for it ends too. */
  signal: AbortSignal;
}

const KNOWN_SERVICES = new Set<string>(["s3", "sqs", "sts", "ec2", "iam"]);
const MAX_BODY = 16 * 1024 * 1024;
const EMULATOR_BODY_LIMIT = 11 * 1024 * 1024;
// GetObject answers up to this size are read whole and sent in one write; larger ones stream.
const BUFFERED_GET_MAX = 256 * 1024;
// Headers that describe the client's framing or signature; the forwarded request has its own.
const NOT_FORWARDED = new Set([
  "authorization",
  "x-amz-security-token",
  "x-amz-content-sha256",
  "x-amz-decoded-content-length",
  "x-amz-trailer",
  "transfer-encoding",
  "content-length",
  "host",
  "connection",
  "keep-alive",
  "expect",
  // The SDK's bookkeeping, which fauxqs never reads: fewer headers to write and parse on the hop.
  "x-amz-date",
  "user-agent",
  "x-amz-user-agent",
  "amz-sdk-invocation-id",
  "amz-sdk-request",
]);
const NOT_RETURNED = new Set(["connection", "keep-alive", "transfer-encoding", "date", "x-amz-request-id", "x-amz-id-2"]);
// Requests that replace or remove the object under a key: one at a time per key, so a write condition evaluated here
// still holds when the write lands.
const KEY_WRITES = new Set(["PutObject", "CopyObject", "CompleteMultipartUpload", "DeleteObject"]);
// Those that take If-Match / If-None-Match (fauxqs ignores both on writes).
const CONDITIONAL_WRITES = new Set(["PutObject", "CopyObject", "CompleteMultipartUpload"]);

// What fauxqs answers for a handle it does not know (ChangeMessageVisibility); DeleteMessage just succeeds.
const NO_SUCH_HANDLE = new Set(["MessageNotInflight", "ReceiptHandleIsInvalid"]);

const isSuccess = (status: number): boolean => status >= 200 && status < 300;

let dateCache = { second: -1, text: "" };
/** The Date header's value, formatted once per second. */
function httpDate(): string {
  const second = Math.floor(Date.now() / 1000);
  if (dateCache.second !== second) dateCache = { second, text: new Date(second * 1000).toUTCString() };
  return dateCache.text;
}

const newCounters = (): Omit<GatewayCounters, Gauges> => ({
  requests: 0,
  denied: 0,
  authFailures: 0,
  byAction: {},
  deniedByAction: {},
  events: 0,
  internalErrors: 0,
  abandonedReceivesReleased: 0,
  abandonedReceivesKept: 0,
});

class BodyTooLarge extends Error {}

/** The request body, or BodyTooLarge past `limit` (events rather than an async iterator: this runs per request). */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  if (req.complete) {
    // Parsed whole already (a small request usually is): taken from the stream's buffer, without five listeners.
    const data = (req.read() as Buffer | null) ?? Buffer.alloc(0);
    if (data.length <= limit) return Promise.resolve(data);
    req.pause();
    return Promise.reject(new BodyTooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("close", onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    // A caller gone before the end: what the async iterator reported as a premature close.
    const onClose = (): void => {
      if (req.readableEnded) return;
      cleanup();
      reject(Object.assign(new Error("Premature close"), { code: "ERR_STREAM_PREMATURE_CLOSE" }));
    };
    req.on("data", onData);
    req.on("end", onEnd);
    // Left in place once settled: a late error must not go unhandled (the promise ignores a second outcome).
    req.on("error", onError);
    req.on("close", onClose);
  });
}

/** Without a usable Authorization header, guess the protocol from the request so the error is still native. */
function guessService(req: http.IncomingMessage, headers: Map<string, string>, body: Buffer): Service {
  if (headers.get("x-amz-target")?.startsWith("AmazonSQS.")) return "sqs";
  if (req.method === "POST" && req.url?.split("?")[0] === "/" && headers.get("content-type")?.includes("x-www-form-urlencoded")) {
    const version = parseForm(body.toString("utf8")).get("Version");
    if (version === "2012-11-05") return "sqs";
    if (version === "2011-06-15") return "sts";
    if (version === "2010-05-08") return "iam";
    return "ec2";
  }
  return "s3";
}

function protocolOf(service: Service, headers: Map<string, string>): Protocol {
  if (service !== "sqs") return service;
  return headers.get("content-type")?.includes("x-amz-json") ? "sqs-json" : "sqs-query";
}

/** Unquoted ETags in conditions are quoted for fauxqs, which compares them literally (S3 accepts both forms). */
function quoteEtagCondition(value: string): string {
  return value
    .split(",")
    .map((v) => v.trim())
    .map((v) => (v === "*" || v.startsWith('"') || v.startsWith('W/"') ? v : `"${v}"`))
    .join(", ");
}

function forwardedHeaders(headers: Map<string, string>): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of headers) {
    if (NOT_FORWARDED.has(name) || name.startsWith("x-amz-checksum-")) continue;
    if (name === "content-encoding") {
      const rest = value
        .split(",")
        .map((v) => v.trim())
        .filter((v) => v !== "" && v !== "aws-chunked");
      if (rest.length > 0) out[name] = rest.join(", ");
      continue;
    }
    out[name] = /^(x-amz-copy-source-)?if-(none-)?match$/.test(name) ? quoteEtagCondition(value) : value;
  }
  return out;
}

function encodeKeyPath(bucket: string, key: string): string {
  return `/${encodeURIComponent(bucket)}/${key.split("/").map(encodeURIComponent).join("/")}`;
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { identities, upstream, region } = options;
  const accountId = options.accountId ?? identities.accountId;
  const faults = options.faults ?? new Faults();
  const maxBody = options.maxBodyBytes ?? MAX_BODY;
  const logLimit = options.decisionLogLimit ?? 10_000;
  const decisions: DecisionEntry[] = [];
  let counters = newCounters();
  const rules: NotificationRule[] = [];
  const sequencer = new Sequencer();
  const ownerId = ownerIdFor(accountId);
  let url = "";
  // Requests still running (long polls), aborted by close() so nothing upstream outlives the gateway.
  const inFlight = new Set<AbortController>();
  // ReceiveMessage calls waiting on fauxqs, with their caller's signal (aborted once the caller has gone).
  const openReceives = new Set<AbortSignal>();
  let closing = false;
  const writeLocks = new KeyLock();
  const receiptHandles = new ReceiptHandles();
  const translator = new QueueTranslator({ region, accountId, gatewayBase: () => url, upstreamBase: upstream.queueUrlBase });

  // The same for every request but the clock (built once: closures made per request showed in profiles).
  const verifyOptions: Omit<VerifyOptions, "now"> = {
    lookup: (key) => identities.lookup(key),
    isExpired: (record) => identities.isExpired(record),
    // STS and EC2 accept any region here; S3 and SQS resources live in the configured one.
    expectedRegion: (s) => (s === "s3" || s === "sqs" ? region : undefined),
  };

  function record(entry: DecisionEntry): void {
    decisions.push(entry);
    // shift() drops the oldest in constant time (V8 trims the array's start); splice(0, n) moved every entry, which
    // made each request cost O(limit) once the log was full.
    while (decisions.length > logLimit) decisions.shift();
    options.logger?.(entry);
  }

  function send(ctx: Pick<Context, "res" | "method">, status: number, headers: Record<string, string>, body: string | Buffer): void {
    const { res } = ctx;
    if (res.headersSent || res.destroyed) return;
    const data = typeof body === "string" ? Buffer.from(body) : body;
    // HEAD answers carry no body, errors included (the SDK then names them by status).
    const withBody = ctx.method !== "HEAD";
    res.writeHead(status, { ...headers, ...(withBody && { "content-length": String(data.length) }) });
    res.end(withBody ? data : undefined);
  }

  function sendError(ctx: Pick<Context, "res" | "method" | "requestId">, protocol: Protocol, error: AwsError): void {
    const rendered = renderError(protocol, error, ctx.requestId);
    send(ctx, rendered.status, rendered.headers, rendered.body);
  }

  /** Evaluates one IAM check, logs and counts it. */
  function authorize(ctx: Context, action: string, resource: string): ReturnType<typeof evaluate> {
    // Resource policies are not modelled, so nothing is shared across accounts: a principal of another account is
    // refused what belongs to the configured one, as AWS would without a bucket or queue policy.
    const foreign =
      ctx.principal.accountId !== accountId && (ctx.service === "s3" || (ctx.service === "sqs" && resource !== "*"));
    const decision = foreign ? ({ effect: "implicit-deny" } as const) : evaluate(identities.policiesFor(ctx.principal), { action, resource });
    counters.byAction[action] = (counters.byAction[action] ?? 0) + 1;
    if (decision.effect !== "allow") {
      counters.denied += 1;
      counters.deniedByAction[action] = (counters.deniedByAction[action] ?? 0) + 1;
    }
    record({
      time: new Date().toISOString(),
      service: ctx.service,
      operation: ctx.operation,
      principal: ctx.principal.arn,
      action,
      resource,
      decision: decision.effect,
      ...("sid" in decision && decision.sid !== undefined && { sid: decision.sid }),
      ...(decision.effect !== "allow" && { code: ctx.service === "ec2" ? "UnauthorizedOperation" : "AccessDenied" }),
    });
    return decision;
  }

  function accessDenied(ctx: Context, action: string, resource: string, explicit: boolean): AwsError {
    const style = ctx.service === "s3" ? "s3" : ctx.service === "sqs" ? "sqs" : ctx.service === "ec2" ? "ec2" : "plain";
    const message = deniedMessage(ctx.principal.arn, action, resource, explicit, style);
    if (ctx.service === "ec2") return new AwsError("UnauthorizedOperation", message, 403);
    return new AwsError("AccessDenied", message, 403, ctx.service === "sqs" ? "AccessDenied" : undefined);
  }

  /** Runs the checks in order; sends AccessDenied for the first one refused and returns false. */
  function authorizeAll(ctx: Context, checks: readonly S3Check[]): boolean {
    for (const check of checks) {
      const decision = authorize(ctx, check.action, check.resource);
      if (decision.effect !== "allow") {
        sendError(ctx, ctx.protocol, accessDenied(ctx, check.action, check.resource, decision.effect === "explicit-deny"));
        return false;
      }
    }
    return true;
  }

  function faultError(service: FaultService, kind: "error" | "throttle"): AwsError {
    if (kind === "error") return new AwsError("InternalError", "We encountered an internal error. Please try again.", 500);
    if (service === "s3") return new AwsError("SlowDown", "Please reduce your request rate.", 503);
    if (service === "sqs") return new AwsError("RequestThrottled", "Request is throttled.", 503);
    return new AwsError("Throttling", "Rate exceeded", 503);
  }

  /** Applies an injected fault of `phase`; true when it answered (or dropped) the request. */
  async function applyFault(ctx: Context, fault: FaultDecision, phase: "before" | "after"): Promise<boolean> {
    if (phase === "before" && fault.latencyMs > 0) await delay(fault.latencyMs);
    if (!fault.kind || fault.phase !== phase) return false;
    if (fault.kind === "reset") {
      ctx.req.socket.destroy();
      return true;
    }
    sendError(ctx, ctx.protocol, faultError(ctx.service as FaultService, fault.kind));
    return true;
  }

  function decideFault(ctx: Context): FaultDecision {
    return ctx.service === "ec2" || ctx.service === "iam" ? { phase: "before", latencyMs: 0 } : faults.decide(ctx.service, ctx.operation);
  }

  // ---- S3 ----------------------------------------------------------------------------------------------------------

  async function emit(
    ctx: Context,
    eventName: CreatedEventName | RemovedEventName,
    bucket: string,
    key: string,
    size?: number,
    eTag?: string,
  ): Promise<void> {
    for (const rule of rules) {
      if (!ruleMatches(rule, bucket, key, eventName)) continue;
      const body = objectEvent({
        eventName,
        region,
        time: new Date(),
        bucket,
        bucketOwnerId: ownerId,
        key,
        ...(size !== undefined && { size }),
        ...(eTag !== undefined && { eTag }),
        sequencer: sequencer.next(),
        principalId: `AWS:${ctx.principal.userId}`,
        sourceIp: (ctx.req.socket.remoteAddress ?? "127.0.0.1").replace(/^::ffff:/, ""),
        requestId: ctx.requestId,
        hostId: hostId(ctx.requestId),
        configurationId: rule.configurationId,
      });
      const sent = await upstream.sqs("SendMessage", { QueueUrl: translator.upstreamUrl(rule.queueName), MessageBody: body });
      if (sent.status !== 200) throw new Error(`sending the S3 event to ${rule.queueName} failed: ${JSON.stringify(sent.json)}`);
      counters.events += 1;
    }
  }

  async function headUpstream(bucket: string, key: string): Promise<{ status: number; size?: number; eTag?: string }> {
    const response = await upstream.request({ method: "HEAD", path: encodeKeyPath(bucket, key), headers: {} });
    response.resume();
    const length = response.headers["content-length"];
    return {
      status: response.statusCode ?? 500,
      ...(length !== undefined && { size: Number(length) }),
      ...(typeof response.headers.etag === "string" && { eTag: response.headers.etag }),
    };
  }

  /**
   * Why a conditional write must not land, or undefined when it may (or has no condition). Runs under the key's write
   * lock, after IAM: an AccessDenied is never turned into a 412 or a 404.
   */
  async function writeConditionError(ctx: Context, op: S3Operation): Promise<AwsError | undefined> {
    if (!CONDITIONAL_WRITES.has(op.name) || op.bucket === undefined || op.key === undefined) return undefined;
    const conditions = parseWriteConditions(ctx.headers);
    if (conditions === undefined || conditions instanceof AwsError) return conditions;
    const head = await headUpstream(op.bucket, op.key);
    if (head.status === 404) {
      // No such bucket is the emulator's to answer (NoSuchBucket), not a missing key.
      const bucket = await upstream.request({ method: "HEAD", path: `/${encodeURIComponent(op.bucket)}`, headers: {} });
      bucket.resume();
      return bucket.statusCode === 404 ? undefined : evaluateWriteConditions(conditions, undefined, op.key);
    }
    if (head.status !== 200 || head.eTag === undefined) {
      throw new Error(`HEAD s3://${op.bucket}/${op.key} answered ${head.status} without an ETag`);
    }
    return evaluateWriteConditions(conditions, { eTag: head.eTag }, op.key);
  }

  async function afterCreated(ctx: Context, op: S3Operation, responseBody: string, responseEtag: string | undefined): Promise<void> {
    const { bucket, key } = op;
    if (bucket === undefined || key === undefined || !rules.some((r) => r.bucket === bucket)) return;
    if (op.name === "PutObject") {
      await emit(ctx, "ObjectCreated:Put", bucket, key, ctx.payload.length, responseEtag);
    } else if (op.name === "CopyObject" || op.name === "CompleteMultipartUpload") {
      const head = await headUpstream(bucket, key);
      const eTag = firstTag(responseBody, "ETag") ?? head.eTag;
      const name = op.name === "CopyObject" ? "ObjectCreated:Copy" : "ObjectCreated:CompleteMultipartUpload";
      await emit(ctx, name, bucket, key, head.size, eTag);
    } else if (op.name === "DeleteObject") {
      await emit(ctx, "ObjectRemoved:Delete", bucket, key);
    }
  }

  function responseHeaders(ctx: Context, upstreamHeaders: http.IncomingHttpHeaders): Record<string, string> {
    const out: Record<string, string> = { "x-amz-request-id": ctx.requestId, "x-amz-id-2": hostId(ctx.requestId) };
    for (const [name, value] of Object.entries(upstreamHeaders)) {
      if (value === undefined || NOT_RETURNED.has(name)) continue;
      out[name] = Array.isArray(value) ? value.join(", ") : value;
    }
    return out;
  }

  async function handleS3(ctx: Context): Promise<void> {
    const op = classifyS3({ method: ctx.method, rawPath: ctx.rawPath, query: parseQuery(ctx.rawQuery), headers: ctx.headers });
    ctx.operation = op.name;
    let checks = op.checks;
    if (op.name === "DeleteObjects" && op.bucket !== undefined) {
      const bucket = op.bucket;
      // All or nothing: one refused key refuses the request (AWS would report it per key inside a 200).
      checks = deleteObjectsKeys(ctx.payload.toString("utf8")).map((key) => ({
        action: "s3:DeleteObject",
        resource: `arn:aws:s3:::${bucket}/${key}`,
      }));
    }
    if (op.name === "Unknown") {
      const resource = op.bucket === undefined ? "*" : `arn:aws:s3:::${op.bucket}${op.key === undefined ? "" : `/${op.key}`}`;
      counters.denied += 1;
      record({
        time: new Date().toISOString(),
        service: "s3",
        operation: "Unknown",
        principal: ctx.principal.arn,
        action: "s3:Unknown",
        resource,
        decision: "implicit-deny",
        code: "AccessDenied",
      });
      sendError(ctx, "s3", new AwsError("AccessDenied", "Access Denied (the local stand-in does not recognise this S3 request)", 403));
      return;
    }
    if (!authorizeAll(ctx, checks)) return;
    if (ctx.payload.length > EMULATOR_BODY_LIMIT) {
      sendError(
        ctx,
        "s3",
        new AwsError("EntityTooLarge", "Your proposed upload exceeds the local stand-in's 11 MiB limit per request; use multipart parts of 10 MiB or less.", 400),
      );
      return;
    }
    const fault = decideFault(ctx);
    if (await applyFault(ctx, fault, "before")) return;

    if (!KEY_WRITES.has(op.name) || op.bucket === undefined || op.key === undefined) {
      await forwardS3(ctx, op, fault);
      return;
    }
    await writeLocks.run(`${op.bucket}/${op.key}`, async () => {
      if (ctx.signal.aborted) return;
      const refused = await writeConditionError(ctx, op);
      if (refused) {
        sendError(ctx, "s3", refused);
        return;
      }
      await forwardS3(ctx, op, fault);
    });
  }

  /** Forwards an authorized S3 request to fauxqs and answers with its response (plus events for what it created). */
  async function forwardS3(ctx: Context, op: S3Operation, fault: FaultDecision): Promise<void> {
    const path = ctx.rawQuery === "" ? ctx.rawPath : `${ctx.rawPath}?${ctx.rawQuery}`;
    const request = { method: ctx.method, path, headers: forwardedHeaders(ctx.headers), body: ctx.payload, signal: ctx.signal };
    // The data path (GetObject/PutObject of a plain key) from fauxqs's store; anything else through its HTTP routes.
    const held = upstream.direct(request);
    const upstreamResponse = held === undefined ? await upstream.request(request) : undefined;
    const status = held?.status ?? upstreamResponse?.statusCode ?? 500;
    const upstreamHeaders = held?.headers ?? upstreamResponse!.headers;
    const answerBody = (): Promise<Buffer> => (held === undefined ? readAll(upstreamResponse!) : Promise.resolve(held.body));
    const isRead = op.name === "GetObject" || op.name === "HeadObject";

    if (isRead && status === 404 && op.bucket !== undefined) {
      const text = (await answerBody()).toString("utf8");
      const code = firstTag(text, "Code");
      // S3 hides whether a key exists from callers who may not list the bucket: 403 instead of NoSuchKey.
      if (code === undefined || code === "NoSuchKey") {
        const bucketArn = `arn:aws:s3:::${op.bucket}`;
        const decision = authorize(ctx, "s3:ListBucket", bucketArn);
        if (decision.effect !== "allow") {
          sendError(ctx, "s3", accessDenied(ctx, "s3:ListBucket", bucketArn, decision.effect === "explicit-deny"));
          return;
        }
      }
      send(ctx, status, responseHeaders(ctx, upstreamHeaders), text);
      return;
    }

    const lostAnswer = fault.kind !== undefined && fault.phase === "after";
    if (op.name === "GetObject" && status >= 200 && status < 300 && !lostAnswer) {
      const length = Number(upstreamHeaders["content-length"]);
      if (upstreamResponse === undefined || length <= BUFFERED_GET_MAX) {
        // Held already, or small: the bytes (never text) answered in one write.
        send(ctx, status, responseHeaders(ctx, upstreamHeaders), await answerBody());
        return;
      }
      // Streamed: objects may be far larger than anything worth buffering.
      ctx.res.writeHead(status, responseHeaders(ctx, upstreamHeaders));
      await pipeline(upstreamResponse, ctx.res);
      return;
    }

    let body = (await answerBody()).toString("utf8");
    if (status >= 200 && status < 300) {
      const etag = upstreamHeaders.etag;
      await afterCreated(ctx, op, body, typeof etag === "string" ? etag : undefined);
      if (op.name === "CompleteMultipartUpload") {
        const host = ctx.headers.get("host") ?? "127.0.0.1";
        body = body.replace(/<Location>[^<]*<\/Location>/, `<Location>${escapeXml(`http://${host}${ctx.rawPath}`)}</Location>`);
      }
    }
    // The request took effect (and its event went out); only the answer is lost.
    if (await applyFault(ctx, fault, "after")) return;
    send(ctx, status, responseHeaders(ctx, upstreamHeaders), body);
  }

  // ---- SQS ---------------------------------------------------------------------------------------------------------

  function upstreamSqsError(result: { status: number; headers: http.IncomingHttpHeaders; json: Record<string, unknown> }): AwsError {
    const type = typeof result.json["__type"] === "string" ? (result.json["__type"]) : "InternalError";
    const code = type.includes("#") ? type.slice(type.indexOf("#") + 1) : type;
    const header = result.headers["x-amzn-query-error"];
    const queryCode = typeof header === "string" ? header.split(";")[0] : undefined;
    const message = typeof result.json["message"] === "string" ? (result.json["message"]) : "";
    return new AwsError(code, message, result.status, queryCode);
  }

  /**
   * Forwards a ReceiveMessage that is not abandoned when its caller disconnects: fauxqs keeps a long poll open after
   * its connection is gone and would hand the next messages to it, hidden for the visibility timeout from the next
   * consumer. So the poll runs to its end, and if the caller has left by then, whatever it took is made visible again
   * (undefined: nobody to answer). Only close() cuts it short.
   */
  async function receiveOutlivingCaller(ctx: Context, upstreamInput: Record<string, unknown>): Promise<SqsCallResult | undefined> {
    if (ctx.signal.aborted) return undefined;
    const detached = new AbortController();
    inFlight.add(detached);
    openReceives.add(ctx.signal);
    try {
      const result = await upstream.sqs("ReceiveMessage", upstreamInput, detached.signal);
      if (!ctx.signal.aborted) return result;
      if (options.abandonedReceives === "keep") counters.abandonedReceivesKept += receiptHandlesOf(result).length;
      else if (!closing) await releaseMessages(upstreamInput["QueueUrl"], result, detached.signal);
      return undefined;
    } finally {
      inFlight.delete(detached);
      openReceives.delete(ctx.signal);
    }
  }

  function receiptHandlesOf(received: SqsCallResult): string[] {
    const messages = received.status === 200 && Array.isArray(received.json["Messages"]) ? (received.json["Messages"] as unknown[]) : [];
    return messages
      .map((m) => (typeof m === "object" && m !== null ? (m as Record<string, unknown>)["ReceiptHandle"] : undefined))
      .filter((h): h is string => typeof h === "string");
  }

  /** Visibility 0 for every message of an upstream ReceiveMessage answer, so the next consumer gets them now. */
  async function releaseMessages(queueUrl: unknown, received: SqsCallResult, signal: AbortSignal): Promise<void> {
    const handles = receiptHandlesOf(received);
    if (handles.length === 0) return;
    // ApproximateReceiveCount keeps the dead poll's receive, as SQS counts a delivery nobody processed.
    const changed = await upstream.sqs(
      "ChangeMessageVisibilityBatch",
      { QueueUrl: queueUrl, Entries: handles.map((handle, i) => ({ Id: String(i), ReceiptHandle: handle, VisibilityTimeout: 0 })) },
      signal,
    );
    const successful = Array.isArray(changed.json["Successful"]) ? changed.json["Successful"].length : 0;
    counters.abandonedReceivesReleased += successful;
    if (changed.status !== 200 || successful !== handles.length) {
      throw new Error(`releasing the messages of an abandoned ReceiveMessage failed: ${JSON.stringify(changed.json)}`);
    }
  }

  /** The queue's MaximumMessageSize, or undefined when fauxqs cannot tell (no such queue: it answers the send itself). */
  async function queueMaxBytes(upstreamQueueUrl: unknown, signal: AbortSignal): Promise<number | undefined> {
    if (typeof upstreamQueueUrl !== "string") return undefined;
    const answer = await upstream.sqs("GetQueueAttributes", { QueueUrl: upstreamQueueUrl, AttributeNames: ["MaximumMessageSize"] }, signal);
    const attributes = answer.json["Attributes"];
    const value = typeof attributes === "object" && attributes !== null ? Number((attributes as Record<string, unknown>)["MaximumMessageSize"]) : NaN;
    return isSuccess(answer.status) && Number.isInteger(value) && value > 0 ? value : undefined;
  }

  async function handleSqs(ctx: Context): Promise<void> {
    let input: Record<string, unknown>;
    if (ctx.protocol === "sqs-json") {
      ctx.operation = (ctx.headers.get("x-amz-target") ?? "").replace(/^AmazonSQS\./, "");
      try {
        const parsed: unknown = ctx.payload.length === 0 ? {} : JSON.parse(ctx.payload.toString("utf8"));
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new TypeError("not an object");
        input = parsed as Record<string, unknown>;
      } catch {
        sendError(ctx, ctx.protocol, new AwsError("SerializationException", "The request body is not a JSON object.", 400));
        return;
      }
    } else {
      const params = new Map([...Object.entries(parseQuery(ctx.rawQuery)).map(([k, v]) => [k, String(v)] as const), ...parseForm(ctx.payload.toString("utf8"))]);
      ctx.operation = params.get("Action") ?? "";
      input = queryToJson(ctx.operation, params);
    }
    const check = sqsAuthorization(ctx.operation, input, { region, accountId });
    if (check instanceof AwsError) {
      sendError(ctx, ctx.protocol, check);
      return;
    }
    if (!authorizeAll(ctx, [check])) return;
    const fault = decideFault(ctx);
    if (await applyFault(ctx, fault, "before")) return;

    // Handles are bound to the queue (account/name) the caller named; its URL was validated by sqsAuthorization.
    const queueUrl = typeof input["QueueUrl"] === "string" ? parseQueueUrl(input["QueueUrl"]) : undefined;
    const queue = queueUrl ? `${queueUrl.accountId}/${queueUrl.name}` : "";
    const unwrapped = unwrapRequest(receiptHandles, ctx.operation, input, queue);
    const upstreamInput = translator.toUpstream(unwrapped.input);
    if (ctx.operation === "SendMessage" || ctx.operation === "SendMessageBatch") {
      const maxBytes = await queueMaxBytes(upstreamInput["QueueUrl"], ctx.signal);
      const tooLong = maxBytes === undefined ? undefined : sendSizeError(ctx.operation, input, maxBytes);
      if (tooLong) {
        sendError(ctx, ctx.protocol, tooLong);
        return;
      }
    }
    const result =
      ctx.operation === "ReceiveMessage"
        ? await receiveOutlivingCaller(ctx, upstreamInput)
        : await upstream.sqs(ctx.operation, upstreamInput, ctx.signal);
    if (result === undefined) return;
    if (await applyFault(ctx, fault, "after")) return;
    if (unwrapped.refused && (isSuccess(result.status) || NO_SUCH_HANDLE.has(upstreamSqsError(result).code))) {
      // fauxqs accepted (DeleteMessage) or did not find the stand-in handle: SQS refuses a handle it never issued.
      sendError(ctx, ctx.protocol, invalidHandleError(unwrapped.refused.handle));
      return;
    }
    if (!isSuccess(result.status)) {
      sendError(ctx, ctx.protocol, upstreamSqsError(result));
      return;
    }
    const received = ctx.operation === "ReceiveMessage" ? wrapReceived(receiptHandles, result.json, queue) : result.json;
    const output = translator.fromUpstream(markRefusedEntries(received, unwrapped.refusedEntries));
    if (ctx.protocol === "sqs-json") {
      send(ctx, 200, { "content-type": "application/x-amz-json-1.0", "x-amzn-requestid": ctx.requestId }, JSON.stringify(output));
    } else {
      send(ctx, 200, { "content-type": "text/xml", "x-amzn-requestid": ctx.requestId }, jsonToQueryXml(ctx.operation, output, ctx.requestId));
    }
  }

  // ---- STS and EC2 (answered here) ---------------------------------------------------------------------------------

  function formParams(ctx: Context): Map<string, string> {
    return new Map([
      ...Object.entries(parseQuery(ctx.rawQuery)).map(([k, v]) => [k, String(v)] as const),
      ...parseForm(ctx.payload.toString("utf8")),
    ]);
  }

  async function handleSts(ctx: Context): Promise<void> {
    const params = formParams(ctx);
    ctx.operation = params.get("Action") ?? "";
    if (!/^[A-Za-z]{1,64}$/.test(ctx.operation)) {
      sendError(ctx, "sts", new AwsError("InvalidAction", `Could not find operation ${ctx.operation} for version 2011-06-15`, 400));
      return;
    }
    if (ctx.operation !== "GetCallerIdentity") {
      const resource = params.get("RoleArn") ?? "*";
      if (!authorizeAll(ctx, [{ action: `sts:${ctx.operation}`, resource }])) return;
      if (ctx.operation === "GetAccessKeyInfo") {
        answerGetAccessKeyInfo(ctx, params.get("AccessKeyId"));
        return;
      }
      sendError(ctx, "sts", new AwsError("InvalidAction", `The local stand-in does not implement ${ctx.operation}.`, 400));
      return;
    }
    // GetCallerIdentity needs no permission (it works even under an explicit deny), so it is recorded, not evaluated.
    counters.byAction["sts:GetCallerIdentity"] = (counters.byAction["sts:GetCallerIdentity"] ?? 0) + 1;
    record({
      time: new Date().toISOString(),
      service: "sts",
      operation: ctx.operation,
      principal: ctx.principal.arn,
      action: "sts:GetCallerIdentity",
      resource: "*",
      decision: "allow",
    });
    const fault = decideFault(ctx);
    if (await applyFault(ctx, fault, "before")) return;
    const { principal } = ctx;
    send(
      ctx,
      200,
      { "content-type": "text/xml", "x-amzn-requestid": ctx.requestId },
      `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>` +
        `<Arn>${escapeXml(principal.arn)}</Arn><UserId>${escapeXml(principal.userId)}</UserId>` +
        `<Account>${escapeXml(principal.accountId)}</Account></GetCallerIdentityResult>` +
        `<ResponseMetadata><RequestId>${ctx.requestId}</RequestId></ResponseMetadata></GetCallerIdentityResponse>`,
    );
  }

  /** Only reached when a policy allows sts:GetAccessKeyInfo (the role's does not: `check` relies on the denial). */
  function answerGetAccessKeyInfo(ctx: Context, accessKeyId: string | undefined): void {
    if (!accessKeyId) {
      sendError(ctx, "sts", new AwsError("ValidationError", "1 validation error detected: Value null at 'accessKeyId' failed to satisfy constraint: Member must not be null", 400));
      return;
    }
    // Real STS decodes the account from the key id; the stand-in answers the caller's (all its keys are in one account).
    send(
      ctx,
      200,
      { "content-type": "text/xml", "x-amzn-requestid": ctx.requestId },
      `<GetAccessKeyInfoResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetAccessKeyInfoResult>` +
        `<Account>${escapeXml(ctx.principal.accountId)}</Account></GetAccessKeyInfoResult>` +
        `<ResponseMetadata><RequestId>${ctx.requestId}</RequestId></ResponseMetadata></GetAccessKeyInfoResponse>`,
    );
  }

  async function handleEc2(ctx: Context): Promise<void> {
    const params = formParams(ctx);
    ctx.operation = params.get("Action") ?? "";
    if (!/^[A-Za-z]{1,64}$/.test(ctx.operation)) {
      sendError(ctx, "ec2", new AwsError("InvalidAction", `The action ${ctx.operation} is not valid for this web service.`, 400));
      return;
    }
    if (!authorizeAll(ctx, [{ action: `ec2:${ctx.operation}`, resource: "*" }])) return;
    if (ctx.operation !== "DescribeInstances") {
      sendError(ctx, "ec2", new AwsError("UnsupportedOperation", `The local stand-in does not implement ${ctx.operation}.`, 400));
      return;
    }
    send(
      ctx,
      200,
      { "content-type": "text/xml;charset=UTF-8" },
      `<?xml version="1.0" encoding="UTF-8"?>\n<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">` +
        `<requestId>${ctx.requestId}</requestId><reservationSet/></DescribeInstancesResponse>`,
    );
  }

  /** IAM reads and SimulatePrincipalPolicy, for the operator's audit (test/local/gateway/iam-service.ts). */
  async function handleIam(ctx: Context): Promise<void> {
    const params = formParams(ctx);
    ctx.operation = params.get("Action") ?? "";
    const check = iamAuthorization(ctx.operation, params, accountId);
    if (check instanceof AwsError) return sendError(ctx, "iam", check);
    if (!authorizeAll(ctx, [check])) return;
    const answer = options.iam
      ? answerIam(options.iam, accountId, ctx.operation, params, ctx.requestId)
      : new AwsError("InvalidAction", "This gateway has no IAM directory.", 400);
    if (answer instanceof AwsError) return sendError(ctx, "iam", answer);
    send(ctx, 200, { "content-type": "text/xml", "x-amzn-requestid": ctx.requestId }, answer);
  }

  // ---- dispatch ----------------------------------------------------------------------------------------------------

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const requestId = newRequestId();
    const method = (req.method ?? "GET").toUpperCase();
    // Every answer carries Date: the SDK corrects its clock skew from it.
    res.setHeader("date", httpDate());
    counters.requests += 1;
    const headers = headerMap(req.rawHeaders);
    const parsedAuth = parseAuthorization(headers.get("authorization"));
    const scopeService = typeof parsedAuth === "object" ? parsedAuth.service : undefined;

    let body: Buffer;
    try {
      body = await readBody(req, maxBody);
    } catch (error) {
      if (!(error instanceof BodyTooLarge)) throw error;
      res.setHeader("connection", "close");
      sendError({ res, method, requestId }, "s3", new AwsError("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size", 400));
      req.destroy();
      return;
    }
    const service = scopeService === undefined ? guessService(req, headers, body) : scopeService;
    if (!KNOWN_SERVICES.has(service)) {
      sendError({ res, method, requestId }, "sts", new AwsError("InvalidAction", `The local stand-in does not serve ${service}.`, 400));
      return;
    }
    const svc = service as Service;
    const protocol = protocolOf(svc, headers);
    const rawUrl = req.url ?? "/";
    const q = rawUrl.indexOf("?");
    const rawPath = q === -1 ? rawUrl : rawUrl.slice(0, q);
    const rawQuery = q === -1 ? "" : rawUrl.slice(q + 1);

    const verified = await verifySigV4(
      { method, rawPath, rawQuery, rawHeaders: req.rawHeaders, body, headers, authorization: parsedAuth },
      { ...verifyOptions, now: new Date() },
    );
    if (!verified.ok) {
      counters.authFailures += 1;
      const error = authError(verified.failure, svc);
      record({
        time: new Date().toISOString(),
        service: svc,
        operation: "",
        principal: verified.credential?.principal.arn ?? verified.auth?.accessKeyId ?? "anonymous",
        action: "",
        resource: "",
        decision: "unauthenticated",
        code: error.code,
      });
      sendError({ res, method, requestId }, protocol, error);
      return;
    }

    const controller = new AbortController();
    inFlight.add(controller);
    res.on("close", () => {
      inFlight.delete(controller);
      if (!res.writableFinished) controller.abort();
    });
    const ctx: Context = {
      req,
      res,
      requestId,
      service: svc,
      protocol,
      principal: verified.credential.principal,
      operation: "",
      method,
      rawPath,
      rawQuery,
      headers,
      payload: verified.payload,
      signal: controller.signal,
    };
    switch (svc) {
      case "s3":
        return handleS3(ctx);
      case "sqs":
        return handleSqs(ctx);
      case "sts":
        return handleSts(ctx);
      case "ec2":
        return handleEc2(ctx);
      case "iam":
        return handleIam(ctx);
    }
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      // A caller that went away mid-answer, or a request cut short by close(), is not a gateway failure.
      if (closing || (res.destroyed && (error as { code?: string }).code !== undefined)) return;
      counters.internalErrors += 1;
      options.onError?.(error);
      if (!res.headersSent) {
        sendError(
          { res, method: req.method ?? "GET", requestId: newRequestId() },
          "s3",
          new AwsError("InternalError", `The local stand-in failed: ${error instanceof Error ? error.message : String(error)}`, 500),
        );
      } else {
        res.destroy();
      }
    });
  });
  // Longer than any SDK's idle keep-alive, so the server never closes a socket the client is about to reuse.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  url = `http://127.0.0.1:${port}`;

  return {
    url,
    port,
    accountId,
    region,
    faults,
    translator,
    decisions,
    counters: () => ({
      ...structuredClone(counters),
      receivesOpen: openReceives.size,
      receivesAbandoned: [...openReceives].filter((signal) => signal.aborted).length,
    }),
    resetCounters() {
      counters = newCounters();
      decisions.length = 0;
    },
    async addNotification(rule) {
      const requestId = newRequestId();
      const sent = await upstream.sqs("SendMessage", {
        QueueUrl: translator.upstreamUrl(rule.queueName),
        MessageBody: testEvent(rule.bucket, new Date(), requestId, hostId(requestId)),
      });
      if (sent.status !== 200) throw new Error(`cannot send the s3:TestEvent to ${rule.queueName}: ${JSON.stringify(sent.json)}`);
      counters.events += 1;
      rules.push({ ...rule });
    },
    async close() {
      closing = true;
      for (const controller of inFlight) controller.abort();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
