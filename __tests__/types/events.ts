// Compile-time checks of the event types (run by `npm run typecheck`; never executed).
import {
  Event,
  type DonePayload,
  type Dovetail,
  type EventMap,
  type EventName,
  type Listener,
  type Registrar,
  type RetryPayload,
  type Stats,
  type TaskPayload,
} from '../../src/index.js';

declare const dvt: Dovetail;

// Event names are literal types; EventName is their union.
const retryName: 'retry' = Event.RETRY;
const anyName: EventName = Event.RATE_LIMITED;
// @ts-expect-error Event is frozen and readonly
Event.DONE = 'finished';
// @ts-expect-error not an event name
const wrongName: EventName = 'finished';

// A listener gets its event's payload: retry has attempt, sleep and error as required fields.
const retryId: string = dvt.events.on(Event.RETRY, (p) => {
  const attempt: number = p.attempt;
  const sleep: number = p.sleep;
  const error: unknown = p.error;
  const event: 'retry' = p.event;
  return [attempt, sleep, error, event];
});
dvt.events.on(Event.RATE_LIMITED, (p) => {
  const waited: number = p.waited;
  return waited;
});
dvt.events.on(Event.DONE, (p) => {
  const elapsed: number = p.elapsed;
  const attempt: number = p.attempt;
  return elapsed + attempt;
});
dvt.events.on('started', (p) => {
  const attempt: number = p.attempt;
  // @ts-expect-error `started` carries no sleep as a required number
  const sleep: number = p.sleep;
  return [attempt, sleep];
});
dvt.events.on(Event.QUEUED, (p) => {
  // @ts-expect-error `queued` has no attempt yet
  const attempt: number = p.attempt;
  const fn: string | undefined = p.function;
  const id: string = p.executionId;
  const task: number = p.task;
  return [attempt, fn, id, task];
});

// A typo in an event name does not compile.
// @ts-expect-error unknown event
dvt.events.on('finished', () => undefined);
// @ts-expect-error unknown event
void dvt.events.once('don');
// @ts-expect-error unknown event
dvt.events.emit('nope', {} as TaskPayload);

// A listener for one event does not fit another.
declare const onRetry: (p: RetryPayload) => void;
dvt.events.on(Event.RETRY, onRetry);
// @ts-expect-error a retry listener needs sleep, which queued payloads lack
dvt.events.on(Event.QUEUED, onRetry);

// The listener must be a function; a listener may be async.
// @ts-expect-error a number is not a listener
dvt.events.on(Event.DONE, 42);
dvt.events.on(Event.DONE, async (p) => {
  await Promise.resolve(p.executionId);
});

// Scopes.
const fn = async (x: number): Promise<number> => x;
dvt.events.on(Event.DONE, () => undefined, { function: fn });
dvt.events.on(Event.DONE, () => undefined, {
  execution: 'id',
  allowReentry: true,
  maxChainDepth: 3,
});
dvt.events.on(Event.DONE, () => undefined, { function: undefined, execution: undefined });
// @ts-expect-error execution is a string
dvt.events.on(Event.DONE, () => undefined, { execution: 1 });
// @ts-expect-error function must be a function
dvt.events.on(Event.DONE, () => undefined, { function: 'fn' });
// @ts-expect-error unknown scope field
dvt.events.on(Event.DONE, () => undefined, { functon: fn });

// Registrar: on(event) and on(event, scope) return one; it returns the listener it was given.
const reg: Registrar<'done'> = dvt.events.on(Event.DONE);
const scopedReg: Registrar<'error'> = dvt.events.on(Event.ERROR, { function: fn });
const registered: (p: DonePayload) => string = reg((p: DonePayload) => p.executionId);
scopedReg((p) => p.error);
// @ts-expect-error a registrar for done does not take a retry listener
reg(onRetry);

// Shorthands: listener form returns an id, scope form a registrar, typed per event.
const ids: string[] = [
  dvt.events.onQueued((p) => p.event === 'queued'),
  dvt.events.onStart((p) => p.attempt),
  dvt.events.onEnd((p) => p.elapsed),
  dvt.events.onError((p) => p.error),
  dvt.events.onRetry((p) => p.sleep),
  dvt.events.onCancel((p) => p.error),
  dvt.events.onRateLimited((p) => p.waited, { function: fn }),
];
const startReg: Registrar<'started'> = dvt.events.onStart();
const cancelReg: Registrar<'cancelled'> = dvt.events.onCancel({ execution: 'id' });
// @ts-expect-error onStart's listener gets a started payload, which has no sleep
dvt.events.onStart((p) => p.sleep.toFixed());

// once resolves with the event's payload.
const nextRetry: Promise<RetryPayload> = dvt.events.once(Event.RETRY, {
  signal: AbortSignal.timeout(10),
});
const nextDone: Promise<EventMap['done']> = dvt.events.once('done', { function: fn });

// off and clear.
const removed: boolean = dvt.events.off(retryId) || dvt.events.off(onRetry);
const count: number = dvt.events.clear();
// @ts-expect-error off takes an id or a function
dvt.events.off(42);

// stats and incStat.
const stats: Stats = dvt.events.stats();
const done: number = stats.done;
const custom: number | undefined = stats['cache_hit'];
dvt.events.incStat('cache_hit');
dvt.events.incStat('bytes', 512);
// @ts-expect-error the count is a number
dvt.events.incStat('bytes', '512');

// Tracing.
dvt.events.trace('checkpoint');
dvt.events.traceStruct({
  method: 'import',
  status: 'batch',
  task: 1,
  function: 'f',
  elapsed: 3,
  extra: { rows: 1 },
});
// @ts-expect-error status is required
dvt.events.traceStruct({ method: 'import' });

// Listener<K> is the listener type per event.
const typed: Listener<'retry'> = (p) => p.sleep;

export {
  retryName,
  anyName,
  wrongName,
  registered,
  ids,
  startReg,
  cancelReg,
  nextRetry,
  nextDone,
  removed,
  count,
  done,
  custom,
  typed,
};
