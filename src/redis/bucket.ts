import type { BackendHooks } from '../policies/backend.js';
import { TokenBucket, type RateLimiter } from '../policies/rate-limit.js';
import { script, type Store } from './store.js';

/**
 * The shared bucket as one Lua script: GCRA, the token bucket written as one timestamp (the
 * theoretical arrival time, TAT) on Redis's own clock, so every process agrees on time. Taking a
 * token moves the TAT one interval on and answers how long the caller must wait before its token
 * exists (0 while the burst lasts): a reservation, so waiters are served in the order they asked,
 * and each waits exactly once, with no polling. Giving a token back (a waiter cancelled) moves
 * the TAT one interval back. Times are microseconds. The key lives a minute past the last
 * reservation (a full bucket is the same as no key).
 */
const GCRA = script(`
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[4] or '1')
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if ARGV[3] == 'give' then
  tat = tat - interval * cost
  if tat < now then tat = now end
  redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil((tat - now) / 1000) + 60000)
  return 0
end
tat = tat + interval * cost
redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil((tat - now) / 1000) + 60000)
local wait = tat - burst * interval - now
if wait <= 0 then return 0 end
return math.ceil(wait)
`);

/**
 * The limiter every process using the same key shares: `perSecond` tokens a second, at most
 * `burst` saved up, across all of them. `acquire()` costs one round trip; it resolves `0` when a
 * token is free, else the milliseconds waited (the instance emits `rate_limited` with it and
 * counts `throttled`, as with the in-process bucket). @internal
 */
export class RedisTokenBucket implements RateLimiter {
  readonly #store: Store;
  readonly #hooks: BackendHooks | undefined;
  readonly #key: string;
  readonly #interval: number;
  readonly #perSecond: number;
  readonly #burst: number;
  #local: TokenBucket | undefined;

  /** @param name - The Redis key's part (a key of `perKey` has its own bucket). */
  constructor(
    store: Store,
    perSecond: number,
    burst: number,
    hooks: BackendHooks | undefined,
    name = 'bucket',
  ) {
    this.#store = store;
    this.#hooks = hooks;
    this.#key = store.keyOf(name);
    this.#interval = 1_000_000 / perSecond;
    this.#perSecond = perSecond;
    this.#burst = burst;
  }

  acquire(signal?: AbortSignal, cost = 1): number | Promise<number> {
    if (this.#store.isLocal('rate_limit', this.#hooks))
      return this.#fallback().acquire(signal, cost);
    return this.#shared(signal, cost);
  }

  async #shared(signal: AbortSignal | undefined, cost: number): Promise<number> {
    signal?.throwIfAborted();
    const store = this.#store;
    const start = performance.now();
    let wait: number;
    try {
      wait = Number(
        await store.call(
          'rate_limit',
          () => this.#run('take', cost),
          () => this.#giveBack(cost),
        ),
      );
    } catch (error) {
      store.failed('rate_limit', error, this.#hooks);
      if (store.settings.onBackendError === 'local') return this.#fallback().acquire(signal, cost);
      throw error;
    }
    store.recovered();
    if (signal?.aborted) {
      this.#giveBack(cost);
      throw signal.reason;
    }
    if (!(wait > 0)) return 0;
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        clearTimeout(timer);
        this.#giveBack(cost);
        reject(signal?.reason);
      };
      const timer = setTimeout(
        () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        Math.ceil(wait / 1000),
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    return performance.now() - start;
  }

  #run(mode: 'take' | 'give', cost: number): Promise<unknown> {
    return this.#store.script(GCRA, [this.#key], [this.#interval, this.#burst, mode, cost]);
  }

  #giveBack(cost: number): void {
    this.#store.giveBack('rate_limit', () => this.#run('give', cost), this.#hooks);
  }

  // Made on first need: with 'local', an outage falls back to this process's own bucket.
  #fallback(): TokenBucket {
    return (this.#local ??= new TokenBucket(this.#perSecond, this.#burst));
  }
}
