import pTimeout, { type ClearablePromise } from 'p-timeout';
import { TimeoutError } from '../errors.js';

/**
 * Limits one attempt to `milliseconds`, on `p-timeout`. On expiry the returned promise rejects
 * with Dovetail's own `TimeoutError` (p-timeout's class never reaches users) and `onTimeout` is
 * told first, so the attempt's signal is aborted. The timer is cleared as soon as the attempt
 * settles, or by `clear()`, so a pending attempt never keeps the process alive past its task.
 */
export function withTimeout<T>(
  attempt: PromiseLike<T>,
  milliseconds: number,
  onTimeout: (error: TimeoutError) => void,
): ClearablePromise<T> {
  return pTimeout(attempt, {
    milliseconds,
    fallback: () => {
      const error = new TimeoutError(`timed out after ${milliseconds} ms`, { timeout: milliseconds });
      onTimeout(error);
      throw error;
    },
  });
}
