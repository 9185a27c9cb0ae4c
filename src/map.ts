import { AsyncResource } from 'node:async_hooks';
import { ShutdownError } from './errors.js';
import type { AnyFunction, MethodName } from './events/types.js';
import { Execution, Kind, SCOPE, type Core, type Sink } from './execution.js';
import { describe } from './internal/assert.js';
import type { ResolvedMapOptions, ResolvedPolicy } from './options.js';

/** Input of `map` and `mapIterable`: any Iterable or AsyncIterable. */
export type MapInput<T> = Iterable<T> | AsyncIterable<T>;

type Source<T> =
  | { readonly sync: true; readonly iterator: Iterator<T> }
  | { readonly sync: false; readonly iterator: AsyncIterator<T> };

/**
 * Checks `items` synchronously (a wrong argument throws before anything else) and opens its
 * iterator. @internal
 */
export function assertIterable(items: unknown): void {
  const object = items as { [Symbol.iterator]?: unknown; [Symbol.asyncIterator]?: unknown } | null;
  if (
    object === null ||
    object === undefined ||
    (typeof object[Symbol.asyncIterator] !== 'function' &&
      typeof object[Symbol.iterator] !== 'function')
  ) {
    throw new TypeError(
      `\`items\` must be an Iterable or AsyncIterable, received ${describe(items)}`,
    );
  }
}

function open<T>(items: MapInput<T>): Source<T> {
  const asyncIterator = (items as AsyncIterable<T>)[Symbol.asyncIterator];
  if (typeof asyncIterator === 'function')
    return { sync: false, iterator: asyncIterator.call(items) };
  return { sync: true, iterator: (items as Iterable<T>)[Symbol.iterator]() };
}

/** Stops a source early; its own failure to stop is not the caller's concern. */
function closeSource<T>(source: Source<T>): void {
  try {
    const result = source.iterator.return?.();
    if (result !== undefined && !source.sync)
      (result as Promise<unknown>).then(undefined, () => {});
  } catch {
    // A source whose return() throws has nothing left to release.
  }
}

/** What `map` needs from the instance. @internal */
export interface MapHost {
  readonly core: Core;
  readonly isShutdown: boolean;
}

/**
 * Pulls items one at a time (never two `next()` calls in flight on an async source) while
 * `room()` allows, and starts one execution per item.
 */
abstract class Run<T> implements Sink {
  /** Items started and not yet settled (their executions are found through the live list). */
  protected running = 0;
  /** The async context of the call that started the run: every item runs in it. */
  readonly scope = new AsyncResource(SCOPE);
  protected pulled = 0;
  protected exhausted = false;
  protected stopped = false;
  #pulling = false;
  readonly #source: Source<T>;
  readonly #host: MapHost;
  readonly #core: Core;
  readonly #policy: ResolvedPolicy;
  readonly #method: MethodName;
  readonly #fn: AnyFunction;
  readonly #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;

  constructor(
    host: MapHost,
    method: MethodName,
    fn: AnyFunction,
    items: MapInput<T>,
    options: ResolvedMapOptions,
  ) {
    this.#host = host;
    this.#core = host.core;
    this.#policy = options.policy;
    this.#method = method;
    this.#fn = fn;
    this.#signal = options.signal;
    this.#source = open(items);
  }

  /** Whether another item may start now. */
  protected abstract room(): boolean;
  /** The source has no more items (or the run stopped) and nothing is running. */
  protected abstract finished(): void;
  /** The run fails with `error`: stop and report. */
  protected abstract failed(error: unknown): void;
  abstract settled(execution: Execution, ok: boolean, value: unknown): void;

  /** Hooks the signal; false when it has already aborted. */
  protected watchSignal(): boolean {
    const signal = this.#signal;
    if (signal === undefined) return true;
    if (signal.aborted) return false;
    this.#onAbort = () => this.failed(signal.reason);
    signal.addEventListener('abort', this.#onAbort, { once: true });
    return true;
  }

  /** Stops pulling, cancels what runs and closes the source. */
  protected stop(reason: unknown, closeIterator: boolean): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.#onAbort !== undefined) this.#signal?.removeEventListener('abort', this.#onAbort);
    if (closeIterator && !this.exhausted) closeSource(this.#source);
    this.exhausted = true;
    if (this.running > 0) Execution.cancelFor(this.#core, this, reason);
    this.running = 0;
  }

  protected done(): void {
    this.running -= 1;
  }

  protected fill(): void {
    while (!this.stopped && !this.exhausted && !this.#pulling && this.room()) {
      const source = this.#source;
      if (source.sync) {
        let step: IteratorResult<T>;
        try {
          step = source.iterator.next();
        } catch (error) {
          this.exhausted = true;
          this.failed(error);
          return;
        }
        if (step.done === true) {
          this.exhausted = true;
          break;
        }
        this.#launch(step.value);
      } else {
        this.#pulling = true;
        let next: Promise<IteratorResult<T>>;
        try {
          next = Promise.resolve(source.iterator.next());
        } catch (error) {
          this.#pulling = false;
          this.exhausted = true;
          this.failed(error);
          return;
        }
        next.then(
          (step) => {
            this.#pulling = false;
            if (this.stopped) return;
            if (step.done === true) {
              this.exhausted = true;
              if (this.running === 0) this.finished();
              return;
            }
            this.#launch(step.value);
            this.fill();
          },
          (error: unknown) => {
            this.#pulling = false;
            this.exhausted = true;
            this.failed(error);
          },
        );
        return;
      }
    }
    if (this.exhausted && this.running === 0 && !this.#pulling) this.finished();
  }

  #launch(item: T): void {
    if (this.#host.isShutdown) {
      // Items not yet started are not tasks yet: a shutdown ends the run instead of queueing them
      // (and, like any early stop, closes the source).
      this.failed(new ShutdownError(`instance is shutting down; ${this.#method}() stopped`));
      return;
    }
    const index = this.pulled++;
    const execution = new Execution(
      this.#core,
      this.#policy,
      this.#method,
      Kind.CALL,
      this.#fn,
      [item, index],
      this,
    );
    this.running += 1;
    execution.start();
  }
}

class ArrayRun<T, R> extends Run<T> {
  readonly #results: R[] = [];
  readonly #limit: number;
  readonly #returnErrors: boolean;
  readonly #resolve: (values: R[]) => void;
  readonly #reject: (error: unknown) => void;
  #settled = false;

  constructor(
    host: MapHost,
    fn: AnyFunction,
    items: MapInput<T>,
    options: ResolvedMapOptions,
    resolve: (values: R[]) => void,
    reject: (error: unknown) => void,
  ) {
    super(host, 'map', fn, items, options);
    this.#limit = options.concurrency;
    this.#returnErrors = options.returnErrors;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  begin(signal: AbortSignal | undefined): void {
    if (!this.watchSignal()) {
      this.stop(signal?.reason, true);
      this.#settled = true;
      this.#reject(signal?.reason);
      return;
    }
    this.fill();
  }

  protected room(): boolean {
    return this.running < this.#limit;
  }

  protected finished(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.stop(undefined, false);
    this.#resolve(this.#results);
  }

  protected failed(error: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    this.stop(error, true);
    this.#reject(error);
  }

  settled(execution: Execution, ok: boolean, value: unknown): void {
    if (this.#settled) return;
    this.done();
    if (ok || this.#returnErrors) this.#results[execution.index] = value as R;
    else {
      this.failed(value);
      return;
    }
    this.fill();
  }
}

/** @internal */
export function mapArray<T, R>(
  host: MapHost,
  fn: AnyFunction,
  items: MapInput<T>,
  options: ResolvedMapOptions,
): Promise<R[]> {
  return new Promise<R[]>((resolve, reject) => {
    if (host.isShutdown) {
      reject(new ShutdownError('instance is shut down; map() was not started'));
      return;
    }
    let run: ArrayRun<T, R>;
    try {
      run = new ArrayRun<T, R>(host, fn, items, options, resolve, reject);
    } catch (error) {
      // The iterable's own [Symbol.iterator]() threw.
      reject(error);
      return;
    }
    run.begin(options.signal);
  });
}

const EMPTY = 0;
const OK = 1;
const FAILED = 2;

/**
 * The streaming form: results in input order, at most `concurrency` items started and not yet
 * handed to the consumer (so at most that many running, and at most that many finished results
 * held ahead of the consumer), whatever the size of the source.
 */
class StreamRun<T, R> extends Run<T> implements AsyncIterator<R> {
  readonly #limit: number;
  readonly #returnErrors: boolean;
  readonly #states: Uint8Array;
  readonly #values: unknown[];
  #head = 0;
  #failure: { error: unknown } | undefined;
  #closed = false;
  #waiter:
    { resolve: (step: IteratorResult<R>) => void; reject: (error: unknown) => void } | undefined;

  constructor(host: MapHost, fn: AnyFunction, items: MapInput<T>, options: ResolvedMapOptions) {
    super(host, 'mapIterable', fn, items, options);
    this.#limit = options.concurrency;
    this.#returnErrors = options.returnErrors;
    this.#states = new Uint8Array(options.concurrency);
    this.#values = new Array<unknown>(options.concurrency);
    if (!this.watchSignal()) this.failed(options.signal?.reason);
  }

  next(): Promise<IteratorResult<R>> {
    if (this.#failure !== undefined) {
      const { error } = this.#failure;
      this.#failure = undefined;
      this.#closed = true;
      return Promise.reject(error);
    }
    if (this.#closed) return Promise.resolve({ done: true, value: undefined });
    const step = this.#take();
    if (step !== undefined) return Promise.resolve(step);
    return new Promise<IteratorResult<R>>((resolve, reject) => {
      this.#waiter = { resolve, reject };
      this.fill();
    });
  }

  return(): Promise<IteratorResult<R>> {
    // The consumer stopped early (`break`): close the source, cancel what still runs.
    this.#closed = true;
    this.stop(new Error('mapIterable consumer stopped'), true);
    this.#wake();
    return Promise.resolve({ done: true, value: undefined });
  }

  throw(error?: unknown): Promise<IteratorResult<R>> {
    this.#closed = true;
    this.stop(error, true);
    this.#wake();
    return Promise.reject(error);
  }

  protected room(): boolean {
    return this.pulled - this.#head < this.#limit;
  }

  protected finished(): void {
    this.#wake();
  }

  protected failed(error: unknown): void {
    if (this.#closed || this.#failure !== undefined) return;
    this.stop(error, true);
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      this.#closed = true;
      waiter.reject(error);
    } else this.#failure = { error };
  }

  settled(execution: Execution, ok: boolean, value: unknown): void {
    if (this.stopped) return;
    this.done();
    if (!ok && !this.#returnErrors) {
      this.failed(value);
      return;
    }
    const slot = execution.index % this.#limit;
    this.#states[slot] = ok ? OK : FAILED;
    this.#values[slot] = value;
    if (execution.index === this.#head) this.#wake();
    this.fill();
  }

  #take(): IteratorResult<R> | undefined {
    const slot = this.#head % this.#limit;
    if (this.#states[slot] === EMPTY) {
      if (this.exhausted && this.running === 0 && this.#head >= this.pulled) {
        // The stream ended by itself: let go of the signal too.
        this.stop(undefined, false);
        this.#closed = true;
        return { done: true, value: undefined };
      }
      return undefined;
    }
    const value = this.#values[slot] as R;
    this.#states[slot] = EMPTY;
    this.#values[slot] = undefined;
    this.#head += 1;
    this.fill();
    return { done: false, value };
  }

  #wake(): void {
    const waiter = this.#waiter;
    if (waiter === undefined) return;
    if (this.#closed) {
      this.#waiter = undefined;
      waiter.resolve({ done: true, value: undefined });
      return;
    }
    // Cleared before #take(): taking refills, and a refill that ends the source wakes again.
    this.#waiter = undefined;
    const step = this.#take();
    if (step === undefined) this.#waiter ??= waiter;
    else waiter.resolve(step);
  }
}

/** @internal */
export function mapStream<T, R>(
  host: MapHost,
  fn: AnyFunction,
  items: MapInput<T>,
  options: ResolvedMapOptions,
): AsyncIterableIterator<R> {
  let run: StreamRun<T, R> | undefined;
  let refused: unknown;
  const start = (): StreamRun<T, R> | undefined => {
    if (run !== undefined || refused !== undefined) return run;
    if (host.isShutdown) {
      refused = new ShutdownError('instance is shut down; mapIterable() was not started');
      return undefined;
    }
    try {
      run = new StreamRun<T, R>(host, fn, items, options);
    } catch (error) {
      refused = error;
    }
    return run;
  };
  // Nothing starts until the first next(): an iterable that is never iterated costs nothing.
  const iterator: AsyncIterableIterator<R> = {
    next: () => {
      const current = start();
      if (current === undefined) {
        const error = refused;
        refused = null;
        if (error === null) return Promise.resolve({ done: true, value: undefined });
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the source's own error, unchanged
        return Promise.reject(error);
      }
      return current.next();
    },
    return: () =>
      run === undefined ? Promise.resolve({ done: true, value: undefined }) : run.return(),
    throw: (error?: unknown) => (run === undefined ? Promise.reject(error) : run.throw(error)),
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}
