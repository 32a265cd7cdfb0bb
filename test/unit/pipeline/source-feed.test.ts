// The one read path (src/pipeline/source-feed.ts): bytes counted, a short or long body refused before any branch is
// ended, and a body that is already over refused at once instead of waiting for an event that never comes.
import { PassThrough, Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { feedBranches } from "../../../src/pipeline/source-feed.js";

const collect = async (branch: PassThrough): Promise<string> => {
  let text = "";
  for await (const chunk of branch) text += String(chunk);
  return text;
};

/** Settles within a few event-loop turns, or says it did not. */
async function soon<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown; pending?: true }> {
  const timeout = new Promise<{ pending: true }>((resolve) => setTimeout(() => resolve({ pending: true }), 200));
  return Promise.race([promise.then((value) => ({ value }), (error: unknown) => ({ error })), timeout]);
}

describe("feedBranches", () => {
  it("copies the body into every branch and resolves to the bytes read", async () => {
    const branches = [new PassThrough(), new PassThrough()];
    const texts = branches.map(collect);
    await expect(feedBranches(Readable.from([Buffer.from("abc"), Buffer.from("def")]), branches, 6)).resolves.toBe(6);
    await expect(Promise.all(texts)).resolves.toEqual(["abcdef", "abcdef"]);
  });

  it.each([
    ["shorter than", 7],
    ["longer than", 5],
  ])("refuses a body %s its Content-Length and ends no branch", async (_what, expected) => {
    const branch = new PassThrough();
    branch.resume();
    await expect(feedBranches(Readable.from([Buffer.from("abcdef")]), [branch], expected)).rejects.toThrow(/ended after 6 of/);
    expect(branch.writableEnded).toBe(false);
  });

  it("refuses at once a body that was destroyed, errored or read to its end before the feed began", async () => {
    const destroyed = Readable.from([Buffer.from("x")]);
    destroyed.destroy();
    const errored = new Readable({ read() {} });
    errored.on("error", () => undefined);
    errored.destroy(new Error("connection reset"));
    const ended = Readable.from([Buffer.from("x")]);
    ended.resume();
    await new Promise((resolve) => ended.once("end", resolve));
    await new Promise((resolve) => setImmediate(resolve));

    for (const [body, message] of [
      [destroyed, /over before it was read/],
      [errored, /connection reset/],
      [ended, /over before it was read/],
    ] as const) {
      const outcome = await soon(feedBranches(body, [new PassThrough()], 1));
      expect(outcome.pending, "settled").toBeUndefined();
      expect(String(outcome.error)).toMatch(message);
    }
  });
});
