import { backendHooks, buildCore, costLimits, refuseShared } from './engine/build.js';
import {
  clearWaiting,
  ensurePausable,
  hasLimit,
  setConcurrency,
  shareControls,
  writeSharedLimit,
  type SharedControls,
} from './engine/control.js';
import type { Core } from './engine/core.js';
import { InstanceHost } from './engine/host.js';
import { ShutdownError } from './errors.js';
import { Events } from './events/bus.js';
import { watchTaskChannel } from './events/channel.js';
import { assertBoolean, assertCount, assertNumber, assertObject } from './internal/assert.js';
import { resolveOptions, type DovetailOptions, type ResolvedOptions } from './options.js';
import type { ShutdownOptions } from './lifecycle/instance.js';
import { track, untrack } from './lifecycle/tracking.js';
import type { CircuitView } from './resilience/circuit-view.js';
import { TaskApi } from './task.js';
import { Tracer } from './trace.js';

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
  readonly #host: InstanceHost;
  /** With a shared back end: the pause and the concurrency limit every process follows. */
  readonly #shared: SharedControls;

  /**
   * @param options - See {@link DovetailOptions}; every field is optional.
   * @throws TypeError for an option of the wrong type; RangeError for one out of range. The
   * message names the option and the value received.
   */
  constructor(options?: DovetailOptions) {
    const resolved = resolveOptions(options);
    refuseShared(resolved);
    this.#options = resolved;
    const tracer = new Tracer(resolved.trace, resolved.traceLogger, resolved.tracePrefix);
    const events = new Events(tracer);
    this.events = events;
    const hooks = backendHooks(resolved, events);
    const host = new InstanceHost(this, costLimits(resolved));
    this.#host = host;
    this.#core = host.core = buildCore(resolved, events, host, hooks);
    this.task = new TaskApi(host, resolved.policy);
    this.#shared = shareControls(this.#core, resolved, hooks, () => !this.#shuttingDown);
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

  /** Tasks waiting: for the concurrency gate, a rate-limit token, their key or a pause. */
  get pending(): number {
    return this.#core.accounting.pending;
  }

  /**
   * The concurrency limit in force (`Infinity` when unbounded). Writing it (an integer >= 1 or
   * `Infinity`) starts waiting tasks at once when it rises, and lets running tasks finish when it
   * falls, starting none until `active` is below the new limit. Emits `limit_changed`. With
   * `concurrency: 'adaptive'` it reads the adaptive limit, and writing it is a TypeError (the
   * limit belongs to the algorithm; bound it with `adaptive.min`/`max` instead).
   * @throws TypeError / RangeError for a bad value; TypeError with an adaptive limit, or with a
   * back end that does not share the limit (with `dovetailjs/redis`, a write changes it for
   * every process).
   * @example
   * ```ts
   * import { Dovetail } from 'dovetailjs';
   * const dvt = new Dovetail({ concurrency: 4 });
   * dvt.concurrency = 16; // the upstream said it can take more
   * ```
   */
  get concurrency(): number {
    const gate = this.#core.gate;
    return gate !== undefined && hasLimit(gate) ? gate.concurrency : this.#options.concurrency;
  }

  /** Sets the concurrency limit; see the getter. */
  set concurrency(value: number) {
    const core = this.#core;
    if (core.adaptive !== undefined) {
      throw new TypeError(
        "`concurrency` is adaptive on this instance (`concurrency: 'adaptive'`): it cannot be written",
      );
    }
    assertCount('concurrency', value);
    if (this.#options.backend !== undefined) {
      writeSharedLimit(core, this.#shared, value);
      return;
    }
    const previous = this.concurrency;
    if (value !== previous) setConcurrency(core, value, previous);
  }

  /**
   * The circuit breaker (`undefined` without the `circuitBreaker` option): its `state`, and
   * `isolate()` (hold it open until `reset()`) and `reset()` (close it).
   * @example
   * ```ts
   * import { Dovetail } from 'dovetailjs';
   * const dvt = new Dovetail({ circuitBreaker: { threshold: 5, halfOpenAfter: 10_000 } });
   * dvt.circuit?.isolate(); // maintenance window: fail fast until reset()
   * console.log(dvt.circuit?.state); // 'open'
   * dvt.circuit?.reset();
   * ```
   */
  get circuit(): CircuitView | undefined {
    return this.#core.circuit?.view;
  }

  /** Whether the instance is paused (see {@link pause}). */
  get isPaused(): boolean {
    return this.#core.pause.active;
  }

  /**
   * Pauses the instance: no attempt starts (first attempts and retries alike) until
   * {@link resume}, or for `ms` milliseconds (a later `pause(ms)` ends at the later of the two
   * ends). Running attempts go on; queued tasks can still be cancelled. Emits `paused`.
   * @param ms - A number > 0; `Infinity` or none: until `resume()`.
   * @throws TypeError for a non-number, RangeError for 0, a negative number or NaN; TypeError
   * with a back end that does not share pauses (`dovetailjs/redis` does: it pauses every process).
   * @example
   * ```ts
   * import { Dovetail } from 'dovetailjs';
   * const dvt = new Dovetail({ concurrency: 8 });
   * dvt.pause(30_000); // the upstream answered 429: hold everything for 30 s
   * ```
   */
  pause(ms?: number): void {
    if (ms !== undefined) {
      assertNumber('ms', ms);
      if (!(ms > 0)) throw new RangeError(`\`ms\` must be a number > 0, received ${ms}`);
    }
    if (this.#options.backend !== undefined && this.#shared.pause === undefined) {
      throw new TypeError(
        '`pause()` is not supported with this back end: a pause would hold this process only',
      );
    }
    // A shut-down instance drains: it is never paused again.
    if (this.#shuttingDown) return;
    ensurePausable(this.#core);
    const pause = this.#core.pause;
    pause.pause(ms ?? Infinity);
    this.#shared.pause?.pause(pause.until);
  }

  /**
   * Ends a pause; waiting tasks start in priority order. No-op when not paused. With a shared
   * back end it ends the pause of every process.
   */
  resume(): void {
    this.#resume();
    this.#shared.pause?.resume();
  }

  /**
   * Resolves when no task waits (`pending === 0`): at once when so already, and on `shutdown()`.
   * @example
   * ```ts
   * import { Dovetail } from 'dovetailjs';
   * const dvt = new Dovetail({ concurrency: 2 });
   * for (let i = 0; i < 10; i++) void dvt.task.schedule(async () => i);
   * await dvt.onEmpty(); // everything started; some may still run
   * ```
   */
  onEmpty(): Promise<void> {
    return this.onSizeLessThan(1);
  }

  /**
   * Resolves when fewer than `n` tasks wait (`pending < n`): at once when so already, and on
   * `shutdown()`. A producer awaits it to keep its queue bounded without polling.
   * @param n - A number > 0.
   * @throws TypeError for a non-number, RangeError for 0, a negative number or NaN.
   * @example
   * ```ts
   * import { Dovetail } from 'dovetailjs';
   * const dvt = new Dovetail({ concurrency: 4 });
   * for (let i = 0; i < 100; i++) {
   *   await dvt.onSizeLessThan(10); // never more than 10 waiting
   *   void dvt.task.schedule(async () => i);
   * }
   * ```
   */
  onSizeLessThan(n: number): Promise<void> {
    assertNumber('n', n);
    if (!(n > 0)) throw new RangeError(`\`n\` must be a number > 0, received ${n}`);
    if (this.#shutdown !== undefined) return Promise.resolve();
    return this.#core.accounting.whenPendingBelow(n);
  }

  /**
   * Cancels every waiting task (each rejects with `CancelledError`, its `cause` the `reason`, and
   * emits `cancelled`); running tasks, and tasks sleeping between retries, go on.
   * @returns How many tasks were cancelled.
   * @example
   * ```ts
   * import { Dovetail } from 'dovetailjs';
   * const dvt = new Dovetail({ concurrency: 1 });
   * const tasks = [1, 2, 3].map((n) => dvt.task.schedule(async () => n));
   * console.log(dvt.clearQueue(new Error('user navigated away'))); // 2
   * await Promise.allSettled(tasks);
   * ```
   */
  clearQueue(reason?: unknown): number {
    return clearWaiting(this.#core, reason);
  }

  /** The keys with a task running or waiting (with `perKey`; else none). */
  activeKeys(): string[] {
    return this.#core.keys?.active() ?? [];
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
    return this.#host.whenIdle();
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
    // A drain goes through a pause; whoever waits for room in the queue stops waiting.
    this.#resume();
    this.#core.accounting.releaseBelow();
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
    this.#core.keys?.close();
    try {
      await this.#shared.pause?.close();
      await this.#shared.limit?.close();
      await (this.#core.circuit as { close?(): Promise<void> | void } | undefined)?.close?.();
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

  #resume(): void {
    this.#core.pause.resume();
  }
}
