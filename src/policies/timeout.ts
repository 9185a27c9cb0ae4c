import pTimeout, { type ClearablePromise } from 'p-timeout';
import { TimeoutError } from '../errors.js';

/**
 * Limits one attempt to `milliseconds`, on `p-timeout`. On expiry the returned promise rejects
 * with Dovetail's own `TimeoutError` (p-timeout's class never reaches users) and `onTimeout` is
 * told first, so the attempt's signal is aborted. The timer is cleared as soon as the attempt
 * settles, or by `clear()`, so a pending attempt never keeps the process alive past its task.
 */
export function withTimeout<T>(
  attempt: Promise<T>,
  milliseconds: number,
  onTimeout: (error: TimeoutError) => void,
): ClearablePromise<T> {
  // p-timeout builds an error of its own, stack trace included, on every call, before any
  // timeout, and we never use it (the fallback throws ours). Measured on 100 000 tasks, that
  // stack capture was half of what a timeout added per task, so it is switched off for the
  // duration of this synchronous call. `attempt` is a native promise, so no user code runs
  // while the limit is lowered.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return pTimeout(attempt, {
      milliseconds,
      fallback: () => {
        const error = new TimeoutError(`timed out after ${milliseconds} ms`, {
          timeout: milliseconds,
        });
        onTimeout(error);
        throw error;
      },
    });
  } finally {
    Error.stackTraceLimit = limit;
  }
}
