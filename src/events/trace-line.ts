// How an event becomes a structured trace line (called only when tracing is on), and how a
// listener's failure is reported: a trace line and a process warning.
import { errorText, warn } from '../internal/util.js';
import type { Tracer, TraceStruct } from '../trace.js';
import { InstanceEvent, type InstancePayload } from './instance.js';
import type { TaskPayload } from './types.js';

/** `<method> <event> task=… function=… elapsed=…ms id=… attempt=…`. @internal */
export const taskTraceLine = (payload: TaskPayload): TraceStruct => ({
  method: payload.method,
  status: payload.event,
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

/**
 * `instance <event> <field>=…`. `backend_error` keeps the line it had before instance events,
 * `backend backend_error <problem>`: its task fields are constants that say nothing. @internal
 */
export function instanceTraceLine(payload: InstancePayload): TraceStruct {
  const { event, at: _at, ...fields } = payload as InstancePayload & Record<string, unknown>;
  if (event !== InstanceEvent.BACKEND_ERROR) {
    return { method: 'instance', status: event, extra: fields };
  }
  const { method: _method, task: _task, executionId: _id, ...problem } = fields;
  return { method: 'backend', status: event, extra: problem };
}

/** Reports a listener failure (trace line, `DOVETAIL_LISTENER_ERROR` warning); never throws. @internal */
export function reportListenerError(tracer: Tracer, event: string, error: unknown): void {
  const text = errorText(error);
  tracer.struct({
    method: 'events',
    status: 'listener_error',
    extra: { event, error: text },
  });
  warn(
    `A Dovetail listener for '${event}' failed: ${text}`,
    'DOVETAIL_LISTENER_ERROR',
    error instanceof Error ? error.stack : undefined,
  );
}
