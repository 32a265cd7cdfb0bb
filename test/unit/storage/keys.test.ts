import { describe, expect, it } from "vitest";
import { OutcomeCode, OutputKeyTooLongError } from "../../../src/errors/document.js";
import { MAX_S3_KEY_BYTES, longestSuffix, outputKey } from "../../../src/storage/keys.js";

describe("outputKey", () => {
  it("is <outputPrefix><source key><suffix>, the same every time", () => {
    expect(outputKey("processed/", "in/a b+c.pdf", ".json")).toBe("processed/in/a b+c.pdf.json");
    expect(outputKey("processed/", "in/a b+c.pdf", ".json")).toBe(outputKey("processed/", "in/a b+c.pdf", ".json"));
    expect(outputKey("", "k", "")).toBe("k");
  });

  it("accepts exactly 1024 bytes of UTF-8 and refuses 1025", () => {
    // "é" is 2 bytes: 511 of them + 2 ASCII = 1024 bytes.
    const key = "é".repeat(511);
    expect(outputKey("p", key, "s")).toHaveLength(513);
    expect(() => outputKey("p/", key, "s")).toThrow(OutputKeyTooLongError);
    expect(MAX_S3_KEY_BYTES).toBe(1024);
  });

  it("counts bytes, not characters", () => {
    const key = "日".repeat(342); // 1026 bytes in 342 characters
    let caught: unknown;
    try {
      outputKey("", key, "");
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(OutputKeyTooLongError);
    expect((caught as OutputKeyTooLongError).bytes).toBe(1026);
    expect((caught as OutputKeyTooLongError).code).toBe(OutcomeCode.outputKeyTooLong);
    expect((caught as Error).message).toContain("1026 bytes");
  });
});

describe("longestSuffix", () => {
  it("is the longest in UTF-8 bytes, or empty", () => {
    expect(longestSuffix([])).toBe("");
    expect(longestSuffix([".json", ".text.json", ".txt"])).toBe(".text.json");
    expect(longestSuffix([".abcde", ".ééé"])).toBe(".ééé");
  });
});

describe("OutputKeyTooLongError", () => {
  it("has a code of its own, quotes at most 80 characters of the key and says where the message goes", () => {
    const err = new OutputKeyTooLongError(`\u0007${"k".repeat(2000)}`, 2001, MAX_S3_KEY_BYTES);
    expect(err.code).toBe("OUTPUT_KEY_TOO_LONG");
    expect(err.message.length).toBeLessThan(400);
    expect(err.message).toContain('"\\u0007');
    expect(err.message).toContain("the message goes to the DLQ");
  });
});
