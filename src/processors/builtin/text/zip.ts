/**
 * Zip-bomb checks for a DOCX before mammoth (through JSZip) inflates it: the central directory's declared sizes
 * against an absolute and a ratio limit, then each compressed entry inflated once with nothing kept, to catch an
 * archive that lies about its sizes. Memory stays at one zlib window whatever the archive claims.
 */
import { createInflateRaw } from "node:zlib";
import type { DetectedType } from "../../../domain/document.js";
import { PermanentDocumentError } from "../../../errors/document.js";

export interface ZipEntryInfo {
  name: string;
  /** 0 stored, 8 deflated; anything else is refused. */
  method: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
}

export interface ZipLimits {
  /** Sum of the declared uncompressed sizes. */
  maxUncompressedBytes: number;
  /** Largest compression ratio accepted for an entry above RATIO_FLOOR_BYTES. */
  maxRatio: number;
  maxEntries: number;
}

/** Entries smaller than this are never refused for their ratio: small XML parts compress extremely well. */
export const RATIO_FLOOR_BYTES = 1024 * 1024;

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

function corrupt(message: string, type?: DetectedType): PermanentDocumentError {
  return new PermanentDocumentError("CORRUPT", message, type === undefined ? undefined : { detectedType: type });
}

function unsafe(message: string, type?: DetectedType): PermanentDocumentError {
  return new PermanentDocumentError("UNSAFE_ARCHIVE", message, type === undefined ? undefined : { detectedType: type });
}

/** Reads the central directory (no zip64: a DOCX never needs it). Throws CORRUPT when it is missing or broken. */
export function readCentralDirectory(data: Uint8Array, type?: DetectedType): ZipEntryInfo[] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  // The end record is 22 bytes plus a comment of at most 65535.
  let end = -1;
  for (let i = data.length - 22; i >= Math.max(0, data.length - 22 - 65_535); i--) {
    if (view.getUint32(i, true) === EOCD) {
      end = i;
      break;
    }
  }
  if (end < 0) throw corrupt("not a complete zip archive: no end of central directory record (truncated?)", type);
  const count = view.getUint16(end + 10, true);
  const size = view.getUint32(end + 12, true);
  const offset = view.getUint32(end + 16, true);
  if (count === 0xffff || size === 0xffffffff || offset === 0xffffffff) {
    throw unsafe("a zip64 archive: a DOCX never needs zip64, so this one is refused", type);
  }
  if (offset + size > end) throw corrupt("the zip central directory points outside the archive", type);

  const entries: ZipEntryInfo[] = [];
  let p = offset;
  for (let n = 0; n < count; n++) {
    if (p + 46 > end || view.getUint32(p, true) !== CENTRAL) throw corrupt("a broken zip central directory entry", type);
    const nameLength = view.getUint16(p + 28, true);
    const extraLength = view.getUint16(p + 30, true);
    const commentLength = view.getUint16(p + 32, true);
    entries.push({
      method: view.getUint16(p + 10, true),
      compressedSize: view.getUint32(p + 20, true),
      uncompressedSize: view.getUint32(p + 24, true),
      localHeaderOffset: view.getUint32(p + 42, true),
      name: new TextDecoder().decode(data.subarray(p + 46, p + 46 + nameLength)),
    });
    p += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** Refuses an archive by its declared sizes alone. */
export function checkDeclaredSizes(entries: readonly ZipEntryInfo[], limits: ZipLimits, type?: DetectedType): void {
  if (entries.length > limits.maxEntries) {
    throw unsafe(`the archive has ${entries.length} entries, above the limit of ${limits.maxEntries}`, type);
  }
  let total = 0;
  for (const e of entries) {
    if (e.method !== 0 && e.method !== 8) {
      throw unsafe(`entry ${e.name} uses compression method ${e.method}; a DOCX uses only stored (0) or deflate (8)`, type);
    }
    total += e.uncompressedSize;
    const ratio = e.uncompressedSize / Math.max(1, e.compressedSize);
    if (e.uncompressedSize > RATIO_FLOOR_BYTES && ratio > limits.maxRatio) {
      throw unsafe(
        `entry ${e.name} inflates ${e.compressedSize} bytes to ${e.uncompressedSize} (${Math.round(ratio)}:1), ` +
          `above the ${limits.maxRatio}:1 limit: a zip bomb`,
        type,
      );
    }
  }
  if (total > limits.maxUncompressedBytes) {
    throw unsafe(
      `the archive inflates to ${total} bytes, above the limit of ${limits.maxUncompressedBytes} for one document`,
      type,
    );
  }
}

/** Where an entry's compressed data starts (the local header's own name and extra lengths may differ). */
function dataOffset(data: Uint8Array, e: ZipEntryInfo, type?: DetectedType): number {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const p = e.localHeaderOffset;
  if (p + 30 > data.length || view.getUint32(p, true) !== LOCAL) throw corrupt(`entry ${e.name} has no local header`, type);
  const start = p + 30 + view.getUint16(p + 26, true) + view.getUint16(p + 28, true);
  if (start + e.compressedSize > data.length) throw corrupt(`entry ${e.name} runs past the end of the archive`, type);
  return start;
}

/** Inflates `compressed`, keeping nothing; stops as soon as the output passes `limit` bytes. */
export function inflatedSize(compressed: Uint8Array, limit: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const inflater = createInflateRaw();
    let total = 0;
    inflater.on("data", (chunk: Buffer) => {
      total += chunk.length;
      if (total > limit) {
        inflater.destroy();
        resolve(total);
      }
    });
    inflater.on("end", () => resolve(total));
    inflater.on("error", reject);
    inflater.end(compressed);
  });
}

/** Inflates every deflated entry once: none may produce more than it declares. */
export async function verifyInflatedSizes(
  data: Uint8Array,
  entries: readonly ZipEntryInfo[],
  type?: DetectedType,
): Promise<void> {
  for (const e of entries) {
    const start = dataOffset(data, e, type);
    if (e.method !== 8) continue;
    let actual: number;
    try {
      actual = await inflatedSize(data.subarray(start, start + e.compressedSize), e.uncompressedSize);
    } catch (err) {
      throw corrupt(`entry ${e.name} does not inflate: ${err instanceof Error ? err.message : String(err)}`, type);
    }
    if (actual > e.uncompressedSize) {
      throw unsafe(`entry ${e.name} inflates to more than the ${e.uncompressedSize} bytes it declares: a zip bomb`, type);
    }
  }
}

/** All the checks, in order of cost. */
export async function checkArchive(data: Uint8Array, limits: ZipLimits, type?: DetectedType): Promise<ZipEntryInfo[]> {
  const entries = readCentralDirectory(data, type);
  checkDeclaredSizes(entries, limits, type);
  await verifyInflatedSizes(data, entries, type);
  return entries;
}
