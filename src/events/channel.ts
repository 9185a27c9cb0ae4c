// The `node:diagnostics_channel` side of the bus: each task's lifecycle as one TracingChannel
// span (start → end → (error) → asyncStart → asyncEnd) on `dovetail:task`, and its retries on the
// plain channel `dovetail:task:retry`.
import { AsyncResource } from 'node:async_hooks';
import {
  channel as plainChannel,
  tracingChannel,
  type Channel,
  type TracingChannel,
} from 'node:diagnostics_channel';
import type { EventSource, RetryPayload, TaskPayload } from './types.js';

/** Name of the `node:diagnostics_channel` TracingChannel on which task lifecycles are published. */
export const TASK_CHANNEL = 'dovetail:task';

/**
 * Name of the plain `node:diagnostics_channel` channel on which each retry of a task is published,
 * while `dovetail:task` has subscribers: a {@link TaskRetryMessage}.
 *
 * @example
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel';
 * import { TASK_RETRY_CHANNEL, type TaskRetryMessage } from 'dovetailjs';
 * subscribe(TASK_RETRY_CHANNEL, (message) => {
 *   const { executionId, attempt, sleep } = message as TaskRetryMessage;
 *   console.log(`task ${executionId}: attempt ${attempt} failed, next in ${sleep} ms`);
 * });
 * ```
 */
export const TASK_RETRY_CHANNEL = 'dovetail:task:retry';

/**
 * What `dovetail:task:retry` publishes: the `retry` payload, and `context`, the object that the
 * task's messages on `dovetail:task` carry (the one its `start` subscribers received), so that
 * a subscriber finds what it keeps on it.
 */
export interface TaskRetryMessage extends RetryPayload {
  /** The object the task's `dovetail:task` messages carry. */
  context: object;
}

// The channel exists only once an instance asked for it through watchTaskChannel(), so that
// importing the package does nothing; until then, checking for subscribers costs one comparison.
let channel: TracingChannel<object, object> | undefined;
let retryChannel: Channel | undefined;

/** Makes the `dovetail:task` channel known to the bus (called when an instance is built). @internal */
export function watchTaskChannel(): void {
  channel ??= tracingChannel<object, object>(TASK_CHANNEL);
  retryChannel ??= plainChannel(TASK_RETRY_CHANNEL);
}

/** Whether the channel exists and someone subscribes to it. @internal */
export const hasChannelSubscribers = (): boolean => channel !== undefined && channel.hasSubscribers;

/** The async resource type of the scope a task's attempts run in while its span is open. */
const SPAN_SCOPE = 'DovetailSpan';

/**
 * Publishes the part of a task's span that `payload` completes, when someone subscribes: its
 * first `started` opens the span, a `retry` goes to `dovetail:task:retry`, a terminal event
 * closes it. @internal
 */
export function publishToChannel(payload: TaskPayload, source: EventSource): void {
  const tc = channel;
  if (tc === undefined || !tc.hasSubscribers) return;
  switch (payload.event) {
    case 'started':
      if (source.channelContext === undefined) {
        source.channelContext = { ...payload };
        openIn(tc, source, source.channelContext, true);
      }
      return;
    case 'retry': {
      const context = source.channelContext;
      if (context !== undefined && retryChannel?.hasSubscribers === true)
        retryChannel.publish({ ...payload, context });
      return;
    }
    case 'done':
    case 'error':
    case 'cancelled': {
      let context = source.channelContext;
      if (context === undefined) {
        // Settled before its first start (cancelled while queued, refused by a back end) or
        // subscribed to mid-task: open the span here, so subscribers always see a whole
        // start → end → (error) → asyncStart → asyncEnd sequence.
        context = { ...payload };
        openIn(tc, source, context, false);
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

/**
 * {@link open} in the async context of the call that scheduled the task, so that a subscriber
 * sees what was active there (its span's parent), however long the task waited.
 */
function openIn(
  tc: TracingChannel<object, object>,
  source: EventSource,
  context: object,
  runs: boolean,
): void {
  const scope = source.scope;
  if (scope === undefined) open(tc, source, context, runs);
  else scope.runInAsyncScope(open, undefined, tc, source, context, runs);
}

/**
 * Publishes `start` and `end`. For a task that will run, `start` enters the stores bound to it
 * (`tc.start.bindStore()`) and the scope taken inside keeps them: every attempt runs in that
 * scope, as `tracePromise()` runs its function inside them.
 */
function open(
  tc: TracingChannel<object, object>,
  source: EventSource,
  context: object,
  runs: boolean,
): void {
  if (runs) tc.start.runStores(context, takeScope, undefined, source);
  else tc.start.publish(context);
  tc.end.publish(context);
}

/** Keeps the async context now current (the stores just entered) for the task's attempts. */
function takeScope(source: EventSource): void {
  source.channelScope = new AsyncResource(SPAN_SCOPE);
}
