// The failure class in the pipeline: a processor's PermanentDocumentError becomes `<key>.error.json` and an
// acknowledgeable outcome; the chain `metadata` + `text` writes its outputs side by side; a user's module loads.
import { SQSClient } from "@aws-sdk/client-sqs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { GetObjectCommand, PutObjectCommand, type PutObjectCommandInput, type S3Client } from "@aws-sdk/client-s3";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { isAcknowledgeable, type Outcome } from "../../../../src/pipeline/outcome.js";
import { errorRecord, type ErrorRecord } from "../../../../src/pipeline/error-record.js";
import { processDocument, type DocumentDeps } from "../../../../src/pipeline/process-document.js";
import { createMetadataProcessor } from "../../../../src/processors/builtin/metadata.js";
import { createTextProcessor, type TextProcessor } from "../../../../src/processors/builtin/text/index.js";
import { checkOutputSuffixes, resolveProcessors } from "../../../../src/processors/registry.js";
import {
  isPermanentDocumentError,
  PermanentDocumentError,
  type Processor,
  type ProcessorOutput,
} from "../../../../src/processors/types.js";
import { DocProcessorError } from "../../../../src/errors/fatal.js";
import { encryptedPdf, makePdf } from "../../../fixtures/documents/build.js";
import { chunked, docRef, readAll, sdkBody, silentLog, submitContext, testS3Client } from "../../pipeline/helpers.js";
import { buildExtractor } from "./helpers.js";
import { sdkTransport } from "../../../../src/aws/sdk-transport.js";

const fixtures = resolve(dirname(fileURLToPath(import.meta.url)), "../../../fixtures/processors");

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

let extractorUrl: URL;
let cleanup: () => void;
let text: TextProcessor;
beforeAll(() => {
  ({ extractorUrl, cleanup } = buildExtractor());
  text = createTextProcessor({ extractorUrl });
});
afterAll(async () => {
  await text.close();
  cleanup();
});

function deps(processors: Processor[]): DocumentDeps {
  return { objects: sdkTransport(async () => s3, new SQSClient({ region: "us-east-1" })).objects, s3: async () => s3, outputBucket: "output-bucket", outputPrefix: "out/", maxObjectBytes: 1 << 30, processors, log: silentLog };
}

function serve(data: Buffer): void {
  s3Mock.on(GetObjectCommand).resolves({
    Body: sdkBody(chunked([data])) as never,
    ETag: '"etag-src"',
    ContentLength: data.length,
  });
}

/** Everything written, by key, as text (bodies may be strings, bytes or streams). */
async function written(): Promise<Map<string, { body: string; input: PutObjectCommandInput }>> {
  const out = new Map<string, { body: string; input: PutObjectCommandInput }>();
  for (const call of s3Mock.commandCalls(PutObjectCommand)) {
    const input = call.args[0].input;
    const body = input.Body;
    const text =
      typeof body === "string"
        ? body
        : body instanceof Uint8Array
          ? Buffer.from(body).toString()
          : (await readAll(body as never)).toString();
    out.set(input.Key!, { body: text, input });
  }
  return out;
}

function refusing(name: string, err: Error): Processor {
  return {
    name,
    version: "2.1.0",
    async process({ input }) {
      input.destroy();
      throw err;
    },
  };
}

function returning(name: string, outputs: ProcessorOutput[]): Processor {
  return {
    name,
    version: "1",
    async process({ input }) {
      await readAll(input);
      return outputs;
    },
  };
}

describe("processDocument: a permanent document failure", () => {
  it("writes <key>.error.json, lets the other processors finish, and is acknowledgeable", async () => {
    serve(Buffer.from("some bytes"));
    const refusal = new PermanentDocumentError("CORRUPT", "the thing is broken", {
      detectedType: { mime: "application/pdf", ext: "pdf" },
    });
    const outcome = await processDocument(
      deps([createMetadataProcessor(), refusing("picky", refusal)]),
      docRef({ key: "in/doc.pdf", size: 10 }),
      submitContext(),
    );
    expect(outcome).toEqual({
      status: "failed-permanently",
      code: "CORRUPT",
      reason: "the thing is broken",
      outputs: ["out/in/doc.pdf.json", "out/in/doc.pdf.error.json"],
    });
    expect(isAcknowledgeable(outcome)).toBe(true);
    const files = await written();
    expect(JSON.parse(files.get("out/in/doc.pdf.json")!.body)).toMatchObject({ source: { key: "in/doc.pdf" } });
    const error = files.get("out/in/doc.pdf.error.json")!;
    expect(JSON.parse(error.body)).toEqual({
      status: "failed-permanently",
      code: "CORRUPT",
      reason: "the thing is broken",
      detectedType: { mime: "application/pdf", ext: "pdf" },
      source: { bucket: "source-bucket", key: "in/doc.pdf", eTag: "etag-src", size: 10 },
      processor: { name: "picky", version: "2.1.0" },
      outputs: ["out/in/doc.pdf.json"],
    } satisfies ErrorRecord);
    expect(error.input).toMatchObject({
      ContentType: "application/json",
      Metadata: { processor: "picky", "processor-version": "2.1.0", "source-key": "in/doc.pdf" },
    });
  });

  it("lets a transient failure of another processor win: retry, and no error record", async () => {
    serve(Buffer.from("x"));
    const outcome = await processDocument(
      deps([refusing("picky", new PermanentDocumentError("CORRUPT", "bad")), refusing("flaky", new Error("socket hang up"))]),
      docRef({ size: 1 }),
      submitContext(),
    );
    expect(outcome).toMatchObject({ status: "retry", code: "PROCESSOR_FAILED" });
    expect(isAcknowledgeable(outcome)).toBe(false);
    expect([...(await written()).keys()].some((k) => k.endsWith(".error.json"))).toBe(false);
  });

  it("retries when the error record cannot be written", async () => {
    serve(Buffer.from("x"));
    s3Mock.on(PutObjectCommand).rejects(Object.assign(new Error("slow down"), { name: "SlowDown", $metadata: { httpStatusCode: 503 } }));
    const outcome = await processDocument(deps([refusing("picky", new PermanentDocumentError("EMPTY", "nothing"))]), docRef({ size: 1 }), submitContext());
    expect(outcome).toMatchObject({ status: "retry", code: "SINK_WRITE_FAILED" });
  });

  it("records every refusal when several processors refuse", async () => {
    serve(Buffer.from("x"));
    const outcome = await processDocument(
      deps([refusing("a", new PermanentDocumentError("CORRUPT", "one")), refusing("b", new PermanentDocumentError("TOO_LARGE", "two"))]),
      docRef({ key: "k", size: 1 }),
      submitContext(),
    );
    expect(outcome).toMatchObject({ status: "failed-permanently", code: "CORRUPT" });
    const record = JSON.parse((await written()).get("out/k.error.json")!.body) as ErrorRecord;
    expect(record.others).toEqual([{ processor: { name: "b", version: "2.1.0" }, code: "TOO_LARGE", reason: "two" }]);
  });

  it("recognises a PermanentDocumentError from a module that could not import the class (by name and code)", async () => {
    const foreign = Object.assign(new Error("not for me"), { name: "PermanentDocumentError", code: "MY_CODE", detectedType: "junk" });
    expect(isPermanentDocumentError(foreign)).toBe(true);
    expect(isPermanentDocumentError(Object.assign(new Error("x"), { name: "PermanentDocumentError" }))).toBe(false);
    serve(Buffer.from("x"));
    const outcome = await processDocument(deps([refusing("mod", foreign)]), docRef({ key: "k", size: 1 }), submitContext());
    expect(outcome).toMatchObject({ status: "failed-permanently", code: "MY_CODE" });
    const record = JSON.parse((await written()).get("out/k.error.json")!.body) as ErrorRecord;
    expect(record.detectedType).toBeUndefined(); // a malformed detectedType is dropped
  });

  it("refuses a processor that writes the reserved error-record suffix", async () => {
    serve(Buffer.from("x"));
    const sneaky = returning("sneaky", [{ suffix: ".error.json", body: "{}", contentType: "application/json" }]);
    const outcome = await processDocument(deps([sneaky]), docRef({ size: 1 }), submitContext());
    expect(outcome).toMatchObject({ status: "rejected", code: "PROCESSOR_FAILED" });
    expect((outcome as Extract<Outcome, { status: "rejected" }>).reason).toContain("reserved");
  });

  it("errorRecord needs a refusal", () => {
    expect(() => errorRecord({ bucket: "b", key: "k", size: 0, eTag: "e" }, [], [])).toThrow();
  });
});

describe("processDocument: the metadata + text chain", () => {
  it("writes <key>.json, <key>.txt and <key>.text.json for a PDF from one GetObject", async () => {
    const pdf = makePdf([["Hello from a PDF"]]);
    serve(pdf);
    const chain = await resolveProcessors(["metadata"], fixtures);
    const outcome = await processDocument(deps([...chain, text]), docRef({ key: "docs/a.pdf", size: pdf.length }), submitContext());
    expect(outcome.status).toBe("done");
    expect((outcome as Extract<Outcome, { status: "done" }>).outputs.sort()).toEqual([
      "out/docs/a.pdf.json",
      "out/docs/a.pdf.text.json",
      "out/docs/a.pdf.txt",
    ]);
    expect(s3Mock.commandCalls(GetObjectCommand)).toHaveLength(1);
    const files = await written();
    expect(files.get("out/docs/a.pdf.txt")!.body).toBe("Hello from a PDF\n");
    expect(JSON.parse(files.get("out/docs/a.pdf.json")!.body)).toMatchObject({ detectedType: { mime: "application/pdf" } });
    expect(JSON.parse(files.get("out/docs/a.pdf.text.json")!.body)).toMatchObject({ pages: 1, words: 4 });
  });

  it("writes metadata's .json and the error record for an encrypted PDF", async () => {
    const pdf = encryptedPdf();
    serve(pdf);
    const outcome = await processDocument(
      deps([createMetadataProcessor(), text]),
      docRef({ key: "secret.pdf", size: pdf.length }),
      submitContext(),
    );
    expect(outcome).toMatchObject({
      status: "failed-permanently",
      code: "ENCRYPTED",
      outputs: ["out/secret.pdf.json", "out/secret.pdf.error.json"],
    });
    const record = JSON.parse((await written()).get("out/secret.pdf.error.json")!.body) as ErrorRecord;
    expect(record).toMatchObject({ code: "ENCRYPTED", detectedType: { mime: "application/pdf" }, processor: { name: "text" } });
  });

  it("writes an empty .txt for a file that is only a byte order mark", async () => {
    const bomOnly = Buffer.from([0xef, 0xbb, 0xbf]);
    serve(bomOnly);
    const outcome = await processDocument(deps([text]), docRef({ key: "bom.txt", size: 3 }), submitContext());
    expect(outcome).toMatchObject({ status: "done" });
    const files = await written();
    expect(files.get("out/bom.txt.txt")!.body).toBe("");
    expect(JSON.parse(files.get("out/bom.txt.text.json")!.body)).toMatchObject({ characters: 0, bytes: 3, textBytes: 0 });
  });

  it("streams a text file through both processors", async () => {
    const content = Buffer.from("alpha beta\ngamma\n");
    serve(content);
    const outcome = await processDocument(deps([createMetadataProcessor(), text]), docRef({ key: "t.md", size: content.length }), submitContext());
    expect(outcome).toMatchObject({ status: "done" });
    const files = await written();
    expect(files.get("out/t.md.txt")!.body).toBe("alpha beta\ngamma\n");
    expect(JSON.parse(files.get("out/t.md.text.json")!.body)).toMatchObject({
      detectedType: { mime: "text/markdown" },
      words: 3,
      lines: 2,
    });
  });
});

describe("the chain from config", () => {
  it("resolves metadata and text by name, text declaring its suffixes", async () => {
    const chain = await resolveProcessors(["metadata", "text"], fixtures, { text: { extractorUrl } });
    expect(chain.map((p) => [p.name, p.outputSuffixes])).toEqual([
      ["metadata", [".json"]],
      ["text", [".txt", ".text.json"]],
    ]);
    await (chain[1] as TextProcessor).close();
  });

  it("refuses to start `text` without its extractor (a broken install fails at start-up, not on every document)", async () => {
    const err = await resolveProcessors(["text"], fixtures, { text: { extractorUrl: new URL("./missing.js", extractorUrl) } }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DocProcessorError);
    expect(err).toMatchObject({ code: "PROCESSOR_LOAD_FAILED" });
    expect((err as Error).message).toMatch(/text processor's extractor is missing/);
  });

  it("loads a user's own module, which runs in the chain and can refuse a document", async () => {
    const chain = await resolveProcessors(["metadata", "./word-count.mjs"], fixtures);
    expect(chain[1]).toMatchObject({ name: "word-count", version: "1.0.0", outputSuffixes: [".words.json"] });
    serve(Buffer.from("one two three"));
    const done = await processDocument(deps(chain), docRef({ key: "w.txt", size: 13 }), submitContext());
    expect(done.status).toBe("done");
    expect((done as Extract<Outcome, { status: "done" }>).outputs.sort()).toEqual(["out/w.txt.json", "out/w.txt.words.json"]);
    expect(JSON.parse((await written()).get("out/w.txt.words.json")!.body)).toEqual({ words: 3 });

    s3Mock.resetHistory();
    serve(Buffer.from("   "));
    const refused = await processDocument(deps(chain), docRef({ key: "blank.txt", size: 3 }), submitContext());
    expect(refused).toMatchObject({ status: "failed-permanently", code: "NO_WORDS" });
  });

  it("refuses, at load time, two processors declaring the same suffix or one declaring the error suffix", async () => {
    const collide = await resolveProcessors(["metadata", "./json-writer.mjs"], fixtures).catch((e: unknown) => e);
    expect(collide).toBeInstanceOf(DocProcessorError);
    expect((collide as Error).message).toMatch(/metadata and \.\/json-writer\.mjs both write "<key>\.json"/);

    const p = (suffixes: unknown): Processor => ({ name: "p", version: "1", outputSuffixes: suffixes as string[], process: async () => [] });
    expect(() => checkOutputSuffixes([p([".error.json"])], ["./p.mjs"])).toThrow(/reserved/);
    expect(() => checkOutputSuffixes([p("nope")], ["./p.mjs"])).toThrow(/must be an array of strings/);
    expect(() => checkOutputSuffixes([p([".a", ".a"]), p([".b"])], ["x", "y"])).not.toThrow();
  });
});
