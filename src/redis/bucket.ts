import type { BackendHooks } from '../policies/backend.js';
import { TokenBucket, type RateLimiter } from '../policies/rate-limit.js';
import { script, type Store } from './store.js';

/**
 * The shared bucket as one Lua script: GCRA, the token bucket written as one timestamp (the
 * theoretical arrival time, TAT) on Redis's own clock, so every process agrees on time. Taking
 * `n` tokens moves the TAT `n` intervals on and answers how long the first of them must wait
 * before it exists (negative while the burst lasts; the i-th waits i intervals more): a
 * reservation, so waiters are served in the order they asked, and each waits exactly once, with
 * no polling. Times are microseconds.
 *
 * Three commands per call while the bucket is busy (TIME, INCRBYFLOAT, and the EVALSHA itself,
 * as `INFO commandstats` counts them), four when it was idle (a SET starts the TAT again from
 * now). The key lives a minute past the last reservation; its expiry is pushed on only when the
 * TAT crosses a 30 s boundary, which is often enough: while reservations keep the TAT ahead of
 * the clock it crosses one at least every 30 s, and once the TAT falls behind the clock the
 * bucket is full, the same as no key.
 */
const TAKE = script(`
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tokens = tonumber(ARGV[1]) * tonumber(ARGV[3])
local tat = tonumber(redis.call('INCRBYFLOAT', KEYS[1], string.format('%.3f', tokens)))
local before = tat - tokens
if before < now then
  before = now
  tat = now + tokens
  redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.ceil(tokens / 1000) + 60000)
elseif math.floor(tat / 30000000) ~= math.floor(before / 30000000) then
  redis.call('PEXPIRE', KEYS[1], math.ceil((tat - now) / 1000) + 60000)
end
return string.format('%.3f', before + tonumber(ARGV[1]) * (1 - tonumber(ARGV[2])) - now)
`);

/**
 * Gives `n` reserved tokens back (their waiters were cancelled): the TAT moves `n` intervals
 * back. A TAT left behind the clock means a full bucket, so no clock is read.
 */
const GIVE = script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('INCRBYFLOAT', KEYS[1], string.format('%.3f', -tonumber(ARGV[1]) * tonumber(ARGV[2])))
return 1
`);

/** One caller waiting for its reservation. */
interface Request {
  readonly tokens: number;
  readonly signal: AbortSignal | undefined;
  readonly start: number;
  readonly resolve: (wait: number) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * The limiter every process using the same key shares: `perSecond` tokens a second, at most
 * `burst` saved up, across all of them. Reservations travel in batches: the callers that ask
 * while a reservation is on its way to Redis are served by the next one, a single script call
 * for all of them, so a busy process costs Redis one call per round trip rather than one per
 * token. `acquire()` resolves `0` when a token is free, else the milliseconds waited (the
 * instance emits `rate_limited` with it and counts `throttled`, as with the in-process bucket).
 * @internal
 */
export class RedisTokenBucket implements RateLimiter {
  readonly #store: Store;
  readonly #hooks: BackendHooks | undefined;
  readonly #key: string;
  readonly #interval: number;
  readonly #perSecond: number;
  readonly #burst: number;
  #local: TokenBucket | undefined;
  /** Callers for the next batch. */
  #next: Request[] = [];
  /** A batch is on its way, or about to be sent (the callers of this tick join it). */
  #busy = false;

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

  /** Takes `cost` tokens as one reservation (see {@link RedisTokenBucket.take}). */
  acquire(signal?: AbortSignal, cost = 1): number | Promise<number> {
    if (this.#store.isLocal('rate_limit', this.#hooks))
      return this.#fallback().acquire(signal, cost);
    return this.take(cost, signal);
  }

  /** Reserves `tokens` tokens as one: resolves with the milliseconds waited (0: at once). */
  take(tokens: number, signal?: AbortSignal): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      this.#next.push({ tokens, signal, start: performance.now(), resolve, reject });
      if (this.#busy) return;
      this.#busy = true;
      // The callers of this tick (a burst of tasks) go together.
      queueMicrotask(() => void this.#send());
    });
  }

  async #send(): Promise<void> {
    const batch = this.#next;
    this.#next = [];
    const store = this.#store;
    const tokens = batch.reduce((sum, request) => sum + request.tokens, 0);
    try {
      const first = Number(
        await store.call(
          'rate_limit',
          () => this.#store.script(TAKE, [this.#key], [this.#interval, this.#burst, tokens]),
          // Reserved after the wait was given up: nobody waits for those tokens.
          () => this.#giveBack(tokens),
        ),
      );
      store.recovered();
      let offset = first;
      for (const request of batch) {
        this.#served(request, offset);
        offset += request.tokens * this.#interval;
      }
    } catch (error) {
      store.failed('rate_limit', error, this.#hooks);
      for (const request of batch) {
        if (store.settings.onBackendError === 'local') {
          this.#fallbackTake(request);
        } else request.reject(error);
      }
    }
    if (this.#next.length > 0) void this.#send();
    else this.#busy = false;
  }

  /** `wait`: µs from now until the request's last token exists (<= 0: now). */
  #served(request: Request, wait: number): void {
    const { signal } = request;
    const last = wait + (request.tokens - 1) * this.#interval;
    if (signal?.aborted) {
      this.#giveBack(request.tokens);
      request.reject(signal.reason);
      return;
    }
    if (!(last > 0)) {
      request.resolve(0);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      this.#giveBack(request.tokens);
      request.reject(signal?.reason);
    };
    const timer = setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort);
        request.resolve(performance.now() - request.start);
      },
      Math.ceil(last / 1000),
    );
    signal?.addEventListener('abort', onAbort, { once: true });
  }

  #fallbackTake(request: Request): void {
    try {
      const wait = this.#fallback().acquire(request.signal, request.tokens);
      Promise.resolve(wait).then(request.resolve, request.reject);
    } catch (error) {
      request.reject(error);
    }
  }

  #giveBack(tokens: number): void {
    this.#store.giveBack(
      'rate_limit',
      () => this.#store.script(GIVE, [this.#key], [tokens, this.#interval]),
      this.#hooks,
    );
  }

  // Made on first need: with 'local', an outage falls back to this process's own bucket.
  #fallback(): TokenBucket {
    return (this.#local ??= new TokenBucket(this.#perSecond, this.#burst));
  }
}
