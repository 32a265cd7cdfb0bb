// One writer per key at a time. The gateway evaluates S3 write conditions itself (fauxqs ignores them), so the lookup
// and the write must be one step: two If-None-Match writers interleaved would both find no object and both land.

export class KeyLock {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `task` once every earlier task for `key` has settled; tasks for other keys run freely. */
  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    try {
      await previous;
      return await task();
    } finally {
      release();
      // The last holder removes the entry, so the map only holds keys being written now.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Keys with a task running or waiting (for tests and leak checks). */
  get size(): number {
    return this.tails.size;
  }
}
