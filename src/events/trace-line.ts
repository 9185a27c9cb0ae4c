// How an event becomes a structured trace line. Called only when tracing is on.
import type { TraceStruct } from '../trace.js';
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
