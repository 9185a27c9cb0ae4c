import mittImport, { type Emitter } from 'mitt';
import { DovetailError, ShutdownError } from './errors.js';
import {
  assertBoolean,
  assertCount,
  assertFunction,
  assertObject,
  assertString,
  describe,
} from './internal/assert.js';
import { taskChannel, Tracer, type TraceStruct } from './trace.js';

/**
 * Lifecycle event names. Per task the order is `queued` → (`rate_limited`) → `started` (once per
 * attempt) → (`retry` → (`rate_limited`) → `started`)* → exactly one of `done` | `error` | `cancelled`.
 *
 * @example
 * ```ts
 * import { Dovetail, Event } from 'dovetailjs';
 * const dvt = new Dovetail({ retries: 2 });
 * dvt.events.on(Event.RETRY, (p) => console.log(`attempt ${p.attempt} failed, next in ${p.sleep} ms`));
 * ```
 */
export const Event = Object.freeze({
  /** The task entered the instance (before the gate). */
  QUEUED: 'queued',
  /** An attempt starts (once per attempt). */
  STARTED: 'started',
  /** An attempt failed and another follows after `sleep` ms. */
  RETRY: 'retry',
  /** An attempt waited `waited` ms for a rate-limit token. */
  RATE_LIMITED: 'rate_limited',
  /** The task rejected with its error or a `TimeoutError` (terminal). */
  ERROR: 'error',
  /** The task was cancelled (terminal). */
  CANCELLED: 'cancelled',
  /** The task resolved (terminal). */
  DONE: 'done',
} as const);

/**
 * Events about the instance rather than one task: `backend_error`, emitted when a shared back end
 * (`dovetailjs/redis`) fails. Kept apart from {@link Event}, which lists exactly the task lifecycle.
 *
 * @example
 * ```ts
 * import { BackendEvent, Dovetail } from 'dovetailjs';
 * const dvt = new Dovetail();
 * dvt.events.on(BackendEvent.BACKEND_ERROR, (p) => console.warn(`${p.key}: ${p.operation} failed`));
 * ```
 */
export const BackendEvent = Object.freeze({
  /** A shared back end failed (once per outage and operation). */
  BACKEND_ERROR: 'backend_error',
} as const);

/** One of the {@link Event} or {@link BackendEvent} values. */
export type EventName =
  (typeof Event)[keyof typeof Event] | (typeof BackendEvent)[keyof typeof BackendEvent];

// mitt ships CommonJS-style typings: under `nodenext` its default import types as the module
// object, while at run time (ESM) it is the factory. This is the only module that imports mitt.
type Bus = Emitter<Record<string, TaskPayload>>;
const mitt = mittImport as unknown as () => Bus;

const EVENT_NAMES: ReadonlySet<string> = new Set([
  ...Object.values(Event),
  ...Object.values(BackendEvent),
]);

/** The API method that started a task. */
export type MethodName =
  'schedule' | 'toThread' | 'map' | 'mapIterable' | 'fromCallback' | 'promisify' | 'wrap';

/** Fields every event payload carries. */
export interface TaskPayload {
  /** The event this payload belongs to. */
  event: EventName;
  /** The API method that started the task. */
  method: MethodName | (string & {});
  /** The task's number within the process, 1, 2, ... */
  task: number;
  /** The function's name (`'<anonymous>'` when it has none); absent for a promise. */
  function?: string;
  /** The same string as `Task.id` and `current().id`. */
  executionId: string;
  /** The attempt, 1-based. */
  attempt?: number;
  /** Milliseconds since the first attempt started. */
  elapsed?: number;
  /** The value thrown (unchanged), or the `CancelledError`. */
  error?: unknown;
  /** Milliseconds before the next attempt. */
  sleep?: number;
  /** Milliseconds waited for a rate-limit token. */
  waited?: number;
  /** The timeout in ms, when the failure was a `TimeoutError`. */
  timeout?: number;
}

/** Payload of `queued`: the task entered the instance. */
export interface QueuedPayload extends TaskPayload {
  event: 'queued';
}
/** Payload of `rate_limited`: an attempt waited `waited` ms for a token. */
export interface RateLimitedPayload extends TaskPayload {
  event: 'rate_limited';
  attempt: number;
  waited: number;
}
/** Payload of `started`: attempt `attempt` begins. */
export interface StartedPayload extends TaskPayload {
  event: 'started';
  attempt: number;
}
/** Payload of `retry`: attempt `attempt` failed with `error`; the next starts after `sleep` ms. */
export interface RetryPayload extends TaskPayload {
  event: 'retry';
  attempt: number;
  sleep: number;
  error: unknown;
}
/** Payload of `done`: the task resolved. */
export interface DonePayload extends TaskPayload {
  event: 'done';
  attempt: number;
  elapsed: number;
}
/** Payload of `error`: the task rejected with `error` (a `TimeoutError` carries `timeout`). */
export interface ErrorPayload extends TaskPayload {
  event: 'error';
  elapsed: number;
  error: unknown;
}
/** Payload of `cancelled`: the task was cancelled; `error` is the `CancelledError` it rejected with. */
export interface CancelledPayload extends TaskPayload {
  event: 'cancelled';
  error: unknown;
}

/**
 * Payload of `backend_error`: a shared back end (`dovetailjs/redis`) failed, once per outage and
 * per operation. It concerns the instance, not one task: `method` is `'backend'`, `task` is `0`
 * and `executionId` is `''`.
 *
 * @example
 * ```ts
 * import { BackendEvent, Dovetail } from 'dovetailjs';
 * const dvt = new Dovetail();
 * dvt.events.on(BackendEvent.BACKEND_ERROR, (p) => console.warn(`${p.key}: ${p.operation} failed, ${p.fallback}`, p.error));
 * ```
 */
export interface BackendErrorPayload extends TaskPayload {
  event: 'backend_error';
  /** The `BackendError`; its `cause` is what the store's client threw. */
  error: unknown;
  /** The shared limit's key. */
  key: string;
  /** What failed: getting a slot, a token, or keeping a running task's lease. */
  operation: 'gate' | 'rate_limit' | 'lease';
  /** What the instance does meanwhile: fail the tasks, or use in-process limits. */
  fallback: 'fail' | 'local';
}

/** Payload type per event name. */
export interface EventMap {
  /** Payload of `queued`. */
  queued: QueuedPayload;
  /** Payload of `rate_limited`. */
  rate_limited: RateLimitedPayload;
  /** Payload of `started`. */
  started: StartedPayload;
  /** Payload of `retry`. */
  retry: RetryPayload;
  /** Payload of `done`. */
  done: DonePayload;
  /** Payload of `error`. */
  error: ErrorPayload;
  /** Payload of `cancelled`. */
  cancelled: CancelledPayload;
  /** Payload of `backend_error`. */
  backend_error: BackendErrorPayload;
}

/** A listener; it may be async. What it returns is ignored; a throw or rejection is reported. */
export type Listener<K extends EventName> = (payload: EventMap[K]) => unknown;

/** Any function, as a scope key. */
export type AnyFunction = (...args: never[]) => unknown;

/** Which tasks a listener hears, and how it may nest. */
export interface ListenerScope {
  /** Only tasks started from this function object (the one given to `schedule`, `map`, `wrap`, ...). */
  function?: AnyFunction | undefined;
  /** Only the task with this execution id. */
  execution?: string | undefined;
  /**
   * Let the listener run again while it is running (its own work emitted the same event).
   * @defaultValue `false`
   */
  allowReentry?: boolean | undefined;
  /**
   * With `allowReentry`, the most nested calls of this listener at once; >= 1.
   * @defaultValue `5`
   */
  maxChainDepth?: number | undefined;
}

/** Scope of `once()`: which tasks, and a signal to stop waiting. */
export interface OnceScope {
  /** Only tasks started from this function object. */
  function?: AnyFunction | undefined;
  /** Only the task with this execution id. */
  execution?: string | undefined;
  /** Stop waiting: the promise rejects with `signal.reason`. */
  signal?: AbortSignal | undefined;
}

/** What `on(event)` returns without a listener: registers the listener it is given and returns it. */
export type Registrar<K extends EventName> = <L extends Listener<K>>(listener: L) => L;

/** Counters, as returned by `stats()`: the built-in ones plus every `incStat` key. */
export interface Stats {
  /** Tasks that entered the instance. */
  queued: number;
  /** Attempts started. */
  started: number;
  /** Tasks that resolved. */
  done: number;
  /** Tasks that rejected with their own error or a timeout. */
  error: number;
  /** Retries scheduled. */
  retries: number;
  /** Attempts that waited for a rate-limit token. */
  throttled: number;
  /** Tasks cancelled. */
  cancelled: number;
  /** Custom counters from `incStat`. */
  [key: string]: number;
}

/** What a task exposes to the bus; implemented by the execution. @internal */
export interface EventSource {
  readonly fn: AnyFunction | undefined;
  readonly id: string;
  /** The object published on `dovetail:task` for this task, made at its first start. */
  channelContext: Record<string, unknown> | undefined;
}

interface Subscription {
  readonly id: string;
  readonly event: EventName;
  readonly listener: Listener<EventName>;
  readonly emitter: Bus;
  readonly key: AnyFunction | string | undefined;
  readonly handler: (payload: TaskPayload) => void;
  readonly allowReentry: boolean;
  readonly maxChainDepth: number;
  depth: number;
}

const noop = (): void => {};

function assertEvent(name: string, value: unknown): asserts value is EventName {
  if (typeof value !== 'string' || !EVENT_NAMES.has(value)) {
    throw new TypeError(
      `\`${name}\` must be one of ${[...EVENT_NAMES].join(', ')}, received ${describe(value)}`,
    );
  }
}

function assertScopeTarget(scope: { function?: unknown; execution?: unknown }): void {
  if (scope.function !== undefined && scope.execution !== undefined) {
    throw new TypeError('`scope` takes `function` or `execution`, not both');
  }
  if (scope.function !== undefined) assertFunction('scope.function', scope.function);
  if (scope.execution !== undefined) assertString('scope.execution', scope.execution);
}

let subscriptionSeq = 0;

/**
 * An instance's event bus and counters (`dvt.events`), built on `mitt`: one emitter for unscoped
 * listeners and one per function or execution scope, so an event reaches only the listeners of
 * its scope without scanning the others. Every listener is isolated: a throw or a rejection is
 * reported as a process warning (`DOVETAIL_LISTENER_ERROR`) and never reaches the task.
 */
export class Events {
  readonly #tracer: Tracer;
  readonly #global: Bus = mitt();
  readonly #byFunction = new Map<AnyFunction, Bus>();
  readonly #byExecution = new Map<string, Bus>();
  readonly #subscriptions = new Map<string, Subscription>();
  // Scoped subscriptions per scope emitter, so that ending an execution or emptying a scope
  // touches only that scope's subscriptions.
  readonly #members = new Map<Bus, Set<Subscription>>();
  // Pending once() promises by subscription id: how to reject each.
  readonly #waiters = new Map<string, (error: unknown) => void>();
  // Unscoped listener count per event: the hot path reads this before building a payload.
  readonly #counts: Record<EventName, number> = {
    queued: 0,
    rate_limited: 0,
    started: 0,
    retry: 0,
    done: 0,
    error: 0,
    cancelled: 0,
    backend_error: 0,
  };
  /** @internal Counted on every task, observed or not. */
  readonly counters: Stats = {
    queued: 0,
    started: 0,
    done: 0,
    error: 0,
    retries: 0,
    throttled: 0,
    cancelled: 0,
  };

  /** @internal Made by `Dovetail`; users reach it as `dvt.events`. */
  constructor(tracer: Tracer) {
    this.#tracer = tracer;
  }

  /**
   * Adds a listener for `event`, or, without a listener, returns a registrar for one.
   *
   * @param event - One of {@link Event}.
   * @param listener - Called with the payload; may be async.
   * @param scope - Only tasks of one function or one execution; reentry rules.
   * @returns The subscription id, for `off(id)`.
   * @throws TypeError for an unknown event, a non-function listener, or both scope targets.
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
  on<K extends EventName>(event: K, listener: Listener<K>, scope?: ListenerScope): string;
  on<K extends EventName>(event: K, scope?: ListenerScope): Registrar<K>;
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
    this.#checkScope(registrarScope);
    return <L extends Listener<K>>(listener: L): L => {
      this.#add(event, listener, registrarScope);
      return listener;
    };
  }

  /** Same as `on(Event.QUEUED, ...)`. */
  onQueued(listener: Listener<'queued'>, scope?: ListenerScope): string;
  onQueued(scope?: ListenerScope): Registrar<'queued'>;
  onQueued(
    a?: Listener<'queued'> | ListenerScope,
    b?: ListenerScope,
  ): string | Registrar<'queued'> {
    return this.#short(Event.QUEUED, a, b);
  }

  /** Same as `on(Event.STARTED, ...)`. */
  onStart(listener: Listener<'started'>, scope?: ListenerScope): string;
  onStart(scope?: ListenerScope): Registrar<'started'>;
  onStart(
    a?: Listener<'started'> | ListenerScope,
    b?: ListenerScope,
  ): string | Registrar<'started'> {
    return this.#short(Event.STARTED, a, b);
  }

  /** Same as `on(Event.DONE, ...)`. */
  onEnd(listener: Listener<'done'>, scope?: ListenerScope): string;
  onEnd(scope?: ListenerScope): Registrar<'done'>;
  onEnd(a?: Listener<'done'> | ListenerScope, b?: ListenerScope): string | Registrar<'done'> {
    return this.#short(Event.DONE, a, b);
  }

  /** Same as `on(Event.ERROR, ...)`. */
  onError(listener: Listener<'error'>, scope?: ListenerScope): string;
  onError(scope?: ListenerScope): Registrar<'error'>;
  onError(a?: Listener<'error'> | ListenerScope, b?: ListenerScope): string | Registrar<'error'> {
    return this.#short(Event.ERROR, a, b);
  }

  /** Same as `on(Event.RETRY, ...)`. */
  onRetry(listener: Listener<'retry'>, scope?: ListenerScope): string;
  onRetry(scope?: ListenerScope): Registrar<'retry'>;
  onRetry(a?: Listener<'retry'> | ListenerScope, b?: ListenerScope): string | Registrar<'retry'> {
    return this.#short(Event.RETRY, a, b);
  }

  /** Same as `on(Event.CANCELLED, ...)`. */
  onCancel(listener: Listener<'cancelled'>, scope?: ListenerScope): string;
  onCancel(scope?: ListenerScope): Registrar<'cancelled'>;
  onCancel(
    a?: Listener<'cancelled'> | ListenerScope,
    b?: ListenerScope,
  ): string | Registrar<'cancelled'> {
    return this.#short(Event.CANCELLED, a, b);
  }

  /** Same as `on(Event.RATE_LIMITED, ...)`. */
  onRateLimited(listener: Listener<'rate_limited'>, scope?: ListenerScope): string;
  onRateLimited(scope?: ListenerScope): Registrar<'rate_limited'>;
  onRateLimited(
    a?: Listener<'rate_limited'> | ListenerScope,
    b?: ListenerScope,
  ): string | Registrar<'rate_limited'> {
    return this.#short(Event.RATE_LIMITED, a, b);
  }

  /**
   * The next payload of `event` (within `scope`). Rejects with `signal.reason` when `scope.signal`
   * aborts, with `ShutdownError` when the instance finishes shutting down first, and, for an
   * `execution` scope, with a `DovetailError` when that execution ends without the event (a
   * `once('done', { execution })` for a task that fails).
   *
   * @example
   * ```ts
   * import { Dovetail } from 'dovetailjs';
   * const dvt = new Dovetail();
   * const next = dvt.events.once('done');
   * dvt.task.schedule(() => 42);
   * console.log((await next).executionId);
   * ```
   */
  once<K extends EventName>(event: K, scope?: OnceScope): Promise<EventMap[K]> {
    assertEvent('event', event);
    if (scope !== undefined) {
      assertObject('scope', scope);
      assertScopeTarget(scope);
      if (scope.signal !== undefined && !(scope.signal instanceof AbortSignal)) {
        throw new TypeError(
          `\`scope.signal\` must be an AbortSignal, received ${describe(scope.signal)}`,
        );
      }
    }
    return new Promise<EventMap[K]>((resolve, reject) => {
      const signal = scope?.signal;
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const finish = (): void => {
        this.#remove(id);
        this.#waiters.delete(id);
        signal?.removeEventListener('abort', onAbort);
      };
      const fail = (error: unknown): void => {
        finish();
        reject(error);
      };
      const onAbort = (): void => fail(signal?.reason);
      const id = this.#add(
        event,
        (payload) => {
          finish();
          resolve(payload);
        },
        scope === undefined ? undefined : { function: scope.function, execution: scope.execution },
      );
      this.#waiters.set(id, fail);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Emits `payload` to the listeners of `event` by hand (tests, custom instrumentation). Scoped
   * listeners hear it when `payload.executionId` matches theirs.
   */
  emit<K extends EventName>(event: K, payload: EventMap[K]): void {
    assertEvent('event', event);
    assertObject('payload', payload);
    this.#dispatch(event, payload, undefined, payload.executionId);
  }

  /**
   * Removes one subscription by id, or every subscription of a listener function.
   * @returns Whether anything was removed.
   */
  off(idOrListener: string | AnyFunction): boolean {
    if (typeof idOrListener === 'string') return this.#remove(idOrListener);
    if (typeof idOrListener !== 'function') {
      throw new TypeError(
        `\`idOrListener\` must be a subscription id or a function, received ${describe(idOrListener)}`,
      );
    }
    let removed = false;
    for (const subscription of [...this.#subscriptions.values()]) {
      if (subscription.listener === idOrListener)
        removed = this.#remove(subscription.id) || removed;
    }
    return removed;
  }

  /**
   * Removes every listener.
   * @returns How many subscriptions were removed.
   */
  clear(): number {
    const count = this.#subscriptions.size;
    for (const id of [...this.#subscriptions.keys()]) this.#remove(id);
    return count;
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
    return { ...this.counters };
  }

  /**
   * Adds `count` to a custom counter, creating it at 0 first.
   * @throws TypeError for a non-string key or a non-number count; RangeError for a non-finite count.
   */
  incStat(key: string, count = 1): void {
    assertString('key', key);
    if (typeof count !== 'number')
      throw new TypeError(`\`count\` must be a number, received ${describe(count)}`);
    if (!Number.isFinite(count))
      throw new RangeError(`\`count\` must be a finite number, received ${count}`);
    this.counters[key] = (this.counters[key] ?? 0) + count;
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
    if (this.#subscriptions.size === 0) {
      return this.#tracer.enabled || (channel !== undefined && channel.hasSubscribers);
    }
    return (
      this.#counts[event] > 0 ||
      this.#tracer.enabled ||
      (this.#byFunction.size > 0 && source.fn !== undefined && this.#byFunction.has(source.fn)) ||
      (this.#byExecution.size > 0 && this.#byExecution.has(source.id)) ||
      (channel !== undefined && channel.hasSubscribers)
    );
  }

  /** Delivers a payload built by the execution. @internal */
  publish(payload: TaskPayload, source: EventSource): void {
    const event = payload.event;
    this.#dispatch(event, payload, source.fn, source.id);
    if (channel !== undefined && channel.hasSubscribers) this.#publishChannel(payload, source);
    if (this.#tracer.enabled) {
      this.#tracer.struct({
        method: payload.method,
        status: event,
        task: payload.task,
        function: payload.function,
        elapsed: payload.elapsed,
        extra: {
          id: payload.executionId,
          attempt: payload.attempt,
          waited: payload.waited,
          sleep: payload.sleep,
          error: payload.error,
        },
      });
    }
  }

  /**
   * Drops the listeners scoped to an execution that has ended; its pending `once()` promises
   * reject (the event can no longer come). @internal
   */
  releaseExecution(source: EventSource): void {
    if (this.#byExecution.size === 0) return;
    const emitter = this.#byExecution.get(source.id);
    if (emitter === undefined) return;
    for (const subscription of [...(this.#members.get(emitter) ?? [])]) {
      const fail = this.#waiters.get(subscription.id);
      if (fail === undefined) this.#remove(subscription.id);
      else {
        fail(
          new DovetailError(`execution ${source.id} ended without a '${subscription.event}' event`),
        );
      }
    }
  }

  /** Rejects pending `once()` promises: the instance has shut down. @internal */
  close(): void {
    for (const fail of [...this.#waiters.values()]) {
      fail(new ShutdownError('instance shut down before the event'));
    }
  }

  /** Reports a listener failure without letting it reach the task. @internal */
  reportListenerError(event: string, error: unknown): void {
    const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    this.#tracer.struct({
      method: 'events',
      status: 'listener_error',
      extra: { event, error: text },
    });
    try {
      process.emitWarning(`A Dovetail listener for '${event}' failed: ${text}`, {
        code: 'DOVETAIL_LISTENER_ERROR',
        detail: error instanceof Error ? error.stack : undefined,
      });
    } catch {
      // emitWarning can throw under --throw-deprecation-like flags; a report must never throw.
    }
  }

  #short<K extends EventName>(
    event: K,
    listenerOrScope: Listener<K> | ListenerScope | undefined,
    scope: ListenerScope | undefined,
  ): string | Registrar<K> {
    return typeof listenerOrScope === 'function'
      ? this.on(event, listenerOrScope, scope)
      : this.on(event, listenerOrScope);
  }

  #checkScope(scope: ListenerScope | undefined): void {
    if (scope === undefined) return;
    assertObject('scope', scope);
    assertScopeTarget(scope);
    if (scope.allowReentry !== undefined) assertBoolean('scope.allowReentry', scope.allowReentry);
    if (scope.maxChainDepth !== undefined) assertCount('scope.maxChainDepth', scope.maxChainDepth);
  }

  #add<K extends EventName>(
    event: K,
    listener: Listener<K>,
    scope: ListenerScope | undefined,
  ): string {
    assertFunction('listener', listener);
    this.#checkScope(scope);
    const key = scope?.function ?? scope?.execution;
    let emitter: Bus;
    if (scope?.function !== undefined) {
      emitter = this.#byFunction.get(scope.function) ?? mitt();
      this.#byFunction.set(scope.function, emitter);
    } else if (scope?.execution !== undefined) {
      emitter = this.#byExecution.get(scope.execution) ?? mitt();
      this.#byExecution.set(scope.execution, emitter);
    } else {
      emitter = this.#global;
      this.#counts[event] += 1;
    }
    const id = `sub-${++subscriptionSeq}`;
    const subscription: Subscription = {
      id,
      event,
      listener: listener as Listener<EventName>,
      emitter,
      key,
      allowReentry: scope?.allowReentry ?? false,
      maxChainDepth: scope?.maxChainDepth ?? 5,
      depth: 0,
      handler: (payload) => this.#call(subscription, payload),
    };
    this.#subscriptions.set(id, subscription);
    if (emitter !== this.#global) {
      const members = this.#members.get(emitter);
      if (members === undefined) this.#members.set(emitter, new Set([subscription]));
      else members.add(subscription);
    }
    emitter.on(event, subscription.handler);
    return id;
  }

  #remove(id: string): boolean {
    const subscription = this.#subscriptions.get(id);
    if (subscription === undefined) return false;
    this.#subscriptions.delete(id);
    const { emitter, event, handler, key } = subscription;
    emitter.off(event, handler);
    if (emitter === this.#global) {
      this.#counts[event] -= 1;
      return true;
    }
    // An empty scope leaves its table, so scoped listeners that come and go leave nothing behind.
    const members = this.#members.get(emitter);
    members?.delete(subscription);
    if (members === undefined || members.size === 0) {
      this.#members.delete(emitter);
      if (typeof key === 'function') this.#byFunction.delete(key);
      else if (typeof key === 'string') this.#byExecution.delete(key);
    }
    return true;
  }

  #dispatch(event: EventName, payload: TaskPayload, fn: AnyFunction | undefined, id: string): void {
    if (this.#counts[event] > 0) this.#global.emit(event, payload);
    if (fn !== undefined && this.#byFunction.size > 0)
      this.#byFunction.get(fn)?.emit(event, payload);
    if (this.#byExecution.size > 0) this.#byExecution.get(id)?.emit(event, payload);
  }

  #call(subscription: Subscription, payload: TaskPayload): void {
    // Reentry: the listener's own synchronous work emitted this event again.
    if (
      subscription.depth > 0 &&
      (!subscription.allowReentry || subscription.depth >= subscription.maxChainDepth)
    ) {
      return;
    }
    subscription.depth += 1;
    try {
      const result: unknown = subscription.listener(payload as never);
      if (
        result !== null &&
        typeof result === 'object' &&
        typeof (result as PromiseLike<unknown>).then === 'function'
      ) {
        (result as PromiseLike<unknown>).then(noop, (error: unknown) =>
          this.reportListenerError(subscription.event, error),
        );
      }
    } catch (error) {
      this.reportListenerError(subscription.event, error);
    } finally {
      subscription.depth -= 1;
    }
  }

  #publishChannel(payload: TaskPayload, source: EventSource): void {
    const tc = taskChannel();
    switch (payload.event) {
      case 'started':
        if (source.channelContext === undefined) {
          source.channelContext = { ...payload };
          tc.start.publish(source.channelContext);
          tc.end.publish(source.channelContext);
        }
        return;
      case 'done':
      case 'error':
      case 'cancelled': {
        let context = source.channelContext;
        if (context === undefined) {
          // Settled before its first start (cancelled while queued, refused by a back end) or
          // subscribed to mid-task: open the span here, so subscribers always see a whole
          // start → end → (error) → asyncStart → asyncEnd sequence.
          context = { ...payload };
          tc.start.publish(context);
          tc.end.publish(context);
        }
        Object.assign(context, payload);
        if (payload.event !== 'done') {
          context['error'] = payload.error;
          tc.error.publish(context);
        }
        tc.asyncStart.publish(context);
        tc.asyncEnd.publish(context);
        return;
      }
      default:
        return;
    }
  }
}

// The channel exists only once someone asked for it through taskChannel(); until then, checking
// for subscribers costs one comparison.
let channel: ReturnType<typeof taskChannel> | undefined;

/** Makes the `dovetail:task` channel known to the bus (called when an instance is built). @internal */
export function watchTaskChannel(): void {
  channel ??= taskChannel();
}
