// The accounting invariant, property-tested: over random mixes of success, failure, timeout,
// retry, cancel and shutdown, every task settles exactly once, emits exactly one terminal event
// that matches its outcome, and at rest queued == done + error + cancelled with active and
// pending back to 0 and no timer of the engine left. Runs on jest's fake clock.
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import fc from 'fast-check';
import {
  CancelledError,
  ShutdownError,
  type Dovetail,
  type NodeCallback,
  type Task,
} from '../../src/index.js';
import { closeAll, create } from '../helpers/instances.js';
import { expectBalanced, Ledger } from './ledger.js';

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
});
afterEach(async () => {
  await closeAll();
  jest.useRealTimers();
});

const KINDS = [
  'ok',
  'fail',
  'flaky',
  'hang',
  'honour',
  'syncThrow',
  'nonError',
  'thread',
  'callback',
  'silentCallback',
] as const;
type Kind = (typeof KINDS)[number];

interface Plan {
  kind: Kind;
  delay: number;
  retries: number;
  timeout: number;
  cancelAt: number | undefined;
}

interface Scenario {
  concurrency: number;
  rateLimit: { perSecond: number; burst: number } | undefined;
  retryBackoff: number;
  plans: Plan[];
  shutdown: { at: number; wait: boolean; late: number } | undefined;
}

const planArb: fc.Arbitrary<Plan> = fc.record({
  kind: fc.constantFrom(...KINDS),
  delay: fc.integer({ min: 0, max: 40 }),
  retries: fc.integer({ min: 0, max: 2 }),
  timeout: fc.integer({ min: 10, max: 80 }),
  cancelAt: fc.option(fc.integer({ min: 0, max: 150 }), { nil: undefined }),
});

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  concurrency: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.constant(Infinity)),
  rateLimit: fc.option(
    fc.record({
      perSecond: fc.integer({ min: 20, max: 200 }),
      burst: fc.integer({ min: 1, max: 3 }),
    }),
    { nil: undefined },
  ),
  retryBackoff: fc.integer({ min: 0, max: 20 }),
  plans: fc.array(planArb, { minLength: 1, maxLength: 14 }),
  shutdown: fc.option(
    fc.record({
      at: fc.integer({ min: 0, max: 150 }),
      wait: fc.boolean(),
      late: fc.integer({ min: 0, max: 2 }),
    }),
    { nil: undefined },
  ),
});

/** Timers the test's own work sets, so that they can be told apart from the engine's. */
class Clock {
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();

  after(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fn();
    }, ms);
    this.#timers.add(timer);
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.after(ms, resolve));
  }

  clear(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }
}

function start(dvt: Dovetail, plan: Plan, clock: Clock, index: number): Task<unknown> {
  const api = dvt.task.with({ retries: plan.retries, timeout: plan.timeout });
  let calls = 0;
  switch (plan.kind) {
    case 'ok':
      return api.schedule(async () => {
        await clock.sleep(plan.delay);
        return index;
      });
    case 'fail':
      return api.schedule(async () => {
        await clock.sleep(plan.delay);
        throw new Error(`fail ${index}`);
      });
    case 'flaky':
      return api.schedule(async () => {
        calls += 1;
        await clock.sleep(plan.delay);
        if (calls === 1) throw new Error(`flaky ${index}`);
        return index;
      });
    case 'hang':
      return api.schedule(() => new Promise(() => {}));
    case 'honour':
      return api.schedule(() => {
        const signal = dvt.task.current()!.signal;
        return new Promise((_, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason)),
        );
      });
    case 'syncThrow':
      return api.schedule((): never => {
        throw new TypeError(`sync ${index}`);
      });
    case 'nonError':
      return api.schedule(async () => {
        await clock.sleep(plan.delay);

        throw plan.delay % 2 === 0 ? undefined : `text ${index}`;
      });
    case 'thread':
      return api.toThread(() => {
        if (plan.delay % 3 === 0) throw new Error(`thread ${index}`);
        return index;
      });
    case 'callback':
      return api.fromCallback((cb: NodeCallback<number>) => {
        clock.after(plan.delay, () =>
          plan.delay % 4 === 0 ? cb(new Error(`cb ${index}`)) : cb(null, index),
        );
      });
    case 'silentCallback':
      return api.fromCallback((_cb: NodeCallback<number>) => undefined);
  }
}

interface Outcome {
  settledTimes: number;
  ok: boolean | undefined;
  error: unknown;
}

async function runScenario(scenario: Scenario): Promise<void> {
  const clock = new Clock();
  const dvt = create({
    concurrency: scenario.concurrency,
    rateLimit: scenario.rateLimit,
    retryBackoff: scenario.retryBackoff,
  });
  const ledger = new Ledger(dvt);
  const tasks: Task<unknown>[] = [];
  const outcomes: Outcome[] = [];
  const track = (task: Task<unknown>): void => {
    const outcome: Outcome = { settledTimes: 0, ok: undefined, error: undefined };
    outcomes.push(outcome);
    tasks.push(task);
    task.then(
      () => {
        outcome.settledTimes += 1;
        outcome.ok = true;
      },
      (error: unknown) => {
        outcome.settledTimes += 1;
        outcome.ok = false;
        outcome.error = error;
      },
    );
  };
  scenario.plans.forEach((plan, index) => {
    const task = start(dvt, plan, clock, index);
    track(task);
    if (plan.cancelAt !== undefined) clock.after(plan.cancelAt, () => void task.cancel('test'));
  });
  let closing: Promise<void> | undefined;
  let closed = false;
  const refused: Task<unknown>[] = [];
  const shutdown = scenario.shutdown;
  if (shutdown !== undefined) {
    clock.after(shutdown.at, () => {
      closing = dvt.shutdown({ wait: shutdown.wait }).then(() => {
        closed = true;
      });
      for (let i = 0; i < shutdown.late; i++) {
        const late = dvt.task.schedule(() => 'too late');
        refused.push(late);
        late.catch(() => undefined);
      }
    });
  }

  const atRest = (): boolean =>
    outcomes.every((o) => o.settledTimes > 0) &&
    dvt.active === 0 &&
    dvt.pending === 0 &&
    (shutdown === undefined || closed);
  for (let step = 0; step < 400 && !atRest(); step++) await jest.advanceTimersByTimeAsync(25);
  expect(atRest()).toBe(true);
  if (closing !== undefined) await closing;

  // Settled once, with the terminal event matching the outcome.
  tasks.forEach((task, index) => {
    const outcome = outcomes[index] as Outcome;
    expect(outcome.settledTimes).toBe(1);
    const terminal = ledger.terminal(task.id);
    const expected = outcome.ok
      ? 'done'
      : outcome.error instanceof CancelledError
        ? 'cancelled'
        : 'error';
    expect({ index, event: terminal.event }).toEqual({ index, event: expected });
    if (!outcome.ok) expect(terminal.error).toBe(outcome.error);
  });
  // Work refused by a shutdown is no task: a ShutdownError and no event.
  for (const late of refused) {
    await expect(late).rejects.toBeInstanceOf(ShutdownError);
    expect(ledger.byId.has(late.id)).toBe(false);
  }
  expect(dvt.events.stats().queued).toBe(tasks.length);
  expectBalanced(dvt, ledger);
  // Only the test's own timers may be left; the engine holds none at rest.
  clock.clear();
  expect(jest.getTimerCount()).toBe(0);
  await dvt.shutdown({ wait: false });
}

describe('accounting invariant', () => {
  it('holds over random mixes of success, failure, timeout, retry, cancel and shutdown', async () => {
    await fc.assert(fc.asyncProperty(scenarioArb, runScenario), { numRuns: 150 });
  }, 120_000);

  it('holds for a fixed worst case: everything at once under a tight gate and bucket', async () => {
    await runScenario({
      concurrency: 1,
      rateLimit: { perSecond: 50, burst: 1 },
      retryBackoff: 5,
      plans: KINDS.flatMap((kind, i) => [
        { kind, delay: i * 3, retries: 2, timeout: 30, cancelAt: undefined },
        { kind, delay: i, retries: 1, timeout: 20, cancelAt: i * 7 },
      ]),
      shutdown: { at: 90, wait: false, late: 2 },
    });
  }, 30_000);
});
