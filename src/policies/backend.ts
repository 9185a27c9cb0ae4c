import type { Gate } from './gate.js';
import type { RateLimiter } from './rate-limit.js';

/**
 * Where an instance's concurrency gate and rate limiter live. The default keeps both in this
 * process; a shared back end (for example `dovetail/redis`) makes every process that uses it share
 * one limit and one bucket.
 *
 * @example
 * ```ts
 * import { Dovetail, LocalGate, TokenBucket, type Backend } from 'dovetail';
 * const backend: Backend = {
 *   createGate: ({ concurrency }) => new LocalGate(concurrency),
 *   createRateLimiter: ({ perSecond, burst }) => new TokenBucket(perSecond, burst),
 * };
 * const dvt = new Dovetail({ concurrency: 4, backend });
 * ```
 */
export interface Backend {
  /** Builds the gate for `concurrency` slots (called only when `concurrency` is finite). */
  createGate(options: { concurrency: number }): Gate;
  /** Builds the limiter (called only when `rateLimit` is set). */
  createRateLimiter(options: { perSecond: number; burst: number }): RateLimiter;
  /** Releases what the back end holds; called once by `shutdown()`. */
  close?(): Promise<void> | void;
}
