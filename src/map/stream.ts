import { ShutdownError } from '../errors.js';
import type { AnyFunction } from '../events/types.js';
import type { ResolvedMapOptions } from './options.js';
import { Run, type MapHost } from './run.js';
import type { MapInput } from './source.js';

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
  /** A waiting shutdown stopped the pulling: thrown once every item started was read. */
  #ending: ShutdownError | undefined;
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
    if (this.#failure !== undefined) return this.next();
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

  /** A stream its consumer pulls: a waiting shutdown makes it pull nothing new. */
  protected stopsOnShutdown(): boolean {
    this.#ending ??= new ShutdownError('instance is shutting down; mapIterable() pulls no more');
    this.endSource();
    return true;
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

  settled(execution: { readonly index: number }, ok: boolean, value: unknown): void {
    if (this.stopped) return;
    this.done();
    const progress = this.progress;
    if (progress !== undefined) {
      progress.report(ok, this.running);
      // The callback may have ended the stream (its signal, the consumer's return()).
      if (this.stopped) return;
    }
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
        if (this.#ending !== undefined) {
          // Every item started before the shutdown was read: now the loop throws.
          this.failed(this.#ending);
          return undefined;
        }
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
    if (step !== undefined) waiter.resolve(step);
    else if (this.#failure !== undefined) {
      const { error } = this.#failure;
      this.#failure = undefined;
      this.#closed = true;
      waiter.reject(error);
    } else this.#waiter ??= waiter;
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
