// `dovetailjs/redis`: one concurrency limit and one rate limit shared by every process, on Redis.
// `ioredis` is the caller's (an optional peer): this entry point only calls the client it is given.
import type { Redis } from 'ioredis';
import {
  assertFunction,
  assertObject,
  assertPositive,
  assertString,
  describe,
} from '../internal/assert.js';
import type { Backend, BackendHooks, SharedLimit, SharedPause } from '../policies/backend.js';
import type { Gate } from '../policies/gate.js';
import type { KeyLimits } from '../queue/keys.js';
import type { RateLimiter } from '../policies/rate-limit.js';
import { RedisTokenBucket } from './bucket.js';
import type { CircuitListener } from '../resilience/circuit-view.js';
import type { ResolvedCircuitOptions } from '../resilience/circuit-options.js';
import { RedisCircuit } from './circuit.js';
import { Control } from './control.js';
import { RedisGate } from './gate.js';
import { RedisKeys } from './keys.js';
import { RedisLimit } from './limit.js';
import { RedisPause } from './pause.js';
import { Store, type BackendErrorPolicy, type StoreSettings } from './store.js';

export { BackendError } from '../errors.js';
export type { BackendErrorOptions } from '../errors.js';
export type { BackendErrorPolicy } from './store.js';

/**
 * Options of {@link redisBackend}.
 * @example
 * ```ts
 * import type { RedisBackendOptions } from 'dovetailjs/redis';
 * const options: RedisBackendOptions = { key: 'payments-api', leaseTime: 30_000, onBackendError: 'local' };
 * ```
 */
export interface RedisBackendOptions {
  /**
   * Names the shared limits: every process whose back end has the same `key` (and `prefix`)
   * shares one concurrency limit and one token bucket. Give every process the same
   * `concurrency` and `rateLimit` for it.
   */
  key: string;
  /**
   * Put in front of every Redis key: the gate's keys start with `<prefix><key>:gate:`, the
   * bucket is the string `<prefix><key>:bucket`.
   * @defaultValue `'dovetail:'`
   */
  prefix?: string | undefined;
  /**
   * How long, in milliseconds, a slot stays held after its last refresh. A process that dies
   * while running tasks gives their slots back after at most this long.
   * @defaultValue `10_000`
   */
  leaseTime?: number | undefined;
  /**
   * How often, in milliseconds, a process that holds or waits for shared slots tells Redis it is
   * alive (one small script per process, not per task), and looks for the slots of processes
   * silent for `leaseTime`; below `leaseTime`.
   * @defaultValue `leaseTime / 3`
   */
  refreshInterval?: number | undefined;
  /**
   * The fallback, in milliseconds: a request for a slot waits in Redis this long before it is
   * sent again. Waiting processes do not poll: Redis hands a freed slot to the process that has
   * waited longest at once, whatever this is.
   * @defaultValue `5_000`
   */
  pollInterval?: number | undefined;
  /**
   * The bounded wait, in milliseconds, for each Redis command (a slot, a token, a release):
   * past it the command counts as failed and `onBackendError` applies.
   * @defaultValue `5_000`
   */
  timeout?: number | undefined;
  /**
   * What tasks do when Redis fails (unreachable, or no answer within `timeout`):
   * `'fail'` rejects them with `BackendError` (naming the key, the client's error as `cause`);
   * `'local'` runs them under this process's own limits (`concurrency` slots, a `rateLimit`
   * bucket) and emits `backend_error`. Either way the shared limits resume once Redis answers.
   * @defaultValue `'fail'`
   */
  onBackendError?: BackendErrorPolicy | undefined;
  /**
   * With `onBackendError: 'local'`, how long, in milliseconds, after a failure tasks stay local
   * before Redis is tried again (tried at once when the client reconnects and this has passed).
   * @defaultValue `1_000`
   */
  retryAfter?: number | undefined;
  /**
   * The fallback, in milliseconds: how often each process checks, with one `MGET`, for a change
   * of the shared controls (pause, concurrency limit, breaker) whose message it missed. A change
   * normally arrives at once, by pub/sub, and the state is read again whenever the subscription
   * is made again; this covers a subscriber connection that died without saying so. An unref'd
   * timer: it never keeps the process alive.
   * @defaultValue `5_000`
   */
  syncInterval?: number | undefined;
}

/**
 * The defaults of {@link RedisBackendOptions} (frozen).
 * @example
 * ```ts
 * import { REDIS_DEFAULTS } from 'dovetailjs/redis';
 * console.log(REDIS_DEFAULTS.leaseTime); // 10000
 * ```
 */
export const REDIS_DEFAULTS = Object.freeze({
  /** Put in front of every Redis key. */
  prefix: 'dovetail:',
  /** Milliseconds a slot stays held after its last refresh. */
  leaseTime: 10_000,
  /** Milliseconds a request for a slot waits in Redis before it is sent again. */
  pollInterval: 5_000,
  /** The bounded wait for each Redis command, in milliseconds. */
  timeout: 5_000,
  /** Tasks fail with `BackendError` when Redis fails. */
  onBackendError: 'fail',
  /** With `'local'`, milliseconds before Redis is tried again after a failure. */
  retryAfter: 1_000,
  /** Milliseconds between reads of the shared controls. */
  syncInterval: 5_000,
} as const);

/**
 * A back end that keeps an instance's concurrency gate and rate limiter in Redis, so that every
 * process using the same key shares them. Made by {@link redisBackend}; pass it as the
 * `backend` option.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { Dovetail } from 'dovetailjs';
 * import { RedisBackend } from 'dovetailjs/redis';
 * const backend = new RedisBackend(new Redis(), { key: 'payments-api' });
 * await using dvt = new Dovetail({ concurrency: 20, backend });
 * ```
 */
export class RedisBackend implements Backend {
  /** The shared limits' key. */
  readonly key: string;
  readonly #store: Store;
  #control: Control | undefined;
  readonly #gates = new Set<RedisGate>();

  /**
   * @param client - An `ioredis` client; it stays yours (never quit here).
   * @param options - See {@link RedisBackendOptions}; `key` is required.
   * @throws TypeError for a missing client or key, or an option of the wrong type; RangeError
   * for a time out of range.
   */
  constructor(client: Redis, options: RedisBackendOptions) {
    assertObject('client', client);
    assertFunction('client.evalsha', (client as Partial<Redis>).evalsha);
    assertObject('options', options);
    this.#store = new Store(client, resolveRedisOptions(options));
    this.key = options.key;
  }

  /** Builds the shared gate of `concurrency` slots (called by `Dovetail`). */
  createGate(options: { concurrency: number }, hooks?: BackendHooks): Gate {
    const store = this.#store;
    const gate = new RedisGate(store, options.concurrency, hooks, 'gate', store.keyOf('limit'));
    this.#gates.add(gate);
    return gate;
  }

  /** Builds the shared bucket (called by `Dovetail`). */
  createRateLimiter(
    options: { perSecond: number; burst: number },
    hooks?: BackendHooks,
  ): RateLimiter {
    return new RedisTokenBucket(this.#store, options.perSecond, options.burst, hooks);
  }

  /**
   * Shares the pause (called by `Dovetail`): the string `<prefix><key>:pause`.
   * @internal
   */
  createPause(follow: (until: number | undefined) => void, hooks?: BackendHooks): SharedPause {
    return new RedisPause(this.#store, this.#controlFor(hooks), follow, hooks);
  }

  /**
   * Shares the concurrency limit (called by `Dovetail`): the string `<prefix><key>:limit`.
   * @internal
   */
  createLimit(initial: number, follow: (limit: number) => void, hooks?: BackendHooks): SharedLimit {
    return new RedisLimit(this.#store, this.#controlFor(hooks), initial, follow, hooks);
  }

  /**
   * Shares the circuit breaker (called by `Dovetail`): the hash `<prefix><key>:circuit` and the
   * sorted set `<prefix><key>:circuit:trials`.
   * @internal
   */
  createCircuit(
    options: ResolvedCircuitOptions,
    listener: CircuitListener,
    hooks?: BackendHooks,
  ): RedisCircuit {
    return new RedisCircuit(this.#store, this.#controlFor(hooks), options, listener, hooks);
  }

  /**
   * Shares `perKey` (called by `Dovetail`): per key, a gate whose keys start with
   * `<prefix><key>:key:<k>:gate:` and the string `<prefix><key>:key:<k>:bucket`.
   * @internal
   */
  createKeys(
    options: {
      concurrency: number;
      rateLimit: { readonly perSecond: number; readonly burst: number } | undefined;
    },
    hooks?: BackendHooks,
  ): KeyLimits {
    return new RedisKeys(this.#store, options.concurrency, options.rateLimit, hooks);
  }

  /**
   * Closes the connections the gates wait on (a gate still in use opens one again) and the one
   * that listens for changes, then waits for the slots and tokens being given back (bounded by
   * `timeout`); leaves the client open.
   */
  async close(): Promise<void> {
    for (const gate of this.#gates) if (gate.close()) this.#gates.delete(gate);
    await this.#store.settle();
    await this.#control?.close();
  }

  #controlFor(hooks: BackendHooks | undefined): Control {
    return (this.#control ??= new Control(this.#store, hooks));
  }
}

/**
 * Makes a {@link RedisBackend}: the instance's `concurrency` and `rateLimit` then hold across
 * every process that uses the same `key`.
 *
 * @param client - An `ioredis` client (`new Redis(url)`); it stays yours to `quit()`.
 * @param options - `{ key, ... }`, see {@link RedisBackendOptions}.
 * @returns The back end, for the `backend` option of `new Dovetail()`.
 * @throws TypeError / RangeError for a bad option, naming it and the value received.
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { Dovetail } from 'dovetailjs';
 * import { redisBackend } from 'dovetailjs/redis';
 * const redis = new Redis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379');
 * const dvt = new Dovetail({
 *   concurrency: 20,
 *   rateLimit: { perSecond: 100, burst: 10 },
 *   backend: redisBackend(redis, { key: 'payments-api', onBackendError: 'local' }),
 * });
 * dvt.events.on('backend_error', (p) => console.warn(`${p.key}: ${p.operation} failed, ${p.fallback}`));
 * ```
 */
export function redisBackend(client: Redis, options: RedisBackendOptions): RedisBackend {
  return new RedisBackend(client, options);
}

function resolveRedisOptions(options: RedisBackendOptions): StoreSettings {
  const {
    key,
    prefix,
    leaseTime,
    refreshInterval,
    pollInterval,
    timeout,
    onBackendError,
    retryAfter,
    syncInterval,
  } = options;
  assertString('key', key);
  if (key === '') throw new RangeError('`key` must not be empty, received ""');
  if (prefix !== undefined) assertString('prefix', prefix);
  const times: Record<string, number | undefined> = {
    leaseTime,
    refreshInterval,
    pollInterval,
    timeout,
    retryAfter,
    syncInterval,
  };
  for (const [name, value] of Object.entries(times)) {
    if (value === undefined) continue;
    assertPositive(name, value);
    if (value === Infinity) throw new RangeError(`\`${name}\` must be finite, received Infinity`);
  }
  if (onBackendError !== undefined && onBackendError !== 'fail' && onBackendError !== 'local') {
    const error = typeof onBackendError === 'string' ? RangeError : TypeError;
    throw new error(
      `\`onBackendError\` must be 'fail' or 'local', received ${describe(onBackendError)}`,
    );
  }
  const lease = leaseTime ?? REDIS_DEFAULTS.leaseTime;
  const refresh = refreshInterval ?? Math.max(1, Math.floor(lease / 3));
  if (refresh >= lease) {
    throw new RangeError(
      `\`refreshInterval\` must be below \`leaseTime\` (${lease}), received ${refresh}`,
    );
  }
  return {
    key,
    prefix: prefix ?? REDIS_DEFAULTS.prefix,
    leaseTime: lease,
    refreshInterval: refresh,
    pollInterval: pollInterval ?? REDIS_DEFAULTS.pollInterval,
    timeout: timeout ?? REDIS_DEFAULTS.timeout,
    onBackendError: onBackendError ?? REDIS_DEFAULTS.onBackendError,
    retryAfter: retryAfter ?? REDIS_DEFAULTS.retryAfter,
    syncInterval: syncInterval ?? REDIS_DEFAULTS.syncInterval,
  };
}
