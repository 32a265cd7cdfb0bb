// The framing and the messages between the daemon and the extraction child: a hostile child must not be able to
// make the daemon allocate more than a reply may carry, nor put anything unchecked into a record.
import { describe, expect, it } from "vitest";
import { encodeFrame, FrameDecoder, FrameError } from "../../../../src/processors/builtin/text/frames.js";
import {
  collectFrame,
  jobFrame,
  parseChildFrame,
  parseDaemonFrame,
  replyFrame,
} from "../../../../src/processors/builtin/text/protocol.js";

const concat = (chunks: Uint8Array[]): Buffer => Buffer.concat(chunks);
const limits = { maxTextBytes: 100, maxUncompressedBytes: 1000 };

function prefix(headerLength: number, payloadLength: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(headerLength, 0);
  b.writeUInt32LE(payloadLength, 4);
  return b;
}

describe("FrameDecoder", () => {
  it("cuts frames however the stream is split, and passes the payload through as it is", () => {
    const payload = Buffer.from("a document, byte for byte \u00ff");
    const stream = Buffer.concat([concat(encodeFrame({ type: "a" }, payload)), concat(encodeFrame({ type: "b", n: 2 }))]);
    for (const size of [1, 3, 8, 13, stream.length]) {
      const decoder = new FrameDecoder({ maxPayloadBytes: 1024 });
      const frames = [];
      for (let i = 0; i < stream.length; i += size) frames.push(...decoder.push(stream.subarray(i, i + size)));
      expect(frames.map((f) => [f.header, f.payload.toString()])).toEqual([
        [{ type: "a" }, payload.toString()],
        [{ type: "b", n: 2 }, ""],
      ]);
    }
  });

  it("writes the payload without copying it", () => {
    const payload = new Uint8Array(10);
    expect(encodeFrame({ type: "job" }, payload)[1]).toBe(payload);
  });

  it("refuses a payload over the current limit from its declared length, before allocating it", () => {
    const decoder = new FrameDecoder({ maxPayloadBytes: 100 });
    expect(() => decoder.push(prefix(2, 0xffff_ffff))).toThrow(/payload of 4294967295 bytes \(at most 100 now\)/);
    // Out of step for good: nothing more is read from that stream.
    expect(() => decoder.push(concat(encodeFrame({ type: "x" })))).toThrow(FrameError);
  });

  it("follows a limit that changes between frames", () => {
    const decoder = new FrameDecoder({ maxPayloadBytes: 0 });
    expect(() => new FrameDecoder({ maxPayloadBytes: 0 }).push(concat(encodeFrame({ t: 1 }, Buffer.alloc(1))))).toThrow(
      /payload of 1 bytes/,
    );
    decoder.maxPayloadBytes = 5;
    expect(decoder.push(concat(encodeFrame({ t: 1 }, Buffer.alloc(5))))).toHaveLength(1);
  });

  it.each([
    ["an empty header", prefix(0, 0), /header of 0 bytes/],
    ["a header over 1 MiB", prefix(1024 * 1024 + 1, 0), /header of 1048577 bytes/],
    ["a header that is not JSON", Buffer.concat([prefix(3, 0), Buffer.from("abc")]), /not JSON/],
    ["a header that is not an object", Buffer.concat([prefix(2, 0), Buffer.from("[]")]), /not a JSON object/],
  ])("refuses %s", (_what, bytes, message) => {
    expect(() => new FrameDecoder({ maxPayloadBytes: 10 }).push(bytes)).toThrow(message);
  });
});

describe("protocol", () => {
  const decode = (chunks: Uint8Array[], max = 1 << 20) => new FrameDecoder({ maxPayloadBytes: max }).push(concat(chunks))[0]!;

  it("carries a job to the child and its text back", () => {
    const data = new Uint8Array(Buffer.from("<p>hi</p>"));
    const job = parseDaemonFrame(decode(jobFrame(7, { kind: "html", data, encoding: "utf-16le", limits, verbosity: 1 })));
    expect(job).toMatchObject({ type: "job", request: { id: 7, kind: "html", encoding: "utf-16le", limits, verbosity: 1 } });
    expect(job.type === "job" && Buffer.from(job.request.data).toString()).toBe("<p>hi</p>");
    expect(parseDaemonFrame(decode(collectFrame()))).toEqual({ type: "collect" });

    const text = "text \u00e9\u4e2d\ud83d\ude00";
    const reply = parseChildFrame(decode(replyFrame({ id: 7, ok: true, result: { text, pages: 2, warnings: ["w"] } })));
    expect(reply).toEqual({ type: "reply", reply: { id: 7, ok: true, result: { text, pages: 2, warnings: ["w"] } } });
    const refusal = { id: 8, ok: false as const, permanent: true as const, code: "ENCRYPTED", message: "m", detectedType: { mime: "application/pdf", ext: "pdf" } };
    expect(parseChildFrame(decode(replyFrame(refusal)))).toEqual({ type: "reply", reply: refusal });
    expect(parseChildFrame(decode(encodeFrame({ type: "collected" })))).toEqual({ type: "collected" });
  });

  it("bounds what a reply puts into a record: warnings and messages are clipped", () => {
    const warnings = Array.from({ length: 100 }, (_, i) => `${i}`.padEnd(1000, "x"));
    const reply = parseChildFrame(decode(encodeFrame({ type: "reply", id: 1, ok: true, warnings }, Buffer.from("t"))));
    const result = reply.type === "reply" && reply.reply.ok ? reply.reply.result : undefined;
    expect(result?.warnings).toHaveLength(21);
    expect(Math.max(...result!.warnings.map((w) => w.length))).toBe(300);
    const error = parseChildFrame(decode(encodeFrame({ type: "reply", id: 1, ok: false, message: "m".repeat(10_000) })));
    expect(error.type === "reply" && !error.reply.ok ? error.reply.message.length : 0).toBe(2000);
  });

  it.each([
    ["an unknown type", { type: "shell", id: 1 }, undefined, /unexpected message.*"shell"/],
    ["a reply without an id", { type: "reply", ok: true, warnings: [] }, undefined, /without an id/],
    ["warnings that are not strings", { type: "reply", id: 1, ok: true, warnings: [{}] }, undefined, /warnings/],
    ["a negative page count", { type: "reply", id: 1, ok: true, warnings: [], pages: -1 }, undefined, /page count/],
    ["an error with text", { type: "reply", id: 1, ok: false, message: "m" }, Buffer.from("x"), /neither/],
    ["a code that is not a code", { type: "reply", id: 1, ok: false, permanent: true, code: "no\nway", message: "m" }, undefined, /invalid code/],
    [
      "a detected type that is not one",
      { type: "reply", id: 1, ok: false, permanent: true, code: "CORRUPT", message: "m", detectedType: { mime: 1 } },
      undefined,
      /detected type/,
    ],
    ["ready with a payload", { type: "ready" }, Buffer.from("x"), /unexpected message/],
  ])("refuses %s from the child", (_what, header, payload, message) => {
    expect(() => parseChildFrame(decode(encodeFrame(header, payload)))).toThrow(message);
  });
});
