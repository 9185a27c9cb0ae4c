import { DovetailError, ShutdownError } from '../errors.js';
import { assertFunction, assertObject, describe } from '../internal/assert.js';
import type { Tracer, TraceStruct } from '../trace.js';
import { hasChannelSubscribers, publishToChannel } from './channel.js';
import { addStat, copyStats, createStats, type Stats } from './stats.js';
import type { InstanceEventName } from './instance.js';
import { Subscriptions } from './subscriptions.js';
import { instanceTraceLine, reportListenerError, taskTraceLine } from './trace-line.js';
import { Waiters } from './waiters.js';
import {
  assertEvent,
  assertListenerScope,
  assertOnceScope,
  Event,
  type AnyFunction,
  type EventMap,
  type EventName,
  type EventSource,
  type Listener,
  type ListenerScope,
  type ListenerScopeFor,
  type OnceScopeFor,
  type Registrar,
  type TaskPayload,
} from './types.js';

/** What the engine hands to `instance()`: the payload of `K` without `event` and `at`. @internal */
export type InstanceFields<K extends InstanceEventName> = Omit<EventMap[K], 'event' | 'at'>;

// The implementation signature of the shorthands (`onQueued`, ...); their overloads are the API.
type ListenerOrScope<K extends EventName> = Listener<K> | ListenerScope;

/**
 * An instance's event bus and counters (`dvt.events`), built on `mitt`: one emitter for unscoped
 * listeners and one per function or execution scope, so an event reaches only the listeners of
 * its scope without scanning the others. Every listener is isolated: a throw or a rejection is
 * reported as a process warning (`DOVETAIL_LISTENER_ERROR`) and never reaches the task.
 */
export class Events {
  readonly #tracer: Tracer;
  readonly #subscriptions = new Subscriptions((event, error) =>
    this.reportListenerError(event, error),
  );
  readonly #waiters = new Waiters(this.#subscriptions);
  /** @internal Counted on every task, observed or not. */
  readonly counters: Stats = createStats();

  /** @internal Made by `Dovetail`; users reach it as `dvt.events`. */
  constructor(tracer: Tracer) {
    this.#tracer = tracer;
  }

  /**
   * Adds a listener for `event`, or, without a listener, returns a registrar for one.
   *
   * @param event - One of {@link Event} or {@link InstanceEvent}.
   * @param listener - Called with the payload; may be async.
   * @param scope - Only tasks of one function or one execution; reentry rules. An instance event
   * concerns no task: it takes the reentry rules only.
   * @returns The subscription id, for `off(id)`.
   * @throws TypeError for an unknown event, a non-function listener, both scope targets, or a
   * scope target on an instance event.
   * @throws RangeError when `maxChainDepth` < 1.
   * @example
   * ```ts
   * import { Dovetail, Event } from 'dovetailjs';
   * const dvt = new Dovetail();
   * const id = dvt.events.on(Event.DONE, (p) => console.log(p.executionId, p.elapsed));
   * dvt.events.off(id);
   * const reg = dvt.events.on(Event.ERROR);
   * reg((p) => console.error(p.error));
   * ```
   */
  on<K extends EventName>(event: K, listener: Listener<K>, scope?: ListenerScopeFor<K>): string;
  on<K extends EventName>(event: K, scope?: ListenerScopeFor<K>): Registrar<K>;
  on<K extends EventName>(
    event: K,
    listenerOrScope?: Listener<K> | ListenerScope,
    scope?: ListenerScope,
  ): string | Registrar<K> {
    assertEvent('event', event);
    if (typeof listenerOrScope === 'function') return this.#add(event, listenerOrScope, scope);
    if (
      listenerOrScope !== undefined &&
      (listenerOrScope === null || typeof listenerOrScope !== 'object')
    ) {
      throw new TypeError(`\`listener\` must be a function, received ${describe(listenerOrScope)}`);
    }
    const registrarScope = listenerOrScope;
    assertListenerScope(event, registrarScope);
    return <L extends Listener<K>>(listener: L): L => {
      this.#add(event, listener, registrarScope);
      return listener;
    };
  }

  /** Same as `on(Event.QUEUED, ...)`. */
  onQueued(listener: Listener<'queued'>, scope?: ListenerScope): string;
  onQueued(scope?: ListenerScope): Registrar<'queued'>;
  onQueued(a?: ListenerOrScope<'queued'>, b?: ListenerScope): string | Registrar<'queued'> {
    return this.#short(Event.QUEUED, a, b);
  }

  /** Same as `on(Event.STARTED, ...)`. */
  onStart(listener: Listener<'started'>, scope?: ListenerScope): string;
  onStart(scope?: ListenerScope): Registrar<'started'>;
  onStart(a?: ListenerOrScope<'started'>, b?: ListenerScope): string | Registrar<'started'> {
    return this.#short(Event.STARTED, a, b);
  }

  /** Same as `on(Event.DONE, ...)`. */
  onEnd(listener: Listener<'done'>, scope?: ListenerScope): string;
  onEnd(scope?: ListenerScope): Registrar<'done'>;
  onEnd(a?: ListenerOrScope<'done'>, b?: ListenerScope): string | Registrar<'done'> {
    return this.#short(Event.DONE, a, b);
  }

  /** Same as `on(Event.ERROR, ...)`. */
  onError(listener: Listener<'error'>, scope?: ListenerScope): string;
  onError(scope?: ListenerScope): Registrar<'error'>;
  onError(a?: ListenerOrScope<'error'>, b?: ListenerScope): string | Registrar<'error'> {
    return this.#short(Event.ERROR, a, b);
  }

  /** Same as `on(Event.RETRY, ...)`. */
  onRetry(listener: Listener<'retry'>, scope?: ListenerScope): string;
  onRetry(scope?: ListenerScope): Registrar<'retry'>;
  onRetry(a?: ListenerOrScope<'retry'>, b?: ListenerScope): string | Registrar<'retry'> {
    return this.#short(Event.RETRY, a, b);
  }

  /** Same as `on(Event.CANCELLED, ...)`. */
  onCancel(listener: Listener<'cancelled'>, scope?: ListenerScope): string;
  onCancel(scope?: ListenerScope): Registrar<'cancelled'>;
  onCancel(a?: ListenerOrScope<'cancelled'>, b?: ListenerScope): string | Registrar<'cancelled'> {
    return this.#short(Event.CANCELLED, a, b);
  }

  /** Same as `on(Event.RATE_LIMITED, ...)`. */
  onRateLimited(listener: Listener<'rate_limited'>, scope?: ListenerScope): string;
  onRateLimited(scope?: ListenerScope): Registrar<'rate_limited'>;
  onRateLimited(
    a?: ListenerOrScope<'rate_limited'>,
    b?: ListenerScope,
  ): string | Registrar<'rate_limited'> {
    return this.#short(Event.RATE_LIMITED, a, b);
  }

  /**
   * The next payload of `event` (within `scope`). Rejects with `signal.reason` when `scope.signal`
   * aborts, with `ShutdownError` when the instance finishes shutting down first, and, for an
   * `execution` scope, with a `DovetailError` when that execution ends without the event (a
   * `once('done', { execution })` for a task that fails). An instance event takes only `signal`.
   *
   * @throws TypeError for an unknown event, a bad scope, or a scope target on an instance event.
   * @example
   * ```ts
   * import { Dovetail } from 'dovetailjs';
   * const dvt = new Dovetail();
   * const next = dvt.events.once('done');
   * dvt.task.schedule(() => 42);
   * console.log((await next).executionId);
   * ```
   */
  once<K extends EventName>(event: K, scope?: OnceScopeFor<K>): Promise<EventMap[K]> {
    assertEvent('event', event);
    assertOnceScope(event, scope);
    return this.#waiters.wait(event, scope);
  }

  /**
   * Emits `payload` to the listeners of `event` by hand (tests, custom instrumentation). Scoped
   * listeners hear it when `payload.executionId` matches theirs.
   */
  emit<K extends EventName>(event: K, payload: EventMap[K]): void {
    assertEvent('event', event);
    assertObject('payload', payload);
    const id = (payload as Partial<TaskPayload>).executionId;
    this.#subscriptions.dispatch(event, payload, undefined, id);
  }

  /**
   * Removes one subscription by id, or every subscription of a listener function.
   * @returns Whether anything was removed.
   */
  off(idOrListener: string | AnyFunction): boolean {
    if (typeof idOrListener === 'string') return this.#subscriptions.remove(idOrListener);
    if (typeof idOrListener !== 'function') {
      throw new TypeError(
        `\`idOrListener\` must be a subscription id or a function, received ${describe(idOrListener)}`,
      );
    }
    return this.#subscriptions.removeListener(idOrListener);
  }

  /**
   * Removes every listener.
   * @returns How many subscriptions were removed.
   */
  clear(): number {
    return this.#subscriptions.removeAll();
  }

  /** How many subscriptions exist (all events and scopes). */
  get listenerCount(): number {
    return this.#subscriptions.size;
  }

  /**
   * A copy of the counters: `queued, started, done, error, retries, throttled, cancelled` and
   * every custom key. At rest, `queued === done + error + cancelled`.
   */
  stats(): Stats {
    return copyStats(this.counters);
  }

  /**
   * Adds `count` to a custom counter, creating it at 0 first.
   * @throws TypeError for a non-string key or a non-number count; RangeError for a non-finite count.
   */
  incStat(key: string, count = 1): void {
    addStat(this.counters, key, count);
  }

  /**
   * Writes `message` through the trace logger as `DVT-<prefix> <message>`, only when tracing is
   * on; otherwise nothing is converted or built.
   *
   * @example
   * ```ts
   * import { Dovetail } from 'dovetailjs';
   * const dvt = new Dovetail({ trace: true, tracePrefix: 'import' });
   * dvt.events.trace('batch 3 loaded'); // console.debug('DVT-import batch 3 loaded')
   * ```
   */
  trace(message: string): void {
    if (!this.#tracer.enabled) return;
    this.#tracer.line(String(message));
  }

  /**
   * Writes a structured trace line (`method status task=… function=… elapsed=…ms key=value…`),
   * only when tracing is on; otherwise no field is read and no string is built.
   *
   * @throws TypeError when `fields` is not an object (tracing on or off).
   * @example
   * ```ts
   * import { Dovetail } from 'dovetailjs';
   * const dvt = new Dovetail({ trace: true });
   * dvt.events.traceStruct({ method: 'import', status: 'batch', elapsed: 12, extra: { rows: 500 } });
   * ```
   */
  traceStruct(fields: TraceStruct): void {
    assertObject('fields', fields);
    if (!this.#tracer.enabled) return;
    this.#tracer.struct(fields);
  }

  /** Whether tracing is on for this instance. */
  get tracing(): boolean {
    return this.#tracer.enabled;
  }

  // ---- engine side -------------------------------------------------------------------------

  /**
   * Whether emitting `event` for `source` reaches anyone: a listener, the trace, or a channel
   * subscriber. The execution builds no payload when this is false.
   * @internal
   */
  wants(event: EventName, source: EventSource): boolean {
    // The common case, nothing subscribed at all, in the fewest reads: it runs several times per task.
    if (this.#subscriptions.size === 0) return this.#tracer.enabled || hasChannelSubscribers();
    return (
      this.#subscriptions.reaches(event, source) || this.#tracer.enabled || hasChannelSubscribers()
    );
  }

  /** Whether nothing at all hears task events: no listener, no trace, no channel subscriber. @internal */
  get silent(): boolean {
    return this.#subscriptions.size === 0 && !this.#tracer.enabled && !hasChannelSubscribers();
  }

  /** Delivers a payload built by the execution. @internal */
  publish(payload: TaskPayload, source: EventSource): void {
    const event = payload.event;
    this.#subscriptions.dispatch(event, payload, source.fn, source.id);
    publishToChannel(payload, source);
    if (this.#tracer.enabled) this.#tracer.struct(taskTraceLine(payload));
  }

  /**
   * Emits the instance event `event`: builds `{ event, at: Date.now(), ...fields }` and delivers
   * it to its listeners (each isolated, as for task events) and to the trace. When no listener
   * hears it and tracing is off, nothing is built: it costs one count check. Never on the
   * `dovetail:task` channel, which is per task. @internal
   */
  instance<K extends InstanceEventName>(event: K, fields: InstanceFields<K>): void {
    const heard = this.#subscriptions.hears(event);
    if (!heard && !this.#tracer.enabled) return;
    const payload = { event, at: Date.now(), ...fields } as EventMap[K];
    if (this.#tracer.enabled) this.#tracer.struct(instanceTraceLine(payload));
    if (heard) this.#subscriptions.dispatch(event, payload, undefined, undefined);
  }

  /**
   * Drops the listeners scoped to an execution that has ended; its pending `once()` promises
   * reject (the event can no longer come). @internal
   */
  releaseExecution(source: EventSource): void {
    const scoped = this.#subscriptions.ofExecution(source);
    if (scoped === undefined) return;
    for (const { id, event } of scoped) {
      const ended = (): Error =>
        new DovetailError(`execution ${source.id} ended without a '${event}' event`);
      if (!this.#waiters.fail(id, ended)) this.#subscriptions.remove(id);
    }
  }

  /** Rejects pending `once()` promises: the instance has shut down. @internal */
  close(): void {
    this.#waiters.failAll(() => new ShutdownError('instance shut down before the event'));
  }

  /** Reports a listener failure without letting it reach the task. @internal */
  reportListenerError(event: string, error: unknown): void {
    reportListenerError(this.#tracer, event, error);
  }

  #short<K extends EventName>(
    event: K,
    listenerOrScope: ListenerOrScope<K> | undefined,
    scope: ListenerScope | undefined,
  ): string | Registrar<K> {
    return typeof listenerOrScope === 'function'
      ? this.on(event, listenerOrScope, scope)
      : this.on(event, listenerOrScope);
  }

  #add<K extends EventName>(
    event: K,
    listener: Listener<K>,
    scope: ListenerScope | undefined,
  ): string {
    assertFunction('listener', listener);
    assertListenerScope(event, scope);
    return this.#subscriptions.add(event, listener, scope);
  }
}
