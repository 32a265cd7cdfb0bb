import { SQSClient } from "@aws-sdk/client-sqs";
import { createHash } from "node:crypto";
import { Readable, Transform } from "node:stream";
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  type PutObjectCommandInput,
  type S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { processDocument, type DocumentDeps } from "../../../src/pipeline/process-document.js";
import { createMetadataProcessor } from "../../../src/processors/builtin/metadata.js";
import { PermanentDocumentError } from "../../../src/errors/document.js";
import type { Processor, ProcessorOutput } from "../../../src/processors/types.js";
import {
  awsError,
  chunked,
  deferred,
  docRef,
  generated,
  readAll,
  sdkBody,
  silentLog,
  stalled,
  submitContext,
  sendOptions,
  testS3Client,
} from "./helpers.js";
import { sdkTransport } from "../../../src/aws/sdk-transport.js";

let s3: S3Client;
let s3Mock: ReturnType<typeof mockClient>;

beforeEach(() => {
  s3 = testS3Client();
  s3Mock = mockClient(s3);
  s3Mock.on(PutObjectCommand).resolves({ ETag: '"out"' });
});

afterEach(() => {
  s3Mock.restore();
});

function deps(overrides: Partial<DocumentDeps> = {}): DocumentDeps {
  return {
    objects: sdkTransport(async () => s3, new SQSClient({ region: "us-east-1" })).objects,
    s3: async () => s3,
    outputBucket: "output-bucket",
    outputPrefix: "processed/",
    maxObjectBytes: 1024 * 1024,
    processors: [createMetadataProcessor()],
    log: silentLog,
    ...overrides,
  };
}

function serveBody(body: Readable, contentLength?: number, extra: Record<string, unknown> = {}): void {
  s3Mock.on(GetObjectCommand).resolves({
    Body: sdkBody(body) as never,
    ETag: '"0123456789abcdef"',
    ContentType: "text/plain",
    ...(contentLength === undefined ? {} : { ContentLength: contentLength }),
    ...extra,
  });
}

function putInputs(): PutObjectCommandInput[] {
  return s3Mock.commandCalls(PutObjectCommand).map((c) => c.args[0].input);
}

/** A processor that reads `read` chunks (all when undefined), then returns `outputs`. */
function readingProcessor(name: string, outputs: ProcessorOutput[], read?: number): Processor {
  return {
    name,
    version: "0.0.1",
    async process({ input }) {
      let n = 0;
      for await (const _chunk of input) {
        if (read !== undefined && ++n >= read) break;
      }
      return outputs;
    },
  };
}

describe("processDocument: success", () => {
  it("reads with IfMatch, writes <prefix><key>.json with lineage metadata, and reports the bytes", async () => {
    const text = "hello world\n";
    const body = chunked([text]);
    serveBody(body, text.length);

    const outcome = await processDocument(deps(), docRef({ versionId: "v1" }), submitContext());

    expect(outcome).toMatchObject({ status: "done", outputs: ["processed/in/report 1.txt.json"], bytesIn: 12 });
    const get = s3Mock.commandCalls(GetObjectCommand)[0]!.args[0].input;
    expect(get).toEqual({ Bucket: "source-bucket", Key: "in/report 1.txt", IfMatch: '"0123456789abcdef"' });
    expect(get).not.toHaveProperty("VersionId");
    const [put] = putInputs();
    expect(put).toMatchObject({
      Bucket: "output-bucket",
      Key: "processed/in/report 1.txt.json",
      ContentType: "application/json",
      Metadata: {
        "source-bucket": "source-bucket",
        "source-key": "in/report 1.txt",
        "source-etag": "0123456789abcdef",
        processor: "metadata",
        "processor-version": "1.0.0",
      },
    });
    const json = JSON.parse(put!.Body as string) as Record<string, unknown>;
    expect(json).toMatchObject({
      sha256: createHash("sha256").update(text).digest("hex"),
      bytes: 12,
      text: { lines: 1, words: 2 },
      source: { bucket: "source-bucket", key: "in/report 1.txt", eTag: "0123456789abcdef", size: 12 },
    });
    expect(outcome.status === "done" && outcome.bytesOut).toBe(Buffer.byteLength(put!.Body as string));
    expect(body.destroyed).toBe(true);
  });

  it("sends no IfMatch when the event had no eTag", async () => {
    serveBody(chunked(["x"]), 1);
    const outcome = await processDocument(deps(), docRef({ eTag: undefined, size: 1 }), submitContext());
    expect(outcome.status).toBe("done");
    expect(s3Mock.commandCalls(GetObjectCommand)[0]!.args[0].input).not.toHaveProperty("IfMatch");
  });

  it("passes the document's AbortSignal to GetObject", async () => {
    serveBody(chunked(["x"]), 1);
    const ctx = submitContext();
    await processDocument(deps(), docRef({ size: 1 }), ctx);
    const options = sendOptions(s3Mock.commandCalls(GetObjectCommand)[0]!);
    expect(options?.abortSignal).toBe(ctx.signal);
  });

  // The role may only GetObject from the source and PutObject to the output (a multipart upload is PutObject too):
  // every other request would be denied in production. Driven through each path that writes (a single PutObject,
  // a multipart upload of an output of unknown length, a multipart upload that fails, the error record), the test
  // lists every request sent and allows nothing else.
  it("sends nothing but GetObject and PutObject requests, through single, multipart and failed uploads and an error record", async () => {
    const permitted = [
      "GetObjectCommand",
      "PutObjectCommand",
      "CreateMultipartUploadCommand",
      "UploadPartCommand",
      "CompleteMultipartUploadCommand",
    ];
    const sent = (): string[] => s3Mock.calls().map((c) => (c.args[0] as object).constructor.name);
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: "up-1" });
    s3Mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"done"' });
    const big = 11 * 1024 * 1024;
    const streaming: Processor = {
      name: "streaming",
      version: "1",
      async process({ input }) {
        input.resume();
        // No contentLength and over partSize: uploaded in parts.
        return [{ suffix: ".bin", body: generated(big), contentType: "application/octet-stream" }];
      },
    };
    const refusing: Processor = {
      name: "refusing",
      version: "1",
      async process({ input }) {
        await readAll(input);
        throw new PermanentDocumentError("CORRUPT", "cannot read it");
      },
    };
    const chain = { processors: [createMetadataProcessor(), streaming, refusing], partSize: 5 * 1024 * 1024 };

    s3Mock.on(UploadPartCommand).resolves({ ETag: '"part"' });
    serveBody(chunked(["abc", "def"]), 6);
    const refused = await processDocument(deps(chain), docRef({ size: 6 }), submitContext());
    expect(refused).toMatchObject({ status: "failed-permanently", code: "CORRUPT" });
    expect(refused.status === "failed-permanently" && refused.outputs).toContain("processed/in/report 1.txt.error.json");
    expect(s3Mock.commandCalls(UploadPartCommand).length).toBeGreaterThanOrEqual(3);

    s3Mock.on(UploadPartCommand).rejects(awsError("InternalError", 500, "part failed"));
    serveBody(chunked(["abc", "def"]), 6);
    const failed = await processDocument(deps(chain), docRef({ size: 6 }), submitContext());
    expect(failed).toMatchObject({ status: "retry", code: "SINK_WRITE_FAILED" });

    expect(new Set(sent())).toEqual(new Set(permitted));
    expect(sent().filter((name) => !permitted.includes(name))).toEqual([]);
  });

  it("destroys the body when no processor reads it to the end", async () => {
    const body = generated(10 * 1024 * 1024);
    serveBody(body, 10 * 1024 * 1024);
    const lazy = readingProcessor("lazy", [{ suffix: ".txt", body: "seen", contentType: "text/plain" }], 1);
    const outcome = await processDocument(
      deps({ processors: [lazy], maxObjectBytes: 100 * 1024 * 1024 }),
      docRef({ size: 10 * 1024 * 1024 }),
      submitContext(),
    );
    expect(outcome).toMatchObject({ status: "done", outputs: ["processed/in/report 1.txt.txt"] });
    expect(body.destroyed).toBe(true);
    expect(body.produced).toBeLessThan(10 * 1024 * 1024);
  });
});

describe("processDocument: streaming outputs", () => {
  it("writes an output built from the input while the input is being read", async () => {
    const text = "stream me through\n";
    serveBody(chunked(["stream ", "me ", "through\n"]), text.length);
    const upper: Processor = {
      name: "upper",
      version: "1",
      // Returns before reading anything: the sink's reading drives the source.
      async process({ input }) {
        const out = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            cb(null, Buffer.from(chunk.toString("latin1").toUpperCase(), "latin1"));
          },
        });
        return [{ suffix: ".upper", body: input.pipe(out), contentType: "text/plain" }];
      },
    };
    const outcome = await processDocument(
      deps({ processors: [upper, createMetadataProcessor()] }),
      docRef({ size: text.length }),
      submitContext(),
    );
    expect(outcome).toMatchObject({ status: "done", bytesIn: text.length, bytesOut: expect.any(Number) as unknown });
    const put = putInputs().find((p) => p.Key?.endsWith(".upper"));
    expect(Buffer.from(put!.Body as Uint8Array).toString()).toBe(text.toUpperCase());
  });
});

describe("processDocument: several processors share one GetObject", () => {
  it("tees the stream to each processor and writes every output", async () => {
    const text = "one two\nthree\n";
    serveBody(chunked(["one t", "wo\nthr", "ee\n"]), text.length);
    const echo: Processor = {
      name: "echo",
      version: "2.0.0",
      async process({ input }) {
        return [{ suffix: ".copy", body: await readAll(input), contentType: "application/octet-stream" }];
      },
    };
    const outcome = await processDocument(
      deps({ processors: [createMetadataProcessor(), echo] }),
      docRef({ size: text.length }),
      submitContext(),
    );
    expect(outcome).toMatchObject({
      status: "done",
      outputs: expect.arrayContaining(["processed/in/report 1.txt.json", "processed/in/report 1.txt.copy"]) as unknown,
    });
    expect(s3Mock.commandCalls(GetObjectCommand)).toHaveLength(1);
    const copy = putInputs().find((p) => p.Key?.endsWith(".copy"));
    expect(Buffer.from(copy!.Body as Uint8Array).toString()).toBe(text);
    expect(copy!.Metadata).toMatchObject({ processor: "echo", "processor-version": "2.0.0" });
  });

  it("keeps memory flat: the source never runs far ahead of the slowest processor", async () => {
    const total = 16 * 1024 * 1024;
    const body = generated(total);
    serveBody(body, total);
    let slowRead = 0;
    let maxLead = 0;
    const slow: Processor = {
      name: "slow",
      version: "1",
      async process({ input }) {
        for await (const chunk of input as AsyncIterable<Buffer>) {
          slowRead += chunk.length;
          maxLead = Math.max(maxLead, body.produced - slowRead);
          // Yield to the event loop so the fast branch could race ahead if backpressure were missing.
          await new Promise((resolve) => setImmediate(resolve));
        }
        return [{ suffix: ".slow", body: String(slowRead), contentType: "text/plain" }];
      },
    };
    const fast = readingProcessor("fast", [{ suffix: ".fast", body: "ok", contentType: "text/plain" }]);
    const outcome = await processDocument(
      deps({ processors: [fast, slow], maxObjectBytes: total }),
      docRef({ size: total }),
      submitContext(),
    );
    expect(outcome).toMatchObject({ status: "done", bytesIn: total });
    expect(slowRead).toBe(total);
    expect(maxLead).toBeLessThanOrEqual(512 * 1024);
  });
});

describe("processDocument: failures", () => {
  it("rejects an object above maxObjectBytes before any GetObject, naming both sizes", async () => {
    const outcome = await processDocument(deps({ maxObjectBytes: 100 }), docRef({ size: 101 }), submitContext());
    expect(outcome).toEqual({
      status: "rejected",
      code: "OBJECT_TOO_LARGE",
      reason: expect.stringMatching(/101 bytes.*100/) as unknown,
    });
    expect(s3Mock.commandCalls(GetObjectCommand)).toHaveLength(0);
  });

  it("rejects by S3's Content-Length when the event had no size, destroying the body", async () => {
    const body = stalled();
    serveBody(body, 5000);
    const outcome = await processDocument(deps({ maxObjectBytes: 100 }), docRef({ size: undefined }), submitContext());
    expect(outcome).toMatchObject({ status: "rejected", code: "OBJECT_TOO_LARGE" });
    expect(body.destroyed).toBe(true);
  });

  it("rejects a source key whose output key cannot fit in 1024 bytes, before any GetObject", async () => {
    const outcome = await processDocument(deps(), docRef({ key: "k".repeat(1020) }), submitContext());
    expect(outcome).toMatchObject({ status: "rejected", code: "OUTPUT_KEY_TOO_LONG" });
    expect(s3Mock.commandCalls(GetObjectCommand)).toHaveLength(0);
  });

  it("rejects before any GetObject when prefix + key + the chain's longest declared suffix is over 1024 bytes", async () => {
    // "processed/" (10) + 1009 + ".json" (5) = 1024 fits; ".text.json" (10) does not.
    const key = "k".repeat(1009);
    const declared = (suffix: string): Processor => ({ ...readingProcessor(`p${suffix}`, [{ suffix, body: "{}", contentType: "application/json" }]), outputSuffixes: [suffix] });
    const outcome = await processDocument(deps({ processors: [declared(".json"), declared(".text.json")] }), docRef({ key }), submitContext());
    expect(outcome).toEqual({
      status: "rejected",
      code: "OUTPUT_KEY_TOO_LONG",
      reason: expect.stringMatching(/^output key would be 1029 bytes of UTF-8, above S3's limit of 1024: ".*" \(shorten outputPrefix or the source key; the message goes to the DLQ/) as unknown,
    });
    expect(s3Mock.commandCalls(GetObjectCommand)).toHaveLength(0);
    expect(putInputs()).toHaveLength(0);
  });

  it("an undeclared suffix that makes the key too long: rejected OUTPUT_KEY_TOO_LONG (not retried as a write failure)", async () => {
    serveBody(Readable.from([Buffer.from("hello world\n")]), 12);
    const key = "k".repeat(1009);
    const undeclared = readingProcessor("free", [{ suffix: ".much-longer.json", body: "{}", contentType: "application/json" }]);
    const outcome = await processDocument(deps({ processors: [undeclared] }), docRef({ key }), submitContext());
    expect(outcome).toMatchObject({ status: "rejected", code: "OUTPUT_KEY_TOO_LONG" });
    expect(putInputs()).toHaveLength(0);
  });

  it("a refusal whose error record's key is too long: rejected OUTPUT_KEY_TOO_LONG, naming the refusal too", async () => {
    serveBody(Readable.from([Buffer.from("hello world\n")]), 12);
    // ".json" fits (1024 bytes), ".error.json" does not.
    const key = "k".repeat(1009);
    const refusing: Processor = {
      name: "picky",
      version: "0.0.1",
      outputSuffixes: [".json"],
      async process({ input }) {
        input.resume();
        throw new PermanentDocumentError("CORRUPT", "cannot read it");
      },
    };
    const outcome = await processDocument(deps({ processors: [refusing] }), docRef({ key }), submitContext());
    expect(outcome).toMatchObject({ status: "rejected", code: "OUTPUT_KEY_TOO_LONG", reason: expect.stringMatching(/^CORRUPT: cannot read it; and output key would be 1030 bytes/) as unknown });
    expect(putInputs()).toHaveLength(0);
  });

  it("412 on IfMatch: superseded", async () => {
    s3Mock.on(GetObjectCommand).rejects(awsError("PreconditionFailed", 412));
    const outcome = await processDocument(deps(), docRef(), submitContext());
    expect(outcome.status).toBe("superseded");
    expect(putInputs()).toHaveLength(0);
  });

  it.each([
    ["AccessDenied", 403],
    ["NoSuchKey", 404],
  ])("%s (%i): retry as missing or forbidden, explaining the missing s3:ListBucket", async (name, status) => {
    s3Mock.on(GetObjectCommand).rejects(awsError(name, status));
    const outcome = await processDocument(deps(), docRef(), submitContext());
    expect(outcome).toMatchObject({ status: "retry", code: "SOURCE_MISSING_OR_FORBIDDEN" });
    expect(outcome.status === "retry" && outcome.reason).toContain(
      "missing or forbidden: without s3:ListBucket S3 reports a missing key as AccessDenied",
    );
  });

  it("another GetObject error: retry SOURCE_READ_FAILED", async () => {
    s3Mock.on(GetObjectCommand).rejects(awsError("InternalError", 500));
    const outcome = await processDocument(deps(), docRef(), submitContext());
    expect(outcome).toMatchObject({ status: "retry", code: "SOURCE_READ_FAILED" });
  });

  it("a processor error: retry PROCESSOR_FAILED, nothing written, body destroyed", async () => {
    const body = stalled();
    serveBody(body, 12);
    const broken: Processor = {
      name: "broken",
      version: "1",
      async process() {
        throw new Error("cannot parse");
      },
    };
    const outcome = await processDocument(deps({ processors: [broken] }), docRef(), submitContext());
    expect(outcome).toMatchObject({ status: "retry", code: "PROCESSOR_FAILED" });
    expect(outcome.status === "retry" && outcome.reason).toContain("cannot parse");
    expect(putInputs()).toHaveLength(0);
    expect(body.destroyed).toBe(true);
  });

  it("a processor returning something that is not outputs: retry PROCESSOR_FAILED", async () => {
    const body = stalled();
    serveBody(body, 12);
    const odd = { name: "odd", version: "1", process: async () => ({ not: "an array" }) } as unknown as Processor;
    const outcome = await processDocument(deps({ processors: [odd] }), docRef(), submitContext());
    expect(outcome).toMatchObject({ status: "retry", code: "PROCESSOR_FAILED" });
    expect(body.destroyed).toBe(true);
  });

  it.each([
    ["a body that is a number", { suffix: ".x", body: 42, contentType: "text/plain" }],
    ["no contentType", { suffix: ".x", body: "x" }],
    ["a negative contentLength", { suffix: ".x", body: "x", contentType: "text/plain", contentLength: -1 }],
    ["null", null],
  ])("an output with %s: retry PROCESSOR_FAILED, nothing written", async (_what, output) => {
    serveBody(chunked(["x"]), 1);
    const odd = { name: "odd", version: "1", process: async () => [output] } as unknown as Processor;
    const outcome = await processDocument(deps({ processors: [odd] }), docRef({ size: 1 }), submitContext());
    expect(outcome).toMatchObject({ status: "retry", code: "PROCESSOR_FAILED" });
    expect(outcome.status === "retry" && outcome.reason).toContain("invalid output at index 0");
    expect(putInputs()).toHaveLength(0);
  });

  it("a sink error: retry SINK_WRITE_FAILED, body destroyed", async () => {
    const body = generated(1024 * 1024);
    serveBody(body, 1024 * 1024);
    s3Mock.on(PutObjectCommand).rejects(awsError("AccessDenied", 403));
    const early = readingProcessor("early", [{ suffix: ".out", body: "x", contentType: "text/plain" }], 1);
    const outcome = await processDocument(deps({ processors: [early] }), docRef({ size: 1024 * 1024 }), submitContext());
    expect(outcome).toMatchObject({ status: "retry", code: "SINK_WRITE_FAILED" });
    expect(outcome.status === "retry" && outcome.reason).toContain("processed/in/report 1.txt.out");
    expect(body.destroyed).toBe(true);
  });

  it("a sink error stops the other processors and destroys their pending output streams", async () => {
    const body = stalled();
    serveBody(body, 12);
    s3Mock.on(PutObjectCommand).rejects(awsError("SlowDown", 503));
    const pendingOutput = stalled();
    const late = deferred<ProcessorOutput[]>();
    const quick: Processor = {
      name: "quick",
      version: "1",
      process: async () => [{ suffix: ".q", body: "q", contentType: "text/plain" }],
    };
    const waiting: Processor = {
      name: "waiting",
      version: "1",
      async process({ signal }) {
        signal.addEventListener("abort", () =>
          late.resolve([{ suffix: ".w", body: pendingOutput, contentType: "text/plain" }]),
        );
        return late.promise;
      },
    };
    const outcome = await processDocument(deps({ processors: [quick, waiting] }), docRef(), submitContext());
    expect(outcome).toMatchObject({ status: "retry", code: "SINK_WRITE_FAILED" });
    expect(pendingOutput.destroyed).toBe(true);
    expect(body.destroyed).toBe(true);
  });

  it("two outputs with the same key: rejected", async () => {
    serveBody(chunked(["x"]), 1);
    const a = readingProcessor("a", [{ suffix: ".out", body: "a", contentType: "text/plain" }]);
    const b = readingProcessor("b", [{ suffix: ".out", body: "b", contentType: "text/plain" }]);
    const outcome = await processDocument(deps({ processors: [a, b] }), docRef({ size: 1 }), submitContext());
    expect(outcome).toMatchObject({ status: "rejected", code: "PROCESSOR_FAILED" });
  });

  // One read path for any chain: one processor or several, the same failures and the same byte count.
  const chains: [string, () => Processor[]][] = [
    ["one processor", () => [createMetadataProcessor()]],
    ["two processors", () => [createMetadataProcessor(), readingProcessor("other", [{ suffix: ".x", body: "x", contentType: "text/plain" }])]],
  ];

  it.each(chains)("%s: a broken or short source is SOURCE_READ_FAILED with nothing written", async (_name, chain) => {
    let sent = false;
    const broken = new Readable({
      read() {
        if (sent) this.destroy(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
        else this.push(Buffer.from("partial"));
        sent = true;
      },
    });
    serveBody(broken, 100);
    const first = await processDocument(deps({ processors: chain() }), docRef({ size: 100 }), submitContext());
    expect(first).toMatchObject({ status: "retry", code: "SOURCE_READ_FAILED" });
    expect(first.status === "retry" && first.reason).toContain("socket hang up");

    serveBody(chunked(["only this"]), 100);
    const second = await processDocument(deps({ processors: chain() }), docRef({ size: 100 }), submitContext());
    expect(second).toMatchObject({ status: "retry", code: "SOURCE_READ_FAILED" });
    expect(second.status === "retry" && second.reason).toContain("9 of 100 bytes");
    expect(putInputs()).toHaveLength(0);
  });

  it.each(chains)("%s: a source longer than its Content-Length is SOURCE_READ_FAILED with nothing written", async (_name, chain) => {
    serveBody(chunked(["abc", "defg"]), 3);
    const outcome = await processDocument(deps({ processors: chain() }), docRef({ size: 3 }), submitContext());
    expect(outcome).toMatchObject({ status: "retry", code: "SOURCE_READ_FAILED" });
    expect(outcome.status === "retry" && outcome.reason).toContain("7 of 3 bytes");
    expect(putInputs()).toHaveLength(0);
  });

  it.each(chains)("%s: reports the bytes read", async (_name, chain) => {
    serveBody(chunked(["abc", "defg", "hi"]), 9);
    const outcome = await processDocument(deps({ processors: chain() }), docRef({ size: 9 }), submitContext());
    expect(outcome).toMatchObject({ status: "done", bytesIn: 9 });
  });

  it("a source stream that breaks mid-way: retry SOURCE_READ_FAILED, body destroyed", async () => {
    let sent = false;
    const body = new Readable({
      read() {
        if (!sent) {
          sent = true;
          this.push(Buffer.from("partial"));
        } else {
          this.destroy(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
        }
      },
    });
    serveBody(body, 100);
    const outcome = await processDocument(deps(), docRef({ size: 100 }), submitContext());
    expect(outcome).toMatchObject({ status: "retry", code: "SOURCE_READ_FAILED" });
    expect(outcome.status === "retry" && outcome.reason).toContain("socket hang up");
    expect(body.destroyed).toBe(true);
    expect(putInputs()).toHaveLength(0);
  });

  it("a source stream shorter than its Content-Length: retry SOURCE_READ_FAILED", async () => {
    serveBody(chunked(["only this"]), 100);
    const outcome = await processDocument(deps(), docRef({ size: 100 }), submitContext());
    expect(outcome).toMatchObject({ status: "retry", code: "SOURCE_READ_FAILED" });
    expect(outcome.status === "retry" && outcome.reason).toContain("9 of 100 bytes");
  });
});

describe("processDocument: abort", () => {
  it("aborted before start: retry ABORTED without any request", async () => {
    const ac = new AbortController();
    ac.abort();
    const outcome = await processDocument(deps(), docRef(), submitContext(ac.signal));
    expect(outcome).toMatchObject({ status: "retry", code: "ABORTED" });
    expect(s3Mock.calls()).toHaveLength(0);
  });

  it("aborted during GetObject: retry ABORTED", async () => {
    const ac = new AbortController();
    s3Mock.on(GetObjectCommand).callsFake(
      () =>
        new Promise((_resolve, reject) => {
          ac.signal.addEventListener("abort", () => reject(awsError("AbortError", 0, "Request aborted")));
          ac.abort();
        }),
    );
    const outcome = await processDocument(deps(), docRef(), submitContext(ac.signal));
    expect(outcome).toMatchObject({ status: "retry", code: "ABORTED" });
  });

  it("aborted while the processor reads: retry ABORTED, body and processor input destroyed", async () => {
    const ac = new AbortController();
    const body = stalled();
    serveBody(body, 12);
    const started = deferred<Readable>();
    const waiting: Processor = {
      name: "waiting",
      version: "1",
      async process({ input }) {
        started.resolve(input);
        for await (const _chunk of input) {
          // never reached: the body never produces
        }
        return [];
      },
    };
    const running = processDocument(deps({ processors: [waiting] }), docRef(), submitContext(ac.signal));
    const input = await started.promise;
    ac.abort(new Error("heartbeat cap reached"));
    const outcome = await running;
    expect(outcome).toMatchObject({ status: "retry", code: "ABORTED" });
    expect(body.destroyed).toBe(true);
    expect(input.destroyed).toBe(true);
    expect(putInputs()).toHaveLength(0);
  });

  it("aborted while the metadata processor reads: it rejects and the body is destroyed", async () => {
    const ac = new AbortController();
    const body = generated(64 * 1024 * 1024);
    serveBody(body, 64 * 1024 * 1024);
    let seen = 0;
    const watcher: Processor = {
      name: "watcher",
      version: "1",
      async process({ input }) {
        for await (const chunk of input as AsyncIterable<Buffer>) {
          seen += chunk.length;
          if (seen >= 1024 * 1024) ac.abort();
        }
        return [];
      },
    };
    const outcome = await processDocument(
      deps({ processors: [createMetadataProcessor(), watcher], maxObjectBytes: 64 * 1024 * 1024 }),
      docRef({ size: 64 * 1024 * 1024 }),
      submitContext(ac.signal),
    );
    expect(outcome).toMatchObject({ status: "retry", code: "ABORTED" });
    expect(body.destroyed).toBe(true);
    expect(body.produced).toBeLessThan(64 * 1024 * 1024);
  });
});
