import { TimeoutError } from '../errors.js';
import type { Events } from '../events/bus.js';
import type { AnyFunction, EventName, EventSource, TaskPayload } from '../events/types.js';
import { Kind } from './attempt.js';

/** An execution as its announcements see it. */
export interface Announced extends EventSource {
  /** Rate-limit tokens each attempt takes. */
  readonly cost: number;
  /** A payload with the fields every event of this task carries. */
  payload(event: EventName): TaskPayload;
}

/** The function's name (`'<anonymous>'` when it has none); undefined for a promise. */
export function functionName(kind: Kind, work: unknown): string | undefined {
  if (kind === Kind.PROMISE) return undefined;
  return (work as AnyFunction).name || '<anonymous>';
}

// Each announcement builds a payload: its caller asks `events.wants()` first, so that a payload
// costs only when someone hears it (a listener, the trace, a channel subscriber).

/** `rate_limited` (with `waited`) or `started`, for attempt `attempt`. */
export function announceAttempt(
  events: Events,
  source: Announced,
  event: 'rate_limited' | 'started',
  attempt: number,
  waited: number,
): void {
  const payload = source.payload(event);
  payload.attempt = attempt;
  if (event === 'rate_limited') {
    payload.waited = waited;
    payload.cost = source.cost;
  }
  events.publish(payload, source);
}

/** `retry`: attempt `attempt` failed with `error`; the next follows after `sleep` ms. */
export function announceRetry(
  events: Events,
  source: Announced,
  attempt: number,
  sleep: number,
  error: unknown,
): void {
  const payload = source.payload('retry');
  payload.attempt = attempt;
  payload.sleep = sleep;
  payload.error = error;
  events.publish(payload, source);
}

/**
 * The terminal event. `attempt` is 0 when no attempt started; `startedAt` is the
 * `performance.now()` of the first start, undefined when none started.
 */
export function announceEnd(
  events: Events,
  source: Announced,
  event: 'done' | 'error' | 'cancelled',
  value: unknown,
  attempt: number,
  startedAt: number | undefined,
): void {
  const payload = source.payload(event);
  if (attempt > 0) payload.attempt = attempt;
  if (startedAt !== undefined) payload.elapsed = performance.now() - startedAt;
  if (event !== 'done') {
    payload.error = value;
    if (value instanceof TimeoutError) payload.timeout = value.timeout;
  }
  events.publish(payload, source);
}
