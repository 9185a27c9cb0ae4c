// Compile-time checks of the instance event types (run by `npm run typecheck`; never executed).
import {
  BackendEvent,
  Event,
  InstanceEvent,
  type BackendErrorPayload,
  type CircuitOpenPayload,
  type Dovetail,
  type EventMap,
  type EventName,
  type InstanceEventName,
  type LimitChangedPayload,
  type ListenerScope,
  type PausedPayload,
  type Registrar,
  type TaskEventName,
} from '../../src/index.js';

declare const dvt: Dovetail;
const fn = async (x: number): Promise<number> => x;

// Names are literal types; InstanceEventName and TaskEventName split EventName.
const pausedName: 'paused' = InstanceEvent.PAUSED;
const backendName: typeof InstanceEvent.BACKEND_ERROR = BackendEvent.BACKEND_ERROR;
const asEvent: EventName = InstanceEvent.LIMIT_CHANGED;
const instanceName: InstanceEventName = 'circuit_half_open';
// @ts-expect-error InstanceEvent is frozen and readonly
InstanceEvent.PAUSED = 'held';
// @ts-expect-error Event keeps only the task events
const notATaskEvent = Event.PAUSED;
// @ts-expect-error an instance event is not a task event
const taskName: TaskEventName = 'paused';

// Every instance payload carries event and at; each its own fields.
dvt.events.on('paused', (p) => {
  const until: number | undefined = p.until;
  const at: number = p.at;
  const event: 'paused' = p.event;
  // @ts-expect-error until is absent for an untimed pause
  const required: number = p.until;
  return [until, at, event, required];
});
dvt.events.on(InstanceEvent.LIMIT_CHANGED, (p) => p.limit - p.previous);
dvt.events.on(InstanceEvent.CIRCUIT_OPEN, (p) => {
  const failures: number = p.failures;
  const error: unknown = p.error;
  const retryAt: number = p.retryAt;
  return [failures, error, retryAt];
});
dvt.events.on('resumed', (p) => {
  // @ts-expect-error an instance payload has no execution id
  const id: string = p.executionId;
  return [p.at, id];
});
dvt.events.on('backend_error', (p) => {
  const at: number = p.at;
  const key: string = p.key;
  const operation:
    'gate' | 'rate_limit' | 'lease' | 'pause' | 'concurrency' | 'circuit' | 'control' = p.operation;
  const method: string = p.method;
  return [at, key, operation, method];
});
// @ts-expect-error a limit_changed payload has no `until`
dvt.events.on('limit_changed', (p) => p.until);

// once() resolves with the event's payload.
const nextLimit: Promise<LimitChangedPayload> = dvt.events.once('limit_changed');
const nextPause: Promise<PausedPayload> = dvt.events.once(InstanceEvent.PAUSED, {
  signal: AbortSignal.timeout(10),
});
const nextOpen: Promise<EventMap['circuit_open']> = dvt.events.once('circuit_open');
const openPayload: Promise<CircuitOpenPayload> = nextOpen;
const nextBackend: Promise<BackendErrorPayload> = dvt.events.once(BackendEvent.BACKEND_ERROR);

// An instance event takes no function or execution scope; reentry rules are fine.
// @ts-expect-error no function scope on an instance event
dvt.events.on('paused', () => undefined, { function: fn });
// @ts-expect-error no execution scope on an instance event
dvt.events.on(InstanceEvent.RESUMED, { execution: 'id' });
// @ts-expect-error no execution scope on once() of an instance event
void dvt.events.once('circuit_closed', { execution: 'id' });
dvt.events.on('paused', () => undefined, { allowReentry: true, maxChainDepth: 2 });
const pausedReg: Registrar<'paused'> = dvt.events.on('paused', { allowReentry: true });
// Task events keep their scopes; code generic over EventName may pass any ListenerScope.
dvt.events.on(Event.DONE, () => undefined, { function: fn });
declare const someEvent: EventName;
declare const someScope: ListenerScope;
dvt.events.on(someEvent, () => undefined, someScope);

export {
  pausedName,
  backendName,
  asEvent,
  instanceName,
  notATaskEvent,
  taskName,
  nextLimit,
  nextPause,
  openPayload,
  nextBackend,
  pausedReg,
};
