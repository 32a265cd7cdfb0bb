// The acknowledgement decision alone: which outcomes delete a message, back it off, hand it to the redrive policy at
// once, or release it on shutdown, and with which failures and visibility.
import { describe, expect, it } from "vitest";
import type { Outcome } from "../../../src/pipeline/outcome.js";
import { decideAck, type AckInput } from "../../../src/queue/ack.js";

const DONE: Outcome = { status: "done", outputs: ["a.json"], bytesIn: 1, bytesOut: 1 };
const SUPERSEDED: Outcome = { status: "superseded", reason: "412" };
const PERMANENT: Outcome = { status: "failed-permanently", code: "ENCRYPTED", reason: "encrypted", outputs: ["a.error.json"] };
const RETRY: Outcome = { status: "retry", code: "SOURCE_READ_FAILED", reason: "socket reset" };
const TOO_LARGE: Outcome = { status: "rejected", code: "OBJECT_TOO_LARGE", reason: "too large" };
const OTHER_REJECTION: Outcome = { status: "rejected", code: "PROCESSOR_FAILED", reason: "two outputs, one key" };

function input(outcomes: Outcome[], over: Partial<AckInput> = {}): AckInput {
  return {
    documents: outcomes.map((_, i) => ({ key: `k${i}` })),
    outcomes,
    receiveCount: 1,
    abortedByShutdown: false,
    random: () => 1,
    ...over,
  };
}

describe("decideAck", () => {
  it("deletes when every document is done, superseded or failed permanently, even after a shutdown abort", () => {
    expect(decideAck(input([DONE, SUPERSEDED, PERMANENT]))).toEqual({ kind: "delete" });
    expect(decideAck(input([DONE], { abortedByShutdown: true }))).toEqual({ kind: "delete" });
  });

  it("backs off by the receive count with the failed documents, retry winning over rejected", () => {
    expect(decideAck(input([DONE, RETRY, OTHER_REJECTION], { receiveCount: 3 }))).toEqual({
      kind: "back-off",
      status: "retry",
      visibilityTimeout: 40,
      failures: [
        { key: "k1", status: "retry", code: "SOURCE_READ_FAILED", reason: "socket reset" },
        { key: "k2", status: "rejected", code: "PROCESSOR_FAILED", reason: "two outputs, one key" },
      ],
    });
    expect(decideAck(input([OTHER_REJECTION], { random: () => 0 }))).toMatchObject({
      kind: "back-off",
      status: "rejected",
      visibilityTimeout: 5,
    });
  });

  it("hands a message that can never succeed to the redrive policy at once, but not forever", () => {
    expect(decideAck(input([TOO_LARGE, DONE]))).toEqual({
      kind: "redrive",
      status: "rejected",
      visibilityTimeout: 0,
      failures: [{ key: "k0", status: "rejected", code: "OBJECT_TOO_LARGE", reason: "too large" }],
    });
    // Mixed with a retry, or past the receive limit of returning at once: the backoff curve.
    expect(decideAck(input([TOO_LARGE, RETRY])).kind).toBe("back-off");
    expect(decideAck(input([TOO_LARGE], { receiveCount: 10 })).kind).toBe("back-off");
  });

  it("releases a message shutdown aborted, whatever its failures, without drawing jitter", () => {
    let draws = 0;
    const decision = decideAck(
      input([RETRY, TOO_LARGE], {
        abortedByShutdown: true,
        random: () => {
          draws += 1;
          return 1;
        },
      }),
    );
    expect(decision).toEqual({
      kind: "release",
      failures: [
        { key: "k0", status: "retry", code: "SOURCE_READ_FAILED", reason: "socket reset" },
        { key: "k1", status: "rejected", code: "OBJECT_TOO_LARGE", reason: "too large" },
      ],
    });
    expect(draws).toBe(0);
  });
});
