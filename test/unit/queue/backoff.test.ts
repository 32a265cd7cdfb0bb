import { describe, expect, it } from "vitest";
import {
  RETURNED_AT_ONCE_MAX_RECEIVES,
  failedMessageVisibilitySeconds,
  failureVisibilitySeconds,
  heartbeatIntervalMs,
  parseReceiveCount,
  receiveBackoffMs,
} from "../../../src/queue/backoff.js";

const top = (): number => 1;
const bottom = (): number => 0;

describe("failureVisibilitySeconds", () => {
  it("doubles from 10 s with the receive count and caps at 900 s", () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => failureVisibilitySeconds(n, top))).toEqual([
      10, 20, 40, 80, 160, 320, 640,
    ]);
    expect(failureVisibilitySeconds(8, top)).toBe(900);
    expect(failureVisibilitySeconds(1_000_000, top)).toBe(900);
  });

  it("jitters down to half the ceiling, never below 1 s", () => {
    expect(failureVisibilitySeconds(1, bottom)).toBe(5);
    expect(failureVisibilitySeconds(3, bottom)).toBe(20);
    expect(failureVisibilitySeconds(20, bottom)).toBe(450);
    expect(failureVisibilitySeconds(3, () => 0.5)).toBe(30);
    for (let n = 1; n < 12; n++) {
      const v = failureVisibilitySeconds(n);
      expect(v).toBeGreaterThanOrEqual(1);
      expect(v).toBeLessThanOrEqual(900);
      expect(Number.isInteger(v)).toBe(true);
    }
  });

  it("treats a missing or nonsensical count as the first delivery", () => {
    expect(failureVisibilitySeconds(0, top)).toBe(10);
    expect(failureVisibilitySeconds(Number.NaN, top)).toBe(10);
    expect(failureVisibilitySeconds(-3, top)).toBe(10);
  });

  it("clamps a random source outside [0, 1]", () => {
    expect(failureVisibilitySeconds(2, () => 7)).toBe(20);
    expect(failureVisibilitySeconds(2, () => -1)).toBe(10);
  });
});

describe("receiveBackoffMs", () => {
  it("grows from 1 s and caps at 30 s", () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => receiveBackoffMs(n, top))).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000,
    ]);
    expect(receiveBackoffMs(500, top)).toBe(30_000);
  });

  it("jitters into the upper half", () => {
    expect(receiveBackoffMs(1, bottom)).toBe(500);
    expect(receiveBackoffMs(10, bottom)).toBe(15_000);
    expect(receiveBackoffMs(0, top)).toBe(1_000);
  });
});

describe("heartbeatIntervalMs and parseReceiveCount", () => {
  it("extends at half the visibility timeout", () => {
    expect(heartbeatIntervalMs(30)).toBe(15_000);
    expect(heartbeatIntervalMs(45)).toBe(22_500);
  });

  it("reads ApproximateReceiveCount, defaulting to 1", () => {
    expect(parseReceiveCount("4")).toBe(4);
    expect(parseReceiveCount(undefined)).toBe(1);
    expect(parseReceiveCount("")).toBe(1);
    expect(parseReceiveCount("zero")).toBe(1);
    expect(parseReceiveCount("0")).toBe(1);
  });
});

describe("failedMessageVisibilitySeconds", () => {
  const tooLarge = { status: "rejected" as const, code: "OBJECT_TOO_LARGE" };
  const keyTooLong = { status: "rejected" as const, code: "OUTPUT_KEY_TOO_LONG" };

  it("0 (visible at once) when every failure is an object over maxObjectBytes or an output key over S3's limit", () => {
    expect(failedMessageVisibilitySeconds([tooLarge], 1, top)).toBe(0);
    expect(failedMessageVisibilitySeconds([keyTooLong, tooLarge], 4, top)).toBe(0);
  });

  it("the backoff curve for retries, other rejections, or such a rejection mixed with a retry", () => {
    expect(failedMessageVisibilitySeconds([{ status: "retry", code: "SOURCE_READ_FAILED" }], 1, top)).toBe(10);
    expect(failedMessageVisibilitySeconds([{ status: "rejected", code: "PROCESSOR_FAILED" }], 2, top)).toBe(20);
    expect(failedMessageVisibilitySeconds([tooLarge, { status: "retry", code: "SOURCE_READ_FAILED" }], 3, top)).toBe(40);
    // A retried failure with the same code is not a rejection.
    expect(failedMessageVisibilitySeconds([{ status: "retry", code: "OBJECT_TOO_LARGE" }], 1, top)).toBe(10);
    expect(failedMessageVisibilitySeconds([], 1, top)).toBe(10);
  });

  it("backs off after RETURNED_AT_ONCE_MAX_RECEIVES receives, so a queue without a redrive policy cannot spin", () => {
    expect(failedMessageVisibilitySeconds([tooLarge], RETURNED_AT_ONCE_MAX_RECEIVES - 1, top)).toBe(0);
    expect(failedMessageVisibilitySeconds([tooLarge], RETURNED_AT_ONCE_MAX_RECEIVES, top)).toBe(
      failureVisibilitySeconds(RETURNED_AT_ONCE_MAX_RECEIVES, top),
    );
  });
});
