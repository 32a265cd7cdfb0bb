import { describe, expect, it } from "vitest";
import {
  checkArchive,
  checkDeclaredSizes,
  inflatedSize,
  readCentralDirectory,
  RATIO_FLOOR_BYTES,
  type ZipLimits,
} from "../../../../src/processors/builtin/text/zip.js";
import { PermanentDocumentError } from "../../../../src/processors/types.js";
import { makeDocx, makeZip, rawDeflateOfZeros, zipBombDocx } from "../../../fixtures/documents/build.js";

const MiB = 1024 * 1024;
const limits: ZipLimits = { maxUncompressedBytes: 64 * MiB, maxRatio: 200, maxEntries: 100 };

async function refusal(run: () => unknown): Promise<PermanentDocumentError> {
  let err: unknown;
  try {
    await run();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(PermanentDocumentError);
  return err as PermanentDocumentError;
}

describe("readCentralDirectory", () => {
  it("lists the entries of a DOCX with their sizes", () => {
    const entries = readCentralDirectory(makeDocx(["hello"]));
    expect(entries.map((e) => e.name)).toEqual(["[Content_Types].xml", "_rels/.rels", "word/document.xml"]);
    for (const e of entries) {
      expect(e.method).toBe(8);
      expect(e.uncompressedSize).toBeGreaterThan(0);
    }
  });

  it("calls a truncated or non-zip file corrupt", async () => {
    const docx = makeDocx(["hello"]);
    expect(await refusal(() => readCentralDirectory(docx.subarray(0, docx.length - 30)))).toMatchObject({ code: "CORRUPT" });
    expect(await refusal(() => readCentralDirectory(Buffer.from("PK")))).toMatchObject({ code: "CORRUPT" });
  });
});

describe("checkDeclaredSizes", () => {
  it("refuses a bomb by its declared ratio, before inflating anything", async () => {
    const err = await refusal(() => checkDeclaredSizes(readCentralDirectory(zipBombDocx(64 * MiB)), limits));
    expect(err.code).toBe("UNSAFE_ARCHIVE");
    expect(err.message).toMatch(/word\/document\.xml inflates \d+ bytes to 67108864 \(\d+:1\), above the 200:1 limit/);
  });

  it("lets small, very compressible parts through (only entries above the floor are judged by ratio)", () => {
    const tiny = makeZip([{ name: "zeros.xml", data: Buffer.alloc(RATIO_FLOOR_BYTES) }]);
    expect(() => checkDeclaredSizes(readCentralDirectory(tiny), limits)).not.toThrow();
  });

  it("refuses too many entries, too much in total, and unknown compression methods", async () => {
    const many = makeZip(Array.from({ length: 5 }, (_, i) => ({ name: `f${i}`, data: Buffer.from("x") })));
    expect(await refusal(() => checkDeclaredSizes(readCentralDirectory(many), { ...limits, maxEntries: 4 }))).toMatchObject({
      code: "UNSAFE_ARCHIVE",
    });
    const big = makeZip([{ name: "a", data: Buffer.alloc(2048), stored: true }]);
    expect(
      await refusal(() => checkDeclaredSizes(readCentralDirectory(big), { ...limits, maxUncompressedBytes: 1024 })),
    ).toMatchObject({ code: "UNSAFE_ARCHIVE" });
    const entries = readCentralDirectory(big).map((e) => ({ ...e, method: 12 }));
    expect((await refusal(() => checkDeclaredSizes(entries, limits))).message).toContain("compression method 12");
  });
});

describe("checkArchive", () => {
  it("passes a real DOCX", async () => {
    await expect(checkArchive(makeDocx(["a", "b"]), limits)).resolves.toHaveLength(3);
  });

  it("catches an archive that lies about its sizes by inflating it, keeping nothing", async () => {
    const before = process.memoryUsage().arrayBuffers;
    const err = await refusal(() => checkArchive(zipBombDocx(512 * MiB, true), limits));
    expect(err).toMatchObject({ code: "UNSAFE_ARCHIVE" });
    expect(err.message).toContain("inflates to more than the 1024 bytes it declares");
    // Inflating stopped right after the declared size: nowhere near the 512 MiB it would have produced.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * MiB);
  });

  it("calls an entry that does not inflate corrupt", async () => {
    const garbage = makeZip([
      { name: "word/document.xml", deflated: { bytes: Buffer.from([0xff, 0xff, 0xff, 0xff]), crc: 0, size: 10 } },
    ]);
    expect(await refusal(() => checkArchive(garbage, limits))).toMatchObject({ code: "CORRUPT" });
  });
});

describe("inflatedSize", () => {
  it("measures raw deflate data and stops once past the limit", async () => {
    const data = rawDeflateOfZeros(8 * MiB);
    await expect(inflatedSize(data, 16 * MiB)).resolves.toBe(8 * MiB);
    const stopped = await inflatedSize(data, MiB);
    expect(stopped).toBeGreaterThan(MiB);
    expect(stopped).toBeLessThan(8 * MiB);
  });
});
