import { describe, expect, it } from "vitest";
import { Budget } from "../../../../src/processors/builtin/text/limits.js";

describe("Budget", () => {
  it("grants what fits at once and queues the rest in order", async () => {
    const budget = new Budget(10);
    const releaseA = await budget.acquire(6);
    const order: string[] = [];
    const b = budget.acquire(6).then((r) => {
      order.push("b");
      return r;
    });
    // Fits, but must not overtake b (FIFO: a stream of small ones would starve a large one).
    const c = budget.acquire(1).then((r) => {
      order.push("c");
      return r;
    });
    expect(budget.used).toBe(6);
    releaseA();
    const releaseB = await b;
    const releaseC = await c;
    expect(order).toEqual(["b", "c"]);
    expect(budget.used).toBe(7);
    releaseB();
    releaseC();
    releaseC(); // twice is harmless
    expect(budget.used).toBe(0);
  });

  it("runs a request larger than the whole budget alone", async () => {
    const budget = new Budget(10);
    const small = await budget.acquire(1);
    const huge = budget.acquire(1000);
    small();
    const release = await huge;
    expect(budget.used).toBe(10);
    release();
    expect(budget.used).toBe(0);
  });

  it("leaves the queue on abort with the signal's reason, letting the next one in", async () => {
    const budget = new Budget(1);
    const hold = await budget.acquire(1);
    const ac = new AbortController();
    const waiting = budget.acquire(1, ac.signal);
    const next = budget.acquire(1);
    ac.abort(new Error("stop"));
    await expect(waiting).rejects.toThrow("stop");
    hold();
    const release = await next;
    expect(budget.used).toBe(1);
    release();
    await expect(budget.acquire(1, AbortSignal.abort(new Error("already")))).rejects.toThrow("already");
    expect(budget.used).toBe(0);
  });
});
