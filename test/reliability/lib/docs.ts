// Source documents for the scenarios: seeded sizes (mostly small, a few large enough to be cut mid-stream by a kill)
// and keys that exercise the event key encoding (spaces, '+', '%', non-ASCII), with their sha256 for the audit.
import { createHash } from "node:crypto";
import type { SourceDoc } from "./accounting.js";
import type { Rng } from "./random.js";

export interface Doc extends SourceDoc {
  body: Buffer;
}

const KEY_SHAPES: readonly ((prefix: string, n: string) => string)[] = [
  (p, n) => `${p}/doc-${n}.txt`,
  (p, n) => `${p}/with space ${n}.txt`,
  (p, n) => `${p}/plus+and%percent ${n}.bin`,
  (p, n) => `${p}/ünïcödé/€ ${n}.txt`,
  (p, n) => `${p}/deep/a/b/c/${n}.json`,
];

function sizeFor(rng: Rng): number {
  const r = rng.next();
  if (r < 0.85) return rng.int(64, 8 * 1024);
  if (r < 0.98) return rng.int(16 * 1024, 128 * 1024);
  return rng.int(512 * 1024, 1024 * 1024);
}

function bodyOf(rng: Rng, size: number): Buffer {
  const body = Buffer.allocUnsafe(size);
  let i = 0;
  for (; i + 4 <= size; i += 4) body.writeUInt32LE(Math.floor(rng.next() * 0x100000000), i);
  for (; i < size; i++) body[i] = rng.int(0, 255);
  return body;
}

export function makeDocs(prefix: string, count: number, rng: Rng): Doc[] {
  return Array.from({ length: count }, (_, i) => {
    const n = String(i + 1).padStart(4, "0");
    const key = KEY_SHAPES[i % KEY_SHAPES.length]!(prefix, n);
    const body = bodyOf(rng, sizeFor(rng));
    return { key, body, size: body.length, sha256: createHash("sha256").update(body).digest("hex") };
  });
}
