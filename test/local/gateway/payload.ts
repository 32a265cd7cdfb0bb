// Request body integrity: aws-chunked decoding (what the SDK sends for stream bodies) and the checksums S3 checks
// (x-amz-checksum-* headers or trailers, Content-MD5). CRC32 is zlib's (native); CRC32C has no Node built-in, hence
// the table.
import { createHash } from "node:crypto";
import { crc32 as zlibCrc32 } from "node:zlib";

function crcTable(polynomial: number): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? polynomial ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

const CRC32C_TABLE = crcTable(0x82f63b78);

function crc(table: Uint32Array, data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) c = table[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export const crc32 = (data: Uint8Array): number => zlibCrc32(data);
export const crc32c = (data: Uint8Array): number => crc(CRC32C_TABLE, data);

function uint32Base64(value: number): string {
  const buf = Buffer.alloc(4);
  buf.writeUInt32BE(value);
  return buf.toString("base64");
}

/** Algorithms we can verify, by the suffix of their x-amz-checksum-<alg> header. */
const CHECKSUMS: Record<string, (data: Buffer) => string> = {
  crc32: (data) => uint32Base64(crc32(data)),
  crc32c: (data) => uint32Base64(crc32c(data)),
  sha1: (data) => createHash("sha1").update(data).digest("base64"),
  sha256: (data) => createHash("sha256").update(data).digest("base64"),
};

export type ChecksumResult = "ok" | "mismatch" | "unsupported";

/** Compares `expected` (base64, as in x-amz-checksum-<algorithm>) with the checksum of `data`. */
export function verifyChecksum(algorithm: string, expected: string, data: Buffer): ChecksumResult {
  const compute = CHECKSUMS[algorithm.toLowerCase()];
  if (!compute) return "unsupported";
  return compute(data) === expected.trim() ? "ok" : "mismatch";
}

export interface DecodedChunks {
  payload: Buffer;
  /** Trailer headers, names lower-cased. */
  trailers: Record<string, string>;
}

/**
 * Decodes `<hex-size>[;ext]\r\n<data>\r\n … 0\r\n<trailer>:<value>\r\n\r\n`. Returns undefined on framing errors
 * (a truncated or corrupt body must not be stored as if it were whole).
 */
export function decodeAwsChunked(body: Buffer): DecodedChunks | undefined {
  const chunks: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const lineEnd = body.indexOf("\r\n", offset);
    if (lineEnd === -1) return undefined;
    const sizeText = body.subarray(offset, lineEnd).toString("latin1").split(";")[0]!.trim();
    if (!/^[0-9a-f]+$/i.test(sizeText)) return undefined;
    const size = parseInt(sizeText, 16);
    const dataStart = lineEnd + 2;
    if (size === 0) {
      offset = dataStart;
      break;
    }
    const dataEnd = dataStart + size;
    if (dataEnd + 2 > body.length || body.subarray(dataEnd, dataEnd + 2).toString("latin1") !== "\r\n") return undefined;
    chunks.push(body.subarray(dataStart, dataEnd));
    offset = dataEnd + 2;
  }
  const trailers: Record<string, string> = {};
  while (offset < body.length) {
    let lineEnd = body.indexOf("\r\n", offset);
    if (lineEnd === -1) lineEnd = body.length;
    const line = body.subarray(offset, lineEnd).toString("latin1");
    offset = lineEnd + 2;
    if (line === "") break;
    const colon = line.indexOf(":");
    if (colon <= 0) return undefined;
    trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { payload: Buffer.concat(chunks), trailers };
}

/** Content-MD5 check: "ok", "mismatch", or "invalid" when the header is not a base64 MD5. */
export function verifyContentMd5(header: string, data: Buffer): "ok" | "mismatch" | "invalid" {
  const given = Buffer.from(header.trim(), "base64");
  if (given.length !== 16 || given.toString("base64") !== header.trim()) return "invalid";
  return createHash("md5").update(data).digest().equals(given) ? "ok" : "mismatch";
}
