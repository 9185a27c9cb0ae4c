// A task's next step often comes a turn after what let it go on: a key handed on, a toThread body
// in a later macrotask, a retry parked until a pause ends, an attempt whose token wait is over.
// If the task was cancelled or moved on meanwhile (or the instance stopped), that step runs
// nothing.
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { CancelledError, Event, ShutdownError } from '../../src/index.js';
import { closeAll, create } from '../helpers/instances.js';

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] });
});
afterEach(async () => {
  await closeAll();
  jest.useRealTimers();
});

describe('shutdown({ wait: false })', () => {
  it('a task it cancels hands its key on, and the next task of that key does not start', async () => {
    const dvt = create({ concurrency: 10, perKey: { concurrency: 1 } });
    const keyed = dvt.task.with({ key: 'k', retries: 1, retryBackoff: 60_000 });
    const calls: string[] = [];
    // The first fails and sleeps before its retry, holding the key; the second waits for the key.
    const first = keyed.schedule(() => {
      calls.push('first');
      throw new Error('boom');
    });
    const second = keyed.schedule(() => void calls.push('second'));
    const outcomes = Promise.allSettled([first, second]);
    await jest.advanceTimersByTimeAsync(0);
    expect(calls).toEqual(['first']);
    expect(dvt.events.stats().retries).toBe(1);

    await dvt.shutdown({ wait: false });
    const [a, b] = await outcomes;
    expect(calls).toEqual(['first']);
    for (const outcome of [a, b]) {
      expect(outcome).toMatchObject({ status: 'rejected', reason: expect.any(CancelledError) });
      expect((outcome as PromiseRejectedResult).reason).toMatchObject({
        cause: expect.any(ShutdownError),
      });
    }
    expect(dvt.events.stats()).toMatchObject({ started: 1, cancelled: 2, done: 0, error: 0 });
  });
});

describe('toThread', () => {
  it('a task cancelled before its body’s turn never runs the body', async () => {
    const dvt = create();
    const fn = jest.fn(() => 'ran');
    const task = dvt.task.toThread(fn);
    // Cancelled once it has started: its body waits for a later macrotask.
    dvt.events.on(Event.STARTED, () => queueMicrotask(() => void task.cancel()));
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    await new Promise((resolve) => setImmediate(resolve));
    expect(fn).not.toHaveBeenCalled();
    expect(dvt.events.stats()).toMatchObject({ started: 1, cancelled: 1, done: 0 });
  });

  it('an attempt that timed out before its body’s turn never runs that body', async () => {
    const dvt = create();
    const fn = jest.fn(() => 'ran');
    const task = dvt.task.with({ timeout: 5, retries: 1, retryBackoff: 0 }).toThread(fn);
    // Only timers and microtasks until the retry has started: both bodies wait for their turn.
    for (let turn = 0; turn < 100 && dvt.events.stats().started < 2; turn += 1) {
      jest.advanceTimersByTime(5);
      for (let tick = 0; tick < 10; tick += 1) await Promise.resolve();
    }
    expect(dvt.events.stats()).toMatchObject({ started: 2, retries: 1 });
    await expect(task).resolves.toBe('ran');
    expect(fn).toHaveBeenCalledTimes(1);
  });
});

describe('a task cancelled after its wait ended, before its turn', () => {
  it('a retry parked by a pause, cancelled, does not run when the pause ends', async () => {
    const dvt = create({ retries: 1 });
    let calls = 0;
    const task = dvt.task.schedule(async () => {
      calls += 1;
      dvt.pause();
      throw new Error('first');
    });
    await jest.advanceTimersByTimeAsync(0);
    expect([calls, dvt.events.stats().retries]).toEqual([1, 1]);
    task.cancel();
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    dvt.resume();
    await jest.advanceTimersByTimeAsync(0);
    expect(calls).toBe(1);
    expect(dvt.events.stats()).toMatchObject({ started: 1, cancelled: 1, error: 0 });
  });

  it('a task whose token came, cancelled by the task served just before it, does not start', async () => {
    // Three tokens, one a second. A task of cost 3 takes them; another of cost 3 waits at the
    // head. Two seconds later two of cost 1 queue behind it, and cancelling the head serves both
    // in one go, with no time waited: the first of them cancels the second as it starts.
    const dvt = create({ rateLimit: { perSecond: 1, burst: 3 } });
    const calls: string[] = [];
    const costly = dvt.task.with({ cost: 3 });
    void costly.schedule(() => void calls.push('free'));
    const head = costly.schedule(() => void calls.push('head'));
    await jest.advanceTimersByTimeAsync(2_000);
    const first = dvt.task.schedule(() => {
      calls.push('first');
      // Runs two turns later: `second` is there by then.
      second.cancel();
    });
    const second = dvt.task.schedule(() => void calls.push('second'));
    await jest.advanceTimersByTimeAsync(0);
    expect(calls).toEqual(['free']);
    head.cancel();
    await first;
    await expect(second).rejects.toBeInstanceOf(CancelledError);
    await expect(head).rejects.toBeInstanceOf(CancelledError);
    expect(calls).toEqual(['free', 'first']);
    expect(dvt.events.stats()).toMatchObject({ started: 2, done: 2, cancelled: 2 });
  });
});
