import { AsyncResource } from 'node:async_hooks';
import { ShutdownError } from '../errors.js';
import { assertString } from '../internal/assert.js';
import type { AnyFunction, MethodName } from '../events/types.js';
import { Kind } from '../engine/attempt.js';
import { cancelFor, SCOPE, type Core, type Sink } from '../engine/core.js';
import { Execution } from '../engine/execution.js';
import type { ResolvedPolicy } from '../options.js';
import type { ResolvedMapOptions } from './options.js';
import { Progress } from './progress.js';
import { closeSource, open, type MapInput, type Source } from './source.js';

/** What `map` needs from the instance. @internal */
export interface MapHost {
  readonly core: Core;
  readonly isShutdown: boolean;
}

/**
 * Pulls items one at a time (never two `next()` calls in flight on an async source) while
 * `room()` allows, and starts one execution per item.
 */
export abstract class Run<T> implements Sink {
  /** Items started and not yet settled (their executions are found through the live list). */
  protected running = 0;
  /** The async context of the call that started the run: every item runs in it. */
  readonly scope = new AsyncResource(SCOPE);
  protected pulled = 0;
  /** The `onProgress` counts; undefined without the option (then settling costs one check). */
  protected readonly progress: Progress | undefined;
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
  readonly #keyOf: ((item: never, index: number) => string) | undefined;
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
    this.#keyOf = options.keyOf;
    this.#source = open(items);
    const onProgress = options.onProgress;
    this.progress =
      onProgress === undefined ? undefined : new Progress(onProgress, items, host.core.events);
  }

  /** Whether another item may start now. */
  protected abstract room(): boolean;
  /** The source has no more items (or the run stopped) and nothing is running. */
  protected abstract finished(): void;
  /** The run fails with `error`: stop and report. */
  protected abstract failed(error: unknown): void;
  /**
   * The instance began a waiting shutdown: whether the run stops pulling (a stream, which then
   * ends once its running items were read) or goes on (a `map`, which is work already queued).
   */
  protected abstract stopsOnShutdown(): boolean;
  abstract settled(execution: { readonly index: number }, ok: boolean, value: unknown): void;

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
    if (this.running > 0) cancelFor(this.#core, this, reason);
    this.running = 0;
  }

  protected done(): void {
    this.running -= 1;
  }

  /** Pulls nothing more and closes the source; what runs goes on. */
  protected endSource(): void {
    if (!this.exhausted) closeSource(this.#source);
    this.exhausted = true;
  }

  /** Whether a shutdown keeps this run from starting another item (having dealt with it). */
  #halted(): boolean {
    if (this.#core.stopping) {
      // Without waiting: items not yet started are not tasks yet, so they never start, and the
      // run ends (closing its source, like any early stop).
      this.failed(new ShutdownError(`instance is shutting down; ${this.#method}() stopped`));
      return true;
    }
    return this.#host.isShutdown && this.stopsOnShutdown();
  }

  protected fill(): void {
    while (!this.stopped && !this.exhausted && !this.#pulling && this.room()) {
      if (this.#halted()) break;
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
            // An item pulled before a shutdown that stops the run is not a task yet: it never
            // starts (a synchronous source is checked before each pull, in the loop above).
            if (!this.#halted()) this.#launch(step.value);
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
    const index = this.pulled;
    let key = this.#policy.key;
    const keyOf = this.#keyOf;
    if (keyOf !== undefined) {
      try {
        key = keyOf(item as never, index);
        assertString('key', key);
      } catch (error) {
        // The key function is the caller's code: its failure ends the call, as a source's does.
        this.failed(error);
        return;
      }
    }
    this.pulled += 1;
    const execution = new Execution(
      this.#core,
      this.#policy,
      this.#method,
      Kind.CALL,
      this.#fn,
      [item, index],
      this,
      key,
    );
    this.running += 1;
    execution.start();
  }
}
