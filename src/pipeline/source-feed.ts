/**
 * The one read path of a document's source: every processor reads its own branch, fed from the single GetObject
 * body here, so bytes are counted and a short body is caught in one place whatever the size of the chain.
 */
import type { PassThrough, Readable, Writable } from "node:stream";

/** Resolves on 'drain', or on 'close' when the reader went away (a destroyed stream never drains). */
function drainOrClose(w: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      w.off("drain", done);
      w.off("close", done);
      resolve();
    };
    w.on("drain", done);
    w.on("close", done);
  });
}

/**
 * Copies `body` into the branches, reading the next chunk only when every live branch has room: the slowest
 * processor sets the pace and memory stays at a few chunks per branch. Stops reading (destroying the body) once no
 * branch wants more. Resolves to the bytes read; rejects with the body's error, or when the body ended short of
 * `expected` (its Content-Length), before any branch is ended, so no processor mistakes a cut body for a whole one.
 */
export async function feedBranches(
  body: Readable,
  branches: readonly PassThrough[],
  expected: number | undefined,
): Promise<number> {
  let bytes = 0;
  let abandoned = false;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    const live = branches.filter((b) => !b.destroyed && !b.writableEnded);
    if (live.length === 0) {
      abandoned = true;
      break; // for-await's return() destroys the body
    }
    const waits: Promise<void>[] = [];
    for (const b of live) if (!b.write(chunk)) waits.push(drainOrClose(b));
    if (waits.length > 0) await Promise.all(waits);
  }
  if (!abandoned && expected !== undefined && bytes !== expected) {
    throw new Error(`the source stream ended after ${bytes} of ${expected} bytes`);
  }
  for (const b of branches) if (!b.destroyed) b.end();
  return bytes;
}
