import pRetry from 'p-retry';

/**
 * Carries whatever an attempt threw through `p-retry`, which would otherwise refuse to retry a
 * `TypeError` or a non-Error value. Never leaves the engine: the caller gets `value` back.
 */
class AttemptFailure extends Error {
  readonly value: unknown;
  constructor(value: unknown) {
    super('attempt failed');
    this.value = value;
  }
}

/** Wraps a thrown value for `p-retry`. */
export function wrapFailure(value: unknown): Error {
  return new AttemptFailure(value);
}

/** The value an attempt threw, from whatever `p-retry` rejected with. */
export function unwrapFailure(error: unknown): unknown {
  return error instanceof AttemptFailure ? error.value : error;
}

/** How the retry loop asks its owner about each failure. */
export interface RetryHooks<T> {
  /** Runs attempt `attempt` (2, 3, ...); rejects with `wrapFailure(value)` on failure. */
  attempt(attempt: number): Promise<T>;
  /** Decides whether failed attempt `attempt` is retried; announces the retry when it is. */
  shouldRetry(value: unknown, attempt: number, sleep: number): boolean;
}

/**
 * Continues a task whose first attempt failed with `firstFailure`, on `p-retry`: at most
 * `retries` more attempts, retry n after `backoff * 2 ** (n - 1)` ms. The first failure is
 * replayed as p-retry's first attempt, so a task that succeeds at once never enters this loop.
 * Rejects with the last value thrown (unwrapped), or with `signal.reason` once `signal` aborts.
 */
export function retry<T>(
  firstFailure: unknown,
  retries: number,
  backoff: number,
  signal: AbortSignal,
  hooks: RetryHooks<T>,
): Promise<T> {
  return pRetry(
    (attempt) =>
      attempt === 1 ? Promise.reject(wrapFailure(firstFailure)) : hooks.attempt(attempt),
    {
      retries,
      factor: 2,
      minTimeout: backoff,
      maxTimeout: Infinity,
      randomize: false,
      signal,
      // Called by p-retry only while retries are left; the delay it then sleeps is the one
      // computed here.
      shouldRetry: ({ error, attemptNumber }) =>
        hooks.shouldRetry(
          unwrapFailure(error),
          attemptNumber,
          Math.round(backoff * 2 ** (attemptNumber - 1)),
        ),
    },
  ).catch((error: unknown) => {
    throw unwrapFailure(error);
  });
}
