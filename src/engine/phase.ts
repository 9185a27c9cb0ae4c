import type { AsyncResource } from 'node:async_hooks';
import type { ClearablePromise } from 'p-timeout';
import type { TokenWait } from '../policies/rate-limit.js';
import type { Hedging } from './hedge.js';
import type { RetryLoop } from './retry.js';

/** Where an execution is in its life. */
export const Phase = Object.freeze({
  /** Waiting for its gate slot. */
  QUEUED: 0,
  /** Holds its slot; waits for a rate-limit token before an attempt. */
  TOKEN: 1,
  /** An attempt runs. */
  RUNNING: 2,
  /** Between attempts: the retry delay. */
  SLEEPING: 3,
  /** Settled: done, failed or cancelled. */
  SETTLED: 4,
} as const);
export type Phase = (typeof Phase)[keyof typeof Phase];

/**
 * What an execution holds only while something needs it, made on first use so that a plain task
 * stays small.
 */
export interface Holdings {
  /** The execution's own signal, for waits between attempts (token, retry sleep). */
  controller: AbortController | undefined;
  /** In phase TOKEN: the wait for an in-process token, to call off if the task settles first. */
  tokenWait: TokenWait | undefined;
  /** In phase RUNNING: the attempt's timeout. */
  timer: ClearablePromise<unknown> | undefined;
  /** Once the first attempt failed and retries remain: the retry loop, which gets each outcome. */
  loop: RetryLoop | undefined;
  /** The object published on `dovetail:task` for this task. */
  channelContext: Record<string, unknown> | undefined;
  /** The async context its attempts run in while its span is open on `dovetail:task`. */
  channelScope: AsyncResource | undefined;
  /** In phase RUNNING, with the `hedge` option: the hedges of the attempt. */
  hedge: Hedging | undefined;
  /** Milliseconds its first attempt waited for its key's token, when it waited (0 until then). */
  keyWaited: number;
}

/** Fresh holdings, every field empty (one shape for every execution). */
export const newHoldings = (): Holdings => ({
  controller: undefined,
  tokenWait: undefined,
  timer: undefined,
  loop: undefined,
  channelContext: undefined,
  channelScope: undefined,
  hedge: undefined,
  keyWaited: 0,
});
