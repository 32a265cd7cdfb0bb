/**
 * The one read path of a document's source: every processor reads its own branch, fed from the single GetObject
 * body here, so bytes are counted and a short body is caught in one place whatever the size of the chain.
 * Event-driven ('data', pause/resume) rather than an async iteration: it costs less per chunk.
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
 * branch wants more. Resolves to the bytes read; rejects with the body's error, when the body closes before its
 * end, or when it ended short of `expected` (its Content-Length), before any branch is ended, so no processor
 * mistakes a cut body for a whole one.
 */
export function feedBranches(body: Readable, branches: readonly PassThrough[], expected: number | undefined): Promise<number> {
  // A body that is already over emits nothing more: without this the feed would wait for an event that never comes
  // and the message would hang until its processing cap.
  if (body.errored !== null) return Promise.reject(body.errored);
  if (body.destroyed || body.readableEnded) {
    return Promise.reject(Object.assign(new Error("the source stream was over before it was read"), { code: "ERR_STREAM_PREMATURE_CLOSE" }));
  }
  return new Promise((resolve, reject) => {
    let bytes = 0;
    const settle = (err?: Error): void => {
      body.off("data", onData);
      body.off("end", onEnd);
      body.off("error", onError);
      body.off("close", onClose);
      if (err === undefined) resolve(bytes);
      else reject(err);
    };
    const onData = (chunk: Buffer): void => {
      bytes += chunk.length;
      const live = branches.filter((b) => !b.destroyed && !b.writableEnded);
      if (live.length === 0) {
        settle();
        body.destroy();
        return;
      }
      const waits: Promise<void>[] = [];
      for (const b of live) if (!b.write(chunk)) waits.push(drainOrClose(b));
      if (waits.length > 0) {
        body.pause();
        void Promise.all(waits).then(() => body.resume());
      }
    };
    const onEnd = (): void => {
      if (expected !== undefined && bytes !== expected) {
        settle(new Error(`the source stream ended after ${bytes} of ${expected} bytes`));
        return;
      }
      for (const b of branches) if (!b.destroyed) b.end();
      settle();
    };
    const onError = (err: Error): void => settle(err);
    const onClose = (): void => settle(Object.assign(new Error("Premature close"), { code: "ERR_STREAM_PREMATURE_CLOSE" }));
    body.on("data", onData);
    body.once("end", onEnd);
    body.once("error", onError);
    body.once("close", onClose);
  });
}
