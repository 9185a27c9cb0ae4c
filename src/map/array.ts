import { ShutdownError } from '../errors.js';
import type { AnyFunction } from '../events/types.js';
import type { ResolvedMapOptions } from './options.js';
import { Run, type MapHost } from './run.js';
import type { MapInput } from './source.js';

class ArrayRun<T, R> extends Run<T> {
  readonly #results: R[] = [];
  readonly #limit: number;
  readonly #returnErrors: boolean;
  readonly #resolve: (values: R[]) => void;
  readonly #reject: (error: unknown) => void;
  readonly #host: MapHost;
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
    this.#host = host;
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
    // Work of the instance from now until it settles: a waiting shutdown waits for it.
    this.#host.core.accounting.openRun();
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
    this.#host.core.accounting.closeRun();
  }

  protected failed(error: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    this.stop(error, true);
    this.#reject(error);
    this.#host.core.accounting.closeRun();
  }

  /** A map is one call whose items are all queued work: a waiting shutdown lets it finish. */
  protected stopsOnShutdown(): boolean {
    return false;
  }

  settled(execution: { readonly index: number }, ok: boolean, value: unknown): void {
    if (this.#settled) return;
    this.done();
    const kept = ok || this.#returnErrors;
    if (kept) this.#results[execution.index] = value as R;
    this.progress?.report(ok, this.running);
    if (!kept) {
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
