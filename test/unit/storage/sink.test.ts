import { SQSClient } from "@aws-sdk/client-sqs";
import { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  encodeMetadataValue,
  lineageMetadata,
  writeOutput,
  type Lineage,
  type SinkTarget,
} from "../../../src/storage/sink.js";
import { awsError, chunked, generated, sendOptions, sourceInfo, stalled, testS3Client } from "../pipeline/helpers.js";
import { sdkTransport } from "../../../src/aws/sdk-transport.js";

const MiB = 1024 * 1024;

const lineage: Lineage = {
  source: sourceInfo({ bucket: "src", key: "dir/naïve résumé.txt", eTag: "abc123" }),
  processor: { name: "metadata", version: "1.0.0" },
};

const expectedMetadata = {
  "source-bucket": "src",
  "source-key": "dir/na%C3%AFve r%C3%A9sum%C3%A9.txt",
  "source-etag": "abc123",
  processor: "metadata",
  "processor-version": "1.0.0",
};

describe("encodeMetadataValue", () => {
  it("leaves printable ASCII alone", () => {
    expect(encodeMetadataValue("in/a b+c=d.txt")).toBe("in/a b+c=d.txt");
  });

  it("percent-encodes non-ASCII, control characters, '%' and spaces at the ends", () => {
    expect(encodeMetadataValue("日本")).toBe("%E6%97%A5%E6%9C%AC");
    expect(encodeMetadataValue("a\nb\tc")).toBe("a%0Ab%09c");
    expect(encodeMetadataValue("100%")).toBe("100%25");
    expect(encodeMetadataValue("  x  ")).toBe("%20%20x%20%20");
  });

  it.each(["plain", "with %41 literal", "emoji 😀 and ü", " edge ", "tab\there", "a%2Fb"])(
    "round-trips %j through decodeURIComponent",
    (value) => {
      const encoded = encodeMetadataValue(value);
      expect(encoded).toMatch(/^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/);
      expect(decodeURIComponent(encoded)).toBe(value);
    },
  );

  it("gives on its fast path (values needing no encoding) what the character loop gives, on generated values", () => {
    // The loop the fast path short-cuts, as it was before it.
    const reference = (value: string): string => {
      let out = "";
      for (const ch of value) {
        const code = ch.codePointAt(0) ?? 0;
        out += code < 0x20 || code > 0x7e || ch === "%" ? encodeURIComponent(ch) : ch;
      }
      return out.replace(/^ +| +$/g, (spaces) => "%20".repeat(spaces.length));
    };
    const alphabet = ["a", "Z", "0", " ", "%", "~", "\x7f", "\x1f", "/", "é", "😀", "\"", "!", "$", "&"];
    let seed = 7;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 5000; i++) {
      let value = "";
      const n = Math.floor(random() * 8);
      for (let j = 0; j < n; j++) value += alphabet[Math.floor(random() * alphabet.length)]!;
      expect(encodeMetadataValue(value), JSON.stringify(value)).toBe(reference(value));
    }
  });
});

describe("lineageMetadata", () => {
  it("names source bucket, key, eTag and the processor", () => {
    expect(lineageMetadata(lineage)).toEqual(expectedMetadata);
  });

  it("shortens a key that would push metadata over S3's 2 KiB, without cutting an escape", () => {
    const meta = lineageMetadata({ ...lineage, source: { ...lineage.source, key: "日".repeat(340) } });
    const size = Object.entries(meta).reduce((n, [k, v]) => n + k.length + v.length, 0);
    expect(size).toBeLessThanOrEqual(2048);
    expect(meta["source-key-truncated"]).toBe("true");
    expect(meta["source-key"]).toMatch(/^(%E6%97%A5)+$/);
    expect(decodeURIComponent(meta["source-key"]!)).toMatch(/^日+$/);
  });
});

describe("writeOutput", () => {
  let s3: S3Client;
  let s3Mock: ReturnType<typeof mockClient>;
  let target: SinkTarget;
  const signal = new AbortController().signal;

  beforeEach(() => {
    s3 = testS3Client();
    s3Mock = mockClient(s3);
    s3Mock.on(PutObjectCommand).resolves({ ETag: '"p"' });
    s3Mock.on(CreateMultipartUploadCommand).resolves({ UploadId: "up-1" });
    s3Mock.on(UploadPartCommand).callsFake((input: { PartNumber: number }) => ({ ETag: `"part-${input.PartNumber}"` }));
    s3Mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"done"' });
    target = { objects: sdkTransport(async () => s3, new SQSClient({ region: "us-east-1" })).objects, s3: async () => s3, bucket: "out", partSize: 5 * MiB, queueSize: 2 };
  });
  afterEach(() => s3Mock.restore());

  it("sends a string as one PutObject with its UTF-8 length and the lineage metadata", async () => {
    const res = await writeOutput(target, "k.json", { body: "héllo", contentType: "application/json" }, lineage, signal);
    expect(res).toEqual({ key: "k.json", bytes: 6, method: "put" });
    expect(s3Mock.commandCalls(PutObjectCommand)[0]!.args[0].input).toEqual({
      Bucket: "out",
      Key: "k.json",
      Body: "héllo",
      ContentLength: 6,
      ContentType: "application/json",
      Metadata: expectedMetadata,
    });
  });

  it("sends a Uint8Array as one PutObject", async () => {
    const res = await writeOutput(target, "k.bin", { body: new Uint8Array(10), contentType: "application/octet-stream" }, lineage, signal);
    expect(res).toEqual({ key: "k.bin", bytes: 10, method: "put" });
    expect(s3Mock.commandCalls(PutObjectCommand)[0]!.args[0].input.ContentLength).toBe(10);
  });

  it("sends a Readable with a known length as one PutObject with ContentLength, passing the signal", async () => {
    const body = chunked(["abcd"]);
    const res = await writeOutput(target, "k.txt", { body, contentType: "text/plain", contentLength: 4 }, lineage, signal);
    expect(res).toEqual({ key: "k.txt", bytes: 4, method: "put" });
    const call = s3Mock.commandCalls(PutObjectCommand)[0]!;
    expect(call.args[0].input).toMatchObject({ Body: body, ContentLength: 4, Metadata: expectedMetadata });
    expect(sendOptions(call)?.abortSignal).toBe(signal);
    expect(s3Mock.commandCalls(CreateMultipartUploadCommand)).toHaveLength(0);
  });

  it("uploads a short Readable of unknown length as one PutObject", async () => {
    const res = await writeOutput(target, "k.txt", { body: chunked(["ab", "cd"]), contentType: "text/plain" }, lineage, signal);
    expect(res).toEqual({ key: "k.txt", bytes: 4, method: "put" });
    expect(s3Mock.commandCalls(PutObjectCommand)[0]!.args[0].input.Metadata).toEqual(expectedMetadata);
    expect(s3Mock.commandCalls(CreateMultipartUploadCommand)).toHaveLength(0);
  });

  it("uploads a long Readable of unknown length in parts, with metadata on the upload", async () => {
    const body = generated(12 * MiB);
    const res = await writeOutput(target, "big.bin", { body, contentType: "application/octet-stream" }, lineage, signal);
    expect(res).toEqual({ key: "big.bin", bytes: 12 * MiB, method: "multipart" });
    expect(s3Mock.commandCalls(CreateMultipartUploadCommand)[0]!.args[0].input).toMatchObject({
      Bucket: "out",
      Key: "big.bin",
      ContentType: "application/octet-stream",
      Metadata: expectedMetadata,
    });
    expect(s3Mock.commandCalls(UploadPartCommand)).toHaveLength(3);
    expect(s3Mock.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(1);
    expect(s3Mock.commandCalls(HeadObjectCommand)).toHaveLength(0);
  });

  it("leaves parts of a failed upload (no AbortMultipartUpload: the role cannot) and destroys the body", async () => {
    s3Mock.on(UploadPartCommand).rejects(awsError("InternalError", 500, "part failed"));
    const body = generated(64 * MiB);
    await expect(
      writeOutput(target, "big.bin", { body, contentType: "application/octet-stream" }, lineage, signal),
    ).rejects.toThrow("part failed");
    expect(s3Mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(0);
    expect(body.destroyed).toBe(true);
    expect(body.produced).toBeLessThan(64 * MiB);
  });

  it("reports the output stream's own error when it breaks mid-upload", async () => {
    let sent = false;
    const body = new Readable({
      read() {
        if (sent) {
          this.destroy(new Error("processor exploded"));
        } else {
          sent = true;
          this.push(Buffer.alloc(1024));
        }
      },
    });
    await expect(
      writeOutput(target, "k.bin", { body, contentType: "application/octet-stream" }, lineage, signal),
    ).rejects.toThrow("processor exploded");
  });

  it("destroys a Readable body when its PutObject fails", async () => {
    s3Mock.on(PutObjectCommand).rejects(awsError("AccessDenied", 403));
    const body = stalled();
    await expect(
      writeOutput(target, "k.txt", { body, contentType: "text/plain", contentLength: 10 }, lineage, signal),
    ).rejects.toThrow();
    expect(body.destroyed).toBe(true);
  });

  it("stops a multipart upload when the signal aborts, destroying the body", async () => {
    const ac = new AbortController();
    const body = stalled();
    const writing = writeOutput(target, "k.bin", { body, contentType: "application/octet-stream" }, lineage, ac.signal);
    ac.abort();
    await expect(writing).rejects.toThrow(/abort/i);
    expect(body.destroyed).toBe(true);
    expect(s3Mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(0);
  });
});
