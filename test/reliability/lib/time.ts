// Abortable waiting. In the scenarios a sleep is load shaping (pacing uploads, picking a random moment to kill or
// stop a daemon) or the interval of a bounded poll, never a stand-in for an event that can be awaited.

export class Aborted extends Error {
  constructor(what: string) {
    super(`aborted while ${what}`);
    this.name = "Aborted";
  }
}

/** Resolves after `ms`, or rejects with Aborted when `signal` aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new Aborted("waiting"));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new Aborted("waiting"));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Polls `probe` every `intervalMs` until it returns true; false once `timeoutMs` has passed. For state that has no
 * event to wait on (queue depth lives in the emulator).
 */
export async function pollUntil(
  probe: () => Promise<boolean> | boolean,
  opts: { timeoutMs: number; intervalMs?: number; signal?: AbortSignal },
): Promise<boolean> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(opts.intervalMs ?? 500, Math.max(0, deadline - Date.now())), opts.signal);
  }
}
