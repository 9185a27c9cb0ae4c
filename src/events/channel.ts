// The `node:diagnostics_channel` side of the bus: each task's lifecycle as one TracingChannel
// span (start → end → (error) → asyncStart → asyncEnd) on `dovetail:task`.
import { tracingChannel, type TracingChannel } from 'node:diagnostics_channel';
import type { EventSource, TaskPayload } from './types.js';

/** Name of the `node:diagnostics_channel` TracingChannel on which task lifecycles are published. */
export const TASK_CHANNEL = 'dovetail:task';

// The channel exists only once an instance asked for it through watchTaskChannel(), so that
// importing the package does nothing; until then, checking for subscribers costs one comparison.
let channel: TracingChannel<object, object> | undefined;

/** Makes the `dovetail:task` channel known to the bus (called when an instance is built). @internal */
export function watchTaskChannel(): void {
  channel ??= tracingChannel<object, object>(TASK_CHANNEL);
}

/** Whether the channel exists and someone subscribes to it. @internal */
export const hasChannelSubscribers = (): boolean => channel !== undefined && channel.hasSubscribers;

/**
 * Publishes the part of a task's span that `payload` completes, when someone subscribes: its
 * first `started` opens the span, a terminal event closes it. @internal
 */
export function publishToChannel(payload: TaskPayload, source: EventSource): void {
  const tc = channel;
  if (tc === undefined || !tc.hasSubscribers) return;
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
