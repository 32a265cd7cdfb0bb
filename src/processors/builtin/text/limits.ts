/**
 * A FIFO budget of units (bytes, or 1 for a slot) that callers wait for, abortably. A request larger than the whole
 * budget takes all of it, so it runs alone instead of waiting forever; FIFO order keeps small ones from starving it.
 */
/** The reason a signal was aborted with, as an Error (AbortSignal's default reason is a DOMException, an Error). */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error(`aborted: ${String(reason)}`);
}

export class Budget {
  readonly capacity: number;
  #used = 0;
  readonly #waiters: { amount: number; grant: () => void }[] = [];

  constructor(capacity: number) {
    if (!(capacity > 0)) throw new RangeError("a budget needs a positive capacity");
    this.capacity = capacity;
  }

  get used(): number {
    return this.#used;
  }

  /** Resolves with a release function once `amount` fits; rejects with the signal's reason on abort. */
  acquire(amount: number, signal?: AbortSignal): Promise<() => void> {
    const take = Math.min(Math.max(0, amount), this.capacity);
    if (signal?.aborted === true) return Promise.reject(abortReason(signal));
    const release = this.#releaser(take);
    if (this.#waiters.length === 0 && this.#used + take <= this.capacity) {
      this.#used += take;
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        amount: take,
        grant: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve(release);
        },
      };
      const onAbort = (): void => {
        const i = this.#waiters.indexOf(waiter);
        if (i !== -1) this.#waiters.splice(i, 1);
        // Leaving the head of the queue may let the next ones in.
        this.#drain();
        if (signal !== undefined) reject(abortReason(signal));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  #releaser(amount: number): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#used -= amount;
      this.#drain();
    };
  }

  #drain(): void {
    for (let next = this.#waiters[0]; next !== undefined; next = this.#waiters[0]) {
      if (this.#used + next.amount > this.capacity) return;
      this.#waiters.shift();
      this.#used += next.amount;
      next.grant();
    }
  }
}
