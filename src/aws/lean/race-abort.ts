/**
 * `promise`, or a rejection with `abortError(signal)` as soon as `signal` aborts (at once when it already has). The
 * work behind `promise` goes on; only the wait is cut short: a slow credentials refresh or a retry delay must not
 * hold a shutdown. The local stand-in uses it too (test/local/gateway/upstream.ts), with its own error.
 */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined, abortError: (signal: AbortSignal) => Error): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the refusal, passed on as is
        reject(err);
      },
    );
  });
}
