import { currentTask, type TaskContext } from './context.js';
import { ShutdownError } from './errors.js';
import type { MethodName } from './events/types.js';
import { Kind } from './engine/attempt.js';
import type { Core } from './engine/core.js';
import { Execution } from './engine/execution.js';
import type { Task } from './engine/task-promise.js';
import { refusedTask } from './engine/refused.js';
import { assertFunction, describe } from './internal/assert.js';
import { isThenable, noop } from './internal/util.js';
import { mapArray } from './map/array.js';
import type { MapHost } from './map/run.js';
import { assertIterable, type MapInput } from './map/source.js';
import type { CostLimits } from './queue/options.js';
import { mapStream } from './map/stream.js';
import { resolveMapOptions, type MapOptions } from './map/options.js';
import { DEFAULTS, resolveOverrides, type ResolvedPolicy, type TaskOverrides } from './options.js';

/** A Node-style callback: `(error, value)`. */
export type NodeCallback<R> = (error: unknown, value?: R) => void;

/** A Node-style API: its last parameter is a callback `(error, value) => void`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type CallbackApi = (...args: any[]) => unknown;

/** The parameters of a Node-style API before its callback. */
export type CallbackParameters<F extends CallbackApi> = F extends (
  ...args: [...infer A, (error: infer _E, ...values: infer _V) => unknown]
) => unknown
  ? A
  : never;

/** The value a Node-style API hands its callback. */
export type CallbackResult<F extends CallbackApi> = F extends (
  ...args: [...infer _A, (error: infer _E, value: infer R, ...more: infer _M) => unknown]
) => unknown
  ? R
  : unknown;

/** What the task API needs from its instance. @internal */
export interface TaskHost extends MapHost {
  readonly core: Core;
  readonly isShutdown: boolean;
  readonly concurrency: number;
  /** What a task's `cost` may be on this instance. */
  readonly limits: CostLimits;
}

let refusedSeq = 0;

/** A task that was refused because the instance is shutting down. */
function refused<R>(method: MethodName): Task<R> {
  const task = Promise.reject(
    new ShutdownError(`instance is shut down; ${method}() was not started`),
  ) as Task<R> & { id: string; cancel: () => boolean };
  // Refusal is the instance's doing, not the work's: a caller that drops the task must not crash.
  task.catch(noop);
  task.id = `refused-${++refusedSeq}`;
  task.cancel = () => false;
  return task;
}

/** The most `with({ key })` policies an API keeps (see `TaskApi.#keyed`). */
const KEYED_POLICIES = 256;

/**
 * The key of overrides that are `{ key }` and nothing else (`key` a string); else undefined.
 */
function onlyKey(overrides: unknown): string | undefined {
  if (typeof overrides !== 'object' || overrides === null) return undefined;
  for (const name in overrides) if (name !== 'key') return undefined;
  const key: unknown = (overrides as { key?: unknown }).key;
  return typeof key === 'string' ? key : undefined;
}

/**
 * The task API, `dvt.task`: every method starts executions under the instance's policy (or the
 * overrides given to `with()`).
 */
export class TaskApi {
  readonly #host: TaskHost;
  readonly #policy: ResolvedPolicy;
  /** The policies of `with({ key })` made from this API, by key; made on first use. */
  #byKey: Map<string, ResolvedPolicy> | undefined;

  /** @internal Made by `Dovetail` and by `with()`. */
  constructor(host: TaskHost, policy: ResolvedPolicy) {
    this.#host = host;
    this.#policy = policy;
  }

  /**
   * Runs `work` as a task: an async or sync function (called with `args`), or a promise that is
   * already running (a promise cannot be re-run, so retries never apply to it; the timeout does).
   * The function body never runs inside this call.
   *
   * @param work - An async function, a sync function, or a promise/thenable.
   * @param args - Arguments for `work`.
   * @returns A `Task`: a Promise with `id` and `cancel()`.
   * @throws TypeError when `work` is neither a function nor a thenable.
   * @example
   * ```ts
   * import { Dovetail } from 'dovetailjs';
   * const dvt = new Dovetail({ concurrency: 4, retries: 2, timeout: 5000 });
   * const task = dvt.task.schedule(async (url: string) => (await fetch(url)).status, 'http://127.0.0.1:9/');
   * console.log(task.id);
   * await task.catch(() => undefined);
   * ```
   */
  schedule<A extends unknown[], R>(work: (...args: A) => R, ...args: A): Task<Awaited<R>>;
  schedule<R>(work: PromiseLike<R>): Task<Awaited<R>>;
  schedule(work: unknown, ...args: unknown[]): Task<unknown> {
    if (typeof work === 'function') return this.#start('schedule', Kind.CALL, work, args);
    if (isThenable(work)) return this.#start('schedule', Kind.PROMISE, work, args);
    throw new TypeError(`\`work\` must be a function or a promise, received ${describe(work)}`);
  }

  /**
   * Runs a synchronous function as a task, in a later macrotask of the event loop. There are no
   * threads: this keeps the caller's turn short and brings sync code under the same policies
   * (gate, rate limit, retries, events), but gives no CPU parallelism, and a timeout cannot
   * interrupt a function that never yields. For CPU parallelism use `node:worker_threads`.
   *
   * @throws TypeError when `fn` is not a function.
   * @example
   * ```ts
   * import { Dovetail } from 'dovetailjs';
   * const dvt = new Dovetail();
   * const sum = await dvt.task.toThread((n: number) => n * (n + 1) / 2, 1000);
   * ```
   */
  toThread<A extends unknown[], R>(fn: (...args: A) => R, ...args: A): Task<Awaited<R>> {
    assertFunction('fn', fn);
    return this.#start('toThread', Kind.TO_THREAD, fn, args);
  }

  /**
   * Maps `fn(item, index)` over `items` (any Iterable or AsyncIterable), each item a task, with
   * results in input order. `concurrency` bounds this call and the instance gate still applies.
   * By default the first failure rejects with that same error, starts no new item and cancels the
   * running ones; with `returnErrors: true` each failure is kept at its index.
   *
   * @throws TypeError / RangeError for a non-function, a non-iterable or a bad option.
   * @example
   * ```ts
   * import { Dovetail } from 'dovetailjs';
   * const dvt = new Dovetail();
   * const lengths = await dvt.task.map(async (word: string) => word.length, ['a', 'bb'], { concurrency: 2 });
   * ```
   */
  map<T, R>(
    fn: (item: T, index: number) => R,
    items: MapInput<T>,
    options: MapOptions<T> & { returnErrors: true },
  ): Promise<unknown[]>;
  map<T, R>(
    fn: (item: T, index: number) => R,
    items: MapInput<T>,
    options?: MapOptions<T>,
  ): Promise<Awaited<R>[]>;
  map<T, R>(
    fn: (item: T, index: number) => R,
    items: MapInput<T>,
    options?: MapOptions<T>,
  ): Promise<Awaited<R>[]> {
    assertFunction('fn', fn);
    assertIterable(items);
    const resolved = resolveMapOptions(
      options,
      this.#host.concurrency,
      this.#policy,
      this.#host.limits,
    );
    return mapArray<T, Awaited<R>>(this.#host, fn, items, resolved);
  }

  /**
   * The streaming form of `map`: yields results in input order while at most `concurrency` items
   * are started and not yet consumed, so a source of any size runs in bounded memory. Nothing
   * starts until the first `next()`. Breaking out of the loop closes the source and cancels
   * what runs. By default the first failure is thrown from the loop.
   *
   * @throws TypeError / RangeError for a non-function, a non-iterable or a bad option.
   * @example
   * ```ts
   * import { Dovetail } from 'dovetailjs';
   * const dvt = new Dovetail();
   * async function* ids() { for (let i = 0; i < 1000; i++) yield i; }
   * for await (const doubled of dvt.task.mapIterable(async (n: number) => n * 2, ids(), { concurrency: 8 })) {
   *   if (doubled > 10) break;
   * }
   * ```
   */
  mapIterable<T, R>(
    fn: (item: T, index: number) => R,
    items: MapInput<T>,
    options: MapOptions<T> & { returnErrors: true },
  ): AsyncIterableIterator<unknown>;
  mapIterable<T, R>(
    fn: (item: T, index: number) => R,
    items: MapInput<T>,
    options?: MapOptions<T>,
  ): AsyncIterableIterator<Awaited<R>>;
  mapIterable<T, R>(
    fn: (item: T, index: number) => R,
    items: MapInput<T>,
    options?: MapOptions<T>,
  ): AsyncIterableIterator<Awaited<R>> {
    assertFunction('fn', fn);
    assertIterable(items);
    const instance = this.#host.concurrency;
    const fallback = instance === Infinity ? DEFAULTS.mapIterableConcurrency : instance;
    const resolved = resolveMapOptions(options, fallback, this.#policy, this.#host.limits);
    if (resolved.concurrency === Infinity) {
      throw new RangeError('`concurrency` of mapIterable() must be finite, received Infinity');
    }
    return mapStream<T, Awaited<R>>(this.#host, fn, items, resolved);
  }

  /**
   * Calls a Node-style API `fn(...args, callback)` as a task. A second call of the callback is
   * ignored; a synchronous throw rejects; a callback never called is ended by the timeout.
   * Parameters and result type come from `fn`'s last overload; for another overload, pass a
   * small arrow function that calls the one you want.
   *
   * @throws TypeError when `fn` is not a function.
   * @example
   * ```ts
   * import { readFile } from 'node:fs';
   * import { Dovetail } from 'dovetailjs';
   * const dvt = new Dovetail({ timeout: 1000 });
   * const text = await dvt.task.fromCallback(readFile, 'package.json'); // Task<Buffer>
   * ```
   */
  fromCallback<F extends CallbackApi>(
    fn: F,
    ...args: CallbackParameters<F>
  ): Task<CallbackResult<F>> {
    assertFunction('fn', fn);
    return this.#start('fromCallback', Kind.CALLBACK, fn, args);
  }

  /**
   * Turns a Node-style API into an async function whose every call runs as a task through
   * `fromCallback`.
   *
   * @throws TypeError when `fn` is not a function.
   * @example
   * ```ts
   * import { stat, type Stats } from 'node:fs';
   * import { Dovetail } from 'dovetailjs';
   * const dvt = new Dovetail({ retries: 2 });
   * // stat is overloaded: an arrow function picks the (path, callback) form.
   * const statTask = dvt.task.promisify((path: string, done: (error: Error | null, stats: Stats) => void) => stat(path, done));
   * console.log((await statTask('package.json')).size);
   * ```
   */
  promisify<F extends CallbackApi>(
    fn: F,
  ): (...args: CallbackParameters<F>) => Task<CallbackResult<F>> {
    assertFunction('fn', fn);
    return (...args: CallbackParameters<F>): Task<CallbackResult<F>> =>
      this.#start('promisify', Kind.CALLBACK, fn, args);
  }

  /**
   * Returns a function with the same parameters that runs `fn` as a task on each call (the
   * Python library's `managed` decorator). Called as a method, it passes its `this` on to `fn`.
   * Scoped listeners keyed on `fn` hear its tasks.
   *
   * @throws TypeError when `fn` is not a function.
   * @example
   * ```ts
   * import { Dovetail } from 'dovetailjs';
   * const dvt = new Dovetail({ concurrency: 2 });
   * const fetchUser = dvt.task.wrap(async (id: number) => ({ id }));
   * const user = await fetchUser(7);
   * ```
   */
  wrap<T, A extends unknown[], R>(
    fn: (this: T, ...args: A) => R,
  ): (this: T, ...args: A) => Task<Awaited<R>> {
    assertFunction('fn', fn);
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the wrapper's own `this` is the caller's object
    const api = this;
    return function (this: T, ...args: A): Task<Awaited<R>> {
      // Called as a method (or with call/apply): `fn` runs with the same `this`, as a decorator's would.
      return this === undefined
        ? api.#start('wrap', Kind.CALL, fn, args)
        : api.#start('wrap', Kind.METHOD, fn, [this, ...args]);
    };
  }

  /**
   * The same API with per-call policy overrides.
   *
   * @param overrides - `{ timeout, retries, retryBackoff, signal, shouldRetry }`.
   * @throws TypeError / RangeError naming the override.
   * @example
   * ```ts
   * import { Dovetail } from 'dovetailjs';
   * const dvt = new Dovetail({ retries: 3 });
   * const controller = new AbortController();
   * const quick = dvt.task.with({ timeout: 200, retries: 0, signal: controller.signal });
   * await quick.schedule(async () => 'ok');
   * ```
   */
  with(overrides: TaskOverrides): TaskApi {
    const key = onlyKey(overrides);
    return new TaskApi(
      this.#host,
      key === undefined ? this.#resolve(overrides) : this.#keyed(key, overrides),
    );
  }

  #resolve(overrides: TaskOverrides): ResolvedPolicy {
    return resolveOverrides(this.#policy, overrides, this.#host.limits);
  }

  /**
   * `with({ key })`, the form made once per call by code that keys each task (a host, a tenant):
   * its policy differs from this API's by the key alone, so it is resolved once per key and
   * kept, up to {@link KEYED_POLICIES} keys. Validating and freezing a policy per call was most of
   * what submitting a keyed task cost before its code was optimized (1 190 keyed tasks in a fresh
   * process: 10 ms of CPU in `with()`, 22 ms in `schedule()`).
   */
  #keyed(key: string, overrides: TaskOverrides): ResolvedPolicy {
    const byKey = (this.#byKey ??= new Map<string, ResolvedPolicy>());
    let policy = byKey.get(key);
    if (policy === undefined) {
      policy = this.#resolve(overrides);
      // Bounded: code that passes ever new keys keeps no more than this.
      if (byKey.size >= KEYED_POLICIES) byKey.clear();
      byKey.set(key, policy);
    }
    return policy;
  }

  /**
   * The task running now (across awaits), or `undefined` outside a task. See {@link currentTask}.
   * @example
   * ```ts
   * import { Dovetail } from 'dovetailjs';
   * const dvt = new Dovetail();
   * await dvt.task.schedule(() => console.log(dvt.task.current()?.id));
   * ```
   */
  current(): TaskContext | undefined {
    return currentTask();
  }

  #start<R>(method: MethodName, kind: Kind, work: unknown, args: readonly unknown[]): Task<R> {
    const host = this.#host;
    if (host.isShutdown) return refused<R>(method);
    const core = host.core;
    if (core.circuit !== undefined && core.events.silent) {
      // An open circuit, and nobody to tell: the task fails without an execution.
      const refusal = core.circuit.refusal();
      if (refusal !== undefined) return refusedTask<R>(core, refusal);
    }
    // One argument, the common call, is kept without its array: a queued task holds two objects
    // fewer (the array and its elements).
    const one = kind === Kind.CALL && args.length === 1;
    const execution = new Execution(
      host.core,
      this.#policy,
      method,
      one ? Kind.CALL_ONE : kind,
      work,
      one ? args[0] : args,
      undefined,
      this.#policy.key,
    );
    const task = execution.task<R>();
    execution.start();
    return task;
  }
}
