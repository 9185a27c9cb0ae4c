// The event vocabulary: task event names and payloads, the map that joins them with the instance
// events of instance.ts, listener and scope types, and the checks that an argument is one of
// them. No behaviour lives here beyond those checks.
import type { AsyncResource } from 'node:async_hooks';
import {
  assertBoolean,
  assertCount,
  assertFunction,
  assertObject,
  assertString,
  describe,
} from '../internal/assert.js';
import {
  InstanceEvent,
  isInstanceEvent,
  type CircuitClosedPayload,
  type CircuitHalfOpenPayload,
  type CircuitOpenPayload,
  type InstanceEventName,
  type InstancePayload,
  type LimitChangedPayload,
  type PausedPayload,
  type ResumedPayload,
} from './instance.js';

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

/** One of the {@link Event} values: a task lifecycle event. */
export type TaskEventName = (typeof Event)[keyof typeof Event];

/** One of the {@link Event} or {@link InstanceEvent} values. */
export type EventName = TaskEventName | InstanceEventName;

/** Every event name, for validating the `event` argument. */
const EVENT_NAMES: ReadonlySet<string> = new Set([
  ...Object.values(Event),
  ...Object.values(InstanceEvent),
]);

/** Throws a TypeError naming `name` unless `value` is one of the event names. @internal */
export function assertEvent(name: string, value: unknown): asserts value is EventName {
  if (typeof value !== 'string' || !EVENT_NAMES.has(value)) {
    throw new TypeError(
      `\`${name}\` must be one of ${[...EVENT_NAMES].join(', ')}, received ${describe(value)}`,
    );
  }
}

/** The API method that started a task. */
export type MethodName =
  'schedule' | 'toThread' | 'map' | 'mapIterable' | 'fromCallback' | 'promisify' | 'wrap';

/** Fields every task event payload carries. */
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
  /** The task's key (`with({ key })`, the `key` map option), when it has one. */
  key?: string;
  /** Rate-limit tokens the attempt took (`rate_limited`). */
  cost?: number;
  /** `true` on the `started` of a hedge (option `hedge`): an extra copy of attempt `attempt`. */
  hedge?: true;
  /**
   * The item's position in the input (0-based), for a task that is an item of `map` or
   * `mapIterable` (the `index` its function receives); absent for every other task. It names
   * the item a `retry` or an `error` is about, where `executionId` is a number of the process.
   */
  index?: number;
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
  cost: number;
}
/** Payload of `started`: attempt `attempt` begins. */
export interface StartedPayload extends TaskPayload {
  event: 'started';
  attempt: number;
  /** Present, `true`, when this start is a hedge: an extra copy of attempt `attempt`. */
  hedge?: true;
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
 * per operation. It is an instance event with the task fields it has always had: `method` is
 * `'backend'`, `task` is `0` and `executionId` is `''`.
 *
 * @example
 * ```ts
 * import { BackendEvent, Dovetail } from 'dovetailjs';
 * const dvt = new Dovetail();
 * dvt.events.on(BackendEvent.BACKEND_ERROR, (p) => console.warn(`${p.key}: ${p.operation} failed, ${p.fallback}`, p.error));
 * ```
 */
export interface BackendErrorPayload extends TaskPayload, InstancePayload {
  event: 'backend_error';
  /** The `BackendError`; its `cause` is what the store's client threw. */
  error: unknown;
  /** The shared limit's key. */
  key: string;
  /**
   * What failed: getting a slot, a token, or keeping a running task's lease; or sharing a
   * pause, the concurrency limit, the circuit breaker's state, or listening for changes
   * (`'control'`).
   */
  operation: 'gate' | 'rate_limit' | 'lease' | 'pause' | 'concurrency' | 'circuit' | 'control';
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
  /** Payload of `circuit_open`. */
  circuit_open: CircuitOpenPayload;
  /** Payload of `circuit_half_open`. */
  circuit_half_open: CircuitHalfOpenPayload;
  /** Payload of `circuit_closed`. */
  circuit_closed: CircuitClosedPayload;
  /** Payload of `paused`. */
  paused: PausedPayload;
  /** Payload of `resumed`. */
  resumed: ResumedPayload;
  /** Payload of `limit_changed`. */
  limit_changed: LimitChangedPayload;
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

/**
 * The scope `on(event, ...)` takes: a {@link ListenerScope} for a task event; for an instance
 * event, which concerns no task, only the reentry rules.
 */
export type ListenerScopeFor<K extends EventName> = K extends InstanceEventName
  ? Pick<ListenerScope, 'allowReentry' | 'maxChainDepth'>
  : ListenerScope;

/**
 * The scope `once(event, ...)` takes: a {@link OnceScope} for a task event; for an instance event,
 * which concerns no task, only the `signal`.
 */
export type OnceScopeFor<K extends EventName> = K extends InstanceEventName
  ? Pick<OnceScope, 'signal'>
  : OnceScope;

/** What `on(event)` returns without a listener: registers the listener it is given and returns it. */
export type Registrar<K extends EventName> = <L extends Listener<K>>(listener: L) => L;

/** What a task exposes to the bus; implemented by the execution. @internal */
export interface EventSource {
  readonly fn: AnyFunction | undefined;
  readonly id: string;
  /** The object published on `dovetail:task` for this task, made at its first start. */
  channelContext: Record<string, unknown> | undefined;
  /** The async context of the call that scheduled the task (absent: the current one). */
  readonly scope?: AsyncResource | undefined;
  /**
   * The async context its attempts run in once its span is open on `dovetail:task`: the
   * scheduling call's, with the stores bound to the channel's `start` entered.
   */
  channelScope?: AsyncResource | undefined;
}

/**
 * What both scopes check: an object, with `function` or `execution` but not both, and neither for
 * an instance event.
 */
function assertScope(event: EventName, scope: { function?: unknown; execution?: unknown }): void {
  assertObject('scope', scope);
  if (isInstanceEvent(event)) {
    for (const target of ['function', 'execution'] as const) {
      if (scope[target] === undefined) continue;
      throw new TypeError(
        `\`scope.${target}\` does not apply to '${event}', an instance event (it concerns no task), received ${describe(scope[target])}`,
      );
    }
  }
  if (scope.function !== undefined && scope.execution !== undefined) {
    throw new TypeError('`scope` takes `function` or `execution`, not both');
  }
  if (scope.function !== undefined) assertFunction('scope.function', scope.function);
  if (scope.execution !== undefined) assertString('scope.execution', scope.execution);
}

/** Throws unless `scope` is undefined or a valid {@link ListenerScope} for `event`. @internal */
export function assertListenerScope(event: EventName, scope: ListenerScope | undefined): void {
  if (scope === undefined) return;
  assertScope(event, scope);
  if (scope.allowReentry !== undefined) assertBoolean('scope.allowReentry', scope.allowReentry);
  if (scope.maxChainDepth !== undefined) assertCount('scope.maxChainDepth', scope.maxChainDepth);
}

/** Throws unless `scope` is undefined or a valid {@link OnceScope} for `event`. @internal */
export function assertOnceScope(event: EventName, scope: OnceScope | undefined): void {
  if (scope === undefined) return;
  assertScope(event, scope);
  if (scope.signal !== undefined && !(scope.signal instanceof AbortSignal)) {
    throw new TypeError(
      `\`scope.signal\` must be an AbortSignal, received ${describe(scope.signal)}`,
    );
  }
}
