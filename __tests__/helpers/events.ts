import { Event, type TaskEventName } from '../../src/index.js';

/** Every task lifecycle event (exactly the values of `Event`). */
export const TASK_EVENTS: readonly TaskEventName[] = Object.values(Event);

/** The events that end a task: exactly one of them per task. */
export const TERMINAL: ReadonlySet<string> = new Set<string>([
  Event.DONE,
  Event.ERROR,
  Event.CANCELLED,
]);
