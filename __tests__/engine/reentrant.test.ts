// User code the engine calls in the middle of a task's way (event listeners, the breaker's
// `isFailure` and its state listeners, `shouldRetry`, `retryDelay`) may cancel that very task or
// shut the instance down. The task then settles once, with one outcome event, nothing of it runs
// afterwards, the counters add up, and a waiting shutdown resolves.
import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import {
  CancelledError,
  Event,
  InstanceEvent,
  ShutdownError,
  currentTask,
  type Task,
} from '../../src/index.js';
import { defer, flush, type Deferred } from '../helpers/defer.js';
import { closeAll, create } from '../helpers/instances.js';

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] });
});
afterEach(async () => {
  await closeAll();
  jest.useRealTimers();
});

type Instance = ReturnType<typeof create>;

/** Records every outcome event (done, error, cancelled) of `dvt`. */
function outcomes(dvt: Instance): string[] {
  const seen: string[] = [];
  for (const name of [Event.DONE, Event.ERROR, Event.CANCELLED])
    dvt.events.on(name, () => void seen.push(name));
  return seen;
}

/** Every task settled once: nothing counted twice, nothing left, and a waiting shutdown ends. */
async function settledOnce(dvt: Instance): Promise<void> {
  await jest.advanceTimersByTimeAsync(0);
  const stats = dvt.events.stats();
  expect(stats.done + stats.error + stats.cancelled).toBe(stats.queued);
  expect([dvt.active, dvt.pending]).toEqual([0, 0]);
  let shut = false;
  void dvt.shutdown().then(() => (shut = true));
  await jest.advanceTimersByTimeAsync(0);
  expect(shut).toBe(true);
  expect(jest.getTimerCount()).toBe(0);
}

/** Cancels a task handed over later: the callbacks are made before the task exists. */
function later(): { cancel(): boolean; of<T>(task: Task<T>): Task<T> } {
  let held: Task<unknown> | undefined;
  return {
    cancel: () => held?.cancel() ?? false,
    of: (task) => ((held = task), task),
  };
}

/** Work that always fails with `down`, counting its calls. */
function failing(): { work: () => Promise<never>; calls: () => number } {
  let calls = 0;
  return {
    work: async () => {
      calls += 1;
      throw new Error('down');
    },
    calls: () => calls,
  };
}

/**
 * Schedules `work` on `dvt` as `target`'s task, whose callbacks cancel it: it rejects with
 * `CancelledError`, `cancelled` is its one outcome event, and every task settled once.
 */
async function cancelledOnce(
  dvt: Instance,
  target: ReturnType<typeof later>,
  work: () => Promise<unknown>,
): Promise<void> {
  const seen = outcomes(dvt);
  const task = target.of(dvt.task.schedule(work));
  await expect(task).rejects.toBeInstanceOf(CancelledError);
  expect(seen).toEqual([Event.CANCELLED]);
  await settledOnce(dvt);
}

const boom = (): Promise<never> => Promise.reject(new Error('down'));

/** An instance whose breaker opened (threshold 1) and is due to turn half-open. */
async function dueHalfOpen(options: Parameters<typeof create>[0] = {}): Promise<Instance> {
  const dvt = create({ circuitBreaker: { threshold: 1, halfOpenAfter: 100 }, ...options });
  await dvt.task.schedule(boom).catch(() => undefined);
  expect(dvt.circuit?.state).toBe('open');
  await jest.advanceTimersByTimeAsync(100);
  return dvt;
}

/**
 * A task of key `k` that the listeners of `dvt` cancel as it enters (they clear the queue) never
 * runs and leaves nothing of its key: the next task of `k` runs (`perKey` concurrency 1).
 */
async function clearedKeyed(dvt: Instance, seen: string[]): Promise<void> {
  let ran = false;
  const task = dvt.task.with({ key: 'k' }).schedule(async () => void (ran = true));
  await expect(task).rejects.toBeInstanceOf(CancelledError);
  expect(dvt.activeKeys()).toEqual([]);
  await expect(dvt.task.with({ key: 'k' }).schedule(async () => 'next')).resolves.toBe('next');
  expect(ran).toBe(false);
  expect(seen).toEqual([Event.CANCELLED, Event.DONE]);
  await settledOnce(dvt);
}

describe('listeners on the way in', () => {
  it('a queued listener that shuts down without waiting: the task is cancelled, never runs, and its signal is let go', async () => {
    const dvt = create();
    const seen = outcomes(dvt);
    dvt.events.on(Event.QUEUED, () => void dvt.shutdown({ wait: false }));
    const controller = new AbortController();
    let ran = false;
    const task = dvt.task.with({ signal: controller.signal }).schedule(async () => {
      ran = true;
    });
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    // Nothing watches the signal of a task that is over.
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    await flush();
    expect(ran).toBe(false);
    expect(seen).toEqual([Event.CANCELLED]);
    await settledOnce(dvt);
  });

  it('a queued listener that clears the queue: the keyed task is cancelled, and its key is free for the next', async () => {
    const dvt = create({ perKey: { concurrency: 1 } });
    const seen = outcomes(dvt);
    let clear = true;
    dvt.events.on(Event.QUEUED, () => {
      if (clear) dvt.clearQueue();
      clear = false;
    });
    await clearedKeyed(dvt, seen);
  });

  it('a half-open listener that clears the queue as a keyed task enters: its key is free for the next', async () => {
    const dvt = await dueHalfOpen({ perKey: { concurrency: 1 } });
    const seen = outcomes(dvt);
    dvt.events.on('circuit_half_open', () => dvt.clearQueue());
    await clearedKeyed(dvt, seen);
  });

  it('a half-open listener that shuts down as the task enters: cancelled, never run', async () => {
    const dvt = await dueHalfOpen();
    const seen = outcomes(dvt);
    dvt.events.on('circuit_half_open', () => void dvt.shutdown({ wait: false }));
    let ran = false;
    const task = dvt.task.schedule(async () => void (ran = true));
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    expect(ran).toBe(false);
    expect(seen).toEqual([Event.CANCELLED]);
    await settledOnce(dvt);
  });

  it('a half-open listener that cancels the task about to start: it never runs, and its trial goes to the next task', async () => {
    // The task waits for its token (burst 1, taken by the failing task), so the circuit turns
    // half-open as that attempt is about to start, not as the task enters.
    const dvt = create({
      rateLimit: { perSecond: 10, burst: 1 },
      circuitBreaker: { threshold: 1, halfOpenAfter: 50 },
    });
    const failing = dvt.task.schedule(boom).catch(() => undefined);
    let ran = false;
    const task = dvt.task.schedule(async () => void (ran = true));
    await failing;
    const seen = outcomes(dvt);
    let cancels = 0;
    dvt.events.on('circuit_half_open', () => {
      if (task.cancel()) cancels += 1;
    });
    await jest.advanceTimersByTimeAsync(100);
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    expect(cancels).toBe(1);
    expect(ran).toBe(false);
    expect(seen).toEqual([Event.CANCELLED]);
    expect(dvt.events.stats()).toMatchObject({ started: 1, done: 0 });
    // Its trial was given back: the next task is the trial, and its success closes the circuit.
    const next = dvt.task.schedule(async () => 'trial');
    await jest.advanceTimersByTimeAsync(100);
    await expect(next).resolves.toBe('trial');
    expect(dvt.circuit?.state).toBe('closed');
    await settledOnce(dvt);
  });

  it('a half-open listener that shuts down as a retry is about to start: cancelled, not retried', async () => {
    const dvt = create({
      retries: 1,
      retryBackoff: 200,
      circuitBreaker: { threshold: 1, halfOpenAfter: 100 },
    });
    const seen = outcomes(dvt);
    const down = failing();
    const task = dvt.task.schedule(down.work);
    const outcome = task.catch((error: unknown) => error);
    dvt.events.on('circuit_half_open', () => void dvt.shutdown({ wait: false }));
    await jest.advanceTimersByTimeAsync(200);
    const error = await outcome;
    expect(error).toBeInstanceOf(CancelledError);
    expect((error as CancelledError).cause).toBeInstanceOf(ShutdownError);
    expect(down.calls()).toBe(1);
    expect(seen).toEqual([Event.CANCELLED]);
    await settledOnce(dvt);
  });

  it('a half-open listener that cancels a retry about to take its token: the token is left for the next task', async () => {
    const dvt = create({
      retries: 1,
      retryBackoff: 200,
      rateLimit: { perSecond: 10, burst: 1 },
      circuitBreaker: { threshold: 1, halfOpenAfter: 100 },
    });
    const seen = outcomes(dvt);
    const down = failing();
    const task = dvt.task.schedule(down.work);
    const outcome = task.catch((error: unknown) => error);
    dvt.events.on('circuit_half_open', () => void task.cancel());
    await jest.advanceTimersByTimeAsync(200);
    expect(await outcome).toBeInstanceOf(CancelledError);
    expect(down.calls()).toBe(1);
    // The bucket (burst 1) refilled while the retry slept: the next task starts at once.
    let started = false;
    const next = dvt.task.schedule(async () => void (started = true));
    await jest.advanceTimersByTimeAsync(0);
    expect(started).toBe(true);
    await next;
    expect(seen).toEqual([Event.CANCELLED, Event.DONE]);
    await settledOnce(dvt);
  });
});

describe("the breaker's callbacks as an attempt ends", () => {
  it('an isFailure that cancels the task it judges: cancelled once, no error event', async () => {
    const target = later();
    const dvt = create({
      circuitBreaker: { threshold: 5, isFailure: () => (target.cancel(), true) },
    });
    await cancelledOnce(dvt, target, boom);
  });

  it('an isFailure that cancels the task, then throws: still cancelled once', async () => {
    const target = later();
    const dvt = create({
      circuitBreaker: {
        threshold: 5,
        isFailure: () => {
          target.cancel();
          throw new Error('isFailure threw');
        },
      },
    });
    await cancelledOnce(dvt, target, boom);
  });

  it('an isFailure that cancels its task while retries are left: not retried', async () => {
    const target = later();
    const down = failing();
    const dvt = create({
      retries: 2,
      retryBackoff: 10,
      circuitBreaker: { threshold: 5, isFailure: () => (target.cancel(), true) },
    });
    const seen = outcomes(dvt);
    const task = target.of(dvt.task.schedule(down.work));
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    await jest.advanceTimersByTimeAsync(100);
    expect(down.calls()).toBe(1);
    expect(seen).toEqual([Event.CANCELLED]);
    expect(dvt.events.stats().retries).toBe(0);
    await settledOnce(dvt);
  });

  it('a closed listener that cancels the trial which closed the circuit: cancelled, not done', async () => {
    const dvt = await dueHalfOpen();
    const seen = outcomes(dvt);
    const target = later();
    dvt.events.on('circuit_closed', () => void target.cancel());
    const task = target.of(dvt.task.schedule(async () => 'trial'));
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    expect(dvt.circuit?.state).toBe('closed');
    expect(seen).toEqual([Event.CANCELLED]);
    await settledOnce(dvt);
  });
});

describe('the adaptive limit as an attempt ends', () => {
  it('an isOverload that cancels the task it judges: cancelled once, no error event', async () => {
    const target = later();
    const dvt = create({
      concurrency: 'adaptive',
      adaptive: { isOverload: () => (target.cancel(), true) },
    });
    await cancelledOnce(dvt, target, boom);
  });

  it('a limit_changed listener that cancels the task whose end changed the limit: cancelled once', async () => {
    const dvt = create({ concurrency: 'adaptive', timeout: 50, adaptive: { initial: 10 } });
    const first = dvt.task.schedule(() => new Promise((resolve) => setTimeout(resolve, 20)));
    await jest.advanceTimersByTimeAsync(20);
    await first;
    const seen = outcomes(dvt);
    const target = later();
    const limits: number[] = [];
    dvt.events.on(InstanceEvent.LIMIT_CHANGED, (p) => {
      limits.push(p.limit);
      target.cancel();
    });
    // Past the adaptive limit's window (250 ms), an overload (a timeout, by default) ends the
    // window as its attempt ends, and cuts the limit.
    await jest.advanceTimersByTimeAsync(300);
    const task = target.of(
      dvt.task.schedule(() => new Promise((resolve) => setTimeout(resolve, 100))),
    );
    const outcome = task.catch((error: unknown) => error);
    await jest.advanceTimersByTimeAsync(50);
    expect(limits).toHaveLength(1);
    expect(limits[0]).toBeLessThan(10);
    expect(await outcome).toBeInstanceOf(CancelledError);
    expect(seen).toEqual([Event.CANCELLED]);
    await jest.advanceTimersByTimeAsync(100);
    await settledOnce(dvt);
  });
  it('a limit_changed listener that cancels the running tasks as a success raises the limit: each settles once', async () => {
    const dvt = create({ concurrency: 'adaptive', adaptive: { initial: 2 } });
    const seen = outcomes(dvt);
    const running = new Set<Task<unknown>>();
    const raised: number[] = [];
    dvt.events.on(InstanceEvent.LIMIT_CHANGED, (p) => {
      raised.push(p.limit - p.previous);
      for (const task of running) task.cancel();
    });
    // Two tasks of 20 ms at a time, at their floor latency: a window (250 ms) closes on a
    // success, which raises the limit; the task that ended it is among those cancelled.
    let tasks = 0;
    for (let round = 0; round < 40 && raised.length === 0; round++) {
      const pair = [0, 1].map(() => {
        const task = dvt.task.schedule(() => new Promise((resolve) => setTimeout(resolve, 20)));
        running.add(task);
        void task.then(
          () => running.delete(task),
          () => running.delete(task),
        );
        return task;
      });
      tasks += 2;
      await jest.advanceTimersByTimeAsync(20);
      await Promise.allSettled(pair);
    }
    expect(raised).toHaveLength(1);
    expect(raised[0]).toBeGreaterThan(0);
    expect(seen).toHaveLength(tasks);
    expect(seen).toContain(Event.CANCELLED);
    await settledOnce(dvt);
  });
});

describe('the retry callbacks', () => {
  it('a shouldRetry that cancels its task: cancelled once, no retry announced or counted', async () => {
    const target = later();
    const down = failing();
    let delays = 0;
    const dvt = create({
      retries: 2,
      retryDelay: () => ((delays += 1), 10),
      shouldRetry: () => (target.cancel(), true),
    });
    const seen = outcomes(dvt);
    const retries: number[] = [];
    dvt.events.on(Event.RETRY, (p) => void retries.push(p.attempt));
    const task = target.of(dvt.task.schedule(down.work));
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    await jest.advanceTimersByTimeAsync(100);
    expect(down.calls()).toBe(1);
    // Nor is its delay asked for.
    expect(delays).toBe(0);
    expect(retries).toEqual([]);
    expect(seen).toEqual([Event.CANCELLED]);
    expect(dvt.events.stats()).toMatchObject({ retries: 0, cancelled: 1 });
    await settledOnce(dvt);
  });

  it('a retryDelay that cancels its task: cancelled once, and no sleep left behind', async () => {
    const target = later();
    const down = failing();
    const dvt = create({ retries: 2, retryDelay: () => (target.cancel(), 60_000) });
    const seen = outcomes(dvt);
    const task = target.of(dvt.task.schedule(down.work));
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    await flush();
    // No minute-long timer keeps the process alive for a task that is over.
    expect(jest.getTimerCount()).toBe(0);
    expect(down.calls()).toBe(1);
    expect(seen).toEqual([Event.CANCELLED]);
    expect(dvt.events.stats().retries).toBe(0);
    await settledOnce(dvt);
  });

  it('a shouldRetry that shuts the instance down without waiting: no retry, the task ends at once', async () => {
    const down = failing();
    let delays = 0;
    const dvt = create({ retries: 2, retryDelay: () => ((delays += 1), 60_000) });
    const seen = outcomes(dvt);
    const task = dvt.task
      .with({ shouldRetry: () => (void dvt.shutdown({ wait: false }), true) })
      .schedule(down.work);
    let outcome: unknown;
    void task.catch((error: unknown) => (outcome = error));
    await jest.advanceTimersByTimeAsync(0);
    // It fails with its error, as an attempt that fails after the shutdown began.
    expect(outcome).toEqual(new Error('down'));
    expect(down.calls()).toBe(1);
    expect(delays).toBe(0);
    expect(seen).toEqual([Event.ERROR]);
    expect(jest.getTimerCount()).toBe(0);
    await settledOnce(dvt);
  });
});

describe('between a failed attempt and its retry', () => {
  it('a task cancelled before its retry is decided: its shouldRetry is not asked', async () => {
    const target = later();
    let asked = 0;
    const dvt = create({
      retries: 2,
      shouldRetry: () => ((asked += 1), true),
      // Cancels the task a microtask after its failure was recorded: the retry loop has the
      // failure by then, and has not decided yet.
      circuitBreaker: {
        threshold: 5,
        isFailure: () => (queueMicrotask(() => target.cancel()), true),
      },
    });
    const seen = outcomes(dvt);
    const down = failing();
    const task = target.of(dvt.task.schedule(down.work));
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    await flush();
    expect(asked).toBe(0);
    expect(down.calls()).toBe(1);
    expect(seen).toEqual([Event.CANCELLED]);
    await settledOnce(dvt);
  });

  it('an instance shut down before the retry is decided: shouldRetry is not asked, the task fails', async () => {
    let asked = 0;
    const dvt = create({
      retries: 2,
      shouldRetry: () => ((asked += 1), true),
      circuitBreaker: {
        threshold: 5,
        isFailure: () => (void dvt.shutdown({ wait: false }), true),
      },
    });
    const seen = outcomes(dvt);
    const down = failing();
    await expect(dvt.task.schedule(down.work)).rejects.toEqual(new Error('down'));
    expect(asked).toBe(0);
    expect(down.calls()).toBe(1);
    expect(seen).toEqual([Event.ERROR]);
    await settledOnce(dvt);
  });
});

describe('the retry callbacks, later', () => {
  it('a retryDelay that shuts the instance down without waiting: no retry, the task ends at once', async () => {
    const down = failing();
    const dvt = create({
      retries: 2,
      retryDelay: () => (void dvt.shutdown({ wait: false }), 60_000),
    });
    const seen = outcomes(dvt);
    const retries: number[] = [];
    dvt.events.on(Event.RETRY, (p) => void retries.push(p.attempt));
    let outcome: unknown;
    void dvt.task.schedule(down.work).catch((error: unknown) => (outcome = error));
    await jest.advanceTimersByTimeAsync(0);
    expect(outcome).toEqual(new Error('down'));
    expect(down.calls()).toBe(1);
    expect(retries).toEqual([]);
    expect(seen).toEqual([Event.ERROR]);
    expect(jest.getTimerCount()).toBe(0);
    await settledOnce(dvt);
  });

  it('a retry listener that cancels the task: cancelled once, and no sleep left behind', async () => {
    const down = failing();
    const dvt = create({ retries: 2, retryBackoff: 60_000 });
    const seen = outcomes(dvt);
    const task = dvt.task.schedule(down.work);
    dvt.events.on(Event.RETRY, () => void task.cancel());
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    await flush();
    expect(jest.getTimerCount()).toBe(0);
    expect(down.calls()).toBe(1);
    expect(seen).toEqual([Event.CANCELLED]);
    await settledOnce(dvt);
  });
});

/** A work function whose every call (first copy or hedge) waits until the test ends it. */
function held(): { calls: Deferred<string>[]; work: () => Promise<string> } {
  const calls: Deferred<string>[] = [];
  const work = (): Promise<string> => {
    if (currentTask() === undefined) throw new Error('no task context');
    const end = defer<string>();
    calls.push(end);
    return end.promise;
  };
  return { calls, work };
}

describe('hedged attempts', () => {
  it("an isFailure that cancels the task on its last hedge's failure: cancelled once", async () => {
    const target = later();
    const dvt = create({
      hedge: { delay: 10 },
      circuitBreaker: {
        threshold: 5,
        isFailure: (error) => {
          if ((error as Error).message === 'hedge failed') target.cancel();
          return true;
        },
      },
    });
    const seen = outcomes(dvt);
    const { calls, work } = held();
    const task = target.of(dvt.task.schedule(work));
    await jest.advanceTimersByTimeAsync(10);
    calls[0]?.reject(new Error('first failed'));
    await flush();
    calls[1]?.reject(new Error('hedge failed'));
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    expect(seen).toEqual([Event.CANCELLED]);
    await settledOnce(dvt);
  });

  it("an isFailure that shuts down on the last hedge's failure, retries left: it fails once, with the shutdown's reason", async () => {
    const dvt = create({
      hedge: { delay: 10 },
      retries: 2,
      circuitBreaker: {
        threshold: 5,
        isFailure: (error) => {
          if ((error as Error).message === 'hedge failed') void dvt.shutdown({ wait: false });
          return true;
        },
      },
    });
    const seen = outcomes(dvt);
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    const outcome = task.catch((error: unknown) => error);
    await jest.advanceTimersByTimeAsync(10);
    calls[0]?.reject(new Error('first failed'));
    await flush();
    calls[1]?.reject(new Error('hedge failed'));
    expect(await outcome).toBeInstanceOf(ShutdownError);
    await jest.advanceTimersByTimeAsync(100);
    expect(calls).toHaveLength(2);
    expect(seen).toEqual([Event.ERROR]);
    expect(dvt.events.stats()).toMatchObject({ retries: 0, error: 1 });
    await settledOnce(dvt);
  });
});
