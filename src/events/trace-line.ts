// How an event becomes a structured trace line. Called only when tracing is on.
import type { TraceStruct } from '../trace.js';
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
