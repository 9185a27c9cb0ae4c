import { Accounting } from './engine/accounting.js';
import type { Core } from './engine/core.js';
import { ShutdownError } from './errors.js';
import { Events } from './events/bus.js';
import { watchTaskChannel } from './events/channel.js';
import { assertBoolean, assertObject } from './internal/assert.js';
import { resolveOptions, type DovetailOptions, type ResolvedOptions } from './options.js';
import type { BackendHooks, BackendProblem } from './policies/backend.js';
import { LocalGate, type Gate } from './policies/gate.js';
import { TokenBucket, type RateLimiter } from './policies/rate-limit.js';
import type { ShutdownOptions } from './lifecycle/instance.js';
import { track, untrack } from './lifecycle/tracking.js';
import { TaskApi, type TaskHost } from './task.js';
import { Tracer } from './trace.js';

// A back end's report becomes a `backend_error` event: it concerns the instance, not one task.
function reportBackend(events: Events, problem: BackendProblem): void {
  events.instance('backend_error', {
    method: 'backend',
    task: 0,
    executionId: '',
    ...problem,
  });
}

/**
 * One policy for async work: a concurrency gate, a rate limit, retries with backoff and a
 * per-attempt timeout, applied to every task started through `dvt.task`, with lifecycle events
 * and counters on `dvt.events`.
 *
 * @example
 * ```ts
 * import { Dovetail } from 'dovetailjs';
 * await using dvt = new Dovetail({ concurrency: 8, retries: 2, retryBackoff: 100, timeout: 5000 });
 * const pages = await dvt.task.map(async (n: number) => n * 2, [1, 2, 3]);
 * console.log(pages, dvt.events.stats());
 * ```
 */
export class Dovetail implements AsyncDisposable {
  /** Starts tasks under this instance's policy. */
  readonly task: TaskApi;
  /** Lifecycle events, counters and tracing. */
  readonly events: Events;

  readonly #options: ResolvedOptions;
  readonly #core: Core;
  #shuttingDown = false;
  #shutdown: Promise<void> | undefined;
  #idle: { promise: Promise<void>; resolve: () => void } | undefined;

  /**
   * @param options - See {@link DovetailOptions}; every field is optional.
   * @throws TypeError for an option of the wrong type; RangeError for one out of range. The
   * message names the option and the value received.
   */
  constructor(options?: DovetailOptions) {
    const resolved = resolveOptions(options);
    this.#options = resolved;
    const tracer = new Tracer(resolved.trace, resolved.traceLogger, resolved.tracePrefix);
    const events = new Events(tracer);
    this.events = events;
    const backend = resolved.backend;
    const hooks: BackendHooks | undefined =
      backend === undefined ? undefined : { report: (p) => reportBackend(events, p) };
    let gate: Gate | undefined;
    if (resolved.concurrency !== Infinity) {
      gate =
        backend === undefined
          ? new LocalGate(resolved.concurrency)
          : backend.createGate({ concurrency: resolved.concurrency }, hooks);
    }
    let limiter: RateLimiter | undefined;
    if (resolved.rateLimit !== undefined) {
      limiter =
        backend === undefined
          ? new TokenBucket(resolved.rateLimit.perSecond, resolved.rateLimit.burst)
          : backend.createRateLimiter(resolved.rateLimit, hooks);
    }
    this.#core = {
      events,
      gate,
      limiter,
      accounting: new Accounting(events.counters, () => this.#drained()),
      stopping: false,
    };
    const host: TaskHost = {
      core: this.#core,
      concurrency: resolved.concurrency,
      get isShutdown(): boolean {
        return self.#shuttingDown;
      },
    };
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    this.task = new TaskApi(host, resolved.policy);
    watchTaskChannel();
    track(this, { autoRegister: resolved.autoRegister, shutdownOnExit: resolved.shutdownOnExit });
  }

  /** `true` from the first `shutdown()` call on. */
  get isShutdown(): boolean {
    return this.#shuttingDown;
  }

  /** Tasks running now (between their first start and settling). */
  get active(): number {
    return this.#core.accounting.active;
  }

  /** Tasks waiting for the concurrency gate or the rate limiter. */
  get pending(): number {
    return this.#core.accounting.pending;
  }

  /** The instance's concurrency limit (`Infinity` when unbounded). */
  get concurrency(): number {
    return this.#options.concurrency;
  }

  /**
   * Resolves once no task is queued or running (at once when idle).
   * @example
   * ```ts
   * import { Dovetail } from 'dovetailjs';
   * const dvt = new Dovetail();
   * void dvt.task.schedule(async () => 1);
   * await dvt.onIdle();
   * ```
   */
  onIdle(): Promise<void> {
    if (this.#core.accounting.idle) return Promise.resolve();
    if (this.#idle === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((done) => {
        resolve = done;
      });
      this.#idle = { promise, resolve };
    }
    return this.#idle.promise;
  }

  /**
   * Stops the instance. New tasks reject with `ShutdownError` from the first call on. Idempotent:
   * every call returns the one shutdown's promise; a `wait: false` call during a waiting shutdown
   * still cancels what is queued and aborts what runs.
   *
   * @param options - `{ wait = true }`.
   * @throws TypeError when `wait` is not a boolean.
   * @example
   * ```ts
   * import { Dovetail } from 'dovetailjs';
   * const dvt = new Dovetail();
   * process.once('SIGTERM', () => void dvt.shutdown({ wait: true }));
   * ```
   */
  shutdown(options?: ShutdownOptions): Promise<void> {
    let wait = true;
    if (options !== undefined) {
      assertObject('options', options);
      if (options.wait !== undefined) {
        assertBoolean('wait', options.wait);
        wait = options.wait;
      }
    }
    if (!wait) this.#stop();
    if (this.#shutdown !== undefined) return this.#shutdown;
    this.#shuttingDown = true;
    this.events.traceStruct({ method: 'shutdown', status: 'start', extra: { wait } });
    this.#shutdown = (wait ? this.onIdle() : Promise.resolve()).then(() => this.#finish());
    return this.#shutdown;
  }

  /** `shutdown({ wait: true })`, so that `await using dvt = new Dovetail()` works. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown({ wait: true });
  }

  #stop(): void {
    const core = this.#core;
    if (core.stopping) return;
    core.stopping = true;
    this.#shuttingDown = true;
    const reason = new ShutdownError('instance shut down without waiting');
    for (const execution of core.accounting.live()) execution.stop(reason);
    // What the gate still holds was cancelled above; let it go.
    core.gate?.clear();
  }

  async #finish(): Promise<void> {
    try {
      await this.#options.backend?.close?.();
    } finally {
      this.events.close();
      untrack(this);
      this.events.traceStruct({
        method: 'shutdown',
        status: 'end',
        extra: { live: this.#core.accounting.liveCount },
      });
    }
  }

  #drained(): void {
    const idle = this.#idle;
    if (idle === undefined) return;
    this.#idle = undefined;
    idle.resolve();
  }
}
