// The instance-event vocabulary: names and payload types of the events about the instance (its
// circuit, pauses, limit, back end) rather than one task. These concern no task, so they have no
// function or execution to be scoped to, and they never appear on the `dovetail:task` channel.

/**
 * Events about the instance rather than one task. Kept apart from {@link Event}, which lists
 * exactly the task lifecycle. Each payload carries `event` and `at` (epoch ms) plus its own fields.
 * A listener for one of these takes no `function` or `execution` scope.
 *
 * @example
 * ```ts
 * import { Dovetail, InstanceEvent } from 'dovetailjs';
 * const dvt = new Dovetail();
 * dvt.events.on(InstanceEvent.LIMIT_CHANGED, (p) => console.log(`limit ${p.previous} -> ${p.limit}`));
 * dvt.events.on(InstanceEvent.PAUSED, (p) => console.log(p.until === undefined ? 'held' : `until ${p.until}`));
 * ```
 */
export const InstanceEvent = Object.freeze({
  /** The circuit breaker opened: attempts fail fast until `retryAt`. */
  CIRCUIT_OPEN: 'circuit_open',
  /** The circuit breaker lets trial attempts through. */
  CIRCUIT_HALF_OPEN: 'circuit_half_open',
  /** The circuit breaker closed: attempts start as usual. */
  CIRCUIT_CLOSED: 'circuit_closed',
  /** The instance was paused, or its pause got a new end. */
  PAUSED: 'paused',
  /** A paused instance resumed. */
  RESUMED: 'resumed',
  /** The concurrency limit changed (a write to `dvt.concurrency`, or the adaptive limit). */
  LIMIT_CHANGED: 'limit_changed',
  /** A shared back end failed (once per outage and operation). */
  BACKEND_ERROR: 'backend_error',
} as const);

/**
 * The back-end member of {@link InstanceEvent}, kept under its own name:
 * `BackendEvent.BACKEND_ERROR === InstanceEvent.BACKEND_ERROR`.
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
  BACKEND_ERROR: InstanceEvent.BACKEND_ERROR,
} as const);

/** One of the {@link InstanceEvent} values. */
export type InstanceEventName = (typeof InstanceEvent)[keyof typeof InstanceEvent];

const INSTANCE_EVENT_NAMES: ReadonlySet<string> = new Set(Object.values(InstanceEvent));

/** Whether `name` is one of the {@link InstanceEvent} values. @internal */
export const isInstanceEvent = (name: string): name is InstanceEventName =>
  INSTANCE_EVENT_NAMES.has(name);

/** Fields every instance event payload carries. */
export interface InstancePayload {
  /** The event this payload belongs to. */
  event: InstanceEventName;
  /** When it happened: epoch milliseconds (`Date.now()`). */
  at: number;
}

/**
 * Payload of `paused`: no attempt starts until `until`, or, when it is absent, until `resume()`.
 * Emitted again whenever a later `pause(ms)` moves the end.
 */
export interface PausedPayload extends InstancePayload {
  event: 'paused';
  /** When the pause ends by itself: epoch milliseconds; absent for an untimed pause. */
  until?: number;
}

/** Payload of `resumed`: the pause ended; attempts start again. */
export interface ResumedPayload extends InstancePayload {
  event: 'resumed';
}

/** Payload of `limit_changed`: the concurrency limit went from `previous` to `limit`. */
export interface LimitChangedPayload extends InstancePayload {
  event: 'limit_changed';
  /** The limit now in force. */
  limit: number;
  /** The limit before the change. */
  previous: number;
}

/** Payload of `circuit_open`: the breaker opened; attempts fail with `CircuitOpenError` until `retryAt`. */
export interface CircuitOpenPayload extends InstancePayload {
  event: 'circuit_open';
  /** The failures counted when it opened (consecutive, or within the ratio window). */
  failures: number;
  /** The error of the attempt that opened it, unchanged. */
  error: unknown;
  /** When it turns half-open: epoch milliseconds; `Infinity` for an isolated circuit. */
  retryAt: number;
}

/** Payload of `circuit_half_open`: the breaker lets its trial attempts through. */
export interface CircuitHalfOpenPayload extends InstancePayload {
  event: 'circuit_half_open';
}

/** Payload of `circuit_closed`: the breaker closed (its trials succeeded, or `reset()`). */
export interface CircuitClosedPayload extends InstancePayload {
  event: 'circuit_closed';
}
