import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { BackendError } from '../errors.js';
import type { BackendHooks, BackendProblem } from '../policies/backend.js';
import { noop } from '../internal/util.js';

/**
 * What the Redis back end does when Redis fails: fail the tasks with `BackendError`, or run them
 * under this process's own limits.
 * @example
 * ```ts
 * import type { BackendErrorPolicy } from 'dovetailjs/redis';
 * const policy: BackendErrorPolicy = process.env['NODE_ENV'] === 'production' ? 'fail' : 'local';
 * ```
 */
export type BackendErrorPolicy = 'fail' | 'local';

/** The resolved settings every part of one Redis back end shares. @internal */
export interface StoreSettings {
  readonly key: string;
  readonly prefix: string;
  readonly leaseTime: number;
  readonly refreshInterval: number;
  readonly pollInterval: number;
  readonly timeout: number;
  readonly retryAfter: number;
  readonly onBackendError: BackendErrorPolicy;
  /** Milliseconds between reads of the shared controls (a lost message is made up for). */
  readonly syncInterval: number;
}

type Operation = BackendProblem['operation'];

/**
 * One Redis connection as the gate and the limiter of a back end see it: every command runs under
 * a bounded wait, failures become `BackendError`s naming the key, and the store remembers an
 * outage so that, with `onBackendError: 'local'`, tasks go to the in-process limits at once
 * instead of each waiting for Redis to time out. @internal
 */
export class Store {
  readonly client: Redis;
  readonly settings: StoreSettings;
  /** Until this time (performance.now()), Redis counts as down: 'local' mode skips it. */
  #downUntil = 0;
  /** Operations whose failure was reported during the current outage (one report each). */
  readonly #reported = new Set<Operation>();
  /** Commands still in flight that give something back (a release, a refund): `close()` waits. */
  readonly #returning = new Set<Promise<unknown>>();

  constructor(client: Redis, settings: StoreSettings) {
    this.client = client;
    this.settings = settings;
  }

  /**
   * `'local'` mode during an outage: use the in-process limits without asking Redis. A client
   * that has lost its connection counts as an outage at once (reported like a failed command);
   * one still making its first connection does not (its commands wait in its queue, bounded).
   */
  isLocal(operation: Operation, hooks: BackendHooks | undefined): boolean {
    if (this.settings.onBackendError !== 'local') return false;
    if (performance.now() < this.#downUntil) return true;
    const status = this.client.status;
    if (status !== 'reconnecting' && status !== 'close' && status !== 'end') return false;
    const { key } = this.settings;
    const cause = new Error(`the Redis client is ${status}`);
    this.failed(
      operation,
      new BackendError(`Redis unavailable for key "${key}" (${operation}): client ${status}`, {
        key,
        cause,
      }),
      hooks,
    );
    return true;
  }

  /** The Redis key of one part of the shared limit (`gate`, `bucket`, `pause`, `limit`, ...). */
  keyOf(part: string): string {
    return `${this.settings.prefix}${this.settings.key}:${part}`;
  }

  /**
   * Runs one Redis command under the bounded wait. Rejects with a `BackendError` (cause: the
   * client's error, or the time-out) naming the key. When the command answers only after the
   * wait, `late` gets its value so that a slot or a token taken by then is given back.
   */
  call<T>(operation: Operation, command: () => Promise<T>, late?: (value: T) => void): Promise<T> {
    const { timeout, key } = this.settings;
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        reject(
          new BackendError(
            `Redis did not answer within ${timeout} ms for key "${key}" (${operation})`,
            {
              key,
              cause: new Error(
                `no answer within ${timeout} ms (client status: ${this.client.status})`,
              ),
            },
          ),
        );
      }, timeout);
      let pending: Promise<T>;
      try {
        pending = command();
      } catch (error) {
        pending = Promise.reject(error);
      }
      pending.then(
        (value) => {
          if (done) {
            late?.(value);
            return;
          }
          done = true;
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          const text = error instanceof Error ? error.message : String(error);
          reject(
            new BackendError(`Redis failed for key "${key}" (${operation}): ${text}`, {
              key,
              cause: error,
            }),
          );
        },
      );
    });
  }

  /** Runs a command that gives something back; never rejects; `close()` waits for it. */
  giveBack(
    operation: Operation,
    command: () => Promise<unknown>,
    hooks: BackendHooks | undefined,
  ): void {
    const running = this.call(operation, command).then(
      () => this.recovered(),
      // The lease or the reservation expires on its own in Redis; say so once.
      (error: unknown) => this.failed(operation, error, hooks),
    );
    this.#returning.add(running);
    void running.finally(() => this.#returning.delete(running));
  }

  /** Runs `script` (cached on the server by its SHA-1, sent again after a restart). */
  async script(
    source: Script,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    try {
      return await this.client.evalsha(source.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.includes('NOSCRIPT')) throw error;
      return this.client.eval(source.text, keys.length, ...keys, ...args);
    }
  }

  /** A command succeeded: Redis answers again; the outage (if any) is over. */
  recovered(): void {
    if (this.#reported.size > 0) this.#reported.clear();
    this.#downUntil = 0;
  }

  /** A command failed: remember the outage and report it once. */
  failed(operation: Operation, error: unknown, hooks: BackendHooks | undefined): void {
    this.#downUntil = performance.now() + this.settings.retryAfter;
    if (this.#reported.has(operation)) return;
    this.#reported.add(operation);
    this.report(operation, error, hooks);
  }

  /** Reports a problem through the instance's hook (a `backend_error` event). */
  report(operation: Operation, error: unknown, hooks: BackendHooks | undefined): void {
    try {
      hooks?.report({
        error,
        key: this.settings.key,
        operation,
        fallback: this.settings.onBackendError,
      });
    } catch {
      // A report never throws into the back end.
    }
  }

  /** Waits (bounded) for releases and refunds still in flight. */
  async settle(): Promise<void> {
    await Promise.all([...this.#returning].map((running) => running.catch(noop)));
  }
}

/** A Lua script and its SHA-1. @internal */
export interface Script {
  readonly text: string;
  readonly sha: string;
}

/** @internal */
export function script(text: string): Script {
  return { text, sha: createHash('sha1').update(text, 'utf8').digest('hex') };
}
